package inventory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

const commandPK, commandSK = "COMMAND#", "COMMAND"

// KeepCommandRefs is how long a COMMAND reference outlives its command: SSM
// reports within the command's delivery and execution timeouts, far less.
const KeepCommandRefs = 30 * 24 * time.Hour

// CommandRef is a COMMAND item: which name and deployment an SSM command
// belongs to, for status events that carry only the command id.
type CommandRef struct {
	PK           string `dynamodbav:"PK"`
	SK           string `dynamodbav:"SK"`
	CommandID    string `dynamodbav:"commandId"`
	Name         string `dynamodbav:"name"`
	DeploymentID string `dynamodbav:"deploymentId"`
	ExpiresAt    int64  `dynamodbav:"expiresAt"`
}

// GetCommandRef returns the reference of an SSM command, or nil when the
// command is not certferry's (or long gone).
func (s *Store) GetCommandRef(ctx context.Context, commandID string) (*CommandRef, error) {
	return getItem[CommandRef](ctx, s, commandPK+commandID, commandSK, "command "+commandID)
}

// GetDeployment returns a DEPLOY item with its counts (its shards'
// added), or nil.
func (s *Store) GetDeployment(ctx context.Context, name, deploymentID string) (*Deployment, error) {
	d, err := getItem[Deployment](ctx, s, CertKey(name), deployPfx+deploymentID, "deployment "+deploymentID+" of "+name)
	if err != nil || d == nil {
		return d, err
	}
	if err := s.withShards(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// GetNode returns a NODE item, or nil.
func (s *Store) GetNode(ctx context.Context, name, instanceID string) (*Node, error) {
	return getItem[Node](ctx, s, CertKey(name), nodePfx+instanceID, "node "+instanceID+" of "+name)
}

// ErrGone reports a node report for a deployment that is no longer
// recorded (its name was deleted): nothing was written.
var ErrGone = errors.New("deployment no longer recorded")

// RecordReport applies a node's final state for deployment ref in one
// transaction with the deployment's counts. prev is the node as read
// (nil if absent); the write is conditional on it being unchanged, so a
// concurrent event makes this call fail with ErrConflict (read again and
// retry). Stale and duplicate reports fail with ErrStale and change nothing.
func (s *Store) RecordReport(ctx context.Context, ref CommandRef, prev *Node, r Report) error {
	n, delta, err := NextNode(prev, ref, r, s.stamp())
	if err != nil {
		return err
	}
	item, err := marshalItem(n)
	if err != nil {
		return fmt.Errorf("encode node %s: %w", r.InstanceID, err)
	}
	put := &ddbtypes.Put{TableName: aws.String(s.table), Item: item}
	if prev == nil {
		put.ConditionExpression = aws.String("attribute_not_exists(PK)")
	} else {
		put.ConditionExpression = aws.String("updatedAt = :prevUpdated AND #state = :prevState AND " +
			"(attribute_not_exists(deploymentId) OR deploymentId = :prevDep)")
		put.ExpressionAttributeNames = map[string]string{"#state": "state"}
		// updatedAt compares as the stored string: FormatTime of the time
		// read gives back exactly what the store wrote (UTC, RFC 3339).
		put.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{
			":prevUpdated": str(FormatTime(prev.UpdatedAt)), ":prevState": str(string(prev.State)), ":prevDep": str(prev.DeploymentID),
		}
	}
	// The counts go to the node's shard (counts.go), never to the DEPLOY
	// item every report of the deployment would otherwise contend for.
	update := s.countUpdate(ref.Name, ref.DeploymentID, r.InstanceID, delta, s.now().Add(s.retention()+KeepCommandRefs).Unix())
	_, err = s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
		{Put: put}, {Update: update},
	}})
	if err != nil {
		var tce *ddbtypes.TransactionCanceledException
		if errors.As(err, &tce) && len(tce.CancellationReasons) == 2 &&
			aws.ToString(tce.CancellationReasons[1].Code) == "ConditionalCheckFailed" {
			return fmt.Errorf("record %s on %s for %s: %w", r.State, r.InstanceID, ref.Name, ErrGone)
		}
		return conflictOr(err, fmt.Sprintf("record %s on %s for %s", r.State, r.InstanceID, ref.Name))
	}
	return nil
}

// SetCommandStatus records SSM's final status of a deployment's command and
// how many nodes it targeted.
func (s *Store) SetCommandStatus(ctx context.Context, name, deploymentID, status string, expected int) error {
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(CertKey(name), deployPfx+deploymentID),
		UpdateExpression:          aws.String("SET commandStatus = :status, expected = :expected"),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":status": str(status), ":expected": num(int64(expected))},
	})
	if err != nil {
		return conflictOr(err, "record command status of "+name)
	}
	return nil
}

// FinishDeployment sets a deployment's outcome once: it reports false when
// another caller finished it first, so exactly one caller alerts. The
// finished item expires DeployRetention after now (DynamoDB TTL on
// expiresAt); a deployment in progress or waiting never gets an expiry,
// and outcome must be final.
func (s *Store) FinishDeployment(ctx context.Context, name, deploymentID string, outcome Outcome) (bool, error) {
	if !outcome.Final() {
		return false, fmt.Errorf("finish deployment %s of %s: %q is not a final outcome", deploymentID, name, outcome)
	}
	now, keep := s.now(), s.retention()
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(CertKey(name), deployPfx+deploymentID),
		UpdateExpression:         aws.String("SET outcome = :outcome, finishedAt = :now, #expires = :expires"),
		ConditionExpression:      aws.String("outcome = :inProgress"),
		ExpressionAttributeNames: map[string]string{"#expires": TTLAttribute},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":outcome": str(string(outcome)), ":now": str(FormatTime(now.UTC().Truncate(time.Second))), ":inProgress": str(string(OutcomeInProgress)),
			":expires": num(now.Add(keep).Unix()),
		},
	})
	if err != nil {
		if err = conflictOr(err, fmt.Sprintf("finish deployment %s of %s", deploymentID, name)); errors.Is(err, ErrConflict) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// retention is how long finished deployments are kept.
func (s *Store) retention() time.Duration {
	if s.DeployRetention <= 0 {
		return DefaultDeployRetention
	}
	return s.DeployRetention
}
