package tracker

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/probe"
)

// Outside probes (issue 14): after a deployment succeeded, the name's
// probes are handshaken from the probe function (in-process locally) and
// each must serve the deployed fingerprint. A mismatch or an endpoint that
// could not be probed is one alert per check.

type (
	// prober runs one check: the probe function (probe.Invoker) or the
	// same code in-process (probe.Handler).
	prober interface {
		Probe(ctx context.Context, req probe.Request) (probe.Response, error)
	}
	certReader interface {
		GetCert(ctx context.Context, name string) (*inventory.Cert, error)
	}
)

var (
	_ prober     = (*probe.Invoker)(nil)
	_ prober     = (*probe.Handler)(nil)
	_ certReader = (*inventory.Store)(nil)
)

// Probes checks names' outside probes and alerts on what they saw.
type Probes struct {
	inv    certReader
	prober prober
	alerts publisher
}

// NewProbes wires the probe checks.
func NewProbes(inv certReader, p prober, alerts publisher) *Probes {
	return &Probes{inv: inv, prober: p, alerts: alerts}
}

// ProbeReport is what one check saw.
type ProbeReport struct {
	Name        string         `json:"name"`
	Serial      string         `json:"serial,omitempty"`
	Fingerprint string         `json:"fingerprintSha256,omitempty"`
	Results     []probe.Result `json:"results,omitempty"`
	Skipped     string         `json:"skipped,omitempty"` // why nothing was probed
	AlertID     string         `json:"alertMessageId,omitempty"`
}

// Mismatches counts the targets that served another certificate.
func (r ProbeReport) Mismatches() int {
	n := 0
	for _, x := range r.Results {
		if x.Mismatch() {
			n++
		}
	}
	return n
}

// Check probes the name's probes against the certificate its inventory
// says is deployed (META's serial and fingerprint) and alerts once when a
// target served another certificate or could not be probed. The rollout
// engine calls it when a waved rollout is done; each call that finds a
// problem alerts, so the caller calls it once per finished rollout. A name
// without probes (or gone) is skipped without error.
func (p *Probes) Check(ctx context.Context, name string) (ProbeReport, error) {
	c, err := p.inv.GetCert(ctx, name)
	if err != nil {
		return ProbeReport{Name: name}, fmt.Errorf("read %s for its probes: %w", name, err)
	}
	if c == nil {
		return ProbeReport{Name: name, Skipped: "name not in the inventory"}, nil
	}
	return p.check(ctx, c, c.Serial, c.Fingerprint, "")
}

// check probes c's probes for fingerprint (serial is its serial) and
// alerts on a mismatch or an unreachable target.
func (p *Probes) check(ctx context.Context, c *inventory.Cert, serial, fingerprint, deploymentID string) (ProbeReport, error) {
	rep := ProbeReport{Name: c.Name, Serial: serial, Fingerprint: fingerprint}
	switch {
	case len(c.Probes) == 0:
		rep.Skipped = "no probes"
		return rep, nil
	case fingerprint == "":
		rep.Skipped = "no deployed fingerprint"
		return rep, nil
	}
	resp, err := p.prober.Probe(ctx, probe.Request{Targets: c.Probes, ExpectedFingerprint: fingerprint})
	if err != nil {
		return rep, fmt.Errorf("probe %s: %w", c.Name, err)
	}
	rep.Results = resp.Results
	a, bad := notify.ProbeAlert(notify.ProbeCheck{Name: c.Name, CertificateARN: c.CertificateARN, Domain: c.DomainName,
		DeploymentID: deploymentID, DeployedSerial: serial, DeployedFingerprint: fingerprint, Results: resp.Results})
	slog.InfoContext(ctx, "probes checked", "name", c.Name, "targets", len(resp.Results), "mismatches", rep.Mismatches(), "deploymentId", deploymentID)
	if !bad {
		return rep, nil
	}
	id, err := p.alerts.Publish(ctx, a)
	if err != nil {
		return rep, err
	}
	rep.AlertID = id
	return rep, nil
}

// WithProbes makes the tracker check the probes of every name whose
// deployment succeeds (nil: no probes).
func (t *Tracker) WithProbes(p *Probes) *Tracker {
	t.probes = p
	return t
}

// probeAfter checks the name's probes once its deployment succeeded, for
// that deployment's fingerprint. It runs once per deployment (Conclude
// calls it only from the conditional write that set the outcome); the
// outcome is already written, so a failure is logged, never returned (a
// retried event would not conclude again). A deployment already
// superseded by a newer one in the inventory is not probed (the newer one
// will be), nor one of a name with a waved rollout (Check, from the rollout
// engine, probes when the whole rollout is done).
func (t *Tracker) probeAfter(ctx context.Context, name string, dep *inventory.Deployment, outcome inventory.Outcome) {
	if t.probes == nil || outcome != inventory.OutcomeSucceeded {
		return
	}
	c, err := t.probes.inv.GetCert(ctx, name)
	switch {
	case err != nil:
		slog.ErrorContext(ctx, "probes not checked: the name could not be read", "name", name, "deploymentId", dep.ID, "error", err)
		return
	case c == nil || len(c.Probes) == 0:
		return
	case c.Rollout.Waved():
		// One wave's success says nothing of the nodes of the next waves:
		// the rollout engine calls Check once the whole rollout is done.
		slog.InfoContext(ctx, "probes left to the end of the waved rollout", "name", name, "deploymentId", dep.ID)
		return
	case c.Fingerprint != "" && c.Fingerprint != dep.Fingerprint:
		slog.InfoContext(ctx, "probes not checked: a newer deployment superseded this one", "name", name, "deploymentId", dep.ID)
		return
	}
	rep, err := t.probes.check(ctx, c, dep.Serial, dep.Fingerprint, dep.ID)
	if err != nil {
		slog.ErrorContext(ctx, "probes not checked", "name", name, "deploymentId", dep.ID, "error", err)
		return
	}
	if rep.AlertID != "" {
		slog.WarnContext(ctx, "probe alert sent", "name", name, "deploymentId", dep.ID, "mismatches", rep.Mismatches(), "alertMessageId", rep.AlertID)
	}
}

// CheckProbes is Check for the rollout engine, which probes once a waved
// rollout is done: the report goes to the log and the alert Check sends.
func (p *Probes) CheckProbes(ctx context.Context, name string) error {
	_, err := p.Check(ctx, name)
	return err
}
