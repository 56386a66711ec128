package renewal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
)

type fakeRisk struct {
	already map[string]bool // names marked before (by the API)
	err     error
	got     []inventory.Revocation
}

func (f *fakeRisk) MarkAtRisk(_ context.Context, r inventory.Revocation, _ string) (marked, halted, names []string, err error) {
	f.got = append(f.got, r)
	if f.err != nil {
		return nil, nil, nil, f.err
	}
	for _, n := range []string{"shop-web", "shop-admin"} {
		names = append(names, n)
		if !f.already[n] {
			marked, halted = append(marked, n), append(halted, n)
		}
	}
	return marked, halted, names, nil
}

// "ACM Certificate Revoked" marks every bound name at risk (with ACM's
// serial, reason and time of the revocation) and halts it; a revocation
// the API made (names marked already) is not alerted twice; a failure to
// mark fails the delivery, so Lambda retries it.
func TestRevokedMarksNamesAtRisk(t *testing.T) {
	revokedAt := time.Date(2026, 11, 23, 0, 0, 3, 0, time.UTC)
	notIssued := func(string) (pipeline.Result, error) {
		return pipeline.Result{}, fmt.Errorf("%w: %s has status REVOKED", certs.ErrNotIssued, arn)
	}
	for _, tc := range []struct {
		name      string
		risk      *fakeRisk
		wantErr   bool
		alerts    int
		wantFacts []string
	}{
		{name: "revoked in ACM: names marked and halted, one alert", risk: &fakeRisk{}, alerts: 1,
			wantFacts: []string{"shop-web: marked at risk", "shop-admin: deployments halted"}},
		{name: "revoked through the API: marked already, no second alert", risk: &fakeRisk{already: map[string]bool{"shop-web": true, "shop-admin": true}}},
		{name: "one name marked here: one alert", risk: &fakeRisk{already: map[string]bool{"shop-web": true}}, alerts: 1,
			wantFacts: []string{"shop-admin: marked at risk"}},
		{name: "marking fails: retried", risk: &fakeRisk{err: errors.New("throttled")}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.info.Status, f.info.Serial, f.info.RevocationReason, f.info.RevokedAt = "REVOKED", "0b", "SUPERSEDED", revokedAt
			f.syncFn = notIssued
			out, err := f.handler().WithAtRisk(tc.risk).Handle(context.Background(), sample(t, "renewal-revoked.json"))
			if tc.wantErr != (err != nil) {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if len(f.published) != tc.alerts || len(out.Deployed) != 0 {
				t.Fatalf("%d alerts (want %d), deployed %v", len(f.published), tc.alerts, out.Deployed)
			}
			if len(tc.risk.got) != 1 {
				t.Fatalf("MarkAtRisk calls %v", tc.risk.got)
			}
			r := tc.risk.got[0]
			if r.CertificateARN != arn || r.Serial != "0b" || r.Reason != "SUPERSEDED" || !r.At.Equal(revokedAt) || !strings.HasPrefix(r.By, "aws.acm event ") {
				t.Fatalf("revocation %+v", r)
			}
			if tc.alerts > 0 {
				text := f.published[0].Text()
				for _, want := range tc.wantFacts {
					if !strings.Contains(text, want) {
						t.Errorf("alert lacks %q:\n%s", want, text)
					}
				}
			}
			if _, marked := f.marks[out.EventID]; tc.wantErr && marked {
				t.Fatal("the event's mark stays after a failure: the retry would be taken for a duplicate")
			}
		})
	}
}
