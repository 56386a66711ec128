package sweeper

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
)

const day = 24 * time.Hour

// Due dates follow each certificate's lifetime: the 30-day default window
// holds for long certificates, a third of the lifetime for short ones.
func TestDueWindow(t *testing.T) {
	tests := []struct {
		lifetimeDays int
		cfg          Config
		wantDays     float64
	}{
		{397, Config{}, 30},
		{200, Config{}, 30},
		{100, Config{}, 30},
		{47, Config{}, 47.0 / 3},
		{397, Config{RenewBeforeDays: 60}, 60},
		{100, Config{RenewBeforeDays: 60}, 100.0 / 3},
		{47, Config{RenewBeforeDays: 10}, 10},
		{47, Config{RenewBeforeFraction: 0.5}, 23.5},
		{0, Config{}, 30}, // lifetime unknown: the fixed window
	}
	for _, tc := range tests {
		got := DueWindow(time.Duration(tc.lifetimeDays)*day, tc.cfg)
		if diff := got.Hours()/24 - tc.wantDays; diff > 0.001 || diff < -0.001 {
			t.Errorf("%d-day certificate, %+v: window %.3f days, want %.3f", tc.lifetimeDays, tc.cfg, got.Hours()/24, tc.wantDays)
		}
	}
}

// For 397-, 200-, 100- and 47-day certificates: at risk only inside the
// window, never on day one of a short certificate.
func TestExpiryRisk(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		lifetime, left int
		risk           bool
	}{
		{397, 200, false}, {397, 31, false}, {397, 29, true},
		{200, 60, false}, {200, 29, true},
		{100, 31, false}, {100, 29, true},
		{47, 40, false}, {47, 17, false}, {47, 15, true}, {47, 1, true},
		{47, -2, true},
	}
	for _, tc := range tests {
		notAfter := now.Add(time.Duration(tc.left) * day)
		info := certs.Info{NotBefore: notAfter.Add(-time.Duration(tc.lifetime) * day), NotAfter: notAfter, RenewalEligibility: "ELIGIBLE"}
		risks := Risks(info, Export{}, now, Config{})
		if got := len(risks) > 0; got != tc.risk {
			t.Errorf("%d-day certificate with %d days left: risks %q, want risk %v", tc.lifetime, tc.left, risks, tc.risk)
		}
	}
}

func TestRiskKinds(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	info := certs.Info{NotBefore: now.Add(-10 * day), NotAfter: now.Add(190 * day), ValidationMethods: []string{"EMAIL"},
		RenewalEligibility: "INELIGIBLE", RenewalStatus: "FAILED", RenewalReason: "CAA_ERROR"}
	got := strings.Join(Risks(info, Export{}, now, Config{}), " | ")
	for _, want := range []string{"EMAIL validation", "INELIGIBLE", "renewal FAILED (CAA_ERROR)"} {
		if !strings.Contains(got, want) {
			t.Errorf("risks %q lack %q", got, want)
		}
	}
}

// When ACM's INELIGIBLE is a risk (ACM User Guide, "Managed certificate
// renewal in AWS Certificate Manager": ELIGIBLE if exported since being
// issued or last renewed; NOT ELIGIBLE if imported or already expired).
func TestIneligibleRisk(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	acm := func(mut func(*certs.Info)) certs.Info {
		info := certs.Info{Type: "AMAZON_ISSUED", Serial: "0c", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(197 * day),
			RenewalEligibility: "INELIGIBLE"}
		if mut != nil {
			mut(&info)
		}
		return info
	}
	tests := []struct {
		name string
		info certs.Info
		ex   Export
		risk bool
	}{
		{"ELIGIBLE", acm(func(i *certs.Info) { i.RenewalEligibility = "ELIGIBLE" }), Export{}, false},
		{"eligibility not reported", acm(func(i *certs.Info) { i.RenewalEligibility = "" }), Export{}, false},
		// The demo's case: onboarded (exported) moments ago.
		{"current serial exported a minute ago", acm(nil), Export{Serial: "0c", At: now.Add(-time.Minute)}, false},
		{"current serial exported 23h59m ago", acm(nil), Export{Serial: "0c", At: now.Add(-day + time.Minute)}, false},
		// Still INELIGIBLE a day after certferry's export: ACM will not
		// renew it on its own.
		{"current serial exported a day ago", acm(nil), Export{Serial: "0c", At: now.Add(-day)}, true},
		{"current serial exported 30 days ago", acm(nil), Export{Serial: "0c", At: now.Add(-30 * day)}, true},
		{"current serial exported 30 days ago, a resend under way", acm(nil), Export{Serial: "0c", At: now.Add(-30 * day), Deploying: true}, true},
		{"current serial exported at an unknown time", acm(nil), Export{Serial: "0c"}, true},
		// ACM renewed: certferry has not exported the new serial yet.
		{"new serial, its deployment under way", acm(nil), Export{Serial: "0b", At: now.Add(-60 * day), Deploying: true}, false},
		{"new serial, no deployment of it", acm(nil), Export{Serial: "0b", At: now.Add(-60 * day)}, true},
		{"never exported, no deployment", acm(nil), Export{}, true},
		{"never exported, its deployment under way", acm(nil), Export{Deploying: true}, false},
		// ACM never renews these, whatever certferry did.
		{"imported", acm(func(i *certs.Info) { i.Type = "IMPORTED" }), Export{Serial: "0c", At: now.Add(-time.Minute)}, true},
		{"imported, deployment under way", acm(func(i *certs.Info) { i.Type = "IMPORTED" }), Export{Deploying: true}, true},
		{"expired", acm(func(i *certs.Info) { i.NotAfter = now.Add(-time.Hour) }), Export{Serial: "0c", At: now.Add(-time.Minute)}, true},
		{"expires this instant", acm(func(i *certs.Info) { i.NotAfter = now }), Export{Serial: "0c", At: now.Add(-time.Minute)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IneligibleRisk(tc.info, tc.ex, now); got != tc.risk {
				t.Errorf("IneligibleRisk = %v, want %v", got, tc.risk)
			}
			risks := strings.Join(Risks(tc.info, tc.ex, now, Config{}), " | ")
			if got := strings.Contains(risks, "INELIGIBLE"); got != tc.risk {
				t.Errorf("risks %q: INELIGIBLE reported %v, want %v", risks, got, tc.risk)
			}
		})
	}
}

// When certferry exported the current serial: META's exportedAt, else (an
// item written before it was recorded) the first deployment of that serial.
func TestExportTime(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	deps := []inventory.Deployment{
		{Serial: "0b", CreatedAt: t0.Add(-60 * day)},
		{Serial: "0c", CreatedAt: t0.Add(2 * time.Hour)}, // a later resend of 0c
		{Serial: "0c", CreatedAt: t0},
	}
	tests := []struct {
		name string
		cert inventory.Cert
		deps []inventory.Deployment
		want time.Time
	}{
		{"recorded", inventory.Cert{Serial: "0c", ExportedAt: t0.Add(-time.Minute)}, deps, t0.Add(-time.Minute)},
		{"not recorded: first deployment of the serial", inventory.Cert{Serial: "0c"}, deps, t0},
		{"not recorded, no deployment of the serial left", inventory.Cert{Serial: "0d"}, deps, time.Time{}},
		{"not recorded, no deployments", inventory.Cert{Serial: "0c"}, nil, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := exportTime(&tc.cert, tc.deps); !got.Equal(tc.want) {
				t.Errorf("exportTime = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClaimFor(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	live := now.Add(time.Minute).Unix()
	tests := []struct {
		name   string
		claim  *inventory.Claim
		serial string
		want   bool
	}{
		{"no claim", nil, "0c", false},
		{"live claim for the serial", &inventory.Claim{Serial: "0c", Until: live}, "0c", true},
		{"live claim for another serial", &inventory.Claim{Serial: "0b", Until: live}, "0c", false},
		{"expired claim for the serial", &inventory.Claim{Serial: "0c", Until: now.Unix()}, "0c", false},
		{"ACM's serial unknown", &inventory.Claim{Until: live}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := claimFor(tc.claim, tc.serial, now); got != tc.want {
				t.Errorf("claimFor = %v, want %v", got, tc.want)
			}
		})
	}
}

// The resend plan: new nodes, stale serials, unverified installs and failed
// nodes with attempts left past their backoff; nodes pending in a live
// deployment and exhausted ones are left alone.
func TestPlan(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	s := &Sweeper{}
	s.cfg.defaults()
	d := &inventory.Detail{
		Cert: &inventory.Cert{Serial: "0c"},
		Nodes: []inventory.Node{
			{InstanceID: "i-ok", State: "installed", Serial: "0c"},
			{InstanceID: "i-stale", State: "installed", Serial: "0b"},
			{InstanceID: "i-unverified", State: "installed", Serial: "0c", Unverified: true},
			{InstanceID: "i-pending-live", State: "pending", DeploymentID: "live"},
			{InstanceID: "i-pending-ended", State: "pending", DeploymentID: "ended"},
			{InstanceID: "i-failed-due", State: "failed", Failures: 1, UpdatedAt: ago(31 * time.Minute)},
			{InstanceID: "i-failed-backoff", State: "rolled_back", Failures: 2, UpdatedAt: ago(59 * time.Minute)},
			{InstanceID: "i-failed-due2", State: "rolled_back", Failures: 2, UpdatedAt: ago(61 * time.Minute)},
			{InstanceID: "i-exhausted", State: "failed", Failures: 3, UpdatedAt: ago(48 * time.Hour)},
			{InstanceID: "i-gone", State: "failed", Failures: 1, UpdatedAt: ago(48 * time.Hour)},
		},
	}
	deps := map[string]*inventory.Deployment{
		"live":  {ID: "live", Outcome: inventory.OutcomeInProgress},
		"ended": {ID: "ended", Outcome: inventory.OutcomePartial},
	}
	current := []string{"i-new", "i-ok", "i-stale", "i-unverified", "i-pending-live", "i-pending-ended",
		"i-failed-due", "i-failed-backoff", "i-failed-due2", "i-exhausted"}
	send, exhausted, failures := s.plan(d.Cert.Serial, d.NodesByID(), deps, current, now)
	want := []string{"i-new", "i-stale", "i-unverified", "i-pending-ended", "i-failed-due", "i-failed-due2"}
	if !slices.Equal(send, want) {
		t.Errorf("send %v, want %v", send, want)
	}
	if !slices.Equal(exhausted, []string{"i-exhausted"}) {
		t.Errorf("exhausted %v", exhausted)
	}
	if failures["i-failed-due"] != 1 || failures["i-failed-due2"] != 2 || len(failures) != 2 {
		t.Errorf("failures carried %v", failures)
	}
}

// A deployment is stuck once it is older than the deployment timeout
// (its createdAt is a time.Time read from the item; a bad one fails the
// read of the name instead of leaving the deployment never stuck).
func TestStuck(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := &Sweeper{}
	s.cfg.defaults()
	for _, tc := range []struct {
		name  string
		age   time.Duration
		stuck bool
	}{
		{"fresh", time.Minute, false},
		{"at the timeout", 2 * time.Hour, false},
		{"past the timeout", 2*time.Hour + time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.stuck(&inventory.Deployment{CreatedAt: now.Add(-tc.age)}, now); got != tc.stuck {
				t.Errorf("stuck = %v, want %v", got, tc.stuck)
			}
		})
	}
}
