package inventory

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// NodeIndex is the GSI of NODE items by node (GET /nodes/{instanceId}):
// partition key instanceId, sort key PK (so a node's names come sorted),
// projecting NodeIndexAttributes. Only NODE items carry an instanceId
// attribute (DEPLOY items carry instanceIds), so the index holds nothing
// else. Shared with template.yaml and `certferry local up`.
const NodeIndex = "instanceId-index"

// NodeIndexAttributes are the non-key attributes NodeIndex projects
// (ProjectionType INCLUDE); PK, SK and instanceId come with every index.
var NodeIndexAttributes = []string{"serial", "fingerprintSha256", "state", "error", "unverified", "lastCommandId", "deploymentId", "updatedAt"}

// NodeEntry is one name a node has, as NodeIndex holds it.
type NodeEntry struct {
	Name string `dynamodbav:"-"`
	Node
}

// NodePage is one page of the names a node has.
type NodePage struct {
	InstanceID string
	Entries    []NodeEntry
	Next       string // empty on the last page
}

// nodePageKey is a LastEvaluatedKey of NodeIndex: the index keys and the
// table keys.
type nodePageKey struct {
	InstanceID string `json:"instanceId" dynamodbav:"instanceId"`
	PK         string `json:"PK" dynamodbav:"PK"`
	SK         string `json:"SK" dynamodbav:"SK"`
}

func decodeNodeToken(instanceID, token string) (map[string]ddbtypes.AttributeValue, error) {
	var k nodePageKey
	if err := readToken(token, &k); err != nil {
		return nil, err
	}
	if k.InstanceID != instanceID || k.SK != nodePfx+instanceID || !strings.HasPrefix(k.PK, certPK) || len(k.PK) > 2048 {
		return nil, fmt.Errorf("%w: not a page of %s", ErrBadToken, instanceID)
	}
	return map[string]ddbtypes.AttributeValue{"instanceId": str(k.InstanceID), "PK": str(k.PK), "SK": str(k.SK)}, nil
}

// NodesByInstance reads one page (at most limit names) of what node
// instanceID has under every name, from NodeIndex (eventually consistent,
// as every GSI read). NODE items written before the index existed carry
// instanceId too (every write of a NODE item sets it), so they are indexed
// when the index is built. A token that is not one this method issued for
// instanceID is ErrBadToken.
func (s *Store) NodesByInstance(ctx context.Context, instanceID string, limit int, next string) (*NodePage, error) {
	if limit < 1 || limit > MaxPageLimit {
		return nil, fmt.Errorf("page limit %d: want 1 to %d", limit, MaxPageLimit)
	}
	var start map[string]ddbtypes.AttributeValue
	if next != "" {
		k, err := decodeNodeToken(instanceID, next)
		if err != nil {
			return nil, err
		}
		start = k
	}
	p := &NodePage{InstanceID: instanceID}
	for left := limit; left > 0; {
		out, err := s.api.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			IndexName:                 aws.String(NodeIndex),
			KeyConditionExpression:    aws.String("instanceId = :id"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":id": str(instanceID)},
			ExclusiveStartKey:         start,
			Limit:                     aws.Int32(int32(left)),
		})
		if err != nil {
			return nil, fmt.Errorf("read the names of node %s: %w", instanceID, err)
		}
		for _, it := range out.Items {
			var e NodeEntry
			if err := unmarshalItem(it, &e.Node); err != nil {
				return nil, fmt.Errorf("decode %s of node %s: %w", itemPK(it), instanceID, err)
			}
			if !strings.HasPrefix(e.SK, nodePfx) {
				continue // only NODE items carry instanceId; never show anything else
			}
			e.Name = strings.TrimPrefix(e.PK, certPK)
			p.Entries = append(p.Entries, e)
		}
		left -= len(out.Items)
		if len(out.LastEvaluatedKey) == 0 {
			return p, nil
		}
		start = out.LastEvaluatedKey
		if left == 0 {
			var k nodePageKey
			if err := attributevalue.UnmarshalMap(out.LastEvaluatedKey, &k); err != nil {
				return nil, fmt.Errorf("read the page position of node %s: %w", instanceID, err)
			}
			b, _ := json.Marshal(k)
			p.Next = base64.RawURLEncoding.EncodeToString(b)
		}
	}
	return p, nil
}
