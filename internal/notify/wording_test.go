package notify

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden alert texts in testdata/")

const testARN = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"

var (
	now       = time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	notAfter  = time.Date(2027, 1, 6, 6, 0, 0, 0, time.UTC)
	daysLeft  = 45
	tagTarget = []spec.Target{{Key: "tag:env", Values: []string{"prod"}}}
)

func nodes() []Node {
	return []Node{
		{InstanceID: "i-0aaa", State: "installed", Serial: "0a"},
		{InstanceID: "mi-0bbb", State: "failed", Serial: "09", Error: "handshake served another certificate"},
	}
}

// Every alert certferry sends, as a person reads it: subject line and
// body, pinned in testdata/<case>.golden (-update rewrites them).
func TestAlertGolden(t *testing.T) {
	tests := []struct {
		name  string
		alert Alert
	}{
		// The demo's case (issue 13): the event says EMAIL, ACM says DNS;
		// the certificate was just issued and exported by certferry; its
		// tag targets have no node reporting yet.
		{"action-required-event-and-acm-disagree", ForEvent(CertEvent{ARN: testARN, Now: now,
			Event: events.Event{ID: "ev-1", Kind: events.KindActionRequired, ValidationMethod: "EMAIL", RenewalReason: "PENDING_DOMAIN_VALIDATION", DaysToExpiry: &daysLeft, CommonName: "shop.example.com"},
			Info: certs.Info{ARN: testARN, DomainName: "shop.example.com", Status: "ISSUED", Type: "AMAZON_ISSUED", Serial: "0a",
				NotBefore: now.Add(-time.Minute), NotAfter: notAfter, ValidationMethods: []string{"DNS"}, RenewalEligibility: "INELIGIBLE"},
			Names: []Name{{Name: "shop-web", Serial: "0a", Targets: TargetsText(tagTarget)}}})},
		{"action-required-email", ForEvent(CertEvent{ARN: testARN, Now: now,
			Event: events.Event{ID: "ev-2", Kind: events.KindActionRequired, ValidationMethod: "EMAIL"},
			Info: certs.Info{ARN: testARN, DomainName: "shop.example.com", Status: "ISSUED", Type: "AMAZON_ISSUED", Serial: "0a",
				NotAfter: notAfter, ValidationMethods: []string{"EMAIL"}, RenewalEligibility: "ELIGIBLE", RenewalStatus: "PENDING_VALIDATION"},
			Names: []Name{{Name: "shop-web", Serial: "0a", Nodes: nodes()}, {Name: "shop-admin", NodesUnknown: true}}})},
		{"approaching-expiry-not-exported-yet", ForEvent(CertEvent{ARN: testARN, Now: now,
			Event: events.Event{ID: "ev-3", Kind: events.KindApproachingExpiry},
			Info: certs.Info{ARN: testARN, DomainName: "shop.example.com", Status: "ISSUED", Type: "AMAZON_ISSUED", Serial: "0b",
				NotAfter: notAfter, ValidationMethods: []string{"DNS"}, RenewalEligibility: "INELIGIBLE"},
			Names: []Name{{Name: "shop-web", Serial: "0a", Nodes: nodes()}}})},
		{"expired-imported", ForEvent(CertEvent{ARN: testARN, Now: now,
			Event: events.Event{ID: "ev-4", Kind: events.KindExpired},
			Info:  certs.Info{ARN: testARN, DomainName: "old.example.com", Status: "EXPIRED", Type: "IMPORTED", NotAfter: now.Add(-48 * time.Hour), RenewalEligibility: "INELIGIBLE"},
			Names: []Name{{Name: "old-web", Serial: "07", Nodes: nodes()[:1]}}})},
		{"renewal-problem-private-ca", ForEvent(CertEvent{ARN: testARN, Now: now,
			Event: events.Event{ID: "ev-5", Kind: events.KindRenewalProblem, Description: "ACM could not renew the certificate: the CA is DISABLED."},
			Info: certs.Info{ARN: testARN, DomainName: "internal.example.com", Status: "ISSUED", Type: "PRIVATE", Serial: "0c", NotAfter: notAfter,
				RenewalEligibility: "ELIGIBLE", RenewalStatus: "FAILED", RenewalReason: "PCA_INVALID_STATE"},
			Names: []Name{{Name: "internal-web", Serial: "0c", Nodes: nodes()}}})},
		{"revoked", ForEvent(CertEvent{ARN: testARN, Now: now,
			Event: events.Event{ID: "ev-6", Kind: events.KindRevoked},
			Info:  certs.Info{ARN: testARN, DomainName: "shop.example.com", Status: "REVOKED", Type: "AMAZON_ISSUED", Serial: "0a", NotAfter: notAfter},
			Names: []Name{{Name: "shop-web", Serial: "0a", Nodes: nodes()}}},
			"shop-web: ACM reports the deployed serial 0a as current; nothing deployed")},
		// Operator actions (issue 14): each names the caller and the time.
		{"rotation-requested", RotationRequested(Action{Name: "shop-web", ARN: testARN, Domain: "shop.example.com", NotAfter: notAfter,
			By: "arn:aws:iam::123456789012:user/alice", At: now}, true)},
		{"revoked-by-api", Revoked(Action{Name: "shop-web", ARN: testARN, Domain: "shop.example.com", NotAfter: notAfter,
			By: "arn:aws:sts::123456789012:assumed-role/Ops/bob", At: now, Names: []Name{{Name: "shop-web", Serial: "0a", Nodes: nodes()}}}, "SUPERSEDED")},
		{"deployment-approved", Approved(Action{Name: "shop-web", ARN: testARN, By: "local:carol", At: now}, "wave 1 of 3 sent")},
		{"name-rebound", Rebound(Action{Name: "shop-web", ARN: testARN, Domain: "shop.example.com", By: "arn:aws:iam::123456789012:user/alice", At: now},
			"arn:aws:acm:us-east-1:123456789012:certificate/99999999-2222-3333-4444-555555555555", "deployed at once, bypassing maintenance windows and approval (the bound certificate was revoked (SUPERSEDED))")},
		{"name-deleted", Deleted(Action{Name: "shop-web", ARN: testARN, By: "arn:aws:iam::123456789012:user/alice", At: now}, "")},
		{"deployment-blocked", DeploymentBlocked(CertEvent{ARN: testARN, Now: now,
			Event: events.Event{ID: "ev-7", Kind: events.KindAvailable},
			Info:  certs.Info{ARN: testARN},
			Names: []Name{{Name: "shop-web", Serial: "0a", Nodes: nodes()}}},
			[]string{"shop-web: certificate not exportable: " + testARN + " is AMAZON_ISSUED without Options.Export=ENABLED"})},
		{"deployment-partial", DeploymentFinished(Deployment{Name: "shop-web", DeploymentID: "2026-11-22T06:00:00.000Z#c-1", Trigger: "acm-event",
			Serial: "0b", CommandID: "c-1", CommandStatus: "Failed", Outcome: "partial", Installed: 1, Failed: 1, TimedOut: true,
			CertificateARN: testARN, Domain: "shop.example.com", NotAfter: time.Date(2027, 1, 6, 6, 0, 0, 0, time.UTC), Nodes: nodes()[1:]})},
		{"deployment-succeeded", DeploymentFinished(Deployment{Name: "shop-web", DeploymentID: "2026-11-22T06:00:00.000Z#c-2", Trigger: "api",
			Serial: "0b", CommandID: "c-2", CommandStatus: "Success", Outcome: "succeeded", Installed: 2,
			CertificateARN: testARN, Domain: "shop.example.com", NotAfter: time.Date(2027, 1, 6, 6, 0, 0, 0, time.UTC)})},
		{"deployment-no-node", DeploymentFinished(Deployment{Name: "shop-web", DeploymentID: "2026-11-22T06:00:00.000Z#c-3", Trigger: "api",
			Serial: "0b", CommandID: "c-3", CommandStatus: "Success", Outcome: "failed"})},
		{"sweep-risks", func() Alert {
			a, ok := SweepRisks([]SweepName{
				{Name: "shop-web", DaysToExpiry: &daysLeft, Risks: []string{RiskExpiring(notAfter, 30*24*time.Hour), RiskEmail,
					RiskIneligible(certs.Info{Type: "AMAZON_ISSUED", NotAfter: notAfter}, now), RiskRenewal("FAILED", "CAA_ERROR")}},
				{Name: "fine"},
				{Name: "gone", Risks: []string{RiskGone}},
				{Name: "tired", Risks: []string{RiskUndeployable("0d", errors.New("certificate not issued"))}, Exhausted: []string{"i-0aaa", "i-0bbb"}},
			}, 3)
			if !ok {
				t.Fatal("no sweep alert for names at risk")
			}
			return a
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, tc.name, tc.alert, "TestAlertGolden")
		})
	}
}

// checkGolden compares a's subject, kind and text with testdata/<name>.golden
// (written by -update; test is the test that -run names to rewrite it).
func checkGolden(t *testing.T, name string, a Alert, test string) {
	t.Helper()
	got := "Subject: " + a.Subject() + "\nKind: " + a.Kind + "\n\n" + a.Text()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/notify -run %s -update writes it)", err, test)
	}
	if got != string(want) {
		t.Errorf("alert text differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// Truthfulness rules the golden texts rely on, checked one by one.
func TestAlertTells(t *testing.T) {
	base := func() CertEvent {
		return CertEvent{ARN: testARN, Now: now, Event: events.Event{Kind: events.KindActionRequired},
			Info: certs.Info{ARN: testARN, Status: "ISSUED", Serial: "0b", Type: "AMAZON_ISSUED", NotAfter: notAfter}}
	}
	tests := []struct {
		name     string
		edit     func(*CertEvent)
		want     []string // advice held
		not      []string // advice not held
		facts    []string // substrings of the facts
		notFacts []string
	}{
		{name: "EMAIL validation: approve, then switch to DNS", edit: func(in *CertEvent) { in.Info.ValidationMethods = []string{"EMAIL"} },
			want: []string{AdviceEmail, AdviceToDNS}, not: []string{AdviceDNS}},
		{name: "DNS validation: check the CNAME", edit: func(in *CertEvent) { in.Info.ValidationMethods = []string{"DNS"} },
			want: []string{AdviceDNS}, not: []string{AdviceToDNS}},
		{name: "validation method only in the event", edit: func(in *CertEvent) { in.Event.ValidationMethod = "EMAIL" },
			want: []string{AdviceToDNS}, facts: []string{"Validation: EMAIL (from the event"}},
		{name: "event and ACM disagree: one fact, ACM's, for the line and the advice", edit: func(in *CertEvent) {
			in.Event.ValidationMethod = "EMAIL"
			in.Info.ValidationMethods = []string{"DNS"}
		}, want: []string{AdviceDNS}, not: []string{AdviceEmail, AdviceToDNS},
			facts: []string{"Validation: DNS (as ACM reports it now; the event said EMAIL)"}},
		{name: "private CA", edit: func(in *CertEvent) { in.Info.Type = "PRIVATE" }, want: []string{AdviceCA}},
		{name: "PCA reason", edit: func(in *CertEvent) { in.Info.RenewalReason = "PCA_INVALID_STATE" }, want: []string{AdviceCA}},
		{name: "CAA", edit: func(in *CertEvent) { in.Event.RenewalReason = "CAA_ERROR" }, want: []string{AdviceCAA}},
		// ACM User Guide, "Managed certificate renewal": an exportable
		// certificate is ELIGIBLE once exported since issue or last
		// renewal. A serial certferry has not exported yet is INELIGIBLE
		// by that rule: no alarm, no "replace it".
		{name: "ineligible, current serial not exported yet: normal, said so", edit: func(in *CertEvent) {
			in.Info.RenewalEligibility = "INELIGIBLE"
			in.Names = []Name{{Name: "shop-web", Serial: "0a"}}
		}, not: []string{AdviceImported, AdviceExpiredIneligible},
			facts:    []string{"normal for a certificate just issued or renewed and not exported yet", "certferry has not exported the current serial 0b yet"},
			notFacts: []string{"will not renew"}},
		{name: "ineligible although exported: check again, then replace", edit: func(in *CertEvent) {
			in.Info.RenewalEligibility = "INELIGIBLE"
			in.Names = []Name{{Name: "shop-web", Serial: "0b"}}
		}, want: []string{"Read DescribeCertificate -> RenewalEligibility again later: if ACM still reports INELIGIBLE a day after certferry's export, it will not renew the certificate on its own; request a replacement and onboard it under the same name before it expires."},
			facts: []string{"although certferry has exported the current serial 0b"}},
		{name: "ineligible imported: replace", edit: func(in *CertEvent) {
			in.Info.RenewalEligibility, in.Info.Type = "INELIGIBLE", "IMPORTED"
		}, want: []string{AdviceImported}, facts: []string{"ACM does not renew imported certificates"}},
		{name: "ineligible expired: replace", edit: func(in *CertEvent) {
			in.Info.RenewalEligibility, in.Info.NotAfter = "INELIGIBLE", now.Add(-time.Hour)
		}, want: []string{AdviceExpiredIneligible}, facts: []string{"ACM does not renew expired certificates"}},
		{name: "renewed in ACM but not deployed: redeploy", edit: func(in *CertEvent) {
			in.Event.Kind = events.KindApproachingExpiry
			in.Info.ValidationMethods = []string{"EMAIL"}
			in.Names = []Name{{Name: "shop-web", Serial: "0a"}}
		}, want: []string{"ACM already holds a renewed certificate (serial 0b) that has not reached every name yet; certferry's sweep deploys it, or deploy now: POST /certificates/{name}/deployments."},
			not: []string{AdviceToDNS}},
		{name: "expired: replace, no waiting", edit: func(in *CertEvent) { in.Event.Kind = events.KindExpired }, not: []string{AdviceAuto}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.edit(&in)
			a := ForEvent(in)
			for _, w := range tc.want {
				if !slices.Contains(a.Advice, w) {
					t.Errorf("advice lacks %q: %q", w, a.Advice)
				}
			}
			for _, n := range tc.not {
				if slices.Contains(a.Advice, n) {
					t.Errorf("advice holds %q", n)
				}
			}
			facts := strings.Join(a.Facts, "\n")
			for _, w := range tc.facts {
				if !strings.Contains(facts, w) {
					t.Errorf("facts lack %q:\n%s", w, facts)
				}
			}
			for _, n := range tc.notFacts {
				if strings.Contains(facts, n) {
					t.Errorf("facts hold %q:\n%s", n, facts)
				}
			}
			if len(a.Advice) == 0 {
				t.Error("no advice")
			}
		})
	}
}

// A name's node line says what is true: nodes counted, none reported yet
// (with the targets), not read, or a selection.
func TestNodesLine(t *testing.T) {
	tests := []struct {
		name Name
		want string
	}{
		{Name{Name: "a", Nodes: nodes()}, " on 2 node(s)"},
		{Name{Name: "a", Targets: "tag:env=prod"}, ": no node has reported yet (targets tag:env=prod)"},
		{Name{Name: "a"}, ": no node has reported yet"},
		{Name{Name: "a", NodesUnknown: true}, ": nodes unknown (not read from the inventory)"},
		{Name{Name: "a", Which: "that did not install"}, " with 0 node(s) that did not install"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			text := Alert{Title: "t", Names: []Name{tc.name}}.Text()
			if !strings.Contains(text, "  a (deployed serial none)"+tc.want+"\n") {
				t.Errorf("node line lacks %q:\n%s", tc.want, text)
			}
			if tc.want != " on 2 node(s)" && strings.Contains(text, "0 node(s)\n") && tc.name.Which == "" {
				t.Errorf("says 0 node(s) where the nodes are not counted:\n%s", text)
			}
		})
	}
}
