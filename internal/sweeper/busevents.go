package sweeper

import (
	"context"
	"strings"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
)

// busEmitter is where the sweep sends certferry's Certificate At Risk
// events; sending never fails the sweep.
type busEmitter interface {
	Emit(ctx context.Context, details ...busevents.Detail) busevents.Result
}

var _ busEmitter = (*busevents.Emitter)(nil)

// WithEvents makes the sweep send one Certificate At Risk event per name
// and risk it reports.
func (s *Sweeper) WithEvents(e busEmitter) *Sweeper {
	s.bus = e
	return s
}

// emitRisks sends what one name's sweep found at risk. Deferred in
// sweepName, so it sees the final report, early returns included.
func (s *Sweeper) emitRisks(ctx context.Context, c inventory.Cert, nr *NameReport) {
	if s.bus == nil {
		return
	}
	var ds []busevents.Detail
	for _, r := range nr.Risks {
		ds = append(ds, s.atRisk(c, nr, RiskReason(r), r))
	}
	if len(nr.Exhausted) > 0 {
		ds = append(ds, s.atRisk(c, nr, busevents.RiskNodesExhausted,
			"nodes failed every attempt and are left alone until redeployed: "+strings.Join(nr.Exhausted, ", ")))
	}
	if len(ds) > 0 {
		s.bus.Emit(ctx, ds...)
	}
}

func (s *Sweeper) atRisk(c inventory.Cert, nr *NameReport, reason, detail string) busevents.CertificateAtRisk {
	d := busevents.CertificateAtRisk{Name: c.Name, Reason: reason, Detail: detail, DaysLeft: nr.DaysToExpiry}
	if !c.NotAfter.IsZero() {
		na := c.NotAfter.UTC()
		d.NotAfter = &na
	}
	return d
}

// RiskReason classifies one of the sweep's risk lines (notify's Risk*
// wording) as a Certificate At Risk reason; a line it does not know is
// "other" (its text goes in the event's detail either way).
func RiskReason(risk string) string {
	switch {
	case risk == notify.RiskGone:
		return busevents.RiskGone
	case risk == notify.RiskEmail:
		return busevents.RiskEmailValidation
	case strings.HasPrefix(risk, "expires "):
		return busevents.RiskExpiring
	case strings.HasPrefix(risk, "ACM reports renewal INELIGIBLE"):
		return busevents.RiskRenewalIneligible
	case strings.HasPrefix(risk, "renewal "):
		return busevents.RiskRenewalFailed
	case strings.HasPrefix(risk, "ACM holds serial "):
		return busevents.RiskUndeployable
	case strings.Contains(strings.ToLower(risk), "revoked"):
		return busevents.RiskRevoked
	}
	return busevents.RiskOther
}
