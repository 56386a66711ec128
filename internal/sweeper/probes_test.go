package sweeper

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/probe"
	"github.com/certferry/certferry/internal/probe/probetest"
	"github.com/certferry/certferry/internal/spec"
)

// localProber runs the real probe code in-process, with the public names
// the sweep asks for (apex and www. on 443) sent to a loopback server
// instead (same SNI): the test never leaves the machine.
type localProber struct {
	inner    *probe.Handler
	port     int
	reroute  map[string]bool // host names served by the loopback server; others are refused (port 1)
	requests []probe.Request
}

func (l *localProber) Probe(ctx context.Context, req probe.Request) (probe.Response, error) {
	l.requests = append(l.requests, req)
	sent := slices.Clone(req.Targets)
	for i, tg := range sent {
		host, ok := strings.CutSuffix(tg, ":443")
		if !ok {
			continue
		}
		if l.reroute[host] {
			sent[i] = probetest.Target(l.port, host)
		} else {
			sent[i] = "127.0.0.1:1/sni=" + host
		}
	}
	resp, err := l.inner.Probe(ctx, probe.Request{Targets: sent, ExpectedFingerprint: req.ExpectedFingerprint})
	for i := range resp.Results {
		resp.Results[i].Target = req.Targets[i]
	}
	return resp, err
}

// A probe that sees another certificate is a risk in the sweep's one
// alert; the EMAIL-validated certificate's apex/www. check warns from 60
// days before expiry when neither serves this very certificate.
func TestSweepProbes(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const arn = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	deployed := probetest.Issue(t, 0x0b, "shop.example.com", "example.com", "www.example.com")
	old := probetest.Issue(t, 0x0a, "shop.example.com", "example.com", "www.example.com")
	serve := map[string]probetest.Cert{"shop.example.com": deployed, "stale.example.com": old,
		"example.com": old, "www.example.com": deployed, "apex-only.example.org": deployed, "www.apex-only.example.org": old}
	port := probetest.Serve(t, serve)
	good, stale := probetest.Target(port, "shop.example.com"), probetest.Target(port, "stale.example.com")

	detail := func(probes ...string) inventory.Detail {
		c := &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: arn, Probes: probes}, Status: inventory.StatusActive,
			Serial: deployed.Serial(), Fingerprint: deployed.Fingerprint(), ExportedAt: now.Add(-10 * day)}
		return inventory.Detail{Cert: c,
			Deployments: []inventory.Deployment{{ID: "d1", Serial: c.Serial, CreatedAt: now.Add(-10 * day), Outcome: inventory.OutcomeSucceeded}},
			Nodes:       []inventory.Node{{InstanceID: "i-0aaa", State: inventory.NodeInstalled, Serial: c.Serial}}}
	}
	info := func(domain, validation string, daysLeft int) certs.Info {
		return certs.Info{ARN: arn, DomainName: domain, Serial: deployed.Serial(), Type: "AMAZON_ISSUED", Status: "ISSUED",
			ValidationMethods: []string{validation}, NotBefore: now.Add(-100 * day), NotAfter: now.Add(time.Duration(daysLeft) * day),
			RenewalEligibility: "ELIGIBLE"}
	}
	tests := []struct {
		name        string
		detail      inventory.Detail
		info        certs.Info
		sync        func() (pipeline.Result, error)
		reroute     []string
		wantTargets []string // what the sweep asked to probe (nil: no check)
		wantRisks   []string // substrings of the name's risks
		notRisks    []string
	}{
		{name: "a probe serving another certificate: a risk", detail: detail(good, stale), info: info("shop.example.com", "DNS", 150),
			wantTargets: []string{good, stale},
			wantRisks:   []string{"probe sees another certificate than the deployed serial b: " + stale + " (connected to 127.0.0.1:", "serves serial a, SHA-256 " + old.Fingerprint()},
			notRisks:    []string{good}},
		{name: "every probe serves the deployed certificate: no risk", detail: detail(good), info: info("shop.example.com", "DNS", 150),
			wantTargets: []string{good}},
		{name: "an unreachable probe: a risk, not a mismatch", detail: detail("127.0.0.1:1/sni=shop.example.com"), info: info("shop.example.com", "DNS", 150),
			wantTargets: []string{"127.0.0.1:1/sni=shop.example.com"}, wantRisks: []string{"could not be probed (refused)"}, notRisks: []string{"serves serial"}},
		{name: "a renewal being deployed: probes wait", detail: detail(stale), info: func() certs.Info { i := info("shop.example.com", "DNS", 150); i.Serial = "c"; return i }(),
			sync: func() (pipeline.Result, error) { return pipeline.Result{Serial: "c", CommandID: "cmd-2"}, nil }},
		{name: "EMAIL, 50 days left, apex serves another, www this one: renewable", detail: detail(), info: info("example.com", "EMAIL", 50),
			reroute: []string{"example.com", "www.example.com"}, wantTargets: []string{"example.com:443", "www.example.com:443"},
			notRisks: []string{"neither https://"}},
		{name: "EMAIL wildcard, 50 days left, apex this one: renewable", detail: detail(), info: info("*.apex-only.example.org", "EMAIL", 50),
			reroute: []string{"apex-only.example.org", "www.apex-only.example.org"}, wantTargets: []string{"apex-only.example.org:443", "www.apex-only.example.org:443"},
			notRisks: []string{"neither https://"}},
		{name: "EMAIL, 59 days left, apex another, www refused: ACM's renewal will fail", detail: detail(good), info: info("*.example.com", "EMAIL", 59),
			reroute: []string{"example.com"}, wantTargets: []string{good, "example.com:443", "www.example.com:443"},
			wantRisks: []string{"EMAIL validation: neither https://example.com nor https://www.example.com serves this certificate (example.com:443: serial a; www.example.com:443: refused)",
				"serve this certificate on example.com or www.example.com (port 443), or switch to DNS validation"}},
		{name: "EMAIL, 61 days left: not yet probed", detail: detail(), info: info("example.com", "EMAIL", 61)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub := &fakePublisher{}
			reroute := map[string]bool{}
			for _, h := range tc.reroute {
				reroute[h] = true
			}
			pr := &localProber{inner: probe.NewHandler(probe.New(probe.Config{})), port: port, reroute: reroute}
			dep := &fakeDeployer{sync: tc.sync}
			st := &fakeStore{detail: tc.detail}
			s := New(st, &fakeACM{info: tc.info}, dep, dep, fakeNodes{ids: []string{"i-0aaa"}},
				fakeTracker{}, pub, metrics.New(io.Discard), Config{}).WithProber(pr)
			s.now = func() time.Time { return now }
			rep, err := localSweep(s, st, pub, newFakeRuns(), &fakeSQS{maxReceive: 3}, "run-1")
			if err != nil {
				t.Fatalf("Sweep: %v (%+v)", err, rep)
			}
			switch {
			case tc.wantTargets == nil && len(pr.requests) != 0:
				t.Fatalf("probed %v, want no check", pr.requests)
			case tc.wantTargets != nil && (len(pr.requests) != 1 || !slices.Equal(pr.requests[0].Targets, tc.wantTargets)):
				t.Fatalf("probe requests %+v, want one for %v", pr.requests, tc.wantTargets)
			case tc.wantTargets != nil && pr.requests[0].ExpectedFingerprint != deployed.Fingerprint():
				t.Fatalf("expected fingerprint %s, want the deployed one", pr.requests[0].ExpectedFingerprint)
			}
			risks := strings.Join(rep.Names[0].Risks, "\n")
			for _, w := range tc.wantRisks {
				if !strings.Contains(risks, w) {
					t.Errorf("risks lack %q:\n%s", w, risks)
				}
			}
			for _, n := range tc.notRisks {
				if strings.Contains(risks, n) {
					t.Errorf("risks hold %q:\n%s", n, risks)
				}
			}
			if len(tc.wantRisks) > 0 {
				if len(pub.published) != 1 {
					t.Fatalf("%d alerts, want the sweep's one", len(pub.published))
				}
				if text := pub.published[0].Text(); !strings.Contains(text, tc.wantRisks[0]) {
					t.Errorf("the sweep's alert lacks %q:\n%s", tc.wantRisks[0], text)
				}
			}
		})
	}
}
