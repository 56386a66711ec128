package sweeper

import (
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/certs"
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
