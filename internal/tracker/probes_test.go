package tracker

import (
	"context"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/probe"
	"github.com/certferry/certferry/internal/probe/probetest"
	"github.com/certferry/certferry/internal/spec"
)

type fakeCerts struct{ cert *inventory.Cert }

func (f fakeCerts) GetCert(context.Context, string) (*inventory.Cert, error) { return f.cert, nil }

// countingProber counts checks and runs them in-process.
type countingProber struct {
	inner *probe.Handler
	calls int
}

func (c *countingProber) Probe(ctx context.Context, req probe.Request) (probe.Response, error) {
	c.calls++
	return c.inner.Probe(ctx, req)
}

// lostFinish is a store whose conditional finish another event won.
type lostFinish struct{ *fakeStore }

func (lostFinish) FinishDeployment(context.Context, string, string, inventory.Outcome) (bool, error) {
	return false, nil
}

// A probe that sees another certificate after a successful deployment
// alerts once, with what was served and what was deployed; a probe that
// sees the deployed one says nothing; failed, lost or superseded
// deployments are not probed.
func TestProbeAfterDeployment(t *testing.T) {
	deployed := probetest.Issue(t, 0x0b, "shop.example.com")
	old := probetest.Issue(t, 0x0a, "shop.example.com")
	port := probetest.Serve(t, map[string]probetest.Cert{"shop.example.com": old, "new.example.com": deployed})
	stale := probetest.Target(port, "shop.example.com")
	fresh := probetest.Target(port, "new.example.com")

	tests := []struct {
		name      string
		probes    []string
		metaFP    string // META's fingerprint (default: the deployment's)
		counts    map[inventory.NodeState]int
		lost      bool
		waved     bool
		probed    bool
		alertKind string
	}{
		{name: "another certificate served: one alert", probes: []string{fresh, stale}, probed: true, alertKind: "probe-mismatch"},
		{name: "the deployed certificate served: no alert", probes: []string{fresh}, probed: true},
		{name: "unreachable: alerted, not a mismatch", probes: []string{fresh, "127.0.0.1:1/sni=shop.example.com"}, probed: true, alertKind: "probe-unreachable"},
		{name: "no probes", probes: nil},
		{name: "deployment failed: not probed", probes: []string{stale}, counts: map[inventory.NodeState]int{"failed": 1}},
		{name: "superseded by a newer deployment: not probed", probes: []string{stale}, metaFP: old.Fingerprint()},
		{name: "another event concluded it: not probed again", probes: []string{stale}, lost: true},
		{name: "a waved rollout: left to the engine's Check when the rollout is done", probes: []string{stale}, waved: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			counts := tc.counts
			if counts == nil {
				counts = map[inventory.NodeState]int{"installed": 2}
			}
			dep := &inventory.Deployment{ID: "d1", Serial: deployed.Serial(), Fingerprint: deployed.Fingerprint(), CommandID: "c-1",
				Outcome: inventory.OutcomeInProgress, Counts: counts, InstanceIDs: []string{"i-1", "i-2"}}
			meta := &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/x", Probes: tc.probes},
				Serial: deployed.Serial(), Fingerprint: cmpOr(tc.metaFP, deployed.Fingerprint()), DomainName: "shop.example.com"}
			if tc.waved {
				meta.Rollout = &spec.Rollout{Waves: []string{"1", "100%"}}
			}
			var st store = &fakeStore{dep: dep}
			if tc.lost {
				st = lostFinish{&fakeStore{dep: dep}}
			}
			alerts := &fakeAlerts{}
			pr := &countingProber{inner: probe.NewHandler(probe.New(probe.Config{}))}
			tr := New(st, &fakeSSM{}, alerts, nil, Config{}).WithProbes(NewProbes(fakeCerts{meta}, pr, alerts))
			if _, err := tr.Conclude(context.Background(), "shop-web", dep, false, Outcome{}); err != nil {
				t.Fatal(err)
			}
			if (pr.calls == 1) != tc.probed || pr.calls > 1 {
				t.Fatalf("%d checks, want probed=%v", pr.calls, tc.probed)
			}
			var kinds []string
			for _, a := range alerts.sent {
				if strings.HasPrefix(a.Kind, "probe-") {
					kinds = append(kinds, a.Kind)
				}
			}
			if tc.alertKind == "" {
				if len(kinds) != 0 {
					t.Fatalf("probe alerts %v, want none", kinds)
				}
				return
			}
			if len(kinds) != 1 || kinds[0] != tc.alertKind {
				t.Fatalf("probe alerts %v, want one %s", kinds, tc.alertKind)
			}
			text := alerts.sent[len(alerts.sent)-1].Text()
			want := []string{"Deployed: serial b, SHA-256 " + deployed.Fingerprint(), "After deployment d1"}
			if tc.alertKind == "probe-mismatch" {
				want = append(want, stale+" (connected to 127.0.0.1:", "serves serial a, SHA-256 "+old.Fingerprint(), "Serving the deployed certificate: "+fresh)
			} else {
				want = append(want, "could not be probed (refused)")
			}
			for _, w := range want {
				if !strings.Contains(text, w) {
					t.Errorf("alert lacks %q:\n%s", w, text)
				}
			}
		})
	}
}

// Check (the rollout engine's call when a waved rollout is done) probes
// against META's fingerprint.
func TestProbesCheck(t *testing.T) {
	deployed := probetest.Issue(t, 0x0b, "shop.example.com")
	old := probetest.Issue(t, 0x0a, "shop.example.com")
	port := probetest.Serve(t, map[string]probetest.Cert{"shop.example.com": old})
	meta := &inventory.Cert{Spec: spec.Spec{Name: "shop-web", Probes: []string{probetest.Target(port, "shop.example.com")}},
		Serial: deployed.Serial(), Fingerprint: deployed.Fingerprint()}
	alerts := &fakeAlerts{}
	p := NewProbes(fakeCerts{meta}, probe.NewHandler(probe.New(probe.Config{})), alerts)
	rep, err := p.Check(context.Background(), "shop-web")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mismatches() != 1 || rep.AlertID == "" || len(alerts.sent) != 1 || alerts.sent[0].Kind != "probe-mismatch" {
		t.Fatalf("report %+v, alerts %d", rep, len(alerts.sent))
	}
	if rep.Results[0].Served.Fingerprint != old.Fingerprint() {
		t.Errorf("served %s, want the old certificate", rep.Results[0].Served.Fingerprint)
	}
	rep, err = NewProbes(fakeCerts{nil}, probe.NewHandler(probe.New(probe.Config{})), alerts).Check(context.Background(), "gone")
	if err != nil || rep.Skipped == "" {
		t.Fatalf("%+v %v", rep, err)
	}
}
