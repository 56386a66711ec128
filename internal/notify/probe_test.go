package notify

import (
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/probe"
)

const (
	deployedFP = "0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B:0B"
	otherFP    = "0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A:0A"
)

func probeResults() []probe.Result {
	return []probe.Result{
		{Target: "shop.example.com:443", ServerName: "shop.example.com", Address: "192.0.2.10:443", Status: probe.StatusMatch,
			Served: &probe.Served{Fingerprint: deployedFP, Serial: "0b"}},
		{Target: "[2001:db8::1]:8443/sni=shop.example.com", ServerName: "shop.example.com", Address: "[2001:db8::1]:8443", Status: probe.StatusMismatch,
			Served: &probe.Served{Fingerprint: otherFP, Serial: "0a", Subject: "CN=shop.example.com", DNSNames: []string{"shop.example.com", "www.shop.example.com"},
				Issuer: "CN=Amazon RSA 2048 M03,O=Amazon,C=US", NotAfter: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), ChainLength: 2, Verified: true, TLSVersion: "TLS 1.3"}},
		{Target: "10.0.0.5:443/sni=shop.example.com", ServerName: "shop.example.com", Status: probe.StatusError, ErrorKind: probe.ErrTimeout,
			Error: "connect to 10.0.0.5:443: dial tcp 10.0.0.5:443: i/o timeout"},
	}
}

// The probe alerts, as a person reads them (testdata/probe-*.golden;
// -update rewrites them, see TestAlertGolden).
func TestProbeAlertGolden(t *testing.T) {
	check := ProbeCheck{Name: "shop-web", CertificateARN: testARN, Domain: "shop.example.com", DeploymentID: "2026-11-22T06:00:00.000Z#c-2",
		DeployedSerial: "0b", DeployedFingerprint: deployedFP, Results: probeResults()}
	unreachable := check
	unreachable.DeploymentID = ""
	unreachable.Results = []probe.Result{probeResults()[0], probeResults()[2]}
	daysLeftEmail := 50
	sweep, ok := SweepRisks([]SweepName{
		{Name: "shop-web", DaysToExpiry: &daysLeft, Risks: []string{RiskProbeMismatch(probeResults()[1], "0b"), RiskProbeFailed(probeResults()[2])}},
		{Name: "mail-web", DaysToExpiry: &daysLeftEmail, Risks: []string{RiskEmail, RiskEmailHTTPS("example.com", []probe.Result{
			{Target: "example.com:443", Status: probe.StatusMismatch, Served: &probe.Served{Serial: "0a"}},
			{Target: "www.example.com:443", Status: probe.StatusError, ErrorKind: probe.ErrRefused}})}},
	}, 3)
	if !ok {
		t.Fatal("no sweep alert")
	}
	tests := []struct {
		name  string
		alert Alert
		kind  string
	}{
		{"probe-mismatch", mustProbeAlert(t, check), "probe-mismatch"},
		{"probe-unreachable", mustProbeAlert(t, unreachable), "probe-unreachable"},
		{"sweep-probe-risks", sweep, "sweep-risks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.alert
			if a.Kind != tc.kind {
				t.Fatalf("kind %q, want %q", a.Kind, tc.kind)
			}
			checkGolden(t, tc.name, a, "TestProbeAlertGolden")
		})
	}
	if _, ok := ProbeAlert(ProbeCheck{Name: "fine", Results: probeResults()[:1]}); ok {
		t.Error("an alert when every endpoint serves the deployed certificate")
	}
}

func mustProbeAlert(t *testing.T, in ProbeCheck) Alert {
	t.Helper()
	a, ok := ProbeAlert(in)
	if !ok {
		t.Fatalf("no probe alert for %+v", in)
	}
	return a
}

// The sweep's probe risk lines say what was served or why nothing was,
// and the EMAIL line says what to fix.
func TestProbeRiskLines(t *testing.T) {
	r := probeResults()
	if got := RiskProbeMismatch(r[1], "0b"); !strings.Contains(got, "serves serial 0a, SHA-256 "+otherFP) ||
		!strings.HasPrefix(got, "probe sees another certificate than the deployed serial 0b: [2001:db8::1]:8443/sni=shop.example.com (connected to") {
		t.Errorf("mismatch line %q", got)
	}
	if got := RiskProbeFailed(r[2]); got != "probe 10.0.0.5:443/sni=shop.example.com could not be probed (timeout): connect to 10.0.0.5:443: dial tcp 10.0.0.5:443: i/o timeout" {
		t.Errorf("failed line %q", got)
	}
	got := RiskEmailHTTPS("example.com", []probe.Result{
		{Target: "example.com:443", Status: probe.StatusMismatch, Served: &probe.Served{Serial: "0a"}},
		{Target: "www.example.com:443", Status: probe.StatusError, ErrorKind: probe.ErrRefused},
	})
	for _, want := range []string{"neither https://example.com nor https://www.example.com serves this certificate",
		"example.com:443: serial 0a; www.example.com:443: refused", "serve this certificate on example.com or www.example.com (port 443), or switch to DNS validation"} {
		if !strings.Contains(got, want) {
			t.Errorf("EMAIL line lacks %q: %q", want, got)
		}
	}
}
