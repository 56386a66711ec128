package sweeper

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/spec"
)

// Every risk line the sweep writes (notify's Risk* wording) maps to its
// Certificate At Risk reason; a wording change that breaks the mapping
// fails here.
func TestRiskReason(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		risk, want string
	}{
		{notify.RiskGone, busevents.RiskGone},
		{notify.RiskEmail, busevents.RiskEmailValidation},
		{notify.RiskExpiring(now.AddDate(0, 0, 5), 30*24*time.Hour), busevents.RiskExpiring},
		{notify.RiskIneligible(certs.Info{Type: "IMPORTED"}, now), busevents.RiskRenewalIneligible},
		{notify.RiskIneligible(certs.Info{Type: "PRIVATE", NotAfter: now.AddDate(0, 0, 9)}, now), busevents.RiskRenewalIneligible},
		{notify.RiskRenewal("FAILED", "CAA_ERROR"), busevents.RiskRenewalFailed},
		{notify.RiskRenewal("PENDING_VALIDATION", ""), busevents.RiskRenewalFailed},
		{notify.RiskUndeployable("0a", errors.New("not issued")), busevents.RiskUndeployable},
		{"the certificate was revoked (KEY_COMPROMISE)", busevents.RiskRevoked},
		{"probe: node serves another certificate", busevents.RiskOther},
	} {
		if got := RiskReason(tc.risk); got != tc.want {
			t.Errorf("RiskReason(%q) = %q, want %q", tc.risk, got, tc.want)
		}
	}
}

type fakeBus struct{ sent []busevents.Detail }

func (f *fakeBus) Emit(_ context.Context, ds ...busevents.Detail) busevents.Result {
	f.sent = append(f.sent, ds...)
	return busevents.Result{Sent: len(ds)}
}

func TestEmitRisks(t *testing.T) {
	notAfter := time.Date(2026, 12, 19, 23, 59, 59, 0, time.UTC)
	days := 24
	c := inventory.Cert{Spec: spec.Spec{Name: "legacy-portal"}, NotAfter: notAfter}
	nr := &NameReport{Name: "legacy-portal", DaysToExpiry: &days, Risks: []string{notify.RiskEmail, notify.RiskGone}, Exhausted: []string{"i-1", "i-2"}}
	bus := &fakeBus{}
	s := (&Sweeper{}).WithEvents(bus)
	s.emitRisks(context.Background(), c, nr)
	if len(bus.sent) != 3 {
		t.Fatalf("sent %d events, want 3", len(bus.sent))
	}
	want := []string{busevents.RiskEmailValidation, busevents.RiskGone, busevents.RiskNodesExhausted}
	for i, d := range bus.sent {
		r := d.(busevents.CertificateAtRisk)
		if r.Name != "legacy-portal" || r.Reason != want[i] || r.DaysLeft == nil || *r.DaysLeft != 24 || r.NotAfter == nil || !r.NotAfter.Equal(notAfter) || r.Detail == "" {
			t.Errorf("event %d: %+v", i, r)
		}
	}
	// Nothing at risk: nothing sent; no emitter: nothing either.
	bus.sent = nil
	s.emitRisks(context.Background(), c, &NameReport{Name: "ok"})
	(&Sweeper{}).emitRisks(context.Background(), c, nr)
	if len(bus.sent) != 0 {
		t.Fatalf("sent %v", bus.sent)
	}
}
