package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
)

const nodeA, nodeB, nodeC = "i-0123456789abcdef0", "i-0123456789abcdef1", "mi-0123456789abcdef2"

func redeployReq(name, body string) events.APIGatewayProxyRequest {
	return events.APIGatewayProxyRequest{HTTPMethod: "POST", Resource: "/certificates/{name}/deployments",
		Path: "/certificates/" + name + "/deployments", PathParameters: map[string]string{"name": name}, Body: body}
}

func TestParseRedeploy(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
		all        bool
		field      string
	}{
		{name: "no body", body: "", all: true},
		{name: "empty object", body: "{}", all: true},
		{name: "null ids", body: `{"instanceIds": null}`, all: true},
		{name: "ids", body: `{"instanceIds": ["` + nodeA + `"]}`, want: []string{nodeA}},
		{name: "empty list", body: `{"instanceIds": []}`, want: []string{}},
		{name: "unknown field", body: `{"instanceIDs": ["x"]}`, field: "instanceIDs"},
		{name: "not a list", body: `{"instanceIds": "i-1"}`, field: "instanceIds"},
		{name: "trailing", body: `{} {}`, field: "body"},
		{name: "not json", body: `instanceIds=i-1`, field: "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRedeploy(tc.body, false)
			if tc.field != "" {
				var fe *spec.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Fatalf("error %v, want field %s", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.all != (got.InstanceIDs == nil) || !tc.all && !slices.Equal(got.InstanceIDs, tc.want) {
				t.Fatalf("got %#v", got.InstanceIDs)
			}
		})
	}
}

// A redeploy to some nodes reaches the pipeline only with nodes of the
// name: recorded NODE items or the name's InstanceIds targets; anything
// else is a 400 (or 404 for an unknown name) and nothing is sent.
func TestRedeployNodesMembership(t *testing.T) {
	cat := &fakeCatalog{detail: map[string]*inventory.Detail{
		"shop-web": {Cert: &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: "arn:x",
			Targets: []spec.Target{{Key: "tag:env", Values: []string{"prod"}}}}}, Nodes: []inventory.Node{{InstanceID: nodeA}}},
		"by-id": {Cert: &inventory.Cert{Spec: spec.Spec{Name: "by-id", CertificateARN: "arn:y",
			Targets: []spec.Target{{Key: "InstanceIds", Values: []string{nodeC}}}}}},
	}}
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf(`"i-%017x"`, i)
	}
	for _, tc := range []struct {
		name, cert, body string
		status           int
		field            string
		sent             []string
	}{
		{name: "recorded node", cert: "shop-web", body: `{"instanceIds":["` + nodeA + `"]}`, status: 202, sent: []string{nodeA}},
		{name: "listed target", cert: "by-id", body: `{"instanceIds":["` + nodeC + `"]}`, status: 202, sent: []string{nodeC}},
		{name: "stranger", cert: "shop-web", body: `{"instanceIds":["` + nodeA + `","` + nodeB + `"]}`, status: 400, field: "instanceIds[1]"},
		{name: "bad id", cert: "shop-web", body: `{"instanceIds":["i-1"]}`, status: 400, field: "instanceIds[0]"},
		{name: "duplicate", cert: "shop-web", body: `{"instanceIds":["` + nodeA + `","` + nodeA + `"]}`, status: 400, field: "instanceIds[1]"},
		{name: "empty list", cert: "shop-web", body: `{"instanceIds":[]}`, status: 400, field: "instanceIds"},
		{name: "over 50", cert: "shop-web", body: `{"instanceIds":[` + strings.Join(many, ",") + `]}`, status: 400, field: "instanceIds"},
		{name: "unknown name", cert: "nope", body: `{"instanceIds":["` + nodeA + `"]}`, status: 404, field: "name"},
		{name: "bad name", cert: "Bad_Name", body: `{"instanceIds":["` + nodeA + `"]}`, status: 400, field: "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dep := &fakeDeployer{}
			resp, err := NewHandler(dep, cat).Handle(context.Background(), redeployReq(tc.cert, tc.body))
			if err != nil {
				t.Fatal(err)
			}
			var eb errorBody
			_ = json.Unmarshal([]byte(resp.Body), &eb)
			if resp.StatusCode != tc.status || eb.Error.Field != tc.field {
				t.Fatalf("%d %s, want %d field %q", resp.StatusCode, resp.Body, tc.status, tc.field)
			}
			if tc.sent == nil && len(dep.nodes) != 0 || tc.sent != nil && (len(dep.nodes) != 1 || !slices.Equal(dep.nodes[0], tc.sent)) {
				t.Fatalf("sent %v, want %v", dep.nodes, tc.sent)
			}
		})
	}
}

type fakeRemover struct {
	calls     []string
	days      []int
	scheduled []pipeline.ScheduledSecret
	err       error
}

func (f *fakeRemover) Remove(_ context.Context, name string, days int) ([]pipeline.ScheduledSecret, error) {
	f.calls, f.days = append(f.calls, name), append(f.days, days)
	return f.scheduled, f.err
}

func deleteReq(name string, q map[string]string) events.APIGatewayProxyRequest {
	return events.APIGatewayProxyRequest{HTTPMethod: "DELETE", Resource: "/certificates/{name}", Path: "/certificates/" + name,
		PathParameters: map[string]string{"name": name}, QueryStringParameters: q}
}

func TestDeleteSecret(t *testing.T) {
	one := []pipeline.ScheduledSecret{{Name: "certferry/shop-web", RecoveryWindowDays: 30, DeletionDate: "2026-12-29T00:00:00Z"}}
	for _, tc := range []struct {
		name      string
		cert      string
		q         map[string]string
		scheduled []pipeline.ScheduledSecret
		rmErr     error
		status    int
		field     string
		deleted   int // inventory deletes
		removed   []int
		want      string
	}{
		{name: "no flag keeps the secret", cert: "shop-web", status: 200, deleted: 1, want: `"secretKept":true`},
		{name: "false keeps the secret", cert: "shop-web", q: map[string]string{"deleteSecret": "false"}, status: 200, deleted: 1},
		{name: "true schedules 30 days", cert: "shop-web", q: map[string]string{"deleteSecret": "true"}, scheduled: one, status: 200, deleted: 1,
			removed: []int{30}, want: `"secretDeletion":{"recoveryWindowDays":30`},
		{name: "window 7", cert: "shop-web", q: map[string]string{"deleteSecret": "true", "recoveryWindowDays": "7"}, scheduled: one, status: 200, deleted: 1, removed: []int{7}},
		{name: "window 6", cert: "shop-web", q: map[string]string{"deleteSecret": "true", "recoveryWindowDays": "6"}, status: 400, field: "recoveryWindowDays"},
		{name: "window 31", cert: "shop-web", q: map[string]string{"deleteSecret": "true", "recoveryWindowDays": "31"}, status: 400, field: "recoveryWindowDays"},
		{name: "window without flag", cert: "shop-web", q: map[string]string{"recoveryWindowDays": "7"}, status: 400, field: "recoveryWindowDays"},
		{name: "bad flag", cert: "shop-web", q: map[string]string{"deleteSecret": "TRUE"}, status: 400, field: "deleteSecret"},
		{name: "unknown parameter", cert: "shop-web", q: map[string]string{"force": "true"}, status: 400, field: "force"},
		{name: "secrets manager fails", cert: "shop-web", q: map[string]string{"deleteSecret": "true"}, rmErr: errors.New("boom"), status: 502, deleted: 1, removed: []int{30}},
		{name: "retry after the inventory went", cert: "gone", q: map[string]string{"deleteSecret": "true"}, scheduled: one, status: 200, deleted: 1,
			removed: []int{30}, want: `"alreadyGone":true`},
		{name: "unknown name, no secret", cert: "gone", q: map[string]string{"deleteSecret": "true"}, status: 404, field: "name", deleted: 1, removed: []int{30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var deletes int
			dep := &fakeDeployer{remove: func(name string) (bool, error) { deletes++; return name == "shop-web", nil }}
			rm := &fakeRemover{scheduled: tc.scheduled, err: tc.rmErr}
			resp, _ := NewHandler(dep, &fakeCatalog{}).WithSecrets(rm).Handle(context.Background(), deleteReq(tc.cert, tc.q))
			var eb errorBody
			_ = json.Unmarshal([]byte(resp.Body), &eb)
			if resp.StatusCode != tc.status || eb.Error.Field != tc.field {
				t.Fatalf("%d %s, want %d field %q", resp.StatusCode, resp.Body, tc.status, tc.field)
			}
			if deletes != tc.deleted || !slices.Equal(rm.days, tc.removed) {
				t.Fatalf("inventory deletes %d (want %d), secret removals %v (want %v)", deletes, tc.deleted, rm.days, tc.removed)
			}
			if !strings.Contains(resp.Body, tc.want) {
				t.Fatalf("answer %s lacks %s", resp.Body, tc.want)
			}
			if resp.StatusCode >= 500 && strings.Contains(resp.Body, "boom") {
				t.Fatalf("5xx echoes internals: %s", resp.Body)
			}
		})
	}
}

func TestGetNode(t *testing.T) {
	cat := &fakeCatalog{byNode: map[string][]inventory.NodeEntry{nodeA: {
		{Name: "api", Node: inventory.Node{State: "installed", Serial: "0a", LastCommandID: "c-1", UpdatedAt: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)}},
		{Name: "shop-web", Node: inventory.Node{State: "pending", LastCommandID: "c-2"}},
	}}}
	h := NewHandler(&fakeDeployer{}, cat)
	get := func(id string, q map[string]string) (int, string) {
		resp, _ := h.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "GET", Resource: "/nodes/{instanceId}",
			Path: "/nodes/" + id, PathParameters: map[string]string{"instanceId": id}, QueryStringParameters: q})
		return resp.StatusCode, resp.Body
	}
	status, body := get(nodeA, map[string]string{"limit": "5"})
	var page NodePage
	if err := json.Unmarshal([]byte(body), &page); status != 200 || err != nil || len(page.Certificates) != 2 ||
		page.Certificates[0].Name != "api" || page.Certificates[1].LastCommandID != "c-2" || cat.limits[len(cat.limits)-1] != 5 {
		t.Fatalf("%d %s", status, body)
	}
	if status, body := get(nodeB, nil); status != 200 || !strings.Contains(body, `"certificates":[]`) {
		t.Fatalf("node with no names: %d %s", status, body)
	}
	for _, tc := range []struct {
		id    string
		q     map[string]string
		field string
	}{{"i-1", nil, "instanceId"}, {"i-0123456789ABCDEF0", nil, "instanceId"}, {nodeA, map[string]string{"next": "bad"}, "next"}, {nodeA, map[string]string{"limit": "0"}, "limit"}} {
		status, body := get(tc.id, tc.q)
		var eb errorBody
		_ = json.Unmarshal([]byte(body), &eb)
		if status != 400 || eb.Error.Field != tc.field {
			t.Errorf("%s %v: %d %s, want 400 %s", tc.id, tc.q, status, body, tc.field)
		}
	}
}
