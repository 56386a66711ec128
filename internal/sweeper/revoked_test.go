package sweeper

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/spec"
)

// A certificate ACM reports REVOKED is a risk of its own: the sweep says
// so (and the Certificate At Risk event's reason is "revoked", the schema's
// enum value issue 15 names), rather than only ACM's INELIGIBLE that
// follows from it, whose advice (export it again) cannot help.
func TestRevokedRisk(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	info := certs.Info{Type: "AMAZON_ISSUED", ExportOption: "ENABLED", Status: "REVOKED", Serial: "0c",
		NotBefore: now.Add(-30 * day), NotAfter: now.Add(170 * day), RenewalEligibility: "INELIGIBLE",
		RevocationReason: "KEY_COMPROMISE", RevokedAt: now.Add(-time.Hour)}
	risks := Risks(info, Export{Serial: "0c", At: now.Add(-10 * day)}, now, Config{})
	var reasons []string
	for _, r := range risks {
		reasons = append(reasons, RiskReason(r))
	}
	if len(risks) != 1 || reasons[0] != busevents.RiskRevoked {
		t.Fatalf("risks %q (reasons %v), want exactly one revoked risk", risks, reasons)
	}
	for _, want := range []string{"KEY_COMPROMISE", "rebind"} {
		if !strings.Contains(risks[0], want) {
			t.Errorf("risk %q lacks %q", risks[0], want)
		}
	}
	// Not revoked: no revoked risk.
	info.Status, info.RenewalEligibility = "ISSUED", "ELIGIBLE"
	for _, r := range Risks(info, Export{Serial: "0c", At: now.Add(-10 * day)}, now, Config{}) {
		if RiskReason(r) == busevents.RiskRevoked {
			t.Errorf("issued certificate reported revoked: %q", r)
		}
	}
}

// A name whose certificate ACM reports REVOKED is not sent again to its
// nodes (a new node, a failed one): the pipeline refuses a REVOKED
// certificate, and an error there would fail the whole sweep every day
// (and its scheduled retries would run it, and alert, again). The sweep
// reports the revocation once and leaves the name to a rebind.
func TestSweepRevokedSendsNothing(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const arn = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	detail := inventory.Detail{
		Cert: &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: arn}, Status: inventory.StatusActive, Serial: "0c",
			ExportedAt: now.Add(-10 * day)},
		Deployments: []inventory.Deployment{{ID: "d1", Serial: "0c", CreatedAt: now.Add(-10 * day), Outcome: inventory.OutcomeSucceeded}},
		Nodes:       []inventory.Node{{InstanceID: "i-0aaa", State: inventory.NodeInstalled, Serial: "0c"}},
	}
	info := certs.Info{ARN: arn, Serial: "0c", Type: "AMAZON_ISSUED", ExportOption: "ENABLED", Status: "REVOKED",
		ValidationMethods: []string{"DNS"}, NotBefore: now.Add(-10 * day), NotAfter: now.Add(190 * day),
		RenewalEligibility: "INELIGIBLE", RevocationReason: "SUPERSEDED", RevokedAt: now.Add(-time.Hour)}
	pub := &fakePublisher{}
	// i-0bbb is a node tagged since: it would need the install.
	dep := &fakeDeployer{}
	st := &fakeStore{detail: detail}
	s := New(st, &fakeACM{info: info}, dep, dep, fakeNodes{ids: []string{"i-0aaa", "i-0bbb"}},
		fakeTracker{}, pub, metrics.New(io.Discard), Config{})
	s.now = func() time.Time { return now }
	rep, err := localSweep(s, st, pub, newFakeRuns(), &fakeSQS{maxReceive: 3}, "run-1")
	if err != nil {
		t.Fatalf("Sweep: %v (%+v)", err, rep)
	}
	if len(rep.Names) != 1 || len(rep.Names[0].Resent) != 0 {
		t.Fatalf("report %+v", rep.Names)
	}
	if len(pub.published) != 1 || !strings.Contains(pub.published[0].Text(), "revoked (SUPERSEDED)") {
		t.Fatalf("alerts %+v", pub.published)
	}
}
