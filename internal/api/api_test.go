package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
)

type fakeDeployer struct {
	onboarded []spec.Spec
	onboard   func(spec.Spec) (pipeline.Result, error)
	redeploy  func(string) (pipeline.Result, error)
	remove    func(string) (bool, error) // nil: only shop-web, the fixtures' name, exists
	nodes     [][]string                 // the instance ids of each RedeployNodes call
}

func (f *fakeDeployer) RedeployNodes(_ context.Context, name string, ids []string, _ inventory.Trigger) (pipeline.Result, error) {
	f.nodes = append(f.nodes, ids)
	return pipeline.Result{Name: name, CommandID: "cmd-3"}, nil
}

func (f *fakeDeployer) Delete(_ context.Context, name string) (bool, error) {
	if f.remove == nil {
		return name == "shop-web", nil
	}
	return f.remove(name)
}

func (f *fakeDeployer) Onboard(_ context.Context, sp spec.Spec) (pipeline.Result, error) {
	f.onboarded = append(f.onboarded, sp)
	if f.onboard == nil {
		return pipeline.Result{Name: sp.Name, CertificateARN: sp.CertificateARN, CommandID: "cmd-1", DeploymentID: "d-1"}, nil
	}
	return f.onboard(sp)
}

func (f *fakeDeployer) Redeploy(_ context.Context, name string, _ inventory.Trigger) (pipeline.Result, error) {
	return f.redeploy(name)
}

type fakeCatalog struct {
	certs  []inventory.Cert
	detail map[string]*inventory.Detail
	limits []int
	byNode map[string][]inventory.NodeEntry
}

func (f *fakeCatalog) GetCert(_ context.Context, name string) (*inventory.Cert, error) {
	if d, ok := f.detail[name]; ok {
		return d.Cert, nil
	}
	return nil, nil
}

func (f *fakeCatalog) GetNode(_ context.Context, name, id string) (*inventory.Node, error) {
	if d, ok := f.detail[name]; ok {
		for _, n := range d.Nodes {
			if n.InstanceID == id {
				return &n, nil
			}
		}
	}
	return nil, nil
}

func (f *fakeCatalog) NodesByInstance(_ context.Context, id string, limit int, next string) (*inventory.NodePage, error) {
	f.limits = append(f.limits, limit)
	if next == "bad" {
		return nil, fmt.Errorf("x: %w", inventory.ErrBadToken)
	}
	return &inventory.NodePage{InstanceID: id, Entries: f.byNode[id]}, nil
}

func (f *fakeCatalog) ListCerts(context.Context) ([]inventory.Cert, error) { return f.certs, nil }
func (f *fakeCatalog) DescribePage(_ context.Context, name string, limit int, next string) (*inventory.Page, error) {
	f.limits = append(f.limits, limit)
	if next == "bad" {
		return nil, fmt.Errorf("x: %w", inventory.ErrBadToken)
	}
	if d, ok := f.detail[name]; ok {
		return &inventory.Page{Cert: d.Cert, Nodes: d.Nodes, Deployments: d.Deployments, Next: "tok"}, nil
	}
	return &inventory.Page{}, nil
}

// loadEvent reads a sam local invoke fixture from events/.
func loadEvent(t *testing.T, file string) events.APIGatewayProxyRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", file))
	if err != nil {
		t.Fatal(err)
	}
	var req events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return req
}

type errorBody struct {
	Error struct{ Code, Message, Field string } `json:"error"`
}

func TestHandlerFixtures(t *testing.T) {
	tests := []struct {
		file      string
		status    int
		code      string
		field     string
		onboarded int
	}{
		{file: "onboard-post.json", status: 202, onboarded: 1},
		{file: "onboard-post-sample.json", status: 202, onboarded: 1},
		{file: "onboard-post-instance-ids.json", status: 202, onboarded: 1},
		{file: "onboard-post-malformed.json", status: 400, code: "ValidationError", field: "body"},
		{file: "onboard-get-list.json", status: 200},
		{file: "onboard-get-name.json", status: 200},
		{file: "onboard-get-unknown.json", status: 404, code: "NotFound", field: "name"},
		{file: "onboard-delete.json", status: 200},
		{file: "onboard-post-redeploy.json", status: 202},
		{file: "onboard-post-redeploy-nodes.json", status: 202},
		{file: "onboard-post-redeploy-hostile-node.json", status: 400, code: "ValidationError", field: "instanceIds[0]"},
		{file: "onboard-delete-bad-flag.json", status: 400, code: "ValidationError", field: "deleteSecret"},
		{file: "onboard-delete-secret.json", status: 200},
		{file: "onboard-get-node.json", status: 200},
		{file: "onboard-get-node-malformed.json", status: 400, code: "ValidationError", field: "instanceId"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			dep := &fakeDeployer{redeploy: func(name string) (pipeline.Result, error) {
				return pipeline.Result{Name: name, CommandID: "cmd-2"}, nil
			}}
			cat := &fakeCatalog{detail: map[string]*inventory.Detail{"shop-web": {
				Cert:  &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: "arn:x"}, Status: "active"},
				Nodes: []inventory.Node{{InstanceID: "i-0123456789abcdef0", State: "installed"}},
			}}}
			rm := &fakeRemover{scheduled: []pipeline.ScheduledSecret{{Name: "certferry/shop-web", RecoveryWindowDays: 30}}}
			resp, err := NewHandler(dep, cat).WithSecrets(rm).Handle(context.Background(), loadEvent(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, resp.Body, tc.status)
			}
			if resp.Headers["Content-Type"] != "application/json" || !json.Valid([]byte(resp.Body)) {
				t.Fatalf("answer is not JSON: %q", resp.Body)
			}
			if tc.code != "" {
				var eb errorBody
				_ = json.Unmarshal([]byte(resp.Body), &eb)
				if eb.Error.Code != tc.code || eb.Error.Field != tc.field || eb.Error.Message == "" {
					t.Fatalf("error = %+v, want code %s field %s", eb.Error, tc.code, tc.field)
				}
			}
			if len(dep.onboarded) != tc.onboarded {
				t.Fatalf("pipeline called %d times, want %d", len(dep.onboarded), tc.onboarded)
			}
		})
	}
}

func TestParseOnboardShapes(t *testing.T) {
	arn := "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	tests := []struct {
		name      string
		body      string
		want      spec.Spec
		wantField string
	}{
		{
			name: "sample shape",
			body: fmt.Sprintf(`{"CertificateArn": %q, "CertName": "web", "TargetTagKey": "env", "TargetTagValue": "prod"}`, arn),
			want: spec.Spec{Name: "web", CertificateARN: arn, Targets: []spec.Target{{Key: "tag:env", Values: []string{"prod"}}}},
		},
		{
			name: "single target object",
			body: fmt.Sprintf(`{"certificateArn": %q, "name": "web", "targets": {"key": "InstanceIds", "values": ["i-0123456789abcdef0"]}}`, arn),
			want: spec.Spec{Name: "web", CertificateARN: arn, Targets: []spec.Target{{Key: "InstanceIds", Values: []string{"i-0123456789abcdef0"}}}},
		},
		{name: "empty body", body: "", wantField: "body"},
		{name: "not an object", body: `[1,2]`, wantField: "body"},
		{name: "trailing data", body: `{"name": "a"} {"name": "b"}`, wantField: "body"},
		{name: "unknown field", body: `{"name": "a", "certPth": "/x"}`, wantField: "certPth"},
		{name: "wrong type", body: `{"name": 5}`, wantField: "name"},
		{name: "verify port as string", body: `{"name": "a", "linux": {"verifyPort": "443"}}`, wantField: "linux.verifyPort"},
		{name: "mixed shapes", body: fmt.Sprintf(`{"certificateArn": %q, "CertName": "web"}`, arn), wantField: "body"},
		{name: "sample missing tag value", body: fmt.Sprintf(`{"CertificateArn": %q, "CertName": "web", "TargetTagKey": "env"}`, arn), wantField: "TargetTagValue"},
		{name: "targets missing", body: fmt.Sprintf(`{"certificateArn": %q, "name": "web"}`, arn), wantField: "targets"},
		{name: "targets wrong shape", body: fmt.Sprintf(`{"certificateArn": %q, "name": "web", "targets": "tag:env=prod"}`, arn), wantField: "targets"},
		{name: "target unknown field", body: fmt.Sprintf(`{"certificateArn": %q, "name": "web", "targets": [{"Key": "tag:env", "vals": ["x"]}]}`, arn), wantField: "targets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseOnboard(tc.body, false)
			if tc.wantField != "" {
				var fe *spec.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.wantField {
					t.Fatalf("ParseOnboard() error = %v, want field %q", err, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("ParseOnboard() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseOnboardBase64AndSize(t *testing.T) {
	if _, err := ParseOnboard("!!!", true); err == nil {
		t.Fatal("bad base64 accepted")
	}
	big := `{"name": "` + string(make([]byte, maxBody)) + `"}`
	var fe *spec.FieldError
	if _, err := ParseOnboard(big, false); !errors.As(err, &fe) || fe.Field != "body" {
		t.Fatalf("oversized body: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{spec.Invalid("name", "bad"), 400, "ValidationError"},
		{fmt.Errorf("x: %w", certs.ErrNotFound), 404, "CertificateNotFound"},
		{fmt.Errorf("x: %w", pipeline.ErrUnknownName), 404, "NotFound"},
		{spec.Wrap(pipeline.ErrNameTaken, "name", "taken"), 409, "NameTaken"},
		{fmt.Errorf("x: %w", pipeline.ErrBusy), 409, "DeploymentInProgress"},
		{fmt.Errorf("x: %w", certs.ErrNotExportable), 422, "CertificateNotExportable"},
		{fmt.Errorf("x: %w", certs.ErrNotIssued), 422, "CertificateNotIssued"},
		{fmt.Errorf("x: %w", certs.ErrBadExport), 502, "ExportVerificationFailed"},
		{fmt.Errorf("x: %w", bundle.ErrScheduledForDeletion), 409, "SecretScheduledForDeletion"},
		{errors.New("operation error DynamoDB: PutItem, https response error StatusCode: 500, RequestID: abc, internal detail"), 502, "DependencyFailure"},
		{fmt.Errorf("operation error ACM: ExportCertificate, internal detail: %w", context.DeadlineExceeded), 503, "Timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			dep := &fakeDeployer{onboard: func(spec.Spec) (pipeline.Result, error) { return pipeline.Result{}, tc.err }}
			req := loadEvent(t, "onboard-post.json")
			resp, _ := NewHandler(dep, &fakeCatalog{}).Handle(context.Background(), req)
			var eb errorBody
			_ = json.Unmarshal([]byte(resp.Body), &eb)
			if resp.StatusCode != tc.status || eb.Error.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, eb.Error.Code, tc.status, tc.code)
			}
			if tc.status >= 500 && (strings.Contains(resp.Body, "DynamoDB") || strings.Contains(resp.Body, "internal detail")) {
				t.Fatalf("5xx answer echoes internals: %s", resp.Body)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	h := NewHandler(&fakeDeployer{remove: func(name string) (bool, error) {
		if name == "busy-name" {
			return false, fmt.Errorf("x: %w", pipeline.ErrBusy) // a deployment holds the claim
		}
		return false, nil
	}}, &fakeCatalog{})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"PUT", "/certificates", 405},
		{"GET", "/nothing", 404},
		{"PATCH", "/certificates/shop-web", 405},
		{"GET", "/certificates/Bad_Name", 400},
		{"DELETE", "/certificates/unknown", 404},
		{"DELETE", "/certificates/busy-name", 409},
	} {
		resp, _ := h.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: tc.method, Path: tc.path})
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
	}
}

// GET /certificates/{name} pages: ?limit= within bounds (default 100),
// ?next= passed through, a bad token or limit is a 400 that names the field.
func TestGetPaging(t *testing.T) {
	cat := &fakeCatalog{detail: map[string]*inventory.Detail{"shop-web": {Cert: &inventory.Cert{Spec: spec.Spec{Name: "shop-web"}}}}}
	h := NewHandler(&fakeDeployer{}, cat)
	for _, tc := range []struct {
		query  map[string]string
		status int
		field  string
		limit  int
	}{
		{nil, 200, "", inventory.DefaultPageLimit},
		{map[string]string{"limit": "7"}, 200, "", 7},
		{map[string]string{"limit": "500", "next": "tok"}, 200, "", 500},
		{map[string]string{"limit": "0"}, 400, "limit", 0},
		{map[string]string{"limit": "501"}, 400, "limit", 0},
		{map[string]string{"limit": "ten"}, 400, "limit", 0},
		{map[string]string{"next": ""}, 400, "next", 0},
		{map[string]string{"next": "bad"}, 400, "next", 100},
	} {
		cat.limits = nil
		resp, _ := h.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/certificates/shop-web",
			Resource: "/certificates/{name}", PathParameters: map[string]string{"name": "shop-web"}, QueryStringParameters: tc.query})
		var eb errorBody
		_ = json.Unmarshal([]byte(resp.Body), &eb)
		if resp.StatusCode != tc.status || eb.Error.Field != tc.field {
			t.Errorf("%v: %d %s, want %d field %q", tc.query, resp.StatusCode, resp.Body, tc.status, tc.field)
		}
		if tc.limit != 0 && (len(cat.limits) != 1 || cat.limits[0] != tc.limit) {
			t.Errorf("%v: read with limits %v, want %d", tc.query, cat.limits, tc.limit)
		}
		if tc.status == 200 && !strings.Contains(resp.Body, `"next":"tok"`) {
			t.Errorf("%v: answer lacks the next token: %s", tc.query, resp.Body)
		}
	}
}
