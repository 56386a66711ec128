package sweeper

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// conflictingRuns answers the run's writes with DynamoDB's transaction
// conflict `conflicts` times, then as DynamoDB would; it counts the writes
// that went through.
type conflictingRuns struct {
	runAPI
	conflicts int
	reason    string // cancellation reason of the conflicting answers
	tx, upd   int
}

func canceled(reason string) error {
	return &ddbtypes.TransactionCanceledException{Message: aws.String("Transaction cancelled"),
		CancellationReasons: []ddbtypes.CancellationReason{{Code: aws.String("None")}, {Code: aws.String(reason)}}}
}

func (c *conflictingRuns) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if c.conflicts > 0 {
		c.conflicts--
		return nil, canceled(c.reason)
	}
	c.tx++
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func (c *conflictingRuns) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if c.conflicts > 0 {
		c.conflicts--
		return nil, &ddbtypes.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
	}
	c.upd++
	return &dynamodb.UpdateItemOutput{}, nil
}

func (c *conflictingRuns) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return nil, &ddbtypes.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
}

func (c *conflictingRuns) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return &dynamodb.GetItemOutput{Item: map[string]ddbtypes.AttributeValue{"PK": avS("SWEEP#r1"), "SK": avS(runSK), "total": avN(2), "done": avN(1)}}, nil
}

// Several sweep workers record their names' results at once, each in a
// transaction that also counts the result on the run's RUN item: DynamoDB
// cancels the ones that overlap (TransactionConflict) and writes nothing.
// The result must then be recorded, once, not failed back to SQS (which
// would sweep the name again after the visibility timeout, and after
// SweepMaxReceiveCount dead-letter it); a ConditionalCheckFailed is an
// answer, never retried.
func TestRunsRetryTransactionConflicts(t *testing.T) {
	ctx := context.Background()
	res := NameResult{Report: NameReport{Name: "shop-web"}}
	for _, tc := range []struct {
		name      string
		conflicts int
		reason    string
		wantErr   bool
		wantTx    int
	}{
		{"no conflict", 0, "TransactionConflict", false, 1},
		{"three conflicts, then recorded once", 3, "TransactionConflict", false, 1},
		{"a condition failed is an answer", 1, "ConditionalCheckFailed", false, 0},
		{"conflicts until the deadline fail", 1000, "TransactionConflict", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &conflictingRuns{conflicts: tc.conflicts, reason: tc.reason}
			runs := NewRuns(api, "inv")
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := runs.Record(ctx, "r1", res, time.Now())
			if (err != nil) != tc.wantErr || api.tx != tc.wantTx {
				t.Fatalf("record: %v, %d transactions written; want error %v and %d", err, api.tx, tc.wantErr, tc.wantTx)
			}
			if tc.reason == "ConditionalCheckFailed" && api.conflicts != 0 {
				t.Fatal("the conditional failure was not the answer")
			}
		})
	}
	t.Run("alert claim retried past an ongoing transaction", func(t *testing.T) {
		api := &conflictingRuns{conflicts: 2}
		if err := NewRuns(api, "inv").SettleAlert(ctx, "r1", "alert-1", time.Now()); err != nil {
			t.Fatalf("settle: %v", err)
		}
		if api.upd != 1 {
			t.Fatalf("%d updates written, want 1 after 2 conflicts", api.upd)
		}
	})
}
