package sweeper

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/probe"
)

// Outside probes in the sweep (issue 14): each name's probes must serve
// the deployed fingerprint, and an EMAIL-validated certificate must be
// served at its domain's apex or www. name for ACM to renew it without a
// person. What they find are risks in the sweep's one alert.

// prober runs one check: the probe function (probe.Invoker) or the same
// code in-process (probe.Handler).
type prober interface {
	Probe(ctx context.Context, req probe.Request) (probe.Response, error)
}

var (
	_ prober = (*probe.Invoker)(nil)
	_ prober = (*probe.Handler)(nil)
)

// EmailProbeWindow is how long before expiry the sweep checks that an
// EMAIL-validated certificate is served where ACM looks: ACM starts
// managed renewal 60 days before expiry (ACM User Guide, "Managed
// certificate renewal"; AWS Knowledge Center, "How do I use email to
// validate my certificate domains during the ACM managed renewal
// process?": "ACM begins the renewal process 60 days before the
// certificate expires").
const EmailProbeWindow = 60 * 24 * time.Hour

// WithProber makes the sweep run the outside probes through p (nil: none).
func (s *Sweeper) WithProber(p prober) *Sweeper {
	s.probes = p
	return s
}

// probeRisks probes the name's probes (when nothing of it is being
// deployed: a deployment under way would show the old certificate) and,
// for an EMAIL-validated certificate inside EmailProbeWindow, its domain's
// apex and www. name on 443, and returns the risks they show. A failed
// check is a risk line too, never a sweep error.
func (s *Sweeper) probeRisks(ctx context.Context, c inventory.Cert, info certs.Info, now time.Time, nr *NameReport) []string {
	if s.probes == nil || c.Fingerprint == "" {
		return nil
	}
	var targets []string
	steady := !nr.Redeployed && !nr.Deferred && len(nr.Resent) == 0 && (info.Serial == "" || info.Serial == c.Serial)
	if steady {
		targets = append(targets, c.Probes...)
	} else if len(c.Probes) > 0 {
		slog.InfoContext(ctx, "probes left to the next sweep: a deployment of the name is under way", "name", c.Name)
	}
	nSpec := len(targets)
	domain := strings.TrimPrefix(info.DomainName, "*.")
	email := slices.Contains(info.ValidationMethods, "EMAIL") && domain != "" && (info.Serial == "" || info.Serial == c.Serial) &&
		!info.NotAfter.IsZero() && info.NotAfter.Sub(now) <= EmailProbeWindow && now.Before(info.NotAfter)
	if email {
		// SNI is the name itself: ACM requests https://<domain>.
		targets = append(targets, domain+":443", "www."+domain+":443")
	}
	if len(targets) == 0 {
		return nil
	}
	resp, err := s.probes.Probe(ctx, probe.Request{Targets: targets, ExpectedFingerprint: c.Fingerprint})
	if err != nil {
		slog.ErrorContext(ctx, "probes not checked", "name", c.Name, "error", err)
		return []string{"outside probes could not run: " + err.Error()}
	}
	if len(resp.Results) != len(targets) {
		return []string{"outside probes could not run: an answer without a result per target"}
	}
	var risks []string
	for _, r := range resp.Results[:nSpec] {
		switch {
		case r.Mismatch():
			risks = append(risks, notify.RiskProbeMismatch(r, c.Serial))
		case r.Failed():
			risks = append(risks, notify.RiskProbeFailed(r))
		}
	}
	if email {
		apexWWW := resp.Results[nSpec:]
		if !slices.ContainsFunc(apexWWW, func(r probe.Result) bool { return r.Status == probe.StatusMatch }) {
			risks = append(risks, notify.RiskEmailHTTPS(domain, apexWWW))
		}
	}
	return risks
}
