package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// fakeWrites answers writes with errs in turn (then success) and counts
// the calls.
type fakeWrites struct {
	dynamoAPI
	errs  []error
	calls int
}

func (f *fakeWrites) next() error {
	f.calls++
	if len(f.errs) == 0 {
		return nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return err
}

func (f *fakeWrites) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := f.next(); err != nil {
		return nil, err
	}
	return &dynamodb.UpdateItemOutput{}, nil
}

func (f *fakeWrites) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := f.next(); err != nil {
		return nil, err
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func canceled(codes ...string) error {
	e := &ddbtypes.TransactionCanceledException{Message: aws.String("Transaction cancelled")}
	for _, c := range codes {
		e.CancellationReasons = append(e.CancellationReasons, ddbtypes.CancellationReason{Code: aws.String(c)})
	}
	return e
}

var txConflict = &ddbtypes.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}

func TestIsTransactionConflict(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"conflict exception", txConflict, true},
		{"wrapped", errors.Join(errors.New("x"), txConflict), true},
		{"cancelled by a conflict", canceled("None", "TransactionConflict"), true},
		{"cancelled by a condition", canceled("ConditionalCheckFailed", "None"), false},
		{"condition and conflict", canceled("ConditionalCheckFailed", "TransactionConflict"), false},
		{"cancelled by throttling", canceled("ThrottlingError"), false},
		{"cancelled without a reason", canceled("None"), false},
		{"condition failed", &ddbtypes.ConditionalCheckFailedException{}, false},
		{"other", errors.New("boom"), false},
		{"nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsTransactionConflict(tc.err); got != tc.want {
				t.Fatalf("IsTransactionConflict(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestWritesRetryConflicts(t *testing.T) {
	quick := ConflictRetry{Attempts: 4, Base: time.Microsecond, Max: time.Millisecond}
	for _, tc := range []struct {
		name      string
		errs      []error
		calls     int
		errIs     error // nil: success
		conflicts bool  // the final error is still a conflict
	}{
		{"conflict exceptions, then success", []error{txConflict, txConflict}, 3, nil, false},
		{"cancelled by conflicts, then success", []error{canceled("TransactionConflict", "None"), canceled("None", "TransactionConflict")}, 3, nil, false},
		{"condition failure is an answer", []error{canceled("ConditionalCheckFailed", "None")}, 1, ErrConflict, false},
		// The second item is the node's COUNT shard, gone once its name was deleted.
		{"shard gone is an answer", []error{canceled("None", "ConditionalCheckFailed")}, 1, ErrGone, false},
		{"conflict then condition failure", []error{txConflict, canceled("ConditionalCheckFailed")}, 2, ErrConflict, false},
		{"bounded attempts", []error{txConflict, txConflict, txConflict, txConflict, txConflict}, 4, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeWrites{errs: tc.errs}
			s := NewStore(f, "inv")
			s.Conflicts = quick
			err := s.RecordReport(context.Background(), CommandRef{Name: "shop", DeploymentID: "d1", CommandID: "c"}, nil,
				Report{InstanceID: "i-1", State: NodeInstalled})
			if f.calls != tc.calls {
				t.Fatalf("%d calls, want %d", f.calls, tc.calls)
			}
			switch {
			case tc.conflicts:
				if !IsTransactionConflict(err) || !strings.Contains(err.Error(), "after 4 attempts") {
					t.Fatalf("error %v, want the conflict after 4 attempts", err)
				}
			case tc.errIs != nil:
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("error %v, want %v", err, tc.errIs)
				}
			case err != nil:
				t.Fatalf("error %v", err)
			}
		})
	}
}

// The retries never wait past the context's deadline: with a backoff
// longer than the time left, the conflict is returned at once.
func TestConflictRetryStopsAtDeadline(t *testing.T) {
	f := &fakeWrites{errs: []error{txConflict, txConflict}}
	s := NewStore(f, "inv")
	// A backoff drawn under 100 000 hours is all but never under a minute.
	s.Conflicts = ConflictRetry{Attempts: 10, Base: 100000 * time.Hour, Max: 100000 * time.Hour}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.SetCommandStatus(ctx, "shop", "d1", "Success", 2)
	if f.calls != 1 || !IsTransactionConflict(err) || !strings.Contains(err.Error(), "no time left") {
		t.Fatalf("%d calls, error %v: want one call and the conflict", f.calls, err)
	}
	// A cancelled context ends the wait.
	f = &fakeWrites{errs: []error{txConflict, txConflict}}
	s = NewStore(f, "inv")
	s.Conflicts = ConflictRetry{Attempts: 10, Base: 24 * time.Hour, Max: 24 * time.Hour}
	ctx, cancel = context.WithCancel(context.Background())
	go cancel()
	if err := s.SetCommandStatus(ctx, "shop", "d1", "Success", 2); !errors.Is(err, context.Canceled) || f.calls != 1 {
		t.Fatalf("%d calls, error %v: want one call, then the cancellation", f.calls, err)
	}
}

func TestBackoffBounds(t *testing.T) {
	p := ConflictRetry{Attempts: 40, Base: 25 * time.Millisecond, Max: time.Second}
	for n := 1; n < 40; n++ {
		ceiling := min(p.Max, 25*time.Millisecond<<min(n-1, 20))
		for range 50 {
			if d := p.backoff(n); d <= 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want in (0, %v]", n, d, ceiling)
			}
		}
	}
}
