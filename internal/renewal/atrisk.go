package renewal

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/lifecycle"
)

// atRisk marks every name bound to a revoked certificate at risk and
// stops its deployments (lifecycle.Service.MarkAtRisk). A name already
// marked for the ARN (by the API's revocation) is left alone.
type atRisk interface {
	MarkAtRisk(ctx context.Context, r inventory.Revocation, why string) (marked, halted, names []string, err error)
}

var _ atRisk = (*lifecycle.Service)(nil)

// WithAtRisk makes "ACM Certificate Revoked" mark the bound names at risk
// and halt their deployments through r. Without it the handler alerts
// only (as before issue 14).
func (h *Handler) WithAtRisk(r atRisk) *Handler {
	h.risk = r
	return h
}

// markRevoked marks the names bound to arn at risk, with what ACM says of
// the revocation (serial, reason, time) or, failing that, the event's
// time. It returns the facts for the alert and whether the alert is
// needed: not when every name was marked already (the revocation went
// through certferry's API, which alerted).
func (h *Handler) markRevoked(ctx context.Context, ev events.Event, arn string) (facts []string, needed bool, err error) {
	if h.risk == nil {
		return nil, true, nil
	}
	info, derr := h.acm.Describe(ctx, arn)
	at := info.RevokedAt
	if derr != nil || at.IsZero() {
		at = cmp.Or(ev.Time, h.now()).UTC().Truncate(time.Second)
	}
	r := inventory.Revocation{CertificateARN: arn, Serial: info.Serial, Reason: info.RevocationReason, At: at,
		By: "aws.acm event " + ev.ID}
	marked, halted, _, err := h.risk.MarkAtRisk(ctx, r, "ACM Certificate Revoked event "+ev.ID)
	if err != nil {
		return nil, false, fmt.Errorf("mark names of %s at risk: %w", arn, err)
	}
	for _, n := range marked {
		facts = append(facts, n+": marked at risk (certferry status shows it until the name is rebound)")
	}
	for _, n := range halted {
		facts = append(facts, n+": deployments halted")
	}
	return facts, len(marked) > 0, nil
}

// deployedAny reports whether the outcome deployed one of names.
func deployedAny(out *Outcome, names []string) bool {
	for _, d := range out.Deployed {
		for _, n := range names {
			if d.Name == n {
				return true
			}
		}
	}
	return false
}
