package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/schedule"
	"github.com/certferry/certferry/internal/spec"
)

// Dependencies, each the narrowest surface the engine calls.
type (
	deployer interface {
		CheckOnboard(ctx context.Context, sp spec.Spec) (pipeline.Checked, error)
		Onboard(ctx context.Context, sp spec.Spec) (pipeline.Result, error)
		Sync(ctx context.Context, name string, trigger inventory.Trigger) (pipeline.Result, error)
		Redeploy(ctx context.Context, name string, trigger inventory.Trigger) (pipeline.Result, error)
		RedeployNodes(ctx context.Context, name string, instanceIDs []string, trigger inventory.Trigger) (pipeline.Result, error)
		Delete(ctx context.Context, name string) (bool, error)
		SendWave(ctx context.Context, w pipeline.Wave) ([]pipeline.Result, error)
	}
	store interface {
		GetCert(ctx context.Context, name string) (*inventory.Cert, error)
		GetRollout(ctx context.Context, name string) (*inventory.Rollout, error)
		PutRollout(ctx context.Context, r inventory.Rollout, prevVersion int64) (*inventory.Rollout, error)
		Describe(ctx context.Context, name string) (*inventory.Detail, error)
	}
	describer interface {
		Describe(ctx context.Context, arn string) (certs.Info, error)
	}
	resolver interface {
		Resolve(ctx context.Context, targets []spec.Target) ([]string, error)
	}
	// scheduler creates and deletes one-time schedules (internal/schedule's
	// Scheduler; nil: none, the sweep steps overdue rollouts).
	scheduler interface {
		At(ctx context.Context, st schedule.Step) error
		Cancel(ctx context.Context, st schedule.Step) error
	}
	publisher interface {
		Publish(ctx context.Context, a notify.Alert) (string, error)
	}
	// waitingEmitter sends certferry's own "Renewal Waiting" event
	// ((*busevents.Emitter).RenewalWaiting; it never fails the caller).
	waitingEmitter interface {
		RenewalWaiting(ctx context.Context, d busevents.RenewalWaiting) busevents.Result
	}
)

var (
	_ deployer       = (*pipeline.Pipeline)(nil)
	_ store          = (*inventory.Store)(nil)
	_ describer      = (*certs.Client)(nil)
	_ publisher      = (*notify.Publisher)(nil)
	_ waitingEmitter = (*busevents.Emitter)(nil)
)

// ErrNotAwaitingApproval refuses an approval when no rollout of the name
// waits for one.
var ErrNotAwaitingApproval = errors.New("no deployment awaits approval")

// WindowFunc tells whether t lies in one of ws and, when not, when the
// next opens (internal/window.Next).
type WindowFunc func(ws []spec.MaintenanceWindow, t time.Time) (open bool, next time.Time, err error)

// MarginFunc is the expiry override's margin (internal/window.Margin).
type MarginFunc func(lifetime time.Duration, overrideDays *int) time.Duration

// Config is the engine's plain configuration.
type Config struct {
	Now           func() time.Time // nil: time.Now
	Windows       WindowFunc       // nil: internal/window.Next
	Margin        MarginFunc       // nil: internal/window.Margin
	NotifySuccess bool             // alert when a waved rollout is done
	// RepairAfter is how long after a wave was sent its nodes without a
	// record of the send are sent again (a run that crashed between the
	// ROLLOUT write and SendCommand); default 3 minutes, past the
	// pipeline's claim lease.
	RepairAfter time.Duration
	// APIHint is how an alert says to approve (default the CLI verb).
	APIHint string
}

// Engine runs rollouts.
type Engine struct {
	deploy deployer
	inv    store
	acm    describer
	nodes  resolver
	sched  scheduler
	alerts publisher
	bus    waitingEmitter
	probes prober
	cfg    Config
}

// prober checks a name's outside probes against what it deployed (the
// tracker's Probes.Check); a waved rollout's deployments are not probed
// one by one, so the rollout probes once it is done.
type prober interface {
	CheckProbes(ctx context.Context, name string) error
}

// WithProbes makes the engine check the name's outside probes when a
// waved rollout is done (nil: none).
func (e *Engine) WithProbes(p prober) *Engine {
	e.probes = p
	return e
}

// WithEvents makes the engine send a "Renewal Waiting" event when a
// rollout starts waiting (window, approval) or halts (nil: none).
func (e *Engine) WithEvents(w waitingEmitter) *Engine {
	e.bus = w
	return e
}

// waiting sends the Renewal Waiting event of a rollout that just entered
// a waiting phase (the winner of the write sends it, once).
func (e *Engine) waiting(ctx context.Context, r *inventory.Rollout) {
	reason, ok := busevents.WaitingReason(string(r.Phase))
	if !ok || e.bus == nil {
		return
	}
	d := busevents.RenewalWaiting{Name: r.Name, Reason: reason, Since: r.UpdatedAt, Serial: r.Serial, RolloutID: r.ID, Detail: r.Reason}
	switch {
	case r.Phase == inventory.PhaseWaitingWindow && !r.NotBefore.IsZero():
		at := r.NotBefore
		d.GoesAt = &at
	case r.Phase == inventory.PhaseAwaitingApproval && !r.GoBy.IsZero():
		at := r.GoBy
		d.GoesAt = &at
	}
	e.bus.RenewalWaiting(ctx, d)
}

// New wires an Engine; sched may be nil.
func New(d deployer, inv store, acm describer, nodes resolver, sched scheduler, alerts publisher, cfg Config) *Engine {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Windows == nil {
		cfg.Windows = defaultWindows
	}
	if cfg.Margin == nil {
		cfg.Margin = defaultMargin
	}
	if cfg.RepairAfter == 0 {
		cfg.RepairAfter = 3 * time.Minute
	}
	return &Engine{deploy: d, inv: inv, acm: acm, nodes: nodes, sched: sched, alerts: alerts, cfg: cfg}
}

// Caller is who acted (API: requestContext.identity.userArn) and when.
type Caller struct {
	ARN string
	At  time.Time
}

// Result is what an engine call did: the last command it sent (if any)
// and the rollout's state.
type Result struct {
	pipeline.Result
	RolloutID string                 `json:"rolloutId,omitempty"`
	Phase     inventory.RolloutPhase `json:"phase,omitempty"`
	Wave      int                    `json:"wave,omitempty"`
	Waves     int                    `json:"waves,omitempty"`
	NotBefore time.Time              `json:"notBefore,omitzero"`
	GoBy      time.Time              `json:"goBy,omitzero"`
	Reason    string                 `json:"reason,omitempty"`
	// Sent counts the commands this call sent.
	Sent int `json:"-"`
}

func (res *Result) of(r *inventory.Rollout) {
	if r == nil {
		return
	}
	res.RolloutID, res.Phase, res.Wave, res.Waves = r.ID, r.Phase, r.Wave, len(r.Waves)
	res.NotBefore, res.GoBy, res.Reason = r.NotBefore, r.GoBy, r.Reason
	if res.Serial == "" {
		res.Name, res.CertificateARN, res.Serial = r.Name, r.CertificateARN, r.Serial
	}
}

func plain(p pipeline.Result) Result { return Result{Result: p} }

// sentResult is what sending (part of) a wave of r did: the last command
// sent, how many were sent, and the rollout's state.
func sentResult(sent []pipeline.Result, r *inventory.Rollout) Result {
	res := Result{Sent: len(sent)}
	if len(sent) > 0 {
		res.Result = sent[len(sent)-1]
	}
	res.of(r)
	return res
}

// waved tells whether a spec's deployments go in waves.
func waved(sp spec.Spec) bool { return sp.Rollout.Waved() }

// Renew deploys a renewal of name (ACM and Health events, the sweep's
// lost renewals, rotate): gates first (window, approval, expiry override),
// then waves. A spec without waves and gates takes today's path
// (pipeline.Sync: one command to the targets). A gated renewal exports
// nothing until it goes. A new serial while a rollout is active
// supersedes it.
func (e *Engine) Renew(ctx context.Context, name string, trigger inventory.Trigger) (Result, error) {
	c, r, err := e.knownWithRollout(ctx, name)
	if err != nil {
		return Result{}, err
	}
	active := r != nil && !r.Phase.Final()
	if !waved(c.Spec) && !c.Spec.Gated() && !active {
		res, err := e.deploy.Sync(ctx, name, trigger)
		return plain(res), err
	}
	info, err := e.deployable(ctx, c.CertificateARN)
	if err != nil {
		return Result{}, err
	}
	if r != nil && r.Serial == info.Serial && r.CertificateARN == c.CertificateARN {
		if r.Phase == inventory.PhaseDone && c.Serial == info.Serial {
			res := Result{Result: pipeline.Result{Name: name, CertificateARN: c.CertificateARN, Serial: c.Serial,
				DeploymentID: c.LastDeploymentID, CommandID: c.LastCommandID, NotAfter: c.NotAfter, Fingerprint: c.Fingerprint, Unchanged: true}}
			res.of(r)
			return res, nil
		}
		if r.Phase != inventory.PhaseSuperseded {
			// This serial's rollout exists: look at it again (a
			// redelivered event, the sweep), nothing more.
			return e.apply(ctx, c, r, trigger)
		}
	}
	if c.Status == inventory.StatusActive && c.Serial == info.Serial && !active {
		res := plain(pipeline.Result{Name: name, CertificateARN: c.CertificateARN, Serial: c.Serial, DeploymentID: c.LastDeploymentID,
			CommandID: c.LastCommandID, NotAfter: c.NotAfter, Fingerprint: c.Fingerprint, Unchanged: true})
		return res, nil
	}
	prev, err := e.supersede(ctx, r, info.Serial)
	if err != nil {
		return Result{}, err
	}
	nr := inventory.Rollout{
		ID: newID(), Name: name, CertificateARN: c.CertificateARN, Serial: info.Serial, Trigger: trigger,
		OldNotAfter: c.NotAfter, GoBy: e.goBy(c, info), CreatedAt: e.now(),
	}
	w, err := e.inv.PutRollout(ctx, nr, prev)
	if errors.Is(err, inventory.ErrConflict) {
		return Result{}, fmt.Errorf("%w: %s: another run started its rollout meanwhile", pipeline.ErrBusy, name)
	}
	if err != nil {
		return Result{}, err
	}
	slog.InfoContext(ctx, "rollout started", "name", name, "rolloutId", w.ID, "serial", w.Serial, "trigger", trigger, "goBy", w.GoBy)
	return e.apply(ctx, c, w, trigger)
}

// Deploy is an explicit redeploy (POST …/deployments): waved, never
// gated (a person is acting). A halted rollout resumes from its halted
// wave (re-sending the wave's nodes that did not install); a rollout
// waiting for a gate goes now.
func (e *Engine) Deploy(ctx context.Context, name string, trigger inventory.Trigger) (Result, error) {
	c, r, err := e.knownWithRollout(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if !waved(c.Spec) {
		res, err := e.deploy.Redeploy(ctx, name, trigger)
		if err == nil && r != nil && r.Phase.Waiting() {
			e.release(ctx, r, "released by an explicit redeploy")
		}
		return plain(res), err
	}
	info, err := e.deployable(ctx, c.CertificateARN)
	if err != nil {
		return Result{}, err
	}
	if r != nil && r.Serial == info.Serial && r.CertificateARN == c.CertificateARN {
		switch r.Phase {
		case inventory.PhaseHalted:
			return e.resume(ctx, c, r)
		case inventory.PhaseRolling, inventory.PhasePaused:
			return Result{}, fmt.Errorf("%w: %s: rollout %s is at wave %d of %d (%s)", pipeline.ErrBusy, name, r.ID, r.Wave, len(r.Waves), r.Phase)
		}
	}
	prev, err := e.supersede(ctx, r, info.Serial)
	if err != nil {
		return Result{}, err
	}
	// goBy: not a gate here (a person is acting), but the sweep reports
	// this rollout as a risk from then on if it halts.
	nr := inventory.Rollout{ID: newID(), Name: name, CertificateARN: c.CertificateARN, Serial: info.Serial, Trigger: trigger,
		OldNotAfter: c.NotAfter, GoBy: e.goBy(c, info), CreatedAt: e.now()}
	return e.start(ctx, c.Spec, nr, prev, nil, trigger)
}

// Redeploy is Deploy with the pipeline's signature (the API's deployer).
func (e *Engine) Redeploy(ctx context.Context, name string, trigger inventory.Trigger) (pipeline.Result, error) {
	res, err := e.Deploy(ctx, name, trigger)
	return res.Result, err
}

// RedeployNodes sends to named nodes at once (a person picked them).
func (e *Engine) RedeployNodes(ctx context.Context, name string, ids []string, trigger inventory.Trigger) (pipeline.Result, error) {
	return e.deploy.RedeployNodes(ctx, name, ids, trigger)
}

// Delete stops distributing name; its ROLLOUT item goes with the rest,
// so a schedule that fires later finds nothing to step.
func (e *Engine) Delete(ctx context.Context, name string) (bool, error) {
	return e.deploy.Delete(ctx, name)
}

// Onboard binds and deploys a spec: in waves when it has them (never
// gated), else exactly as the pipeline does.
func (e *Engine) Onboard(ctx context.Context, sp spec.Spec) (pipeline.Result, error) {
	if !waved(sp) {
		res, err := e.deploy.Onboard(ctx, sp)
		if err == nil && !res.Unchanged {
			// A rollout of the name's earlier spec with waves ends here:
			// the new spec deploys to every target at once.
			if r, gerr := e.inv.GetRollout(ctx, sp.Name); gerr == nil && r != nil && !r.Phase.Final() {
				if _, serr := e.supersede(ctx, r, res.Serial); serr != nil {
					slog.WarnContext(ctx, "earlier rollout not ended; the next look ends it", "name", sp.Name, "error", serr)
				}
			}
		}
		return res, err
	}
	chk, err := e.deploy.CheckOnboard(ctx, sp)
	if err != nil || chk.Unchanged != nil {
		if chk.Unchanged != nil {
			return *chk.Unchanged, nil
		}
		return pipeline.Result{}, err
	}
	r, err := e.inv.GetRollout(ctx, sp.Name)
	if err != nil {
		return pipeline.Result{}, err
	}
	prev, err := e.supersede(ctx, r, chk.Serial)
	if err != nil {
		return pipeline.Result{}, err
	}
	var oldNotAfter, goBy time.Time
	if c, err := e.inv.GetCert(ctx, sp.Name); err == nil && c != nil {
		oldNotAfter = c.NotAfter
		// goBy: the sweep's risk of this rollout if it halts (no gate).
		old := *c
		old.SafetyMarginDays = chk.Spec.SafetyMarginDays
		goBy = e.goBy(&old, chk.Info())
	}
	nr := inventory.Rollout{ID: newID(), Name: sp.Name, CertificateARN: chk.Spec.CertificateARN, Serial: chk.Serial,
		Trigger: inventory.TriggerAPI, OldNotAfter: oldNotAfter, GoBy: goBy, CreatedAt: e.now()}
	res, err := e.start(ctx, chk.Spec, nr, prev, &chk, inventory.TriggerAPI)
	return res.Result, err
}

// start resolves the nodes of an ungated rollout and sends its first wave
// (or, when no node is online, one command to the targets).
func (e *Engine) start(ctx context.Context, sp spec.Spec, nr inventory.Rollout, prev int64, chk *pipeline.Checked, trigger inventory.Trigger) (Result, error) {
	ids, err := e.nodes.Resolve(ctx, sp.Targets)
	if err != nil {
		return Result{}, err
	}
	if len(ids) == 0 {
		slog.InfoContext(ctx, "no online node matches the targets: one command to the targets; the sweep sends to nodes as they come",
			"name", sp.Name)
		var res pipeline.Result
		if chk != nil {
			res, err = e.deploy.Onboard(ctx, sp)
		} else {
			res, err = e.deploy.Redeploy(ctx, sp.Name, trigger)
		}
		return plain(res), err
	}
	nr.Nodes = ids
	if nr.Waves, err = WaveSizes(sp.Rollout.Waves, len(ids)); err != nil {
		return Result{}, err
	}
	nr.Phase, nr.Wave, nr.WaveSentAt, nr.Reason = inventory.PhaseRolling, 1, e.now(), "started by "+string(trigger)
	w, err := e.inv.PutRollout(ctx, nr, prev)
	if errors.Is(err, inventory.ErrConflict) {
		return Result{}, fmt.Errorf("%w: %s: another run started a rollout meanwhile", pipeline.ErrBusy, sp.Name)
	}
	if err != nil {
		return Result{}, err
	}
	slog.InfoContext(ctx, "rollout started", "name", sp.Name, "rolloutId", w.ID, "serial", w.Serial, "nodes", len(ids), "waves", w.Waves, "trigger", trigger)
	sent, after, dropped, err := e.sendWave(ctx, w, w.WaveNodes(1), chk, trigger == inventory.TriggerAPI && chk == nil)
	return e.afterSend(ctx, nil, sent, after, dropped, err, trigger)
}

// resume sends a halted rollout's wave again to its nodes that did not
// install (an explicit redeploy), and the rollout goes on from there.
func (e *Engine) resume(ctx context.Context, c *inventory.Cert, r *inventory.Rollout) (Result, error) {
	d, err := e.inv.Describe(ctx, c.Name)
	if err != nil {
		return Result{}, err
	}
	byID := d.NodesByID()
	installed := func(id string) bool {
		n, ok := byID[id]
		return ok && n.State == inventory.NodeInstalled && n.Serial == r.Serial && !n.Unverified
	}
	next := *r
	next.Phase, next.WaveSentAt, next.Reason = inventory.PhaseRolling, e.now(), fmt.Sprintf("resumed at wave %d by an explicit redeploy", r.Wave)
	// A node of the wave that did not install and is no longer an online
	// managed node of the targets (terminated, deregistered, untagged)
	// would fail again for ever: the rollout goes on without it (the sweep
	// sends to it if it comes back, as to nodes tagged mid-rollout).
	online, err := e.nodes.Resolve(ctx, c.Targets)
	if err != nil {
		return Result{}, err
	}
	gone := map[string]bool{}
	for _, id := range r.WaveNodes(r.Wave) {
		if !installed(id) && !slices.Contains(online, id) {
			gone[id] = true
		}
	}
	if len(gone) > 0 {
		if !drop(&next, gone) {
			return Result{}, fmt.Errorf("%w: %s: no node of rollout %s is online any more; onboard the name again to start a new rollout", pipeline.ErrBusy, c.Name, r.ID)
		}
		next.Reason += fmt.Sprintf(" (without %d node(s) no longer online: %s)", len(gone), strings.Join(clip(slices.Sorted(maps.Keys(gone)), 10), ", "))
	}
	var again []string
	for _, id := range next.WaveNodes(next.Wave) {
		if !installed(id) {
			again = append(again, id)
		}
	}
	w, err := e.inv.PutRollout(ctx, next, r.Version)
	if errors.Is(err, inventory.ErrConflict) {
		return Result{}, fmt.Errorf("%w: %s: the rollout changed meanwhile", pipeline.ErrBusy, c.Name)
	}
	if err != nil {
		return Result{}, err
	}
	slog.InfoContext(ctx, "halted rollout resumed", "name", c.Name, "rolloutId", w.ID, "wave", w.Wave, "nodes", len(again))
	if len(again) == 0 {
		// Every node of the wave has it now: go on from there.
		return e.apply(ctx, c, w, inventory.TriggerAPI)
	}
	sent, after, dropped, err := e.sendWave(ctx, w, again, nil, true)
	return e.afterSend(ctx, c, sent, after, dropped, err, inventory.TriggerAPI)
}

// dropNodes removes gone nodes from r's nodes and waves: a wave left
// empty goes, and the current wave becomes the last one still holding
// nodes of it (wave 1 when none: the rollout starts over with a new
// canary). False when no node remains.
func dropNodes(r *inventory.Rollout, gone map[string]bool) bool {
	var nodes []string
	var waves []int
	cur, i := 0, 0
	for k, cum := range r.Waves {
		for ; i < cum && i < len(r.Nodes); i++ {
			if !gone[r.Nodes[i]] {
				nodes = append(nodes, r.Nodes[i])
			}
		}
		if len(nodes) > 0 && (len(waves) == 0 || len(nodes) > waves[len(waves)-1]) {
			waves = append(waves, len(nodes))
		}
		if k+1 == r.Wave {
			cur = len(waves)
		}
	}
	if len(nodes) == 0 {
		return false
	}
	r.Nodes, r.Waves, r.Wave = nodes, waves, max(cur, 1)
	return true
}

// Step handles a fired schedule: the rollout it names is looked at again
// (a step of another rollout, or of a name gone, changes nothing).
func (e *Engine) Step(ctx context.Context, st schedule.Step) (Result, error) {
	r, err := e.inv.GetRollout(ctx, st.Name)
	if err != nil {
		return Result{}, err
	}
	if r == nil || r.ID != st.RolloutID {
		slog.InfoContext(ctx, "step of a rollout no longer current; nothing to do", "name", st.Name, "rolloutId", st.RolloutID, "step", st.Kind)
		return Result{Reason: "rollout no longer current"}, nil
	}
	c, err := e.inv.GetCert(ctx, st.Name)
	if err != nil {
		return Result{}, err
	}
	if c == nil || c.CertificateARN == "" {
		return Result{Reason: "name no longer distributed"}, nil
	}
	slog.InfoContext(ctx, "rollout step", "name", st.Name, "rolloutId", st.RolloutID, "step", st.Kind, "at", st.At)
	return e.apply(ctx, c, r, r.Trigger)
}

// Advance looks at name's rollout again: after the tracker concluded a
// deployment of it, and for the sweep (overdue steps, lost sends). No
// rollout, or a final one, is nothing to do.
func (e *Engine) Advance(ctx context.Context, name string) error {
	_, err := e.Check(ctx, name)
	return err
}

// Check is Advance with its result.
func (e *Engine) Check(ctx context.Context, name string) (Result, error) {
	r, err := e.inv.GetRollout(ctx, name)
	if err != nil || r == nil || r.Phase.Final() {
		return Result{}, err
	}
	c, err := e.inv.GetCert(ctx, name)
	if err != nil || c == nil || c.CertificateARN == "" {
		return Result{}, err
	}
	return e.apply(ctx, c, r, r.Trigger)
}

// Approve releases a rollout awaiting approval; it then waits for the
// maintenance window, if any, unless the expiry override is reached.
func (e *Engine) Approve(ctx context.Context, name string, by Caller) (Result, error) {
	c, r, err := e.knownWithRollout(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if r == nil || r.Phase != inventory.PhaseAwaitingApproval {
		phase := "no rollout"
		if r != nil {
			phase = "rollout " + r.ID + " is " + string(r.Phase)
		}
		return Result{}, fmt.Errorf("%w: %s (%s)", ErrNotAwaitingApproval, name, phase)
	}
	at := by.At
	if at.IsZero() {
		at = e.now()
	}
	next := *r
	next.ApprovedBy, next.ApprovedAt = by.ARN, at.UTC().Truncate(time.Second)
	w, err := e.inv.PutRollout(ctx, next, r.Version)
	if errors.Is(err, inventory.ErrConflict) {
		return Result{}, fmt.Errorf("%w: %s: the rollout changed meanwhile", pipeline.ErrBusy, name)
	}
	if err != nil {
		return Result{}, err
	}
	slog.InfoContext(ctx, "rollout approved", "name", name, "rolloutId", w.ID, "by", by.ARN)
	res, err := e.apply(ctx, c, w, r.Trigger)
	if errors.Is(err, pipeline.ErrBusy) {
		// The approval is written and the rollout went rolling, but
		// another short run held the name (a sweep's send to nodes
		// outside the rollout): apply scheduled the repair step, which
		// sends the wave. Approving again would be refused (the rollout
		// no longer awaits approval), so this is not an error to the
		// person who approved: say when the wave goes.
		cur, gerr := e.inv.GetRollout(ctx, name)
		if gerr != nil || cur == nil || cur.ID != w.ID || cur.Phase != inventory.PhaseRolling {
			return res, err
		}
		slog.InfoContext(ctx, "approved; the wave waits for the name", "name", name, "rolloutId", cur.ID, "error", err)
		res.of(cur)
		res.Reason = fmt.Sprintf("approved; the name was busy with another run, so wave %d goes with the repair step at about %s",
			max(cur.Wave, 1), cur.WaveSentAt.Add(e.cfg.RepairAfter).UTC().Format(time.RFC3339))
		return res, nil
	}
	return res, err
}

// Halt stops name's rollout (revocation): nothing more is sent, its
// schedules are deleted, nodes keep what they have.
func (e *Engine) Halt(ctx context.Context, name, reason string) error {
	r, err := e.inv.GetRollout(ctx, name)
	if err != nil || r == nil || r.Phase.Final() || r.Phase == inventory.PhaseHalted {
		return err
	}
	next := *r
	next.Phase, next.HaltedAt, next.Reason = inventory.PhaseHalted, e.now(), reason
	if _, err := e.inv.PutRollout(ctx, next, r.Version); err != nil {
		if errors.Is(err, inventory.ErrConflict) {
			return fmt.Errorf("%w: %s: the rollout changed meanwhile; retry", pipeline.ErrBusy, name)
		}
		return err
	}
	slog.InfoContext(ctx, "rollout halted", "name", name, "rolloutId", r.ID, "reason", reason)
	e.cancel(ctx, r)
	return nil
}

// apply decides and acts until the decision is to wait.
func (e *Engine) apply(ctx context.Context, c *inventory.Cert, r *inventory.Rollout, trigger inventory.Trigger) (Result, error) {
	for range 4 {
		in, err := e.input(ctx, c, r)
		if err != nil {
			return Result{}, err
		}
		a := Decide(in)
		if r.Phase == inventory.PhaseRolling && a.Kind != ActHalt {
			// A failure of the wave halts it first: never send its
			// unsent nodes past a failed one.
			if res, done, err := e.repair(ctx, c, r, in); done || err != nil {
				return res, err
			}
		}
		if a.Kind == ActNone {
			res := Result{}
			res.of(r)
			return res, nil
		}
		next := *r
		next.Phase, next.Reason = a.Phase, a.Reason
		switch a.Kind {
		case ActWait, ActPause:
			next.NotBefore = a.NotBefore
		case ActRemind:
			next.RemindedAt = e.now()
		case ActHalt:
			next.HaltedAt = e.now()
		case ActSend:
			next.NotBefore = time.Time{}
			if a.Wave <= 1 && len(next.Nodes) == 0 && waved(c.Spec) {
				if err := e.resolve(ctx, c, &next); err != nil {
					return Result{}, err
				}
			}
			if len(next.Waves) == 0 {
				next.Wave = 0
			} else {
				next.Wave = max(a.Wave, 1)
			}
			next.WaveSentAt = e.now()
		}
		w, err := e.inv.PutRollout(ctx, next, r.Version)
		if errors.Is(err, inventory.ErrConflict) {
			// Another delivery acted on this state first: it does what
			// this one would have (sends, schedules, alerts).
			slog.InfoContext(ctx, "rollout changed meanwhile; the other run acts", "name", c.Name, "rolloutId", r.ID, "action", a.Kind)
			res := Result{}
			if cur, gerr := e.inv.GetRollout(ctx, c.Name); gerr == nil {
				res.of(cur)
			}
			return res, nil
		}
		if err != nil {
			return Result{}, err
		}
		slog.InfoContext(ctx, "rollout "+string(a.Kind), "name", c.Name, "rolloutId", w.ID, "phase", w.Phase, "wave", w.Wave,
			"waves", len(w.Waves), "reason", a.Reason)
		switch a.Kind {
		case ActWait, ActPause:
			e.schedule(ctx, a.Steps)
			if a.Kind == ActWait && w.Phase != r.Phase {
				e.waiting(ctx, w)
			}
			if a.Kind == ActWait && w.Phase == inventory.PhaseAwaitingApproval {
				e.publish(ctx, e.approvalAlert(c, w, e.alertNodes(ctx, c.Name), false))
			}
			res := Result{}
			res.of(w)
			return res, nil
		case ActRemind:
			e.publish(ctx, e.approvalAlert(c, w, e.alertNodes(ctx, c.Name), true))
			res := Result{}
			res.of(w)
			return res, nil
		case ActHalt:
			e.publish(ctx, e.haltAlert(c, w, a.Failed, in.Nodes))
			e.waiting(ctx, w)
			res := Result{}
			res.of(w)
			return res, nil
		case ActDone:
			if e.cfg.NotifySuccess {
				e.publish(ctx, e.doneAlert(c, w, e.alertNodes(ctx, c.Name)))
			}
			if e.probes != nil && len(c.Probes) > 0 {
				// The rollout is written done; a probe that cannot run is
				// logged (the sweep probes again), never a retry of this.
				if err := e.probes.CheckProbes(ctx, c.Name); err != nil {
					slog.WarnContext(ctx, "outside probes after the rollout not run", "name", c.Name, "rolloutId", w.ID, "error", err)
				}
			}
			res := Result{}
			res.of(w)
			return res, nil
		case ActSend:
			if r.Phase.Waiting() || r.Phase == "" {
				e.cancel(ctx, r)
				if isOverride(a.Reason) {
					e.publish(ctx, e.overrideAlert(c, w, e.alertNodes(ctx, c.Name)))
				}
			}
			if w.Wave == 0 {
				res, err := e.single(ctx, c, w, trigger)
				if err != nil {
					e.repairLater(ctx, w)
				}
				return res, err
			}
			sent, after, dropped, err := e.sendWave(ctx, w, w.WaveNodes(w.Wave), nil, false)
			if errors.Is(err, pipeline.ErrSerialChanged) {
				slog.InfoContext(ctx, "ACM holds a newer serial: the rollout is superseded", "name", c.Name, "rolloutId", w.ID)
				return e.Renew(ctx, c.Name, w.Trigger)
			}
			return e.afterSend(ctx, c, sent, after, dropped, err, trigger)
		}
		r = w
	}
	res := Result{}
	res.of(r)
	return res, nil
}

// single sends the one command of a rollout without waves (gated, or no
// node online) and ends it; a failed send leaves it rolling at wave 0,
// which the next look sends again (Sync adopts or answers unchanged).
func (e *Engine) single(ctx context.Context, c *inventory.Cert, r *inventory.Rollout, trigger inventory.Trigger) (Result, error) {
	pres, err := e.deploy.Sync(ctx, c.Name, trigger)
	if err != nil {
		return Result{}, err
	}
	next := *r
	next.Phase = inventory.PhaseDone
	w, err := e.inv.PutRollout(ctx, next, r.Version)
	if err != nil && !errors.Is(err, inventory.ErrConflict) {
		return Result{}, err
	}
	if w == nil {
		w = r
	}
	res := Result{Result: pres, Sent: 1}
	if pres.Unchanged {
		res.Sent = 0
	}
	res.of(w)
	return res, nil
}

// repair re-sends, RepairAfter after the wave went, the wave's nodes no
// command of it reached (a run that stopped between the ROLLOUT write and
// SendCommand), and the single command of a rollout without waves.
func (e *Engine) repair(ctx context.Context, c *inventory.Cert, r *inventory.Rollout, in Input) (Result, bool, error) {
	if len(r.Waves) == 0 {
		if r.Wave == 0 && e.now().Sub(r.WaveSentAt) >= e.cfg.RepairAfter {
			res, err := e.single(ctx, c, r, r.Trigger)
			return res, true, err
		}
		return Result{}, false, nil
	}
	if e.now().Sub(r.WaveSentAt) < e.cfg.RepairAfter {
		return Result{}, false, nil
	}
	var unsent []string
	for _, id := range r.WaveNodes(r.Wave) {
		if n, ok := in.Nodes[id]; !ok || !in.waveSent[n.DeploymentID] {
			unsent = append(unsent, id)
		}
	}
	if len(unsent) == 0 {
		return Result{}, false, nil
	}
	// Only the run that wins this write sends (a tracker event, a step and
	// the sweep may look at once): the repair restarts the delay.
	next := *r
	next.WaveSentAt = e.now()
	w, err := e.inv.PutRollout(ctx, next, r.Version)
	if errors.Is(err, inventory.ErrConflict) {
		res := Result{}
		if cur, gerr := e.inv.GetRollout(ctx, c.Name); gerr == nil {
			res.of(cur)
		}
		return res, true, nil
	}
	if err != nil {
		return Result{}, true, err
	}
	slog.WarnContext(ctx, "wave nodes without a command of the wave: sending", "name", c.Name, "rolloutId", r.ID, "wave", r.Wave, "nodes", len(unsent))
	sent, after, dropped, err := e.sendWave(ctx, w, unsent, nil, false)
	if dropped && err == nil && len(sent) == 0 {
		// Every unsent node had left: look again (the wave may be done,
		// or skipped).
		res, err := e.apply(ctx, c, after, r.Trigger)
		return res, true, err
	}
	return sentResult(sent, after), true, err
}

// repairLater schedules one look at r past the repair delay after a send
// of its wave failed (wholly, or half-way: a later chunk of 50): the
// nodes the send reached may conclude before the delay, and then nothing
// but the daily sweep would look again, nor could a person redeploy (a
// rolling rollout answers busy). The step's repair sends the wave's
// unsent nodes; when that fails too, the daily sweep tries again (no
// loop of schedules).
func (e *Engine) repairLater(ctx context.Context, r *inventory.Rollout) {
	at := r.WaveSentAt.Add(e.cfg.RepairAfter)
	if at.Before(e.now()) {
		at = e.now()
	}
	e.schedule(ctx, []schedule.Step{{Name: r.Name, RolloutID: r.ID, Kind: StepPause, At: at.UTC().Truncate(time.Second)}})
}

// resolve fixes the nodes and wave sizes of a renewal rollout when it
// goes (tag targets resolved now; nodes tagged later are the sweep's).
func (e *Engine) resolve(ctx context.Context, c *inventory.Cert, r *inventory.Rollout) error {
	ids, err := e.nodes.Resolve(ctx, c.Targets)
	if err != nil {
		return err
	}
	r.Nodes = ids
	r.Waves, err = WaveSizes(c.Rollout.Waves, len(ids))
	return err
}

// input gathers Decide's input: nodes and sends of this rollout, gates.
func (e *Engine) input(ctx context.Context, c *inventory.Cert, r *inventory.Rollout) (Input, error) {
	in := Input{Rollout: *r, Now: e.now(), Sent: map[string]bool{}, waveSent: map[string]bool{}}
	if r.Phase == inventory.PhaseRolling && len(r.Waves) > 0 {
		d, err := e.inv.Describe(ctx, c.Name)
		if err != nil {
			return Input{}, err
		}
		in.Nodes = d.NodesByID()
		for _, dep := range d.Deployments {
			if dep.RolloutID == r.ID {
				in.Sent[dep.ID] = true
				if dep.Wave == r.Wave {
					in.waveSent[dep.ID] = true
				}
			}
		}
	}
	if c.Rollout != nil {
		in.Gates.Pause = time.Duration(c.Rollout.PauseMinutes) * time.Minute
	}
	if r.Phase == inventory.PhaseRolling || r.Phase == inventory.PhasePaused {
		return in, nil // the rollout went: no gate any more
	}
	// Every rollout that waits for a gate was started by Renew, whatever
	// its trigger (a non-urgent rebind renews with the api trigger and is
	// promised the name's windows and approval); a person's explicit
	// redeploy (Deploy, Onboard) starts rolling and never gets here.

	in.Gates.Approval = c.Approval == spec.ApprovalRequired
	if len(c.MaintenanceWindows) > 0 {
		in.Gates.Windowed = true
		open, next, err := e.cfg.Windows(c.MaintenanceWindows, in.Now)
		if err != nil {
			return Input{}, fmt.Errorf("maintenance windows of %s: %w", c.Name, err)
		}
		in.Gates.WindowOpen, in.Gates.WindowNext = open, next.UTC()
	}
	return in, nil
}

// goBy is the expiry override time: the certificate on the nodes (META's
// notAfter) less the safety margin of the certificate's lifetime.
func (e *Engine) goBy(c *inventory.Cert, info certs.Info) time.Time {
	if c.NotAfter.IsZero() {
		return time.Time{}
	}
	lifetime := info.NotAfter.Sub(info.NotBefore)
	return c.NotAfter.Add(-e.cfg.Margin(lifetime, c.SafetyMarginDays)).UTC().Truncate(time.Second)
}

// supersede ends an active rollout of another serial (or a waiting one
// a person overrides) and returns the version the next write must meet.
func (e *Engine) supersede(ctx context.Context, r *inventory.Rollout, serial string) (int64, error) {
	if r == nil {
		return 0, nil
	}
	if r.Phase.Final() {
		return r.Version, nil
	}
	next := *r
	next.Phase, next.Reason = inventory.PhaseSuperseded, fmt.Sprintf("superseded by a rollout of serial %s", serial)
	if r.Serial == serial {
		next.Reason = "superseded by a new rollout of the same serial"
	}
	w, err := e.inv.PutRollout(ctx, next, r.Version)
	if errors.Is(err, inventory.ErrConflict) {
		return 0, fmt.Errorf("%w: %s: its rollout changed meanwhile", pipeline.ErrBusy, r.Name)
	}
	if err != nil {
		return 0, err
	}
	slog.WarnContext(ctx, "rollout superseded", "name", r.Name, "rolloutId", r.ID, "phase", r.Phase, "wave", r.Wave,
		"serial", r.Serial, "newSerial", serial)
	e.cancel(ctx, r)
	if r.Phase == inventory.PhaseRolling || r.Phase == inventory.PhasePaused || r.Phase == inventory.PhaseHalted {
		e.publish(ctx, supersededAlert(r, serial))
	}
	return w.Version, nil
}

// release ends a waiting rollout a person's redeploy made moot.
func (e *Engine) release(ctx context.Context, r *inventory.Rollout, reason string) {
	next := *r
	next.Phase, next.Reason = inventory.PhaseDone, reason
	if _, err := e.inv.PutRollout(ctx, next, r.Version); err != nil {
		slog.WarnContext(ctx, "waiting rollout not released; the next look ends it", "name", r.Name, "error", err)
		return
	}
	e.cancel(ctx, r)
}

// schedule creates one-time steps; a failure is logged (the sweep steps
// overdue rollouts).
func (e *Engine) schedule(ctx context.Context, steps []schedule.Step) {
	if e.sched == nil {
		return
	}
	for _, st := range steps {
		if st.At.IsZero() {
			continue
		}
		if err := e.sched.At(ctx, st); err != nil {
			slog.ErrorContext(ctx, "rollout step not scheduled; the sweep steps it when overdue", "name", st.Name, "rolloutId", st.RolloutID,
				"step", st.Kind, "at", st.At, "error", err)
		}
	}
}

// cancel deletes the steps r may have scheduled (missing ones are fine).
func (e *Engine) cancel(ctx context.Context, r *inventory.Rollout) {
	if e.sched == nil {
		return
	}
	var steps []schedule.Step
	if !r.NotBefore.IsZero() {
		kind := StepWindow
		if r.Phase == inventory.PhasePaused {
			kind = StepPause
		}
		steps = append(steps, schedule.Step{Name: r.Name, RolloutID: r.ID, Kind: kind, At: r.NotBefore})
	}
	if !r.GoBy.IsZero() && (r.Phase.Waiting() || r.Phase == "") {
		steps = append(steps, schedule.Step{Name: r.Name, RolloutID: r.ID, Kind: StepDeadline, At: r.GoBy})
		if at := RemindAt(*r); !at.IsZero() && r.Phase == inventory.PhaseAwaitingApproval {
			steps = append(steps, schedule.Step{Name: r.Name, RolloutID: r.ID, Kind: StepRemind, At: at})
		}
	}
	for _, st := range steps {
		if err := e.sched.Cancel(ctx, st); err != nil {
			slog.WarnContext(ctx, "rollout step not deleted; when it fires it finds nothing to do", "name", st.Name, "step", st.Kind, "error", err)
		}
	}
}

func (e *Engine) publish(ctx context.Context, a notify.Alert) {
	if e.alerts == nil {
		return
	}
	// The state is written; a failed publish is logged, never retried
	// into a second transition.
	if _, err := e.alerts.Publish(ctx, a); err != nil {
		slog.ErrorContext(ctx, "rollout alert not published", "kind", a.Kind, "title", a.Title, "error", err)
	}
}

func (e *Engine) known(ctx context.Context, name string) (*inventory.Cert, error) {
	if !spec.NamePattern.MatchString(name) {
		return nil, spec.Invalid("name", "must match %s", spec.NamePattern)
	}
	c, err := e.inv.GetCert(ctx, name)
	if err != nil {
		return nil, err
	}
	if c == nil || c.CertificateARN == "" {
		return nil, fmt.Errorf("%w: %s", pipeline.ErrUnknownName, name)
	}
	return c, nil
}

// knownWithRollout is known and the name's rollout (nil when none).
func (e *Engine) knownWithRollout(ctx context.Context, name string) (*inventory.Cert, *inventory.Rollout, error) {
	c, err := e.known(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	r, err := e.inv.GetRollout(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	return c, r, nil
}

func (e *Engine) deployable(ctx context.Context, arn string) (certs.Info, error) {
	info, err := e.acm.Describe(ctx, arn)
	if err != nil {
		return certs.Info{}, err
	}
	if err := info.CheckDeployable(); err != nil {
		return certs.Info{}, err
	}
	return info, nil
}

func (e *Engine) now() time.Time { return e.cfg.Now().UTC().Truncate(time.Second) }

// newID is a rollout id: 16 random hex digits.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isOverride(reason string) bool { return strings.HasPrefix(reason, "expiry override") }
