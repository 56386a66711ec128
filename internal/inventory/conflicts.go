package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ConflictRetry bounds the retries of DynamoDB transaction conflicts.
//
// DynamoDB rejects a PutItem, UpdateItem or DeleteItem on an item that an
// ongoing TransactWriteItems holds (TransactionConflictException), and
// cancels a TransactWriteItems whose item another ongoing operation is
// writing (TransactionCanceledException, reason TransactionConflict) ("Amazon
// DynamoDB Transactions: How it works", transaction conflict handling).
// Nothing was written, and the SDK does not retry either (aws-sdk-go-v2's
// standard retryer lists neither code), so the store does: every write goes
// through Store's API with jittered exponential backoff, at most Attempts
// times and never past the context's deadline.
//
// Retrying the same request is right for every write of the store: each
// one that depends on state read before it is conditional on that state
// (version, claim token, the node as read, the outcome still in progress)
// and DynamoDB evaluates the condition again on the retry, so a retry after
// a concurrent change fails with ConditionalCheckFailed (ErrConflict) and
// the caller reads again; counters are computed by DynamoDB (SET n = n + 1),
// never from a value read. A ConditionalCheckFailed cancellation is an
// answer, never retried.
type ConflictRetry struct {
	Attempts int           // at most this many attempts, the first included
	Base     time.Duration // backoff ceiling of the first retry, doubling
	Max      time.Duration // the backoff ceiling never exceeds this
}

// DefaultConflictRetry is the store's policy: up to 20 attempts, full
// jitter under a ceiling of 25 ms doubling to 1 s: at most 14.6 s of
// waiting (7.3 s on average), and never past the context's deadline (the
// functions' timeouts, the API's 29 s). Enough for a wave of a few hundred
// nodes reporting at once on one deployment, whose DEPLOY item every
// report's transaction includes: each attempt that loses a conflict
// spreads further out (TestTrackerWaveWithConflicts).
var DefaultConflictRetry = ConflictRetry{Attempts: 20, Base: 25 * time.Millisecond, Max: time.Second}

// IsTransactionConflict reports whether err is DynamoDB's answer to an
// overlap with an ongoing transaction: TransactionConflictException, or a
// TransactionCanceledException whose reasons are all TransactionConflict
// or None (any other reason, such as ConditionalCheckFailed, is a real
// answer).
func IsTransactionConflict(err error) bool {
	var tc *ddbtypes.TransactionConflictException
	if errors.As(err, &tc) {
		return true
	}
	var tce *ddbtypes.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	conflict := false
	for _, r := range tce.CancellationReasons {
		switch aws.ToString(r.Code) {
		case "TransactionConflict":
			conflict = true
		case "None", "":
		default:
			return false
		}
	}
	return conflict
}

// backoff is the jittered delay before retry n (1-based).
func (p ConflictRetry) backoff(n int) time.Duration {
	ceiling := p.Max
	if n < 31 && p.Base<<(n-1) < p.Max && p.Base<<(n-1) > 0 {
		ceiling = p.Base << (n - 1)
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling) + 1
}

// withConflictRetry runs call until it succeeds, fails with anything but a
// transaction conflict, runs out of attempts, or the next wait would pass
// the context's deadline.
func withConflictRetry[T any](ctx context.Context, p ConflictRetry, op string, call func() (T, error)) (T, error) {
	for n := 1; ; n++ {
		out, err := call()
		if err == nil || !IsTransactionConflict(err) {
			return out, err
		}
		if n >= p.Attempts {
			return out, fmt.Errorf("%s: transaction conflict after %d attempts: %w", op, n, err)
		}
		wait := p.backoff(n)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return out, fmt.Errorf("%s: transaction conflict, no time left for attempt %d: %w", op, n+1, err)
		}
		slog.DebugContext(ctx, "DynamoDB transaction conflict; retrying", "operation", op, "attempt", n, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return out, fmt.Errorf("%s: transaction conflict, then %w", op, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// conflictRetrier is the store's DynamoDB API: writes retry transaction
// conflicts under policy, reads pass through (they never conflict).
type conflictRetrier struct {
	dynamoAPI
	policy *ConflictRetry
}

func (r conflictRetrier) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return withConflictRetry(ctx, *r.policy, "PutItem", func() (*dynamodb.PutItemOutput, error) {
		return r.dynamoAPI.PutItem(ctx, in, optFns...)
	})
}

func (r conflictRetrier) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return withConflictRetry(ctx, *r.policy, "UpdateItem", func() (*dynamodb.UpdateItemOutput, error) {
		return r.dynamoAPI.UpdateItem(ctx, in, optFns...)
	})
}

func (r conflictRetrier) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return withConflictRetry(ctx, *r.policy, "DeleteItem", func() (*dynamodb.DeleteItemOutput, error) {
		return r.dynamoAPI.DeleteItem(ctx, in, optFns...)
	})
}

func (r conflictRetrier) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return withConflictRetry(ctx, *r.policy, "TransactWriteItems", func() (*dynamodb.TransactWriteItemsOutput, error) {
		return r.dynamoAPI.TransactWriteItems(ctx, in, optFns...)
	})
}

// RetryConflicts runs call under DefaultConflictRetry: again after a
// transaction conflict (nothing was written), never after any other
// answer. For writes outside Store that share its items' contention (the
// sweep's run record, which every worker's result transaction updates).
func RetryConflicts[T any](ctx context.Context, op string, call func() (T, error)) (T, error) {
	return withConflictRetry(ctx, DefaultConflictRetry, op, call)
}
