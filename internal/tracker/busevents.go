package tracker

import (
	"context"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/inventory"
)

// busEmitter is where the tracker sends certferry's own events (Deployment
// Finished, Node Failed); sending never fails the tracker's work.
type busEmitter interface {
	Emit(ctx context.Context, details ...busevents.Detail) busevents.Result
}

var _ busEmitter = (*busevents.Emitter)(nil)

// certGetter reads a name's META item (the certificate ARN of a finished
// deployment's event); the inventory has it.
type certGetter interface {
	GetCert(ctx context.Context, name string) (*inventory.Cert, error)
}

var _ certGetter = (*inventory.Store)(nil)

// WithEvents makes the tracker send certferry's events through e.
func (t *Tracker) WithEvents(e busEmitter) *Tracker {
	t.bus = e
	return t
}

// emitFinished sends Deployment Finished for a deployment Conclude just
// finished (exactly once: only the conditional write's winner gets here).
func (t *Tracker) emitFinished(ctx context.Context, name string, dep *inventory.Deployment, outcome inventory.Outcome, installed, failed, superseded int, timedOut bool) {
	if t.bus == nil {
		return
	}
	pending := 0
	if expected, known := expectedNodes(dep); known {
		// Superseded nodes are neither installed, failed nor pending.
		pending = max(expected-installed-failed-superseded, 0)
	}
	d := busevents.DeploymentFinished{
		Name: name, DeploymentID: dep.ID, Outcome: string(outcome), Serial: dep.Serial, Trigger: string(dep.Trigger), TimedOut: timedOut,
		Counts: busevents.Counts{Installed: installed, Failed: failed, Pending: pending},
	}
	if dep.Wave > 0 {
		d.Wave = &busevents.Wave{Index: dep.Wave, Of: dep.Waves, RolloutID: dep.RolloutID}
	}
	if g, ok := t.inv.(certGetter); ok {
		// Only while META still holds this deployment's certificate: after
		// a rebind and a newer deployment the bound ARN is another
		// certificate's, not this serial's.
		if c, err := g.GetCert(ctx, name); err == nil && c != nil && c.Fingerprint == dep.Fingerprint {
			d.CertificateARN = c.CertificateARN
		}
	}
	t.bus.Emit(ctx, d)
}

// emitNodeFailed sends Node Failed for a report the tracker just recorded,
// when the node failed or rolled back.
func (t *Tracker) emitNodeFailed(ctx context.Context, ref inventory.CommandRef, dep *inventory.Deployment, r inventory.Report) {
	if t.bus == nil || (r.State != inventory.NodeFailed && r.State != inventory.NodeRolledBack) {
		return
	}
	t.bus.Emit(ctx, busevents.NodeFailed{
		Name: ref.Name, InstanceID: r.InstanceID, State: string(r.State), Error: r.Error, DeploymentID: ref.DeploymentID, Serial: dep.Serial,
	})
}
