//go:build integration

package app

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"

	"github.com/certferry/certferry/internal/acmstandin"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/testkit"
)

// lifeRig is the renewal rig with ACM's RenewCertificate and
// RevokeCertificate stand-ins in front of moto (behind the model check):
// the API handler and the renewal handler both go through them, as the
// two functions reach the same ACM.
type lifeRig struct {
	*renewalRig
	renewals *acmstandin.Renewals
	revs     *acmstandin.Revocations
	acm      *acm.Client
}

const operator = "arn:aws:iam::123456789012:user/operator"

func newLifeRig(t *testing.T) *lifeRig {
	r := newRenewalRig(t)
	proxy, err := testkit.NewFaultProxy(moto.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	renewals, _ := testkit.UseACMStandIns(proxy)
	revs := testkit.UseACMRevocations(proxy)
	cfg := aimedAt(r.rig, proxy.URL)
	r.handler = Onboard(cfg, r.cfg, Options{})
	r.renewal = Renewal(cfg, r.cfg, Options{})
	return &lifeRig{renewalRig: r, renewals: renewals, revs: revs, acm: acm.NewFromConfig(cfg)}
}

// as sends one API request as the IAM caller API Gateway authenticated.
func (r *lifeRig) as(method, name, action, body string) (int, map[string]any) {
	r.t.Helper()
	path := "/certificates/" + name + "/" + action
	req := events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Resource: "/certificates/{name}/" + action,
		PathParameters: map[string]string{"name": name}, Body: body,
		RequestContext: events.APIGatewayProxyRequestContext{Identity: events.APIGatewayRequestIdentity{UserArn: operator}}}
	resp, err := r.handler.Handle(r.ctx, req)
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

func (r *lifeRig) audit(name string) []inventory.AuditEntry {
	r.t.Helper()
	entries, err := inventory.NewStore(r.ddb, r.cfg.Table).AuditTrail(r.ctx, name, 50)
	if err != nil {
		r.t.Fatal(err)
	}
	return entries
}

// drain returns the events a stand-in emitted so far.
func drain(ch <-chan []byte) []json.RawMessage {
	var out []json.RawMessage
	for {
		select {
		case ev := <-ch:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func errCodeOf(ans map[string]any) string {
	e, _ := ans["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// Rotate calls RenewCertificate exactly once per request; the renewal's
// event then deploys the new serial. A retried request is not renewed
// again: ACM renews only a certificate exported since its last renewal,
// so the retry answers 422 until certferry exported the renewed one.
func TestRotateRenewsOnce(t *testing.T) {
	t.Parallel()
	r := newLifeRig(t)
	arn, _ := r.onboarded("shop-web")
	before := r.cert("shop-web").Serial
	cmds := len(r.commands())

	status, ans := r.as("POST", "shop-web", "renewals", "")
	if status != 202 || ans["charged"] != true || !strings.Contains(ans["next"].(string), "charges") {
		t.Fatalf("rotate: %d %v", status, ans)
	}
	evs := drain(r.renewals.Events())
	if len(evs) != 1 {
		t.Fatalf("%d renewals, want exactly 1", len(evs))
	}
	status, ans = r.as("POST", "shop-web", "renewals", "")
	if status != 422 || errCodeOf(ans) != "CertificateNotRenewable" || len(drain(r.renewals.Events())) != 0 {
		t.Fatalf("retry before the renewal was exported: %d %v", status, ans)
	}
	trail := r.audit("shop-web")
	if len(trail) != 1 || trail[0].Action != inventory.AuditRotate || trail[0].By != operator || trail[0].ARN != arn {
		t.Fatalf("audit %+v", trail)
	}
	alerts := r.alerts()
	if len(alerts) != 1 || !strings.Contains(alerts[0].Message, operator) || !strings.Contains(alerts[0].Subject, "Renewal of shop-web requested") {
		t.Fatalf("alerts %+v", alerts)
	}
	if len(r.commands()) != cmds {
		t.Fatal("rotate itself sent a command; the renewal's event deploys")
	}
	out := r.handle(evs[0])
	if len(out.Deployed) != 1 || out.Deployed[0].Serial == before || len(r.commands()) != cmds+1 {
		t.Fatalf("renewal event: %+v (serial before %s)", out, before)
	}
	// Exported again: a new rotation is accepted.
	if status, ans := r.as("POST", "shop-web", "renewals", ""); status != 202 {
		t.Fatalf("rotate after the renewal was deployed: %d %v", status, ans)
	}
}

// Refused reasons call nothing and change nothing; a revocation marks
// every name bound to the certificate at risk with one alert; ACM's
// Revoked event that follows alerts no second time and deploys nothing
// of the revoked certificate. Then rebind moves one name to a new
// certificate and deploys it at once.
func TestRevokeThenRebind(t *testing.T) {
	t.Parallel()
	r := newLifeRig(t)
	arn, _ := r.onboarded("shop-web")
	if status, ans := r.post(onboardBody(arn, "shop-admin")); status != 202 {
		t.Fatalf("onboard shop-admin: %d %v", status, ans)
	}
	r.alerts()
	web, admin := r.cert("shop-web"), r.cert("shop-admin")
	cmds, versions := len(r.commands()), r.counts().versions

	for _, bad := range []string{`{"reason":"KEY_COMPROMISE"}`, `{"reason":"CERTIFICATE_HOLD"}`, `{}`, `{"reason":"SUPERCEDED"}`} {
		status, ans := r.as("POST", "shop-web", "revocations", bad)
		msg, _ := ans["error"].(map[string]any)["message"].(string)
		if status != 400 || !strings.Contains(msg, "UNSPECIFIED, AFFILIATION_CHANGED, SUPERSEDED, CESSATION_OF_OPERATION") {
			t.Fatalf("%s: %d %v", bad, status, ans)
		}
	}
	if r.revs.Calls(arn) != 0 || len(r.audit("shop-web")) != 0 || len(r.alerts()) != 0 || r.cert("shop-web").Version != web.Version {
		t.Fatal("a refused reason reached ACM or changed something")
	}

	status, ans := r.as("POST", "shop-web", "revocations", `{"reason":"superseded"}`)
	if status != 200 || r.revs.Calls(arn) != 1 {
		t.Fatalf("revoke: %d %v (calls %d)", status, ans, r.revs.Calls(arn))
	}
	atRisk := []string{}
	for _, n := range ans["atRisk"].([]any) {
		atRisk = append(atRisk, n.(string))
	}
	slices.Sort(atRisk)
	if !slices.Equal(atRisk, []string{"shop-admin", "shop-web"}) {
		t.Fatalf("at risk %v", atRisk)
	}
	for _, name := range []string{"shop-web", "shop-admin"} {
		c := r.cert(name)
		if c.Revoked == nil || c.Revoked.Reason != "SUPERSEDED" || c.Revoked.By != operator || c.Revoked.Serial != web.Serial {
			t.Fatalf("%s mark %+v", name, c.Revoked)
		}
		if trail := r.audit(name); len(trail) != 1 || trail[0].Action != inventory.AuditRevoke || trail[0].By != operator {
			t.Fatalf("%s audit %+v", name, trail)
		}
	}
	alerts := r.alerts()
	if len(alerts) != 1 || !strings.Contains(alerts[0].Message, "certferry rebind NAME --arn NEW_ARN") ||
		!strings.Contains(alerts[0].Message, operator) || !strings.Contains(alerts[0].Message, "shop-admin") {
		t.Fatalf("alerts %+v", alerts)
	}
	status, _ = r.call("GET", "/certificates/shop-admin", "shop-admin", "")
	if _, got := r.call("GET", "/certificates/shop-admin", "shop-admin", ""); status != 200 || got["revoked"] == nil {
		t.Fatalf("GET does not show the name at risk: %v", got)
	}

	evs := drain(r.revs.Events())
	if len(evs) != 1 {
		t.Fatalf("%d revoked events, want 1", len(evs))
	}
	out := r.handle(evs[0])
	if len(out.Deployed) != 0 || len(r.alerts()) != 0 || len(r.commands()) != cmds || r.counts().versions != versions {
		t.Fatalf("the revoked event deployed or alerted again: %+v", out)
	}
	if status, ans := r.as("POST", "shop-web", "revocations", `{"reason":"SUPERSEDED"}`); status != 409 || errCodeOf(ans) != "AlreadyRevoked" || r.revs.Calls(arn) != 1 {
		t.Fatalf("second revocation: %d %v", status, ans)
	}
	if status, ans := r.as("POST", "shop-web", "renewals", ""); status != 422 {
		t.Fatalf("rotating a revoked certificate: %d %v", status, ans)
	}

	// Rebind: a new certificate, deployed at once (the bound one is revoked).
	replacement := r.exportable("shop.example.com")
	if status, ans := r.as("POST", "shop-web", "rebind", `{"certificateArn":"`+arn+`"}`); status != 409 || errCodeOf(ans) != "AlreadyBound" {
		t.Fatalf("rebind to the same certificate: %d %v", status, ans)
	}
	status, ans = r.as("POST", "shop-web", "rebind", `{"certificateArn":"`+replacement+`"}`)
	if status != 202 || ans["urgent"] != true {
		t.Fatalf("rebind: %d %v", status, ans)
	}
	c := r.cert("shop-web")
	if c.CertificateARN != replacement || c.Revoked != nil || c.Serial == web.Serial || len(r.commands()) != cmds+1 || r.bundleOf("shop-web").CertificateARN != replacement {
		t.Fatalf("after rebind: %+v, %d commands (had %d)", c, len(r.commands()), cmds)
	}
	if trail := r.audit("shop-web"); len(trail) != 2 || trail[0].Action != inventory.AuditRebind || trail[0].ARN != replacement {
		t.Fatalf("audit %+v", trail)
	}
	if a := r.cert("shop-admin"); a.Revoked == nil || a.CertificateARN != arn || a.Version != admin.Version+1 {
		t.Fatalf("shop-admin changed by shop-web's rebind: %+v", a)
	}
	// An onboarding that would change the certificate by accident is still
	// refused, and says how to do it on purpose.
	status, ans = r.post(onboardBody(replacement, "shop-admin"))
	msg, _ := ans["error"].(map[string]any)["message"].(string)
	if status != 409 || errCodeOf(ans) != "NameTaken" || !strings.Contains(msg, "certferry rebind shop-admin --arn "+replacement) {
		t.Fatalf("onboarding over a bound name: %d %v", status, ans)
	}
	// The audit trail survives DELETE of the name.
	if status, _ := r.call("DELETE", "/certificates/shop-web", "shop-web", ""); status != 200 {
		t.Fatal("delete")
	}
	if trail := r.audit("shop-web"); len(trail) != 3 || trail[0].Action != inventory.AuditDelete || !strings.HasPrefix(trail[0].By, "local:") {
		t.Fatalf("audit after delete %+v", trail)
	}
}

// A revocation of a certificate ACM renewed after certferry's last
// deployment (the renewal's event was lost, so the newer serial was never
// deployed): the mark names the revoked serial ACM held, and nothing of it
// is deployed, by the API or by the Revoked event; one alert.
func TestRevokeRenewedSerial(t *testing.T) {
	t.Parallel()
	r := newLifeRig(t)
	arn, _ := r.onboarded("shop-web")
	deployed := r.cert("shop-web").Serial
	if status, ans := r.as("POST", "shop-web", "renewals", ""); status != 202 {
		t.Fatalf("rotate: %d %v", status, ans)
	}
	drain(r.renewals.Events()) // the renewal's event is lost
	out, err := r.acm.DescribeCertificate(r.ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	renewed := strings.ReplaceAll(aws.ToString(out.Certificate.Serial), ":", "")
	r.alerts()
	cmds, versions := len(r.commands()), r.counts().versions
	if status, ans := r.as("POST", "shop-web", "revocations", `{"reason":"CESSATION_OF_OPERATION"}`); status != 200 || r.revs.Calls(arn) != 1 {
		t.Fatalf("revoke: %d %v", status, ans)
	}
	c := r.cert("shop-web")
	if c.Revoked == nil || strings.TrimLeft(c.Revoked.Serial, "0") != strings.TrimLeft(renewed, "0") || c.Serial != deployed || deployed == c.Revoked.Serial {
		t.Fatalf("mark %+v, deployed %s, renewed %s", c.Revoked, deployed, renewed)
	}
	evs := drain(r.revs.Events())
	if len(evs) != 1 {
		t.Fatalf("%d revoked events", len(evs))
	}
	res := r.handle(evs[0])
	if len(res.Deployed) != 0 || len(r.commands()) != cmds || r.counts().versions != versions {
		t.Fatalf("the revoked serial was deployed: %+v", res)
	}
	if alerts := r.alerts(); len(alerts) != 1 || !strings.Contains(alerts[0].Message, "CESSATION_OF_OPERATION") {
		t.Fatalf("alerts %+v, want the API's one", alerts)
	}
	// The sweep's redeploy path refuses it too: ACM reports it REVOKED.
	if status, ans := r.call("POST", "/certificates/shop-web/deployments", "shop-web", ""); status != 422 || len(r.commands()) != cmds {
		t.Fatalf("redeploying a revoked certificate: %d %v", status, ans)
	}
}

// AUDIT items on moto's DynamoDB: newest first, apart within one
// nanosecond, invisible to the certificateArn index (NamesByARN), the
// name list and the page of deployments and nodes; MarkRevoked marks once
// and only a name still bound to the ARN; Rebind refuses a stale version.
func TestAuditAndMarksInTheTable(t *testing.T) {
	t.Parallel()
	r := newLifeRig(t)
	arn, _ := r.onboarded("shop-web")
	inv := inventory.NewStore(r.ddb, r.cfg.Table)
	at := r.cert("shop-web").UpdatedAt
	for i, a := range []inventory.AuditAction{inventory.AuditRotate, inventory.AuditRotate, inventory.AuditApprove} {
		e := inventory.AuditEntry{Action: a, By: operator, At: at, ARN: arn, Detail: string(rune('a' + i))}
		if err := inv.Audit(r.ctx, "shop-web", e); err != nil {
			t.Fatal(err)
		}
	}
	trail := r.audit("shop-web")
	// The second rotate at the same nanosecond moved on by one; the
	// approve at that nanosecond has a key of its own.
	if len(trail) != 3 || trail[0].Detail != "b" || !trail[0].At.After(trail[1].At) || !trail[1].At.Equal(trail[2].At) {
		t.Fatalf("trail %+v", trail)
	}
	names, err := inv.NamesByARN(r.ctx, arn)
	if err != nil || !slices.Equal(names, []string{"shop-web"}) {
		t.Fatalf("NamesByARN %v %v", names, err)
	}
	list, err := inv.ListCerts(r.ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListCerts %d %v", len(list), err)
	}
	page, err := inv.DescribePage(r.ctx, "shop-web", 100, "")
	if err != nil || page.Cert == nil || len(page.Deployments) != 1 || len(page.Nodes) != 0 { // tag targets: no node reported yet
		t.Fatalf("page %+v %v", page, err)
	}

	rev := inventory.Revocation{CertificateARN: arn, Serial: "0a", Reason: "SUPERSEDED", At: at, By: operator}
	other := rev
	other.CertificateARN = r.exportable("other.example.com")
	for i, tc := range []struct {
		r    inventory.Revocation
		want bool
	}{{other, false}, {rev, true}, {rev, false}} {
		if got, err := inv.MarkRevoked(r.ctx, "shop-web", tc.r); err != nil || got != tc.want {
			t.Fatalf("mark %d: %v %v, want %v", i, got, err, tc.want)
		}
	}
	if ok, err := inv.MarkRevoked(r.ctx, "nobody", rev); ok || err != nil {
		t.Fatalf("marking an unknown name: %v %v", ok, err)
	}
	c := r.cert("shop-web")
	stale := *c
	stale.Version--
	if _, err := inv.Rebind(r.ctx, &stale, other.CertificateARN); !errors.Is(err, inventory.ErrConflict) {
		t.Fatalf("rebind on a stale version: %v", err)
	}
	next, err := inv.Rebind(r.ctx, c, other.CertificateARN)
	if err != nil || next.Version != c.Version+1 {
		t.Fatal(err)
	}
	if got := r.cert("shop-web"); got.CertificateARN != other.CertificateARN || got.Revoked != nil || got.Version != next.Version {
		t.Fatalf("after rebind %+v", got)
	}
	if names, _ := inv.NamesByARN(r.ctx, other.CertificateARN); !slices.Equal(names, []string{"shop-web"}) {
		t.Fatalf("index after rebind %v", names)
	}
}
