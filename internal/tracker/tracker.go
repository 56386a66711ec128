// Package tracker follows deployments to the end: SSM's status-change
// events update each node (state, serial, fingerprint, error) and the
// deployment's counts, and a finished deployment with failures becomes one
// SNS alert. Nothing polls: SSM reports through EventBridge, and the sweep
// catches what an event missed.
package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/certferry/certferry/internal/document"
	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/notify"
)

// Dependencies, each the narrowest surface the tracker calls.
type (
	store interface {
		GetCommandRef(ctx context.Context, commandID string) (*inventory.CommandRef, error)
		GetDeployment(ctx context.Context, name, deploymentID string) (*inventory.Deployment, error)
		GetNode(ctx context.Context, name, instanceID string) (*inventory.Node, error)
		RecordReport(ctx context.Context, ref inventory.CommandRef, prev *inventory.Node, r inventory.Report) error
		SetCommandStatus(ctx context.Context, name, deploymentID, status string, expected int) error
		FinishDeployment(ctx context.Context, name, deploymentID string, outcome inventory.Outcome) (bool, error)
		Describe(ctx context.Context, name string) (*inventory.Detail, error)
	}
	ssmAPI interface {
		GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, optFns ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
		ListCommandInvocations(ctx context.Context, in *ssm.ListCommandInvocationsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error)
		ListCommands(ctx context.Context, in *ssm.ListCommandsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
	}
	publisher interface {
		Publish(ctx context.Context, a notify.Alert) (string, error)
	}
	// advancer moves a rollout on once one of its deployments concluded
	// ((*rollout.Engine).Advance).
	advancer interface {
		Advance(ctx context.Context, name string) error
	}
)

var (
	_ store     = (*inventory.Store)(nil)
	_ ssmAPI    = (*ssm.Client)(nil)
	_ publisher = (*notify.Publisher)(nil)
)

// Config is the tracker's plain configuration.
type Config struct {
	Document      string // certferry's document name; events of others are ignored
	NotifySuccess bool   // also alert on fully successful deployments
	// ReadAttempts bounds the reads of an invocation SSM does not show yet
	// (default 4); ReadBackoff is the first wait between them, doubled each
	// time (default 500ms: 3.5 s in all, well inside the function's timeout).
	ReadAttempts int
	ReadBackoff  time.Duration
}

// ResultSteps are the document steps that print the CERTFERRY_RESULT line,
// one per platform (a contract of the SSM document: design.md, "SSM
// document and the node installer").
var ResultSteps = []string{"installLinux", "installWindows"}

// ErrInvocationNotVisible: SSM does not show the invocation an event
// reported, even after bounded retries. "GetCommandInvocation" (Systems
// Manager API Reference): "The Run Command API follows an eventual
// consistency model"; Handle returns it so that Lambda's asynchronous retry
// delivers the event again, and nothing was written.
var ErrInvocationNotVisible = errors.New("invocation not visible in SSM yet")

// Tracker handles SSM status-change events.
type Tracker struct {
	inv     store
	ssm     ssmAPI
	alerts  publisher
	metrics *metrics.Emitter
	cfg     Config
	bus     busEmitter // certferry's own events (busevents.go); nil sends none
	probes  *Probes    // outside probes after a success (probes.go); nil: none
	rollout advancer
}

// WithRollouts makes the tracker hand every concluded deployment of a
// rollout to a (nil: none).
func (t *Tracker) WithRollouts(a advancer) *Tracker {
	t.rollout = a
	return t
}

// New wires a Tracker.
func New(inv store, api ssmAPI, alerts publisher, m *metrics.Emitter, cfg Config) *Tracker {
	return &Tracker{inv: inv, ssm: api, alerts: alerts, metrics: m, cfg: cfg}
}

// Status is what the tracker did with one event: its answer's status.
type Status string

// Statuses of an Outcome.
const (
	StatusRecorded Status = "recorded" // a node's or the command's state was written
	StatusFinished Status = "finished" // … and that ended the deployment
	StatusStale    Status = "stale"    // a duplicate or out-of-order report: nothing changed
	StatusIgnored  Status = "ignored"  // not certferry's, not final, or no longer recorded
	StatusRetry    Status = "retry"    // SSM could not be read yet: the error makes Lambda retry
	StatusRejected Status = "rejected" // a malformed event (dead-letter queue)
)

// Outcome is what the tracker did with one event.
type Outcome struct {
	Status       Status              `json:"status"`
	Reason       string              `json:"reason,omitempty"`
	Name         string              `json:"name,omitempty"`
	DeploymentID string              `json:"deploymentId,omitempty"`
	InstanceID   string              `json:"instanceId,omitempty"`
	NodeState    inventory.NodeState `json:"nodeState,omitempty"`
	Deployment   inventory.Outcome   `json:"deploymentOutcome,omitempty"`
	AlertID      string              `json:"alertMessageId,omitempty"`
}

// Handle applies one status-change event. Errors (malformed events, AWS
// calls that keep failing) make Lambda retry the event; everything a retry
// would repeat is conditional, so a retry changes nothing twice.
func (t *Tracker) Handle(ctx context.Context, raw json.RawMessage) (Outcome, error) {
	st, ok, err := events.ParseStatus(raw)
	if err != nil {
		slog.ErrorContext(ctx, "status event rejected", "error", err, "bytes", len(raw))
		return Outcome{Status: StatusRejected, Reason: err.Error()}, err
	}
	if !ok {
		slog.InfoContext(ctx, "not an SSM status event; acknowledged", "eventId", st.ID)
		return Outcome{Status: StatusIgnored, Reason: "not an SSM command status event"}, nil
	}
	if t.cfg.Document != "" && st.Document != t.cfg.Document && !strings.HasSuffix(st.Document, "/"+t.cfg.Document) {
		return Outcome{Status: StatusIgnored, Reason: "another document"}, nil
	}
	if !events.Final(st.Status) {
		return Outcome{Status: StatusIgnored, Reason: "status " + st.Status + " is not final"}, nil
	}
	ref, err := t.inv.GetCommandRef(ctx, st.CommandID)
	if err != nil {
		return Outcome{}, err
	}
	if ref == nil {
		slog.InfoContext(ctx, "status of a command certferry does not know; acknowledged", "commandId", st.CommandID)
		return Outcome{Status: StatusIgnored, Reason: "unknown command"}, nil
	}
	out := Outcome{Name: ref.Name, DeploymentID: ref.DeploymentID, InstanceID: st.InstanceID}
	dep, err := t.inv.GetDeployment(ctx, ref.Name, ref.DeploymentID)
	if err != nil {
		return out, err
	}
	if dep == nil {
		out.Status, out.Reason = StatusIgnored, "deployment no longer recorded"
		return out, nil
	}
	if st.Invocation {
		if len(dep.InstanceIDs) > 0 && !slices.Contains(dep.InstanceIDs, st.InstanceID) {
			// Sent by instance ids: SSM runs the command on exactly those
			// ("SendCommand", Systems Manager API Reference).
			slog.WarnContext(ctx, "invocation status for an instance the command was not sent to; nothing changed", "name", ref.Name,
				"instanceId", st.InstanceID, "commandId", st.CommandID, "status", st.Status)
			out.Status, out.Reason = StatusIgnored, "instance not in the command"
			return out, nil
		}
		r, err := t.report(ctx, st, dep)
		if err != nil {
			slog.WarnContext(ctx, "invocation not readable yet; the event is retried", "name", ref.Name, "instanceId", st.InstanceID,
				"commandId", st.CommandID, "error", err)
			out.Status, out.Reason = StatusRetry, err.Error()
			return out, err
		}
		out.NodeState = r.State
		switch err := t.record(ctx, *ref, r); {
		case errors.Is(err, inventory.ErrGone):
			slog.InfoContext(ctx, "invocation status of a deployment deleted meanwhile; nothing changed", "name", ref.Name,
				"instanceId", st.InstanceID, "commandId", st.CommandID)
			out.Status, out.Reason = StatusIgnored, "deployment no longer recorded"
			return out, nil
		case errors.Is(err, inventory.ErrStale):
			slog.InfoContext(ctx, "stale or duplicate invocation status; nothing changed", "name", ref.Name,
				"instanceId", st.InstanceID, "commandId", st.CommandID, "status", st.Status)
			out.Status = StatusStale
			// A node a newer deployment took over before it reported here
			// never reports here: this deployment may be complete without it.
			n, err := t.inv.GetNode(ctx, ref.Name, st.InstanceID)
			if err != nil || n == nil || n.DeploymentID <= ref.DeploymentID {
				return out, err
			}
			return t.finish(ctx, *ref, out, true)
		case err != nil:
			return out, err
		}
		out.Status = StatusRecorded
		slog.InfoContext(ctx, "node state recorded", "name", ref.Name, "instanceId", st.InstanceID, "state", r.State,
			"unverified", r.Unverified, "deploymentId", ref.DeploymentID)
		t.emitNodeFailed(ctx, *ref, dep, r)
	} else {
		expected, err := t.targetCount(ctx, st.CommandID, dep)
		if err != nil {
			slog.WarnContext(ctx, "command target count unavailable; the event is retried", "name", ref.Name, "commandId", st.CommandID, "error", err)
			out.Status, out.Reason = StatusRetry, err.Error()
			return out, err
		}
		if err := t.inv.SetCommandStatus(ctx, ref.Name, ref.DeploymentID, st.Status, expected); err != nil {
			return out, err
		}
		out.Status = StatusRecorded
		slog.InfoContext(ctx, "command status recorded", "name", ref.Name, "commandId", st.CommandID, "status", st.Status, "targets", expected)
	}
	return t.finish(ctx, *ref, out, false)
}

// report turns a finished invocation into the node's state. The event's
// status decides failure; the output's CERTFERRY_RESULT line, when it can be
// read, decides what was installed and must carry the deployed fingerprint.
// A result that says superseded (status superseded, exit 0; or, from an
// installer that predates it, failed with detail "superseded: ...") is
// neither: the node did nothing because a newer deployment replaced the
// certificate, whatever SSM's status.
// An invocation SSM does not show yet is an error (ErrInvocationNotVisible),
// never a guess.
func (t *Tracker) report(ctx context.Context, st events.Status, dep *inventory.Deployment) (inventory.Report, error) {
	r := inventory.Report{InstanceID: st.InstanceID}
	if st.Status != "Success" && st.Status != "Failed" {
		r.State, r.Error = inventory.NodeFailed, "SSM reports "+st.Status
		return r, nil
	}
	o, err := t.output(ctx, st)
	if errors.Is(err, ErrInvocationNotVisible) || transient(err) {
		return r, err
	}
	if err != nil {
		slog.WarnContext(ctx, "invocation output unavailable", "commandId", st.CommandID, "instanceId", st.InstanceID, "error", err)
	}
	res, perr := document.ParseResult(o.stdout)
	if perr == nil && res.Superseded() {
		r.State, r.Error = inventory.NodeSuperseded, summary(res.Detail)
		return r, nil
	}
	status := st.Status
	if status == "Failed" && o.resultStepOK {
		// The invocation failed in another step (the download of the
		// other Linux architecture, say), but the install step ran to
		// its end with code 0: its result line is the node's state
		// (design.md: the tracker trusts the result step, not the
		// invocation's overall status, "Understanding command statuses").
		status = "Success"
		slog.WarnContext(ctx, "invocation failed in another step; the install step succeeded", "commandId", st.CommandID,
			"instanceId", st.InstanceID, "failedStep", o.failedStep)
	}
	if status == "Failed" {
		r.State, r.Error = inventory.NodeFailed, "SSM reports Failed"
		switch {
		case perr == nil:
			if res.Status == document.StatusRolledBack {
				r.State = inventory.NodeRolledBack
			}
			r.Error = summary(string(res.Status) + ": " + res.Detail)
		case lastLine(o.stderr) != "":
			r.Error = summary(lastLine(o.stderr))
		case o.failedStep != "":
			r.Error = summary("step " + o.failedStep + " failed: " + lastLine(o.failedOutput))
		}
		return r, nil
	}
	switch {
	case perr != nil:
		// Success without a readable result (beyond the first 24,000
		// characters of output, or no output): trusted, but the sweep
		// checks again.
		r.State, r.Unverified = inventory.NodeInstalled, true
		r.Serial, r.Fingerprint = dep.Serial, dep.Fingerprint
	case !res.Status.Installed():
		r.State, r.Error = inventory.NodeFailed, summary("reported "+string(res.Status)+": "+res.Detail)
		if res.Status == document.StatusRolledBack {
			r.State = inventory.NodeRolledBack
		}
	case !strings.EqualFold(res.Fingerprint, dep.Fingerprint):
		r.State = inventory.NodeFailed
		r.Error = summary(fmt.Sprintf("node reports fingerprint %s, deployment %s", res.Fingerprint, dep.Fingerprint))
	default:
		r.State, r.Serial, r.Fingerprint = inventory.NodeInstalled, dep.Serial, dep.Fingerprint
	}
	return r, nil
}

// nodeOutput is what SSM shows of one node's run.
type nodeOutput struct {
	stdout, stderr string
	failedStep     string // the first step SSM reports failed, and its output
	failedOutput   string
	resultStepOK   bool // the result step ran and SSM reports it Success (not skipped)
}

// errNotVisible marks one read that found no invocation yet.
var errNotVisible = errors.New("not visible")

// output reads the node's output of the step that ran on its platform,
// retrying (bounded, with backoff) while SSM does not show the invocation.
func (t *Tracker) output(ctx context.Context, st events.Status) (nodeOutput, error) {
	attempts, wait := t.cfg.ReadAttempts, t.cfg.ReadBackoff
	if attempts < 1 {
		attempts = 4
	}
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	for attempt := 1; ; attempt++ {
		o, err := t.readOnce(ctx, st)
		if !errors.Is(err, errNotVisible) {
			return o, err
		}
		if attempt >= attempts {
			return o, fmt.Errorf("read invocation of command %s on %s (%d attempts): %w", st.CommandID, st.InstanceID, attempt, ErrInvocationNotVisible)
		}
		select {
		case <-ctx.Done():
			return o, fmt.Errorf("read invocation of command %s on %s: %w (%w)", st.CommandID, st.InstanceID, ErrInvocationNotVisible, ctx.Err())
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// readOnce finds the step that ran (ListCommandInvocations with Details:
// each step is a CommandPlugin named as in the document; the other
// platform's step is skipped by its precondition) and reads its output
// with GetCommandInvocation, which on a multi-step document requires that
// step's name as PluginName ("GetCommandInvocation", Systems Manager API
// Reference). Two calls per event.
func (t *Tracker) readOnce(ctx context.Context, st events.Status) (nodeOutput, error) {
	var o nodeOutput
	l, err := t.ssm.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{
		CommandId: aws.String(st.CommandID), InstanceId: aws.String(st.InstanceID), Details: true,
	})
	if err != nil {
		if isCode(err, "InvocationDoesNotExist") {
			return o, errNotVisible
		}
		return o, fmt.Errorf("list invocations of command %s on %s: %w", st.CommandID, st.InstanceID, err)
	}
	var inv *ssmtypes.CommandInvocation
	for i := range l.CommandInvocations {
		if aws.ToString(l.CommandInvocations[i].InstanceId) == st.InstanceID {
			inv = &l.CommandInvocations[i]
		}
	}
	if inv == nil || !events.Final(string(inv.Status)) {
		// The event says it ended; SSM's read side has not caught up.
		return o, errNotVisible
	}
	for _, p := range inv.CommandPlugins {
		if p.Status != ssmtypes.CommandPluginStatusSuccess && o.failedStep == "" && !skipped(p) {
			o.failedStep, o.failedOutput = aws.ToString(p.Name), aws.ToString(p.Output)
		}
	}
	step := resultStep(inv.CommandPlugins)
	candidates := []string{step}
	if step == "" && len(inv.CommandPlugins) > 1 {
		// Neither result step is marked skipped (the service's spelling of
		// a skipped step is not documented): read each, and take the one
		// whose output holds the result line.
		candidates = nil
		for _, p := range inv.CommandPlugins {
			if slices.Contains(ResultSteps, aws.ToString(p.Name)) {
				candidates = append(candidates, aws.ToString(p.Name))
			}
		}
		if len(candidates) == 0 {
			return o, fmt.Errorf("command %s on %s: the document has none of the steps %v", st.CommandID, st.InstanceID, ResultSteps)
		}
	}
	for i, name := range candidates {
		in := &ssm.GetCommandInvocationInput{CommandId: aws.String(st.CommandID), InstanceId: aws.String(st.InstanceID)}
		if name != "" {
			in.PluginName = aws.String(name)
		}
		g, err := t.ssm.GetCommandInvocation(ctx, in)
		if err != nil {
			if isCode(err, "InvocationDoesNotExist") {
				return o, errNotVisible
			}
			return o, fmt.Errorf("read output of command %s on %s: %w", st.CommandID, st.InstanceID, err)
		}
		stdout := aws.ToString(g.StandardOutputContent)
		if len(candidates) > 1 && document.ResultLine(stdout) == "" && i < len(candidates)-1 {
			continue
		}
		o.stdout, o.stderr = stdout, aws.ToString(g.StandardErrorContent)
		for _, p := range inv.CommandPlugins {
			if name != "" && aws.ToString(p.Name) == name && p.Status == ssmtypes.CommandPluginStatusSuccess && !skipped(p) {
				o.resultStepOK = true
			}
		}
		break
	}
	return o, nil
}

// resultStep is the result step that ran on the node: of the ResultSteps
// the document has, the one not skipped by its platform precondition (or
// the only one).
func resultStep(plugins []ssmtypes.CommandPlugin) string {
	var present, ran []string
	for _, p := range plugins {
		name := aws.ToString(p.Name)
		if !slices.Contains(ResultSteps, name) {
			continue
		}
		present = append(present, name)
		if !skipped(p) {
			ran = append(ran, name)
		}
	}
	switch {
	case len(ran) == 1:
		return ran[0]
	case len(present) == 1:
		return present[0]
	}
	return ""
}

// skipped reports a step SSM Agent skipped: its status Skipped, its output
// "Step execution skipped due to unsatisfied preconditions: …" (SSM Agent,
// agent/framework/runpluginutil). The service's CommandPluginStatus has no
// Skipped, so both the details and the output are read.
func skipped(p ssmtypes.CommandPlugin) bool {
	return strings.EqualFold(aws.ToString(p.StatusDetails), "Skipped") ||
		strings.HasPrefix(aws.ToString(p.Output), "Step execution skipped")
}

// transient reports an error a later delivery of the event can get past:
// throttling and the service's own failures after the SDK's retries
// (aws/retry DefaultThrottles, DefaultRetryables), or the invocation's
// time running out. Such a read fails the event (Lambda retries it), never
// turns into "installed, unverified" or a failure without its reason.
func transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	return isCode(err, "InternalServerError") || // SSM's model: the service's own failure (HTTP 500)
		retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary ||
		retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// record applies a report, re-reading the node when a concurrent event
// changed it in between.
func (t *Tracker) record(ctx context.Context, ref inventory.CommandRef, r inventory.Report) error {
	for attempt := 1; ; attempt++ {
		prev, err := t.inv.GetNode(ctx, ref.Name, r.InstanceID)
		if err != nil {
			return err
		}
		err = t.inv.RecordReport(ctx, ref, prev, r)
		if !errors.Is(err, inventory.ErrConflict) || attempt == 5 {
			return err
		}
	}
}

// targetCount asks SSM how many nodes the command targeted; when SSM cannot
// say, the instances the command was sent to by id. A command sent to tag
// targets has no other source: its count is an error then (the event is
// retried), never 0, which would conclude the deployment at once.
func (t *Tracker) targetCount(ctx context.Context, commandID string, dep *inventory.Deployment) (int, error) {
	out, err := t.ssm.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(commandID)})
	if err == nil {
		for _, c := range out.Commands {
			if aws.ToString(c.CommandId) == commandID {
				return int(c.TargetCount), nil
			}
		}
		err = errors.New("SSM does not list the command yet")
	}
	if len(dep.InstanceIDs) == 0 {
		return 0, fmt.Errorf("target count of command %s: %w", commandID, err)
	}
	slog.WarnContext(ctx, "command target count unavailable; using the instances it was sent to", "commandId", commandID, "error", err)
	return len(dep.InstanceIDs), nil
}

// finish ends the deployment once every targeted node reported, exactly
// once (conditional write), and alerts when nodes failed. overtaken: also
// count the nodes a newer deployment took over before they reported here
// (read only when a stale report says one did).
func (t *Tracker) finish(ctx context.Context, ref inventory.CommandRef, out Outcome, overtaken bool) (Outcome, error) {
	dep, err := t.inv.GetDeployment(ctx, ref.Name, ref.DeploymentID)
	if err != nil || dep == nil {
		return out, err
	}
	expected, known := expectedNodes(dep)
	installed, failed, superseded := reported(dep)
	if dep.Outcome != inventory.OutcomeInProgress {
		// Finished already: a redelivered event of a rollout's deployment
		// looks at the rollout again (the earlier delivery may have failed
		// after the finish); Advance changes nothing twice.
		return out, t.advance(ctx, ref.Name, dep)
	}
	if !known {
		return out, nil
	}
	if n := installed + failed + superseded; n < expected && overtaken {
		ov, err := t.overtaken(ctx, ref.Name, dep)
		if err != nil {
			return out, err
		}
		if n+ov < expected {
			return out, nil
		}
	} else if n < expected {
		return out, nil
	}
	return t.Conclude(ctx, ref.Name, dep, false, out)
}

// reported is a deployment's nodes that reported: installed, failed or
// rolled back, superseded (neither: a newer deployment replaced the
// certificate before the node ran this one).
func reported(dep *inventory.Deployment) (installed, failed, superseded int) {
	installed, failed = dep.Reported()
	return installed, failed, dep.Counts[inventory.NodeSuperseded]
}

// overtaken is how many of the nodes a deployment sent to by instance id
// a newer deployment took over before they reported here: the
// deployment's pending count (its listed nodes that have not reported while
// pending in it) less those still pending in it. They will not report
// here; the newer deployment tracks them. A command sent to tag targets
// lists no nodes: 0.
func (t *Tracker) overtaken(ctx context.Context, name string, dep *inventory.Deployment) (int, error) {
	if len(dep.InstanceIDs) == 0 || dep.Counts[inventory.NodePending] <= 0 {
		return 0, nil
	}
	d, err := t.inv.Describe(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("read the nodes of deployment %s of %s: %w", dep.ID, name, err)
	}
	still := 0
	for _, n := range d.Nodes {
		if n.DeploymentID == dep.ID && n.State == inventory.NodePending {
			still++
		}
	}
	return max(dep.Counts[inventory.NodePending]-still, 0), nil
}

// advance hands a finished deployment of a rollout to the rollout.
func (t *Tracker) advance(ctx context.Context, name string, dep *inventory.Deployment) error {
	if dep.RolloutID == "" || t.rollout == nil {
		return nil
	}
	if err := t.rollout.Advance(ctx, name); err != nil {
		return fmt.Errorf("advance rollout %s of %s: %w", dep.RolloutID, name, err)
	}
	return nil
}

// expectedNodes is how many nodes a deployment waits for: SSM's target
// count once the command finished, else the instances it was sent to by id;
// unknown for tag targets whose command has not finished.
func expectedNodes(dep *inventory.Deployment) (int, bool) {
	switch {
	case dep.CommandStatus != "":
		return dep.Expected, true
	case len(dep.InstanceIDs) > 0:
		return len(dep.InstanceIDs), true
	}
	return 0, false
}

// Conclude sets a deployment's outcome from its counts and alerts on
// failures. Superseded nodes (a newer deployment replaced the certificate
// before they ran this one) are neither installed nor failed: a deployment
// of only superseded nodes ends superseded, without an alert. Nodes a
// newer deployment took over before they reported here count as
// superseded too. The sweep calls it with timedOut for deployments stuck
// past their timeout: other nodes that never reported count as failed, and
// when their number is unknown (SSM never finished the command) at least
// one did.
func (t *Tracker) Conclude(ctx context.Context, name string, dep *inventory.Deployment, timedOut bool, out Outcome) (Outcome, error) {
	installed, failed, superseded := reported(dep)
	expected, known := expectedNodes(dep)
	if known && installed+failed+superseded < expected {
		ov, err := t.overtaken(ctx, name, dep)
		if err != nil {
			return out, err
		}
		superseded += ov
	}
	if timedOut {
		if !known {
			failed = max(failed, 1)
		} else if missing := expected - installed - failed - superseded; missing > 0 {
			failed += missing
		}
	}
	outcome := inventory.OutcomeSucceeded
	switch {
	case failed > 0 && installed > 0:
		outcome = inventory.OutcomePartial
	case failed > 0:
		outcome = inventory.OutcomeFailed
	case installed == 0 && superseded > 0:
		outcome = inventory.OutcomeSuperseded
	case installed == 0:
		outcome = inventory.OutcomeFailed
	}
	won, err := t.inv.FinishDeployment(ctx, name, dep.ID, outcome)
	if err != nil {
		return out, err
	}
	if !won {
		return out, t.advance(ctx, name, dep)
	}
	out.Status, out.Deployment = StatusFinished, outcome
	slog.InfoContext(ctx, "deployment finished", "name", name, "deploymentId", dep.ID, "outcome", outcome,
		"installed", installed, "failed", failed, "superseded", superseded, "trigger", dep.Trigger)
	t.metrics.Emit(map[string]string{"Name": name}, metrics.Values{
		"DeploymentsFinished": 1, "DeploymentFailures": float64(failed), "NodesInstalledByDeployment": float64(installed),
	})
	t.emitFinished(ctx, name, dep, outcome, installed, failed, superseded, timedOut)
	t.probeAfter(ctx, name, dep, outcome)
	if dep.RolloutID != "" {
		// A rollout's deployment: the rollout alerts (once, on halt; on
		// done when NotifySuccess), not each of its commands.
		return out, t.advance(ctx, name, dep)
	}
	quiet := outcome == inventory.OutcomeSuperseded || outcome == inventory.OutcomeSucceeded && !t.cfg.NotifySuccess
	if quiet && len(dep.Dropped) == 0 {
		// Superseded: nothing failed, and the newer deployment that
		// replaced this one reports for itself. A deployment that left
		// out nodes gone alerts whatever its outcome.
		return out, nil
	}
	a, err := t.deploymentAlert(ctx, name, dep, outcome, installed, failed, timedOut)
	if err != nil {
		return out, err
	}
	// The outcome is written; a failed publish must not be retried into a
	// second finish, so it is logged, not returned.
	id, err := t.alerts.Publish(ctx, a)
	if err != nil {
		slog.ErrorContext(ctx, "deployment alert not published", "name", name, "deploymentId", dep.ID, "error", err)
		return out, nil
	}
	out.AlertID = id
	return out, nil
}

// deploymentAlert gathers what the inventory holds about a finished
// deployment; notify composes the words.
func (t *Tracker) deploymentAlert(ctx context.Context, name string, dep *inventory.Deployment, outcome inventory.Outcome, installed, failed int, timedOut bool) (notify.Alert, error) {
	d, err := t.inv.Describe(ctx, name)
	if err != nil {
		return notify.Alert{}, err
	}
	in := notify.Deployment{
		Name: name, DeploymentID: dep.ID, Trigger: dep.Trigger, Serial: dep.Serial, CommandID: dep.CommandID,
		CommandStatus: dep.CommandStatus, Outcome: outcome, Installed: installed, Failed: failed, TimedOut: timedOut,
		Dropped: dep.Dropped,
	}
	if d.Cert != nil {
		in.CertificateARN, in.Domain, in.NotAfter = d.Cert.CertificateARN, d.Cert.DomainName, d.Cert.NotAfter
	}
	for _, n := range d.Nodes {
		if n.DeploymentID == dep.ID && n.State != inventory.NodeInstalled && n.State != inventory.NodeSuperseded {
			in.Nodes = append(in.Nodes, notify.Node{InstanceID: n.InstanceID, State: string(n.State), Serial: n.Serial, Error: n.Error})
		}
	}
	return notify.DeploymentFinished(in), nil
}

// summary makes an error summary safe to store and show: one line, no
// control characters, at most 256 bytes (events.Clean).
func summary(s string) string { return events.Clean(strings.TrimSpace(s), 256) }

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
