//go:build integration

package app

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/certferry/certferry/internal/inventory"
)

// GET /certificates/{name} pages its deployments and nodes: every item
// exactly once across the pages, an opaque next token, a default page far
// below Lambda's 6 MB answer, and a 400 for a token not issued for the name.
func TestGetPagesNodesAndDeployments(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	r.launch(1, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	if status, ans := r.post(onboardBody(arn, "shop-web")); status != 202 {
		t.Fatalf("onboarding: %d %v", status, ans)
	}
	const nodes, deploys = 230, 4
	var writes []ddbtypes.WriteRequest
	put := func(v any) {
		item, err := attributevalue.MarshalMap(v)
		if err != nil {
			t.Fatal(err)
		}
		writes = append(writes, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: item}})
	}
	for i := range nodes {
		id := fmt.Sprintf("i-%017x", i)
		put(inventory.Node{PK: inventory.CertKey("shop-web"), SK: "NODE#" + id, InstanceID: id, State: "installed", UpdatedAt: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)})
	}
	for i := range deploys - 1 { // the onboarding made one
		id := fmt.Sprintf("2026-11-0%dT00:00:00.000Z#cmd-%d", i+1, i)
		put(inventory.Deployment{PK: inventory.CertKey("shop-web"), SK: "DEPLOY#" + id, ID: id, CommandID: fmt.Sprint("cmd-", i),
			Counts: map[inventory.NodeState]int{"installed": 1}, Outcome: "succeeded"})
	}
	for len(writes) > 0 {
		n := min(25, len(writes))
		if _, err := r.ddb.BatchWriteItem(r.ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{r.cfg.Table: writes[:n]}}); err != nil {
			t.Fatal(err)
		}
		writes = writes[n:]
	}

	seenNodes, seenDeploys := map[string]int{}, map[string]int{}
	next, pages := "", 0
	for {
		status, ans := r.getPage("60", next)
		if status != 200 {
			t.Fatalf("page %d: %d %v", pages, status, ans)
		}
		pages++
		ns, ds := ans["nodes"].([]any), ans["deployments"].([]any)
		if len(ns)+len(ds) > 60 {
			t.Fatalf("page %d holds %d items, limit 60", pages, len(ns)+len(ds))
		}
		for _, n := range ns {
			seenNodes[n.(map[string]any)["instanceId"].(string)]++
		}
		for _, d := range ds {
			seenDeploys[d.(map[string]any)["deploymentId"].(string)]++
		}
		n, _ := ans["next"].(string)
		if n == "" {
			break
		}
		next = n
		if pages > 20 {
			t.Fatal("paging does not end")
		}
	}
	if len(seenNodes) != nodes || len(seenDeploys) != deploys {
		t.Fatalf("saw %d nodes and %d deployments over %d pages, want %d and %d", len(seenNodes), len(seenDeploys), pages, nodes, deploys)
	}
	for id, k := range seenNodes {
		if k != 1 {
			t.Fatalf("node %s on %d pages", id, k)
		}
	}
	// The default page is bounded, and says where to continue.
	status, ans := r.getPage("", "")
	if ns := ans["nodes"].([]any); status != 200 || len(ns)+len(ans["deployments"].([]any)) != inventory.DefaultPageLimit || ans["next"] == nil {
		t.Fatalf("default page: %d, %d nodes, next %v", status, len(ns), ans["next"])
	}
	// Tokens certferry did not issue for this name.
	for _, bad := range []string{"not-base64!", "eyJQSyI6IkNFUlQjb3RoZXIiLCJTSyI6Ik5PREUjaS0xIn0", "eyJQSyI6IkNFUlQjc2hvcC13ZWIiLCJTSyI6Ik1FVEEifQ"} {
		status, ans := r.getPage("", bad)
		e, _ := ans["error"].(map[string]any)
		if status != 400 || e["field"] != "next" {
			t.Fatalf("token %q: %d %v", bad, status, ans)
		}
	}
}

// getPage calls GET /certificates/shop-web with the query API Gateway
// would pass (empty values left out).
func (r *rig) getPage(limit, next string) (int, map[string]any) {
	r.t.Helper()
	q := map[string]string{}
	if limit != "" {
		q["limit"] = limit
	}
	if next != "" {
		q["next"] = next
	}
	resp, err := r.handler.Handle(r.ctx, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/certificates/shop-web",
		Resource: "/certificates/{name}", PathParameters: map[string]string{"name": "shop-web"}, QueryStringParameters: q})
	if err != nil {
		r.t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		r.t.Fatalf("answer is not JSON: %q", resp.Body)
	}
	keep("api answer", resp.Body)
	return resp.StatusCode, out
}
