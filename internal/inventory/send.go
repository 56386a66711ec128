package inventory

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// PendingSend links a deployment to exactly the command sent for it. A run
// records it on META (under its claim) before SendCommand; the id travels
// in the command's Comment. A retry of the same install after a failure
// between SendCommand and the commit adopts only the command carrying this
// id; the commit removes it, so a later run never adopts an earlier run's
// command.
type PendingSend struct {
	ID string `dynamodbav:"id"`
	// Install identifies what was sent (fleet.InstallKey: parameters and
	// targets); a different install never reuses the id.
	Install string `dynamodbav:"install"`
	At      int64  `dynamodbav:"at"`
	// Dropped are instance ids of the targets SSM refused as no longer
	// managed (InvalidInstanceId) before this send: the send goes to the
	// rest, and a retry of the same install leaves them out again so that
	// it adopts this send (pipeline, gone.go).
	Dropped []string `dynamodbav:"dropped,omitempty"`
}

// RecordSend stores ps on c's META item if c is still at the version read
// and the claim token is still token, and returns the updated item.
func (s *Store) RecordSend(ctx context.Context, c *Cert, token string, ps PendingSend) (*Cert, error) {
	v, err := attributevalue.Marshal(ps)
	if err != nil {
		return nil, fmt.Errorf("encode pending send for %s: %w", c.Name, err)
	}
	now := s.stamp()
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(c.PK, metaSK),
		UpdateExpression:    aws.String("SET #send = :send, #version = #version + :one, #updatedAt = :now"),
		ConditionExpression: aws.String("#version = :version AND #claim.#token = :token"),
		ExpressionAttributeNames: map[string]string{
			"#send": "pendingSend", "#version": "version", "#updatedAt": "updatedAt", "#claim": "claim", "#token": "token",
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":send": v, ":one": num(1), ":version": num(c.Version), ":now": str(FormatTime(now)), ":token": str(token),
		},
	})
	if err != nil {
		return nil, conflictOr(err, "record pending send of "+c.Name)
	}
	next := *c
	next.PendingSend, next.Version, next.UpdatedAt = &ps, c.Version+1, now
	return &next, nil
}
