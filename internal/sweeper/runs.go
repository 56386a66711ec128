package sweeper

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/certferry/certferry/internal/inventory"
)

// A sweep run is one scheduled fan-out: the names it enqueued and what each
// worker found. Its records live in the inventory table, beside (never
// inside) the CERT# items, so that nothing else reads them:
//
//	SWEEP#<runId> / RUN          total (names enqueued), done (names with a result), alert claim and id
//	SWEEP#<runId> / NAME#<name>  one name's result (NameResult), written once per name
//	SWEEP         / LATEST       the id of the latest run (the next run alerts for it if it never completed)
//
// Every record expires (expiresAt, the table's TTL attribute) after
// RunRetention.
const (
	runPKPrefix  = "SWEEP#"
	runSK        = "RUN"
	nameSKPrefix = "NAME#"
	latestPK     = "SWEEP"
	latestSK     = "LATEST"
)

// RunRetention is how long a run's records stay in the table.
const RunRetention = 30 * 24 * time.Hour

// Run is a sweep run's RUN item.
type Run struct {
	ID              string    `dynamodbav:"runId"`
	Total           int       `dynamodbav:"total"`
	Done            int       `dynamodbav:"done"`
	StartedAt       time.Time `dynamodbav:"startedAt"`
	EnqueuedAt      time.Time `dynamodbav:"enqueuedAt,omitempty"` // every name's message was accepted
	AlertClaimUntil int64     `dynamodbav:"alertClaimUntil,omitempty"`
	AlertedAt       time.Time `dynamodbav:"alertedAt,omitempty"`
	AlertID         string    `dynamodbav:"alertId,omitempty"`
}

// Complete tells whether every enqueued name has a result.
func (r Run) Complete() bool { return r.Done >= r.Total }

// Alerted tells whether the run's aggregate alert was settled (sent, or
// found to have nothing to say).
func (r Run) Alerted() bool { return !r.AlertedAt.IsZero() }

// NameResult is one name's result in a run, as a worker recorded it.
type NameResult struct {
	Report  NameReport `dynamodbav:"report"`
	SweptAt time.Time  `dynamodbav:"sweptAt"`
	// Attempts is the SQS receive count of the message that recorded it.
	Attempts int `dynamodbav:"attempts"`
}

// Failed tells whether the worker gave up on the name (its message went
// to the dead-letter queue).
func (r NameResult) Failed() bool { return r.Report.Error != "" }

// ErrClaimed means another invocation holds or settled a run's alert.
var ErrClaimed = errors.New("sweep run alert claimed elsewhere")

type runAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ runAPI = (*dynamodb.Client)(nil)

// Runs keeps sweep runs in DynamoDB.
type Runs struct {
	api   runAPI
	table string
}

// NewRuns keeps runs in table. Its writes retry DynamoDB's transaction
// conflicts (conflictSafe): every worker's result transaction updates the
// run's RUN item, so with several workers at once they overlap.
func NewRuns(api runAPI, table string) *Runs {
	return &Runs{api: conflictSafe{api}, table: table}
}

// conflictSafe retries a write DynamoDB cancelled or refused because
// another transaction held one of its items ("Amazon DynamoDB
// Transactions: How it works", transaction conflict handling): nothing was
// written, the SDK does not retry it, and every write of Runs is
// conditional or a counter DynamoDB computes, so the retry is the same
// request judged again (inventory.ConflictRetry).
type conflictSafe struct{ runAPI }

func (c conflictSafe) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return inventory.RetryConflicts(ctx, "PutItem", func() (*dynamodb.PutItemOutput, error) { return c.runAPI.PutItem(ctx, in, optFns...) })
}

func (c conflictSafe) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return inventory.RetryConflicts(ctx, "UpdateItem", func() (*dynamodb.UpdateItemOutput, error) { return c.runAPI.UpdateItem(ctx, in, optFns...) })
}

func (c conflictSafe) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return inventory.RetryConflicts(ctx, "TransactWriteItems", func() (*dynamodb.TransactWriteItemsOutput, error) {
		return c.runAPI.TransactWriteItems(ctx, in, optFns...)
	})
}

func avS(v string) *ddbtypes.AttributeValueMemberS { return &ddbtypes.AttributeValueMemberS{Value: v} }
func avN(v int64) *ddbtypes.AttributeValueMemberN {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func key(pk, sk string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{"PK": avS(pk), "SK": avS(sk)}
}

// conditionFailed tells a failed condition (plain, or in a cancelled
// transaction) from other errors.
func conditionFailed(err error) bool {
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return true
	}
	var tce *ddbtypes.TransactionCanceledException
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return true
			}
		}
	}
	return false
}

// Begin records a run of total names and makes it the latest. A run that
// exists already (the schedule's retry of the same event) is returned as
// it is, with created false.
func (r *Runs) Begin(ctx context.Context, id string, total int, now time.Time) (Run, bool, error) {
	run := Run{ID: id, Total: total, StartedAt: now.UTC().Truncate(time.Second)}
	item, err := attributevalue.MarshalMapWithOptions(run, func(o *attributevalue.EncoderOptions) { o.OmitEmptyTime = true })
	if err != nil {
		return Run{}, false, fmt.Errorf("encode sweep run %s: %w", id, err)
	}
	item["PK"], item["SK"] = avS(runPKPrefix+id), avS(runSK)
	item["expiresAt"] = avN(now.Add(RunRetention).Unix())
	latest := key(latestPK, latestSK)
	latest["runId"] = avS(id)
	latest["expiresAt"] = avN(now.Add(RunRetention).Unix())
	_, err = r.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
		{Put: &ddbtypes.Put{TableName: aws.String(r.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
		{Put: &ddbtypes.Put{TableName: aws.String(r.table), Item: latest}},
	}})
	if err == nil {
		return run, true, nil
	}
	if !conditionFailed(err) {
		return Run{}, false, fmt.Errorf("begin sweep run %s: %w", id, err)
	}
	got, err := r.Get(ctx, id)
	if err != nil {
		return Run{}, false, err
	}
	if got == nil {
		return Run{}, false, fmt.Errorf("begin sweep run %s: exists and then does not", id)
	}
	return *got, false, nil
}

// Latest returns the id of the latest run ("" when none).
func (r *Runs) Latest(ctx context.Context) (string, error) {
	out, err := r.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.table), Key: key(latestPK, latestSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", fmt.Errorf("read the latest sweep run: %w", err)
	}
	if v, ok := out.Item["runId"].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value, nil
	}
	return "", nil
}

// Get returns a run, or nil when there is none.
func (r *Runs) Get(ctx context.Context, id string) (*Run, error) {
	out, err := r.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.table), Key: key(runPKPrefix+id, runSK), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read sweep run %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	var run Run
	if err := attributevalue.UnmarshalMap(out.Item, &run); err != nil {
		return nil, fmt.Errorf("decode sweep run %s: %w", id, err)
	}
	return &run, nil
}

// Result returns name's result in run, or nil when it has none.
func (r *Runs) Result(ctx context.Context, id, name string) (*NameResult, error) {
	out, err := r.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.table), Key: key(runPKPrefix+id, nameSKPrefix+name), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read sweep result of %s in run %s: %w", name, id, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	var res NameResult
	if err := attributevalue.UnmarshalMap(out.Item, &res); err != nil {
		return nil, fmt.Errorf("decode sweep result of %s in run %s: %w", name, id, err)
	}
	return &res, nil
}

// Record stores name's result in run. The first result of a name counts
// it done (one transaction: the NAME item's conditional put and the RUN
// item's counter), so a duplicate delivery never counts twice; a later
// success replaces a recorded failure (a dead-lettered message redriven)
// without counting again, and anything else recorded later changes
// nothing. It returns the run as the counter left it when this call
// counted the name, nil otherwise.
func (r *Runs) Record(ctx context.Context, id string, res NameResult, now time.Time) (*Run, error) {
	item, err := attributevalue.MarshalMapWithOptions(res, func(o *attributevalue.EncoderOptions) { o.OmitEmptyTime = true })
	if err != nil {
		return nil, fmt.Errorf("encode sweep result of %s: %w", res.Report.Name, err)
	}
	item["PK"], item["SK"] = avS(runPKPrefix+id), avS(nameSKPrefix+res.Report.Name)
	item["expiresAt"] = avN(now.Add(RunRetention).Unix())
	if res.Failed() {
		item["failed"] = &ddbtypes.AttributeValueMemberBOOL{Value: true}
	}
	_, err = r.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
		{Put: &ddbtypes.Put{TableName: aws.String(r.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(PK)")}},
		{Update: &ddbtypes.Update{TableName: aws.String(r.table), Key: key(runPKPrefix+id, runSK),
			UpdateExpression:          aws.String("ADD #done :one"),
			ConditionExpression:       aws.String("attribute_exists(PK)"),
			ExpressionAttributeNames:  map[string]string{"#done": "done"},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": avN(1)}}},
	}})
	if err == nil {
		return r.Get(ctx, id)
	}
	if !conditionFailed(err) {
		return nil, fmt.Errorf("record sweep result of %s in run %s: %w", res.Report.Name, id, err)
	}
	if res.Failed() {
		return nil, nil // recorded already (or the run is gone): keep the first
	}
	_, err = r.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(r.table), Item: item,
		ConditionExpression:      aws.String("attribute_exists(PK) AND #failed = :t"),
		ExpressionAttributeNames: map[string]string{"#failed": "failed"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":t": &ddbtypes.AttributeValueMemberBOOL{Value: true}}})
	if err != nil && !conditionFailed(err) {
		return nil, fmt.Errorf("replace the failed sweep result of %s in run %s: %w", res.Report.Name, id, err)
	}
	return nil, nil
}

// Results returns every name's result in run (paginated Query).
func (r *Runs) Results(ctx context.Context, id string) ([]NameResult, error) {
	p := dynamodb.NewQueryPaginator(r.api, &dynamodb.QueryInput{
		TableName:                 aws.String(r.table),
		KeyConditionExpression:    aws.String("PK = :pk AND begins_with(SK, :name)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": avS(runPKPrefix + id), ":name": avS(nameSKPrefix)},
		ConsistentRead:            aws.Bool(true),
	})
	var out []NameResult
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the results of sweep run %s: %w", id, err)
		}
		for _, it := range page.Items {
			var res NameResult
			if err := attributevalue.UnmarshalMap(it, &res); err != nil {
				return nil, fmt.Errorf("decode a result of sweep run %s: %w", id, err)
			}
			out = append(out, res)
		}
	}
	return out, nil
}

// ClaimAlert takes the run's alert for lease: only one invocation at a
// time sends it, and none once it was settled. complete also requires
// every name to have a result (the last worker's claim). ErrClaimed when
// the condition does not hold.
func (r *Runs) ClaimAlert(ctx context.Context, id string, complete bool, now time.Time, lease time.Duration) error {
	cond := "attribute_exists(PK) AND attribute_not_exists(alertedAt) AND (attribute_not_exists(alertClaimUntil) OR alertClaimUntil < :now)"
	var names map[string]string
	if complete {
		// TOTAL is one of DynamoDB's reserved words ("Reserved words in
		// DynamoDB"): name both counters through placeholders.
		cond += " AND #done >= #total"
		names = map[string]string{"#done": "done", "#total": "total"}
	}
	_, err := r.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(r.table), Key: key(runPKPrefix+id, runSK),
		UpdateExpression:         aws.String("SET alertClaimUntil = :until"),
		ConditionExpression:      aws.String(cond),
		ExpressionAttributeNames: names,
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":now": avN(now.Unix()), ":until": avN(now.Add(lease).Unix())}})
	if conditionFailed(err) {
		return ErrClaimed
	}
	if err != nil {
		return fmt.Errorf("claim the alert of sweep run %s: %w", id, err)
	}
	return nil
}

// SettleAlert records the run's alert as sent (alertID "" when there was
// nothing to say).
func (r *Runs) SettleAlert(ctx context.Context, id, alertID string, now time.Time) error {
	upd := "SET alertedAt = :at REMOVE alertClaimUntil"
	vals := map[string]ddbtypes.AttributeValue{":at": avS(now.UTC().Format(time.RFC3339))}
	if alertID != "" {
		upd = "SET alertedAt = :at, alertId = :id REMOVE alertClaimUntil"
		vals[":id"] = avS(alertID)
	}
	_, err := r.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(r.table), Key: key(runPKPrefix+id, runSK),
		UpdateExpression: aws.String(upd), ExpressionAttributeValues: vals})
	if err != nil {
		return fmt.Errorf("settle the alert of sweep run %s: %w", id, err)
	}
	return nil
}

// MarkEnqueued records that every name of the run was enqueued, so that
// a duplicate invocation for the same schedule event enqueues nothing.
func (r *Runs) MarkEnqueued(ctx context.Context, id string, now time.Time) error {
	_, err := r.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(r.table), Key: key(runPKPrefix+id, runSK),
		UpdateExpression:          aws.String("SET enqueuedAt = :at"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":at": avS(now.UTC().Format(time.RFC3339))}})
	if err != nil {
		return fmt.Errorf("mark sweep run %s enqueued: %w", id, err)
	}
	return nil
}

// ReleaseAlert gives the claim back after a failed publish, so that the
// next try may send it.
func (r *Runs) ReleaseAlert(ctx context.Context, id string) error {
	_, err := r.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(r.table), Key: key(runPKPrefix+id, runSK),
		UpdateExpression: aws.String("REMOVE alertClaimUntil")})
	if err != nil {
		return fmt.Errorf("release the alert of sweep run %s: %w", id, err)
	}
	return nil
}
