package renewal

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/pipeline"
)

type fakeBus struct{ sent []busevents.Detail }

func (f *fakeBus) Emit(_ context.Context, ds ...busevents.Detail) busevents.Result {
	f.sent = append(f.sent, ds...)
	return busevents.Result{Sent: len(ds)}
}

// "ACM Certificate Revoked" (through certferry's API or not) sends one
// Certificate At Risk event, reason revoked, per bound name, when the
// names are marked (issue 15: the central view learns of a revocation
// when ACM announces it, not at the next daily sweep). A failure to mark
// sends nothing (the retry will).
func TestRevokedSendsCertificateAtRisk(t *testing.T) {
	revokedAt := time.Date(2026, 11, 23, 0, 0, 3, 0, time.UTC)
	for _, tc := range []struct {
		name string
		risk *fakeRisk
		want []string
	}{
		{name: "revoked in ACM", risk: &fakeRisk{}, want: []string{"shop-web", "shop-admin"}},
		{name: "revoked through the API (marked already)", risk: &fakeRisk{already: map[string]bool{"shop-web": true, "shop-admin": true}}, want: []string{"shop-web", "shop-admin"}},
		{name: "marking fails", risk: &fakeRisk{err: errors.New("throttled")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.info.Status, f.info.Serial, f.info.RevocationReason, f.info.RevokedAt = "REVOKED", "0b", "SUPERSEDED", revokedAt
			f.syncFn = func(string) (pipeline.Result, error) {
				return pipeline.Result{}, certs.ErrNotIssued
			}
			bus := &fakeBus{}
			_, _ = f.handler().WithAtRisk(tc.risk).WithEvents(bus).Handle(context.Background(), sample(t, "renewal-revoked.json"))
			var names []string
			for _, d := range bus.sent {
				r, ok := d.(busevents.CertificateAtRisk)
				if !ok || r.Reason != busevents.RiskRevoked || !strings.Contains(r.Detail, "SUPERSEDED") || !strings.Contains(r.Detail, arn) {
					t.Fatalf("event %+v", d)
				}
				names = append(names, r.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("events for %v, want %v", names, tc.want)
			}
		})
	}
}
