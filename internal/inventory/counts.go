package inventory

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A deployment's node counts are written sharded. Every node report is one
// transaction (the NODE item and the counts, so the counts stay exact), and
// DynamoDB cancels a transaction that overlaps another on one of its items:
// with the counts on the DEPLOY item, every report of a rollout wave would
// include that one item, and hundreds of nodes reporting at once would
// contend for it in turn (a retry that loses spreads out, but the
// item serves one transaction at a time). So the DEPLOY item holds the
// counts the deployment started with (its pending nodes), and each report
// adds to one of CountShards COUNT items chosen by the node's id:
//
//	CERT#<name> / COUNT#<deploymentId>#<shard>: deploymentId, one number per
//	node state (pending goes negative as pending nodes report), expiresAt
//
// A deployment's counts are the DEPLOY item's plus its shards' (one Query
// on the name's partition, consistent). Every read that returns a
// Deployment must add them: GetDeployment and Describe do; a new read of
// DEPLOY items (a page of them) calls withShards, or adds the COUNT items
// its own Query returned (shardCounts, addCounts). Shards expire with a
// margin after their deployment could (DynamoDB TTL).

// CountShards is how many COUNT items a deployment's reports spread over.
const CountShards = 16

const countPfx = "COUNT#"

// countShardSK is the sort key of instanceID's shard of deploymentID.
func countShardSK(deploymentID, instanceID string) string {
	h := fnv.New32a()
	h.Write([]byte(instanceID))
	return fmt.Sprintf("%s%s#%02d", countPfx, deploymentID, h.Sum32()%CountShards)
}

// countUpdate adds one node's move (NextNode's delta) to its shard.
func (s *Store) countUpdate(name, deploymentID, instanceID string, delta CountsDelta, expires int64) *ddbtypes.Update {
	var adds []string
	names := map[string]string{"#dep": "deploymentId", "#expires": TTLAttribute}
	values := map[string]ddbtypes.AttributeValue{":dep": str(deploymentID), ":expires": num(expires)}
	for i, st := range NodeStates {
		if delta[st] == 0 {
			continue
		}
		n, v := fmt.Sprintf("#n%d", i), fmt.Sprintf(":v%d", i)
		adds = append(adds, n+" "+v)
		names[n], values[v] = string(st), num(int64(delta[st]))
	}
	expr := "ADD " + strings.Join(adds, ", ")
	return &ddbtypes.Update{
		TableName: aws.String(s.table), Key: key(CertKey(name), countShardSK(deploymentID, instanceID)),
		UpdateExpression: aws.String(expr + " SET #dep = :dep, #expires = :expires"),
		// The shard exists from the deployment's commit until its name is
		// deleted (DeleteCert removes the shards first): a report that
		// arrives after a DELETE fails here and writes nothing.
		ConditionExpression:      aws.String("attribute_exists(PK)"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}
}

// shardPuts creates deploymentID's CountShards COUNT items, empty, in its
// commit: a node report only adds to a shard that exists.
func (s *Store) shardPuts(name, deploymentID string, expires int64) ([]ddbtypes.TransactWriteItem, error) {
	out := make([]ddbtypes.TransactWriteItem, 0, CountShards)
	for i := range CountShards {
		item, err := attributevalue.MarshalMap(struct {
			PK           string `dynamodbav:"PK"`
			SK           string `dynamodbav:"SK"`
			DeploymentID string `dynamodbav:"deploymentId"`
			ExpiresAt    int64  `dynamodbav:"expiresAt"`
		}{CertKey(name), fmt.Sprintf("%s%s#%02d", countPfx, deploymentID, i), deploymentID, expires})
		if err != nil {
			return nil, fmt.Errorf("encode count shard %d of %s: %w", i, deploymentID, err)
		}
		out = append(out, ddbtypes.TransactWriteItem{Put: &ddbtypes.Put{
			TableName: aws.String(s.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(PK)"),
		}})
	}
	return out, nil
}

// shardCounts decodes a COUNT item: its deployment and counts.
func shardCounts(item map[string]ddbtypes.AttributeValue) (string, map[NodeState]int, error) {
	var sh struct {
		DeploymentID string `dynamodbav:"deploymentId"`
	}
	if err := attributevalue.UnmarshalMap(item, &sh); err != nil {
		return "", nil, err
	}
	counts := map[NodeState]int{}
	for _, st := range NodeStates {
		if v, ok := item[string(st)]; ok {
			var n int
			if err := attributevalue.Unmarshal(v, &n); err != nil {
				return "", nil, fmt.Errorf("count %s: %w", st, err)
			}
			counts[st] = n
		}
	}
	return sh.DeploymentID, counts, nil
}

// addCounts adds a shard's counts to a deployment's.
func addCounts(d *Deployment, counts map[NodeState]int) {
	if d.Counts == nil {
		d.Counts = map[NodeState]int{}
	}
	for st, n := range counts {
		d.Counts[st] += n
	}
}

// withShards adds the counts of dep's shards (one consistent Query).
func (s *Store) withShards(ctx context.Context, dep *Deployment) error {
	items, err := s.queryAll(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(s.table),
		KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :prefix)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":pk": str(dep.PK), ":prefix": str(countPfx + dep.ID + "#"),
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("read counts of deployment %s: %w", dep.ID, err)
	}
	for _, it := range items {
		_, counts, err := shardCounts(it)
		if err != nil {
			return fmt.Errorf("decode counts of deployment %s: %w", dep.ID, err)
		}
		addCounts(dep, counts)
	}
	return nil
}

// isCountShard reports whether sk is a COUNT item's.
func isCountShard(sk string) bool { return strings.HasPrefix(sk, countPfx) }
