package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/certferry/certferry/internal/inventory"
)

func avS(s string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: s} }

func key(pk, sk string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{"PK": avS(pk), "SK": avS(sk)}
}

// startSharded is the bench's sharded DynamoDB with a few shards, so that
// partitions land in different ones.
func startSharded(t *testing.T, shards int) (*scalingDynamoDB, *dynamodb.Client) {
	t.Helper()
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
	})}
	d, err := startScalingDynamoDB(context.Background(), cfg, "inv", shards)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d, d.api
}

// seed writes n partitions of 3 items each with BatchWriteItem (split by
// shard) and returns every key written.
func seed(t *testing.T, api *dynamodb.Client, n int) []string {
	t.Helper()
	ctx := context.Background()
	var want []string
	var reqs []ddbtypes.WriteRequest
	for i := range n {
		for _, sk := range []string{"META", "NODE#a", "NODE#b"} {
			pk := fmt.Sprintf("CERT#n%d", i)
			item := key(pk, sk)
			item["v"] = avS("x")
			reqs = append(reqs, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: item}})
			want = append(want, pk+"/"+sk)
		}
	}
	for len(reqs) > 0 {
		k := min(25, len(reqs))
		out, err := api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{"inv": reqs[:k]}})
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs[k:], out.UnprocessedItems["inv"]...)
	}
	sort.Strings(want)
	return want
}

func TestShardedScanPagesEveryItemOnce(t *testing.T) {
	for _, limit := range []int32{0, 1, 7, 1000} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			d, api := startSharded(t, 5)
			want := seed(t, api, 40)
			var got []string
			var esk map[string]ddbtypes.AttributeValue
			pages := 0
			for {
				in := &dynamodb.ScanInput{TableName: aws.String("inv"), ExclusiveStartKey: esk}
				if limit > 0 {
					in.Limit = aws.Int32(limit)
				}
				out, err := api.Scan(context.Background(), in)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, it := range out.Items {
					got = append(got, it["PK"].(*ddbtypes.AttributeValueMemberS).Value+"/"+it["SK"].(*ddbtypes.AttributeValueMemberS).Value)
				}
				if out.LastEvaluatedKey == nil {
					break
				}
				esk = out.LastEvaluatedKey
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("scan read %d items, want each of %d once:\n got %v", len(got), len(want), got)
			}
			if pages < len(d.shards) {
				t.Errorf("scan took %d pages over %d shards: a page must end at a shard's end", pages, len(d.shards))
			}
		})
	}
}

func TestShardedRouting(t *testing.T) {
	ctx := context.Background()
	d, api := startSharded(t, 5)
	seed(t, api, 20)
	// Two partitions in different shards, for the cross-shard cases.
	var a, b string
	for i := range 20 {
		pk := fmt.Sprintf("CERT#n%d", i)
		if a == "" {
			a = pk
		} else if d.shardOf(pk) != d.shardOf(a) {
			b = pk
			break
		}
	}
	if b == "" {
		t.Fatal("no two partitions in different shards")
	}

	t.Run("query reads one partition from its shard", func(t *testing.T) {
		out, err := api.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("inv"), KeyConditionExpression: aws.String("PK = :pk AND begins_with(SK, :p)"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": avS(b), ":p": avS("NODE#")}})
		if err != nil || len(out.Items) != 2 {
			t.Fatalf("query %s: %d items, %v; want its 2 NODE# items", b, len(out.Items), err)
		}
	})
	t.Run("query with a named PK", func(t *testing.T) {
		out, err := api.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("inv"), KeyConditionExpression: aws.String("#k = :pk"),
			ExpressionAttributeNames:  map[string]string{"#k": "PK"},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": avS(a)}})
		if err != nil || len(out.Items) != 3 {
			t.Fatalf("query %s: %d items, %v; want 3", a, len(out.Items), err)
		}
	})
	t.Run("conditional update in the item's shard", func(t *testing.T) {
		_, err := api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("inv"), Key: key(b, "META"),
			UpdateExpression: aws.String("SET v = :y"), ConditionExpression: aws.String("v = :x"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":x": avS("x"), ":y": avS("y")}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = api.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("inv"), Key: key(b, "META"),
			UpdateExpression: aws.String("SET v = :y"), ConditionExpression: aws.String("v = :x"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":x": avS("x"), ":y": avS("z")}})
		var failed *ddbtypes.ConditionalCheckFailedException
		if !errorsAs(err, &failed) {
			t.Fatalf("second update: %v, want ConditionalCheckFailedException", err)
		}
	})
	t.Run("batch get merges shards", func(t *testing.T) {
		out, err := api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddbtypes.KeysAndAttributes{
			"inv": {Keys: []map[string]ddbtypes.AttributeValue{key(a, "META"), key(b, "META")}}}})
		if err != nil || len(out.Responses["inv"]) != 2 {
			t.Fatalf("batch get: %d items, %v; want 2", len(out.Responses["inv"]), err)
		}
	})
	t.Run("transaction in one partition is minidyn's", func(t *testing.T) {
		_, err := api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
			{Put: &ddbtypes.Put{TableName: aws.String("inv"), Item: key(a, "NODE#c"), ConditionExpression: aws.String("attribute_not_exists(PK)")}},
			{ConditionCheck: &ddbtypes.ConditionCheck{TableName: aws.String("inv"), Key: key(a, "META"), ConditionExpression: aws.String("v = :no"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":no": avS("no")}}},
		}})
		var canceled *ddbtypes.TransactionCanceledException
		if !errorsAs(err, &canceled) {
			t.Fatalf("transaction with a failing check: %v, want TransactionCanceledException", err)
		}
		if out, _ := api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("inv"), Key: key(a, "NODE#c")}); len(out.Item) != 0 {
			t.Fatal("a canceled transaction wrote its put")
		}
	})
	t.Run("transaction across shards is refused, not half done", func(t *testing.T) {
		_, err := api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
			{Put: &ddbtypes.Put{TableName: aws.String("inv"), Item: key(a, "NODE#d")}},
			{Put: &ddbtypes.Put{TableName: aws.String("inv"), Item: key(b, "NODE#d")}},
		}})
		if err == nil || !strings.Contains(err.Error(), "different shards") {
			t.Fatalf("cross-shard transaction: %v, want a refusal", err)
		}
		for _, pk := range []string{a, b} {
			if out, _ := api.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("inv"), Key: key(pk, "NODE#d")}); len(out.Item) != 0 {
				t.Fatalf("a refused transaction wrote %s", pk)
			}
		}
	})
	t.Run("sweep run records share a shard", func(t *testing.T) {
		if d.shardOf("SWEEP") != d.shardOf("SWEEP#local-1") {
			t.Fatal("the run's records are in different shards: Begin's transaction would be refused")
		}
	})
	t.Run("index query is refused", func(t *testing.T) {
		_, err := api.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("inv"), IndexName: aws.String(inventory.ARNIndex),
			KeyConditionExpression: aws.String("certificateArn = :a"), ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":a": avS("x")}})
		if err == nil || !strings.Contains(err.Error(), "not routed") {
			t.Fatalf("index query: %v, want a refusal", err)
		}
	})
}

func errorsAs[T error](err error, target *T) bool { return errors.As(err, target) }
