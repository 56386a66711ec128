package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/caller"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/lifecycle"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
)

// fakeLife records each action with its caller; err, when set, is what
// every action answers.
type fakeLife struct {
	calls []string
	by    []caller.Caller
	err   error
}

func (f *fakeLife) note(s string, by caller.Caller) {
	f.calls, f.by = append(f.calls, s), append(f.by, by)
}

func (f *fakeLife) Rotate(_ context.Context, name string, by caller.Caller) (lifecycle.RotateResult, error) {
	f.note("rotate "+name, by)
	return lifecycle.RotateResult{Name: name, Charged: true, RequestedBy: by, Next: "ACM renews"}, f.err
}
func (f *fakeLife) Revoke(_ context.Context, name, reason string, by caller.Caller) (lifecycle.RevokeResult, error) {
	f.note("revoke "+name+" "+reason, by)
	return lifecycle.RevokeResult{Name: name, Reason: reason, AtRisk: []string{name}}, f.err
}
func (f *fakeLife) Rebind(_ context.Context, name, arn string, by caller.Caller) (lifecycle.RebindResult, error) {
	f.note("rebind "+name+" "+arn, by)
	return lifecycle.RebindResult{Name: name, CertificateARN: arn}, f.err
}
func (f *fakeLife) Approve(_ context.Context, name string, by caller.Caller) (lifecycle.ApprovalResult, lifecycle.Recorded, error) {
	f.note("approve "+name, by)
	return lifecycle.ApprovalResult{Name: name, What: "wave 1 sent"}, lifecycle.Recorded{Audit: true}, f.err
}
func (f *fakeLife) Deleted(_ context.Context, name, arn string, by caller.Caller, secret string) lifecycle.Recorded {
	f.note("deleted "+name+" "+arn, by)
	return lifecycle.Recorded{Audit: true}
}
func (f *fakeLife) AuditTrail(_ context.Context, name string, limit int) ([]inventory.AuditEntry, error) {
	f.note(fmt.Sprintf("audit %s %d", name, limit), caller.Caller{})
	return []inventory.AuditEntry{{Action: inventory.AuditRotate, By: "arn:aws:iam::123456789012:user/operator"}}, f.err
}

func lifeHandler(l *fakeLife) *Handler {
	cat := &fakeCatalog{detail: map[string]*inventory.Detail{"shop-web": {
		Cert: &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: "arn:x"}, Status: "active"}}}}
	return NewHandler(&fakeDeployer{}, cat).WithLifecycle(l)
}

// The routes of the operator's actions, on their sam local invoke
// fixtures: each reaches its action once with the caller API Gateway
// authenticated (requestContext.identity.userArn), or local:<user>
// without one.
func TestLifecycleFixtures(t *testing.T) {
	for _, tc := range []struct {
		file, call, by string
		status         int
		want           string
	}{
		{file: "onboard-post-renewals.json", call: "rotate shop-web", by: "arn:aws:iam::123456789012:user/operator", status: 202, want: `"charged":true`},
		{file: "onboard-post-approvals.json", call: "approve shop-web", by: "arn:aws:sts::123456789012:assumed-role/Ops/alice", status: 202, want: `"approvedBy":{"arn":"arn:aws:sts::123456789012:assumed-role/Ops/alice"`},
		{file: "onboard-post-rebind.json", call: "rebind shop-web arn:aws:acm:us-east-1:123456789012:certificate/22222222-2222-3333-4444-555555555555",
			by: "arn:aws:iam::123456789012:user/operator", status: 202},
		{file: "onboard-post-revocations.json", call: "revoke shop-web SUPERSEDED", by: "arn:aws:iam::123456789012:user/operator", status: 200, want: `"atRisk":["shop-web"]`},
		{file: "onboard-post-revocations-bad-reason.json", call: "revoke shop-web KEY_COMPROMISE", by: "arn:aws:iam::123456789012:user/operator", status: 200},
		{file: "onboard-post-revocations-no-identity.json", call: "revoke shop-web SUPERSEDED", by: caller.LocalPrefix, status: 200},
		{file: "onboard-get-audit.json", call: "audit shop-web 10", status: 200, want: `"entries":[{"action":"rotate"`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			l := &fakeLife{}
			resp, err := lifeHandler(l).Handle(context.Background(), loadEvent(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || !json.Valid([]byte(resp.Body)) || !strings.Contains(resp.Body, tc.want) {
				t.Fatalf("%d %s, want %d with %s", resp.StatusCode, resp.Body, tc.status, tc.want)
			}
			if len(l.calls) != 1 || l.calls[0] != tc.call || !strings.HasPrefix(l.by[0].ARN, tc.by) || tc.by != "" && l.by[0].At.IsZero() {
				t.Fatalf("calls %v by %+v, want %q by %s", l.calls, l.by, tc.call, tc.by)
			}
		})
	}
}

func lifeReq(method, name, action, body string) events.APIGatewayProxyRequest {
	return events.APIGatewayProxyRequest{HTTPMethod: method, Resource: "/certificates/{name}/" + action,
		Path: "/certificates/" + name + "/" + action, PathParameters: map[string]string{"name": name}, Body: body,
		RequestContext: events.APIGatewayProxyRequestContext{Identity: events.APIGatewayRequestIdentity{UserArn: "arn:aws:iam::123456789012:user/operator"}}}
}

// Bodies are checked before any action runs; refusals of the actions map
// to the error contract.
func TestLifecycleRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, method, cert, action, body string
		err                              error
		status                           int
		code, field                      string
		called                           bool
	}{
		{name: "rebind without arn", method: "POST", cert: "shop-web", action: "rebind", body: `{}`, status: 400, code: "ValidationError", field: "certificateArn"},
		{name: "rebind unknown field", method: "POST", cert: "shop-web", action: "rebind", body: `{"arn":"x"}`, status: 400, code: "ValidationError", field: "arn"},
		{name: "rebind arn not a string", method: "POST", cert: "shop-web", action: "rebind", body: `{"certificateArn":5}`, status: 400, code: "ValidationError", field: "certificateArn"},
		{name: "revocation trailing data", method: "POST", cert: "shop-web", action: "revocations", body: `{"reason":"X"} {}`, status: 400, code: "ValidationError", field: "body"},
		{name: "renewal with a body field", method: "POST", cert: "shop-web", action: "renewals", body: `{"now":"yes"}`, status: 400, code: "ValidationError", field: "now"},
		{name: "bad name", method: "POST", cert: "Shop_Web", action: "renewals", status: 400, code: "ValidationError", field: "name"},
		{name: "GET renewals", method: "GET", cert: "shop-web", action: "renewals", status: 405, code: "MethodNotAllowed"},
		{name: "refused reason", method: "POST", cert: "shop-web", action: "revocations", body: `{"reason":"KEY_COMPROMISE"}`,
			err:    spec.Wrap(certs.ErrBadReason, "reason", "\"KEY_COMPROMISE\" is not a reason ACM accepts; use one of UNSPECIFIED, AFFILIATION_CHANGED, SUPERSEDED, CESSATION_OF_OPERATION"),
			status: 400, code: "ValidationError", field: "reason", called: true},
		{name: "not renewable", method: "POST", cert: "shop-web", action: "renewals", err: fmt.Errorf("x: %w", certs.ErrNotRenewable), status: 422, code: "CertificateNotRenewable", field: "certificateArn", called: true},
		{name: "not revocable", method: "POST", cert: "shop-web", action: "revocations", body: `{"reason":"UNSPECIFIED"}`, err: fmt.Errorf("x: %w", certs.ErrNotRevocable), status: 422, code: "CertificateNotRevocable", field: "certificateArn", called: true},
		{name: "already revoked", method: "POST", cert: "shop-web", action: "revocations", body: `{"reason":"UNSPECIFIED"}`, err: fmt.Errorf("x: %w", certs.ErrAlreadyRevoked), status: 409, code: "AlreadyRevoked", field: "certificateArn", called: true},
		{name: "renewal in progress", method: "POST", cert: "shop-web", action: "renewals", err: fmt.Errorf("x: %w", certs.ErrACMBusy), status: 409, code: "CertificateBusy", field: "certificateArn", called: true},
		{name: "rebind same", method: "POST", cert: "shop-web", action: "rebind", body: `{"certificateArn":"arn:x"}`, err: spec.Wrap(lifecycle.ErrSameCertificate, "certificateArn", "already bound"), status: 409, code: "AlreadyBound", field: "certificateArn", called: true},
		{name: "rebind unknown certificate", method: "POST", cert: "shop-web", action: "rebind", body: `{"certificateArn":"arn:x"}`, err: fmt.Errorf("x: %w", certs.ErrNotFound), status: 404, code: "CertificateNotFound", field: "certificateArn", called: true},
		{name: "rebind not exportable", method: "POST", cert: "shop-web", action: "rebind", body: `{"certificateArn":"arn:x"}`, err: fmt.Errorf("x: %w", certs.ErrNotExportable), status: 422, code: "CertificateNotExportable", field: "certificateArn", called: true},
		{name: "rebind races a deployment", method: "POST", cert: "shop-web", action: "rebind", body: `{"certificateArn":"arn:x"}`, err: fmt.Errorf("x: %w", inventory.ErrConflict), status: 409, code: "DeploymentInProgress", called: true},
		{name: "rebind deploy failed", method: "POST", cert: "shop-web", action: "rebind", body: `{"certificateArn":"arn:x"}`,
			err: fmt.Errorf("%w: internal detail: %w", lifecycle.ErrDeployAfterRebind, fmt.Errorf("SendCommand internal detail")), status: 502, code: "DependencyFailure", called: true},
		{name: "unknown name", method: "POST", cert: "nope", action: "approvals", err: fmt.Errorf("x: %w", pipeline.ErrUnknownName), status: 404, code: "NotFound", field: "name", called: true},
		{name: "nothing to approve", method: "POST", cert: "shop-web", action: "approvals", err: fmt.Errorf("x: %w", lifecycle.ErrNothingToApprove), status: 409, code: "NothingToApprove", field: "name", called: true},
		{name: "approvals not wired", method: "POST", cert: "shop-web", action: "approvals", err: fmt.Errorf("x: %w", lifecycle.ErrNotConfigured), status: 501, code: "NotConfigured", called: true},
		{name: "audit bad limit", method: "GET", cert: "shop-web", action: "audit", status: 400, code: "ValidationError", field: "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &fakeLife{err: tc.err}
			req := lifeReq(tc.method, tc.cert, tc.action, tc.body)
			if tc.action == "audit" {
				req.QueryStringParameters = map[string]string{"limit": "0"}
			}
			resp, _ := lifeHandler(l).Handle(context.Background(), req)
			var eb errorBody
			_ = json.Unmarshal([]byte(resp.Body), &eb)
			if resp.StatusCode != tc.status || eb.Error.Code != tc.code || eb.Error.Field != tc.field {
				t.Fatalf("%d %s, want %d %s field %q", resp.StatusCode, resp.Body, tc.status, tc.code, tc.field)
			}
			if (len(l.calls) > 0) != tc.called {
				t.Fatalf("calls %v, want called %v", l.calls, tc.called)
			}
			if strings.Contains(resp.Body, "internal detail") {
				t.Fatalf("answer echoes internals: %s", resp.Body)
			}
			if tc.name == "rebind deploy failed" && !strings.Contains(eb.Error.Message, "POST /certificates/shop-web/deployments") {
				t.Fatalf("message does not say how to complete the rebind: %s", eb.Error.Message)
			}
			if tc.code == "ValidationError" && tc.field == "reason" && !strings.Contains(eb.Error.Message, "CESSATION_OF_OPERATION") {
				t.Fatalf("refused reason does not list the accepted ones: %s", eb.Error.Message)
			}
		})
	}
}

// Without the lifecycle wired the routes answer 501 and call nothing;
// a DELETE through a handler with it records who deleted the name.
func TestLifecycleWiring(t *testing.T) {
	h := NewHandler(&fakeDeployer{}, &fakeCatalog{})
	resp, _ := h.Handle(context.Background(), lifeReq("POST", "shop-web", "renewals", ""))
	if resp.StatusCode != 501 {
		t.Fatalf("unwired: %d %s", resp.StatusCode, resp.Body)
	}
	l := &fakeLife{}
	req := deleteReq("shop-web", nil)
	req.RequestContext.Identity.UserArn = "arn:aws:iam::123456789012:user/operator"
	resp, _ = lifeHandler(l).Handle(context.Background(), req)
	if resp.StatusCode != 200 || len(l.calls) != 1 || l.calls[0] != "deleted shop-web arn:x" || l.by[0].ARN != "arn:aws:iam::123456789012:user/operator" {
		t.Fatalf("%d %s, calls %v", resp.StatusCode, resp.Body, l.calls)
	}
	l = &fakeLife{}
	resp, _ = lifeHandler(l).Handle(context.Background(), deleteReq("unknown", nil))
	if resp.StatusCode != 404 || len(l.calls) != 0 {
		t.Fatalf("unknown name: %d, calls %v", resp.StatusCode, l.calls)
	}
}
