// Package sweeper reconciles certferry with the world on a schedule
// (fanned out: one SQS message per name, fanout.go):
// renewals whose events were lost are deployed, nodes that failed (with
// attempts left), joined the targets later or missed a renewal get the
// install again, deployments SSM never finished are closed as failed, and
// renewal risks are reported. Everything it does goes through the pipeline,
// so a sweep and an event racing for one name deploy once.
package sweeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/tracker"
)

// Dependencies, each the narrowest surface the sweeper calls.
type (
	store interface {
		ListCerts(ctx context.Context) ([]inventory.Cert, error)
		GetCert(ctx context.Context, name string) (*inventory.Cert, error)
		Describe(ctx context.Context, name string) (*inventory.Detail, error)
		GetNode(ctx context.Context, name, instanceID string) (*inventory.Node, error)
		RecordReport(ctx context.Context, ref inventory.CommandRef, prev *inventory.Node, r inventory.Report) error
		GetDeployment(ctx context.Context, name, deploymentID string) (*inventory.Deployment, error)
	}
	describer interface {
		Describe(ctx context.Context, arn string) (certs.Info, error)
	}
	deployer interface {
		// Resend sends ACM's serial (deployed already) if META is still at
		// the version the sweep read: two sweeps of one read send once.
		Resend(ctx context.Context, name string, version int64, instanceIDs []string, failures map[string]int, trigger inventory.Trigger) (pipeline.Result, error)
		// ResendDeployed sends META's serial and secret version (never an
		// export) while a renewal waits for its window or approval, if
		// META is still at the version the sweep read.
		ResendDeployed(ctx context.Context, name string, version int64, waiting pipeline.WaitingRollout, instanceIDs []string, failures map[string]int, trigger inventory.Trigger) (pipeline.Result, error)
	}
	// renewer deploys a renewal no event delivered (gates, then waves:
	// (*rollout.Engine).Renew) and looks at a name's rollout again (Check:
	// overdue steps whose schedule was lost, sends a crashed run left out).
	renewer interface {
		Renew(ctx context.Context, name string, trigger inventory.Trigger) (rollout.Result, error)
		Check(ctx context.Context, name string) (rollout.Result, error)
	}
	resolver interface {
		Resolve(ctx context.Context, targets []spec.Target) ([]string, error)
	}
	concluder interface {
		Conclude(ctx context.Context, name string, dep *inventory.Deployment, timedOut bool, out tracker.Outcome) (tracker.Outcome, error)
	}
	publisher interface {
		Publish(ctx context.Context, a notify.Alert) (string, error)
	}
)

var (
	_ store     = (*inventory.Store)(nil)
	_ describer = (*certs.Client)(nil)
	_ deployer  = (*pipeline.Pipeline)(nil)
	_ renewer   = (*rollout.Engine)(nil)
	_ concluder = (*tracker.Tracker)(nil)
	_ publisher = (*notify.Publisher)(nil)
)

// Config is the sweep's plain configuration.
type Config struct {
	RenewBeforeDays     int           // alert when fewer days are left (default 30) …
	RenewBeforeFraction float64       // … or less than this part of the lifetime (default 1/3), whichever is smaller
	MaxAttempts         int           // consecutive failed installs after which a node is left alone (default 3)
	RetryBackoff        time.Duration // wait before retrying a failed node, doubled per failure (default 30m)
	DeploymentTimeout   time.Duration // a deployment without a final status after this is failed (default 2h)
	// Now is the sweep's clock; nil is time.Now. Integration tests move it
	// on instead of sleeping.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.RenewBeforeDays == 0 {
		c.RenewBeforeDays = 30
	}
	if c.RenewBeforeFraction == 0 {
		c.RenewBeforeFraction = 1.0 / 3
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 30 * time.Minute
	}
	if c.DeploymentTimeout == 0 {
		// SSM's delivery timeout (600 s) + the document's execution timeout
		// (3600 s) + margin.
		c.DeploymentTimeout = 2 * time.Hour
	}
}

// Sweeper runs sweeps.
type Sweeper struct {
	inv     store
	acm     describer
	deploy  deployer
	renew   renewer
	nodes   resolver
	track   concluder
	alerts  publisher
	metrics *metrics.Emitter
	cfg     Config
	now     func() time.Time
	bus     busEmitter // certferry's own events (busevents.go); nil sends none
	probes  prober     // outside probes (probes.go); nil: none
}

// New wires a Sweeper.
func New(inv store, acm describer, deploy deployer, renew renewer, nodes resolver, track concluder, alerts publisher, m *metrics.Emitter, cfg Config) *Sweeper {
	cfg.defaults()
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Sweeper{inv: inv, acm: acm, deploy: deploy, renew: renew, nodes: nodes, track: track, alerts: alerts, metrics: m, cfg: cfg, now: now}
}

// NameReport is what one sweep found and did for one name.
type NameReport struct {
	Name         string   `json:"name"`
	Serial       string   `json:"serial,omitempty"`
	DaysToExpiry *int     `json:"daysToExpiry,omitempty"`
	Redeployed   bool     `json:"redeployed,omitempty"`
	Resent       []string `json:"resentTo,omitempty"`
	Exhausted    []string `json:"exhausted,omitempty"` // failed nodes out of attempts
	Stuck        []string `json:"stuckDeployments,omitempty"`
	Deferred     bool     `json:"deferredForLiveDeployment,omitempty"`
	// Rollout is the phase of the name's unfinished rollout and its wave.
	// While it is rolling, paused or halted its nodes are the rollout's:
	// the sweep sends them nothing.
	Rollout string `json:"rollout,omitempty"`
	// WaitingForRollout counts the target nodes the sweep would have sent
	// to (new, failed, behind the name's serial) but leaves to the
	// rolling, paused or halted rollout; WaitingNodes are the first
	// MaxListedNodes of them, sorted (the report is a DynamoDB item: at
	// most 400 KB). Risks names those that joined after the rollout
	// resolved its nodes (it never reaches them: the first sweep after it
	// is done does).
	WaitingForRollout int      `json:"waitingForRollout,omitempty"`
	WaitingNodes      []string `json:"waitingNodes,omitempty"`
	// ResentSerial is the serial Resent got when it is not Serial: META's,
	// the certificate the nodes have now, while a renewal of Serial waits
	// for its window or approval (never the waiting one).
	ResentSerial string `json:"resentSerial,omitempty"`
	// NotCovered says why nodes behind the name's certificate got nothing
	// while a renewal waits for its window or approval.
	NotCovered string   `json:"notCovered,omitempty"`
	Risks      []string `json:"risks,omitempty"`
	Error      string   `json:"error,omitempty"`
	Skipped    string   `json:"skipped,omitempty"` // "gone": deleted (or being deleted) since the run listed it
}

// Report is one whole sweep run as the local drain saw it (Local): each
// name's report and the run's alert.
type Report struct {
	RunID        string       `json:"runId"`
	Names        []NameReport `json:"names"`
	AlertID      string       `json:"alertMessageId,omitempty"`
	DeadLettered []string     `json:"deadLettered,omitempty"` // names whose message failed maxReceiveCount times
}

// The sweep of many names is a fan-out (fanout.go): Fanout.Start enqueues
// one message per name, Worker.Handle sweeps one name per message through
// sweepName, the per-name unit below.

func (s *Sweeper) sweepName(ctx context.Context, c inventory.Cert) (NameReport, error) {
	nr := NameReport{Name: c.Name, Serial: c.Serial}
	defer s.emitRisks(ctx, c, &nr)
	now := s.now()
	info, err := s.acm.Describe(ctx, c.CertificateARN)
	if err != nil {
		if errors.Is(err, certs.ErrNotFound) {
			nr.Risks = append(nr.Risks, notify.RiskGone)
			return nr, nil
		}
		return nr, err
	}
	if !info.NotAfter.IsZero() {
		d := certs.DaysLeft(info.NotAfter, now)
		nr.DaysToExpiry = &d
	}
	// The renewal risks come first in the report; whether ACM's
	// INELIGIBLE is one depends on what reconciling found of certferry's
	// export of the current serial.
	ex, err := s.reconcile(ctx, c, info, now, &nr)
	nr.Risks = append(Risks(info, ex, now, s.cfg), nr.Risks...)
	nr.Risks = append(nr.Risks, s.probeRisks(ctx, c, info, now, &nr)...)
	return nr, err
}

// reconcile deploys a renewal no event delivered, closes stuck
// deployments and sends the install again where the plan says so. It
// returns what it learnt of certferry's export of ACM's current serial.
func (s *Sweeper) reconcile(ctx context.Context, c inventory.Cert, info certs.Info, now time.Time, nr *NameReport) (Export, error) {
	ex := Export{Serial: c.Serial, At: c.ExportedAt, Deploying: claimFor(c.Claim, info.Serial, now)}

	// A renewal whose events were lost.
	gated := false // Renew just looked at a rollout that waits for a gate
	if info.Serial != "" && info.Serial != c.Serial {
		res, err := s.renew.Renew(ctx, c.Name, inventory.TriggerSweep)
		switch {
		case err == nil:
			// This sweep just started the deployment of ACM's serial (or
			// found one committed a moment ago, or its rollout waiting for
			// a gate).
			nr.Redeployed, nr.Serial = !res.Unchanged && res.CommandID != "", res.Serial
			nr.Rollout = rolloutText(res)
			ex.Deploying = true
			slog.InfoContext(ctx, "sweep deployed a renewal no event delivered", "name", c.Name, "serial", res.Serial,
				"rolloutId", res.RolloutID, "phase", res.Phase)
			if !res.Phase.Waiting() {
				return ex, nil // the new deployment (or rollout) targets every node
			}
			// Waiting for its window or approval: nothing of the new
			// serial went out; the name's nodes are covered below with
			// the certificate they have.
			gated = true
		case errors.Is(err, certs.ErrNotIssued), errors.Is(err, certs.ErrNotExportable), errors.Is(err, pipeline.ErrTargetsGone):
			nr.Risks = append(nr.Risks, notify.RiskUndeployable(info.Serial, err))
		case errors.Is(err, pipeline.ErrBusy):
			ex.Deploying = true
			return ex, nil // an event is deploying it right now
		default:
			return ex, err
		}
	}

	d, err := s.inv.Describe(ctx, c.Name)
	if err != nil {
		return ex, err
	}
	if d.Cert == nil {
		return ex, nil
	}
	ex.Serial, ex.At = d.Cert.Serial, exportTime(d.Cert, d.Deployments)
	ex.Deploying = ex.Deploying || claimFor(d.Cert.Claim, info.Serial, now)
	deps := map[string]*inventory.Deployment{}
	live := false
	for i := range d.Deployments {
		dep := &d.Deployments[i]
		deps[dep.ID] = dep
		if dep.Outcome != inventory.OutcomeInProgress {
			continue
		}
		if !s.stuck(dep, now) {
			live = true
			continue
		}
		if err := s.closeStuck(ctx, c.Name, dep, d.Nodes); err != nil {
			return ex, err
		}
		nr.Stuck = append(nr.Stuck, dep.ID)
	}
	if len(nr.Stuck) > 0 { // node states changed: read them again
		if d, err = s.inv.Describe(ctx, c.Name); err != nil {
			return ex, err
		}
	}

	current, err := s.nodes.Resolve(ctx, c.Targets)
	if err != nil {
		return ex, err
	}
	byID := d.NodesByID()
	send, exhausted, failures := s.plan(d.Cert.Serial, byID, deps, current, now)
	nr.Exhausted = exhausted
	s.emit(c.Name, nr.DaysToExpiry, d.Cert.Serial, byID, current)
	waiting := false                   // a renewal waits for its window or approval
	var behind pipeline.WaitingRollout // that renewal's rollout, as read
	if r := d.Rollout; r != nil && !r.Phase.Final() {
		// A rolling, paused or halted rollout owns the name's nodes: the
		// sweep never resends to them (the old certificate would fight the
		// rollout; a halted rollout's nodes wait for a person); it steps
		// the rollout when a schedule or a send was lost, reports a
		// halted one near expiry (no continuation: its canary failed), and
		// says which nodes wait for it.
		if r.Phase == inventory.PhaseHalted {
			if risk, ok := haltedRisk(r, byID, now); ok {
				nr.Risks = append(nr.Risks, risk)
			}
			nr.Rollout = fmt.Sprintf("%s at wave %d of %d", r.Phase, r.Wave, len(r.Waves))
			s.leaveToRollout(c.Name, r, send, nr)
			return ex, nil
		}
		phase, moved := r.Phase, false
		if !gated || !phase.Waiting() {
			res, err := s.renew.Check(ctx, c.Name)
			if err != nil {
				return ex, err
			}
			nr.Rollout, phase = rolloutText(res), res.Phase
			moved = res.Sent > 0 || res.RolloutID != r.ID || res.Phase != r.Phase || res.Wave != r.Wave
		}
		if !phase.Waiting() {
			if !moved { // else the nodes read above are out of date: the next sweep says
				s.leaveToRollout(c.Name, r, send, nr)
			}
			return ex, nil
		}
		if moved {
			return ex, nil // another gate now (approved, then the window): the next sweep covers
		}
		// Waiting for a gate: nothing of the new serial was exported,
		// META still holds the certificate the nodes have. Nodes new,
		// failed or behind it get that one now, as with no rollout; the
		// rollout, when it goes, resolves its nodes then and deploys its
		// serial to them too.
		if why := uncoverable(d.Cert, r); why != "" {
			if len(send) > 0 {
				nr.NotCovered = why
				slog.InfoContext(ctx, "renewal waiting; nodes not sent the deployed certificate", "name", c.Name, "nodes", len(send), "why", why)
			}
			return ex, nil
		}
		waiting, behind = true, pipeline.WaitingRollout{ID: r.ID, Version: r.Version}
	}
	if live {
		// A deployment is still running: a tag-target one lists its nodes
		// only as they report, so "new" nodes may be on their way. The next
		// sweep looks again.
		nr.Deferred = true
		return ex, nil
	}
	if info.Status == "REVOKED" && len(send) > 0 {
		// The pipeline refuses a REVOKED certificate (revocation is
		// permanent): nothing to send until the name is rebound; Risks
		// reports it.
		slog.WarnContext(ctx, "certificate revoked; nodes not sent the install", "name", c.Name, "nodes", len(send))
		return ex, nil
	}
	// META's version guards every send: once anything claimed or committed
	// the name since this sweep read it (another sweep's send, a duplicate
	// delivery, a wave of the new serial), the send is refused (ErrBusy)
	// and the next sweep plans again.
	version := d.Cert.Version
	for chunk := range slices.Chunk(send, 50) {
		var res pipeline.Result
		var err error
		if waiting {
			res, err = s.deploy.ResendDeployed(ctx, c.Name, version, behind, chunk, failures, inventory.TriggerSweep)
		} else {
			res, err = s.deploy.Resend(ctx, c.Name, version, chunk, failures, inventory.TriggerSweep)
		}
		if errors.Is(err, pipeline.ErrBusy) {
			slog.InfoContext(ctx, "name busy; resend left to the next sweep", "name", c.Name)
			break
		}
		if errors.Is(err, pipeline.ErrTargetsGone) {
			// Every node of the chunk left SSM since the sweep resolved
			// them (ids gone from the rest were dropped by the send):
			// nothing sent, the next chunks go on.
			slog.WarnContext(ctx, "nodes of the resend no longer managed by SSM; nothing sent to them", "name", c.Name, "nodes", chunk)
			continue
		}
		if waiting && errors.Is(err, pipeline.ErrNotDeployed) {
			nr.NotCovered = err.Error()
			slog.WarnContext(ctx, "renewal waiting; nodes not sent the deployed certificate", "name", c.Name, "error", err)
			break
		}
		if err != nil {
			return ex, err
		}
		nr.Resent = append(nr.Resent, slices.DeleteFunc(slices.Clone(chunk), func(id string) bool { return slices.Contains(res.Dropped, id) })...)
		slog.InfoContext(ctx, "sweep sent the install again", "name", c.Name, "nodes", len(chunk), "commandId", res.CommandID,
			"serial", res.Serial, "renewalWaiting", waiting)
		if waiting {
			nr.ResentSerial = d.Cert.Serial
		}
		if len(nr.Resent) == len(send) {
			break
		}
		// The next chunk plans on META as this send committed it, and
		// only if nothing else wrote it since.
		cur, err := s.inv.GetCert(ctx, c.Name)
		if err != nil {
			return ex, err
		}
		if cur == nil || cur.LastDeploymentID != res.DeploymentID || cur.Serial != d.Cert.Serial || cur.SecretVersionID != d.Cert.SecretVersionID {
			slog.InfoContext(ctx, "name changed meanwhile; the rest left to the next sweep", "name", c.Name)
			break
		}
		version = cur.Version
	}
	return ex, nil
}

// uncoverable says why the nodes of a name whose renewal waits for a gate
// cannot get META's certificate ("" when they can): there is none
// deployed yet, or META already holds the waiting rollout's serial.
func uncoverable(c *inventory.Cert, r *inventory.Rollout) string {
	switch {
	case c.Status != inventory.StatusActive || c.Serial == "" || c.SecretVersionID == "":
		return "no certificate of the name was deployed yet (META holds no serial and secret version): nothing to send until the waiting renewal goes"
	case c.Serial == r.Serial:
		return fmt.Sprintf("META already holds serial %s, the one rollout %s waits to deploy: left to the rollout", c.Serial, r.ID)
	}
	return ""
}

// leaveToRollout records the nodes the sweep would have sent to but
// leaves to a rolling, paused or halted rollout, and, as a risk, those
// the rollout will never reach (they joined after it resolved its nodes).
func (s *Sweeper) leaveToRollout(name string, r *inventory.Rollout, send []string, nr *NameReport) {
	if len(send) == 0 {
		return
	}
	waiting := slices.Sorted(slices.Values(send))
	nr.WaitingForRollout, nr.WaitingNodes = len(waiting), waiting[:min(len(waiting), MaxListedNodes)]
	if len(r.Nodes) == 0 {
		return // one command to the targets: SSM resolved them
	}
	in := make(map[string]bool, len(r.Nodes))
	for _, id := range r.Nodes {
		in[id] = true
	}
	var outside []string
	for _, id := range waiting {
		if !in[id] {
			outside = append(outside, id)
		}
	}
	if len(outside) == 0 {
		return
	}
	then := "the first sweep after the rollout is done sends them the certificate"
	if r.Phase == inventory.PhaseHalted {
		then += fmt.Sprintf(" (`certferry redeploy %s` resumes it)", name)
	}
	nr.Risks = append(nr.Risks, fmt.Sprintf("%d node(s) of the targets joined after rollout %s (%s at wave %d of %d) resolved its nodes and wait for it with nothing sent: %s; %s",
		len(outside), r.ID, r.Phase, r.Wave, len(r.Waves), strings.Join(clip(outside, 10), ", "), then))
}

// MaxListedNodes is how many waiting nodes a name's report lists.
const MaxListedNodes = 20

// clip keeps the first n ids and says how many more there are.
func clip(ids []string, n int) []string {
	if len(ids) <= n {
		return ids
	}
	return append(slices.Clone(ids[:n]), fmt.Sprintf("and %d more", len(ids)-n))
}

// plan picks the current target nodes that need the install: new ones,
// ones on another serial, unverified ones, and failed ones with attempts
// left whose backoff has passed. Nodes pending in a live deployment are
// left to it. serial is the name's deployed serial, nodes its NODE items.
func (s *Sweeper) plan(serial string, nodes map[string]inventory.Node, deps map[string]*inventory.Deployment, current []string, now time.Time) (send, exhausted []string, failures map[string]int) {
	failures = map[string]int{}
	for _, id := range current {
		n, ok := nodes[id]
		switch {
		case !ok:
			send = append(send, id)
		case n.State == inventory.NodePending:
			if dep := deps[n.DeploymentID]; dep == nil || dep.Outcome != inventory.OutcomeInProgress {
				send = append(send, id) // its deployment ended without a word about it
			}
		case n.State == inventory.NodeFailed || n.State == inventory.NodeRolledBack:
			if n.Failures >= s.cfg.MaxAttempts {
				exhausted = append(exhausted, id)
				continue
			}
			if now.Sub(n.UpdatedAt) >= s.cfg.RetryBackoff<<max(0, n.Failures-1) {
				send = append(send, id)
				failures[id] = n.Failures
			}
		case n.Serial != serial || n.Unverified:
			send = append(send, id)
		}
	}
	return send, exhausted, failures
}

// rolloutText says where a rollout stands, for the sweep's report.
func rolloutText(res rollout.Result) string {
	if res.RolloutID == "" {
		return ""
	}
	t := string(res.Phase)
	if res.Waves > 0 {
		t += fmt.Sprintf(" at wave %d of %d", res.Wave, res.Waves)
	}
	return t
}

// haltedRisk is the risk of a halted rollout within the safety margin of
// the expiry of the certificate its remaining nodes still hold.
func haltedRisk(r *inventory.Rollout, nodes map[string]inventory.Node, now time.Time) (string, bool) {
	if r.GoBy.IsZero() || now.Before(r.GoBy) {
		return "", false
	}
	old := 0
	for _, id := range r.Nodes {
		if n, ok := nodes[id]; !ok || n.State != inventory.NodeInstalled || n.Serial != r.Serial {
			old++
		}
	}
	head := fmt.Sprintf("rollout %s halted at wave %d of %d since %s; %d node(s) still on the old certificate expiring %s ",
		r.ID, r.Wave, len(r.Waves), r.HaltedAt.UTC().Format(time.RFC3339), old, r.OldNotAfter.UTC().Format(time.RFC3339))
	if r.Reason != "" {
		head += "(halted: " + r.Reason + ") "
	}
	if strings.Contains(r.Reason, " revoked") {
		// rollout.Engine.Halt: the certificate it deploys was revoked; a
		// redeploy cannot resume it (the pipeline refuses a revoked one).
		return head + fmt.Sprintf("(the rollout cannot resume: request a replacement certificate and `certferry rebind %s --arn NEW_ARN`, which deploys it at once)", r.Name), true
	}
	return head + fmt.Sprintf("(the rollout does not continue on its own: find why wave %d failed, then `certferry redeploy %s` resumes it)", r.Wave, r.Name), true
}

func (s *Sweeper) stuck(dep *inventory.Deployment, now time.Time) bool {
	return now.Sub(dep.CreatedAt) > s.cfg.DeploymentTimeout
}

// closeStuck fails the nodes a stuck deployment still has pending and
// concludes it (one alert, through the tracker).
func (s *Sweeper) closeStuck(ctx context.Context, name string, dep *inventory.Deployment, nodes []inventory.Node) error {
	ref := inventory.CommandRef{CommandID: dep.CommandID, Name: name, DeploymentID: dep.ID}
	for _, n := range nodes {
		if n.DeploymentID != dep.ID || n.State != inventory.NodePending {
			continue
		}
		prev := n
		err := s.inv.RecordReport(ctx, ref, &prev, inventory.Report{InstanceID: n.InstanceID, State: inventory.NodeFailed,
			Error: fmt.Sprintf("no final status from SSM within %s", s.cfg.DeploymentTimeout)})
		if errors.Is(err, inventory.ErrGone) {
			return nil // the name was deleted meanwhile
		}
		if err != nil && !errors.Is(err, inventory.ErrStale) && !errors.Is(err, inventory.ErrConflict) {
			return err
		}
	}
	fresh, err := s.inv.GetDeployment(ctx, name, dep.ID)
	if err != nil || fresh == nil {
		return err
	}
	_, err = s.track.Conclude(ctx, name, fresh, true, tracker.Outcome{})
	return err
}

// emit writes the name's metrics: days to expiry, nodes by state, drift.
func (s *Sweeper) emit(name string, days *int, serial string, byID map[string]inventory.Node, current []string) {
	v := metrics.Values{}
	if days != nil {
		v["DaysToExpiry"] = float64(*days)
	}
	var installed, pending, failed, drift float64
	for _, id := range current {
		n, ok := byID[id]
		switch {
		case !ok:
		case n.State == inventory.NodeInstalled:
			installed++
		case n.State == inventory.NodePending, n.State == inventory.NodeSuperseded:
			// Superseded: the node refused a command a newer one
			// overtook; it waits for that one (or the next sweep).
			pending++
		default:
			failed++
		}
		if !ok || n.State != inventory.NodeInstalled || n.Serial != serial {
			drift++
		}
	}
	v["NodesInstalled"], v["NodesPending"], v["NodesFailed"], v["Drift"] = installed, pending, failed, drift
	s.metrics.Emit(map[string]string{"Name": name}, v)
}

// DueWindow is how long before expiry a certificate not yet renewed is a
// risk: the configured number of days or the configured part of the
// certificate's own lifetime, whichever is shorter, so that short-lived
// certificates (47 days from 2029) do not sit in the window all their life.
func DueWindow(lifetime time.Duration, cfg Config) time.Duration {
	cfg.defaults()
	days := time.Duration(cfg.RenewBeforeDays) * 24 * time.Hour
	frac := time.Duration(float64(lifetime) * cfg.RenewBeforeFraction)
	if lifetime > 0 && frac < days {
		return frac
	}
	return days
}

// Export is what certferry knows of its own export of a name's
// certificate, the fact ACM's renewal eligibility turns on.
type Export struct {
	Serial    string    // the serial certferry exported and stored last (META)
	At        time.Time // when certferry exported it; zero when unknown
	Deploying bool      // a deployment of ACM's current serial is under way (a run holds the name for it, or this sweep just started one)
}

// IneligibleGrace is how long after certferry's export of the current
// serial ACM may still report INELIGIBLE before the sweep calls it a risk:
// ACM counts the export, but not necessarily at once.
const IneligibleGrace = 24 * time.Hour

// IneligibleRisk tells whether ACM's INELIGIBLE for a certificate is a risk
// worth an alert. ACM User Guide, "Managed certificate renewal in AWS
// Certificate Manager" (docs.aws.amazon.com/acm/latest/userguide/acm-renewal.html):
// a certificate is "ELIGIBLE if exported since being issued or last
// renewed" (or associated with another AWS service), "NOT ELIGIBLE if
// imported" and "NOT ELIGIBLE if already expired". So:
//   - imported or expired: always a risk (ACM never renews it);
//   - a serial certferry exported less than IneligibleGrace ago: normal,
//     ACM has not counted the export yet;
//   - a serial certferry exported IneligibleGrace or more ago (or at a time
//     it does not know): a risk, ACM will not renew it on its own;
//   - a serial certferry has not exported yet: normal while a deployment of
//     it is under way (that deployment exports it), else a risk (certferry
//     failed to export a renewal, which stops the next one).
func IneligibleRisk(info certs.Info, ex Export, now time.Time) bool {
	switch {
	case info.RenewalEligibility != "INELIGIBLE":
		return false
	case info.Type == "IMPORTED", !info.NotAfter.IsZero() && !now.Before(info.NotAfter):
		return true
	case info.Serial != "" && info.Serial == ex.Serial:
		return ex.At.IsZero() || now.Sub(ex.At) >= IneligibleGrace
	default:
		return !ex.Deploying
	}
}

// claimFor tells whether claim is a live claim of a run deploying serial.
func claimFor(claim *inventory.Claim, serial string, now time.Time) bool {
	return claim != nil && serial != "" && claim.Serial == serial && claim.Until > now.Unix()
}

// exportTime is when certferry exported c's serial: the time META
// recorded, else (an item written before it was recorded) the creation of
// the first deployment of that serial, which follows its export within the
// same run; zero when neither is known.
func exportTime(c *inventory.Cert, deps []inventory.Deployment) time.Time {
	if !c.ExportedAt.IsZero() {
		return c.ExportedAt
	}
	var first time.Time
	for _, d := range deps {
		if d.Serial == c.Serial && !d.CreatedAt.IsZero() && (first.IsZero() || d.CreatedAt.Before(first)) {
			first = d.CreatedAt
		}
	}
	return first
}

// Risks lists what may stop a certificate from renewing or reaching its
// nodes in time; ex is certferry's export of it (see IneligibleRisk).
func Risks(info certs.Info, ex Export, now time.Time, cfg Config) []string {
	var risks []string
	if !info.NotAfter.IsZero() {
		window := DueWindow(info.NotAfter.Sub(info.NotBefore), cfg)
		if left := info.NotAfter.Sub(now); left < window {
			risks = append(risks, notify.RiskExpiring(info.NotAfter, window))
		}
	}
	if slices.Contains(info.ValidationMethods, "EMAIL") {
		risks = append(risks, notify.RiskEmail)
	}
	if info.Status == "REVOKED" {
		// ACM's INELIGIBLE follows from it; its advice cannot help.
		return append(risks, notify.RiskRevoked(info))
	}
	if IneligibleRisk(info, ex, now) {
		risks = append(risks, notify.RiskIneligible(info, now))
	}
	if info.RenewalStatus == "FAILED" || info.RenewalStatus == "PENDING_VALIDATION" {
		risks = append(risks, notify.RiskRenewal(info.RenewalStatus, info.RenewalReason))
	}
	return risks
}
