// Package renewal reacts to ACM and AWS Health events: a renewed
// certificate is deployed to every name bound to it, and a renewal that
// needs a person becomes one SNS alert. Each event is acted upon once: an
// EVENT mark with a lease is put conditionally before acting, marked done
// after success and released on failure. A delivery that finds the mark
// done is acknowledged as a duplicate; one that finds it still processing
// fails (ErrInProgress) so that Lambda retries it, since the other handling
// may yet fail. Two different events for the same renewal meet at the
// pipeline: a name another run holds answers ErrBusy, which fails the
// delivery too (retried), never "unchanged" on the strength of a run that
// may still fail.
package renewal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/schedule"
)

// Dependencies, each the narrowest surface the handler calls.
type (
	eventMarks interface {
		MarkEvent(ctx context.Context, id, kind string, until time.Time, keep time.Duration) error
		FinishEvent(ctx context.Context, id string) error
		ReleaseEvent(ctx context.Context, id string) error
		GetEvent(ctx context.Context, id string) (*inventory.EventMark, error)
	}
	inventoryReader interface {
		NamesByARN(ctx context.Context, arn string) ([]string, error)
		Describe(ctx context.Context, name string) (*inventory.Detail, error)
	}
	// renewer deploys renewals through the rollout engine: gates, then
	// waves; a spec without them is today's pipeline.Sync.
	renewer interface {
		Renew(ctx context.Context, name string, trigger inventory.Trigger) (rollout.Result, error)
		Step(ctx context.Context, st schedule.Step) (rollout.Result, error)
		Halt(ctx context.Context, name, reason string) error
	}
	describer interface {
		Describe(ctx context.Context, arn string) (certs.Info, error)
	}
	publisher interface {
		Publish(ctx context.Context, a notify.Alert) (string, error)
	}
)

var (
	_ eventMarks      = (*inventory.Store)(nil)
	_ inventoryReader = (*inventory.Store)(nil)
	_ renewer         = (*rollout.Engine)(nil)
	_ describer       = (*certs.Client)(nil)
	_ publisher       = (*notify.Publisher)(nil)
)

// ErrInProgress fails a delivery of an event another invocation is still
// handling, so that Lambda retries it rather than acknowledging it.
var ErrInProgress = errors.New("event in progress")

func markState(m *inventory.EventMark) string {
	if m == nil {
		return "gone"
	}
	return string(m.State)
}

// KeepMarks is how long an event's dedupe mark outlives it. EventBridge
// retries for up to 24 hours and Lambda's async queue holds events for up to
// 6 hours; a week leaves a wide margin.
const KeepMarks = 7 * 24 * time.Hour

// Handler handles one EventBridge event per invocation.
type Handler struct {
	marks  eventMarks
	inv    inventoryReader
	deploy renewer
	acm    describer
	alerts publisher
	now    func() time.Time
	risk   atRisk     // WithAtRisk (atrisk.go)
	bus    busEmitter // WithEvents (atrisk.go); nil sends none
}

// NewHandler wires a Handler.
func NewHandler(marks eventMarks, inv inventoryReader, deploy renewer, acm describer, alerts publisher) *Handler {
	return &Handler{marks: marks, inv: inv, deploy: deploy, acm: acm, alerts: alerts, now: time.Now}
}

// Status is what the handler did with one event: its answer's status.
type Status string

// Statuses of an Outcome.
const (
	StatusDone      Status = "done"      // handled: deployed, found unchanged or blocked, alerted
	StatusDuplicate Status = "duplicate" // already handled (its mark is done): nothing changed
	StatusIgnored   Status = "ignored"   // not a kind certferry handles, or no name bound to the certificate
	StatusBusy      Status = "busy"      // another invocation is handling it: the error makes Lambda retry
	StatusRejected  Status = "rejected"  // a malformed event (dead-letter queue once retries are spent)
)

// Deployed is one name the event deployed.
type Deployed struct {
	Name         string `json:"name"`
	Serial       string `json:"serial"`
	DeploymentID string `json:"deploymentId"`
	CommandID    string `json:"commandId"`
	// The name's rollout, when it has one: its phase (waiting_window,
	// awaiting_approval: nothing sent yet), the wave sent, why.
	RolloutID string `json:"rolloutId,omitempty"`
	Phase     string `json:"phase,omitempty"`
	Wave      int    `json:"wave,omitempty"`
	Waves     int    `json:"waves,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

func deployed(name string, res rollout.Result) Deployed {
	return Deployed{Name: name, Serial: res.Serial, DeploymentID: res.DeploymentID, CommandID: res.CommandID,
		RolloutID: res.RolloutID, Phase: string(res.Phase), Wave: res.Wave, Waves: res.Waves, Reason: res.Reason}
}

// Outcome is what the handler did with an event (the Lambda's answer, also
// printed by `certferry invoke renewal`).
type Outcome struct {
	EventID   string     `json:"eventId,omitempty"`
	Kind      string     `json:"kind,omitempty"`
	Status    Status     `json:"status"`
	Reason    string     `json:"reason,omitempty"`
	Deployed  []Deployed `json:"deployed,omitempty"`
	Unchanged []string   `json:"unchanged,omitempty"`
	Blocked   []string   `json:"blocked,omitempty"`
	Alerts    []string   `json:"alertMessageIds,omitempty"`
}

// Handle acts on one event. It returns an error only when the event is
// malformed or an AWS call failed; Lambda then retries the event and, when
// the retries are spent, sends it to the on-failure destination (SQS).
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (Outcome, error) {
	ev, err := events.Parse(raw)
	if err != nil {
		slog.ErrorContext(ctx, "event rejected; it goes to the dead-letter queue once Lambda's retries are spent",
			"error", err, "bytes", len(raw))
		return Outcome{Status: StatusRejected, Reason: err.Error()}, err
	}
	log := slog.With("eventId", ev.ID, "kind", ev.Kind, "detailType", ev.DetailType)
	out := Outcome{EventID: ev.ID, Kind: string(ev.Kind)}
	if ev.Kind == events.KindRolloutStep && ev.Step != nil {
		// A fired rollout schedule names no certificate: the engine steps
		// the rollout it names.
		return h.HandleStep(ctx, ev.ID, *ev.Step)
	}
	if ev.Kind == events.KindUnknown {
		log.InfoContext(ctx, "event kind not handled by certferry; acknowledged", "source", ev.Source)
		out.Status, out.Reason = StatusIgnored, "event kind not handled"
		return out, nil
	}

	bound := map[string][]string{}
	total := 0
	for _, arn := range ev.CertificateARNs {
		names, err := h.inv.NamesByARN(ctx, arn)
		if err != nil {
			return out, fmt.Errorf("event %s: %w", ev.ID, err)
		}
		bound[arn] = names
		total += len(names)
	}
	if total == 0 {
		log.InfoContext(ctx, "certificate not managed by certferry; acknowledged", "certificateArns", ev.CertificateARNs)
		out.Status, out.Reason = StatusIgnored, "no certferry name is bound to the certificate"
		return out, nil
	}

	err = h.marks.MarkEvent(ctx, ev.ID, string(ev.Kind), h.leaseEnd(ctx), KeepMarks)
	if errors.Is(err, inventory.ErrConflict) {
		// Only a done mark is a duplicate. A processing mark is another
		// invocation at work, or a failed one whose release did not go
		// through: acknowledging would lose the event if that handling
		// fails, so this delivery fails and Lambda retries it.
		m, gerr := h.marks.GetEvent(ctx, ev.ID)
		if gerr != nil {
			return out, fmt.Errorf("event %s: %w", ev.ID, gerr)
		}
		if m == nil || m.State != inventory.EventDone {
			log.InfoContext(ctx, "event being handled by another invocation; this delivery is retried")
			out.Status = StatusBusy
			return out, fmt.Errorf("event %s is being handled by another invocation (mark %s); retry: %w", ev.ID, markState(m), ErrInProgress)
		}
		log.InfoContext(ctx, "event already handled; acknowledged")
		out.Status = StatusDuplicate
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("event %s: %w", ev.ID, err)
	}

	switch {
	case ev.Kind == events.KindRevoked:
		err = h.revoked(ctx, log, ev, bound, &out)
	case ev.Deploys():
		err = h.sync(ctx, log, ev, bound, &out)
	default:
		err = h.alert(ctx, log, ev, bound, &out)
	}
	if err != nil {
		if rerr := h.marks.ReleaseEvent(context.WithoutCancel(ctx), ev.ID); rerr != nil {
			log.WarnContext(ctx, "event mark not released; it lapses at the end of its lease", "error", rerr)
		}
		log.ErrorContext(ctx, "event not fully handled; Lambda retries it", "error", err)
		return out, err
	}
	if ferr := h.marks.FinishEvent(context.WithoutCancel(ctx), ev.ID); ferr != nil {
		log.WarnContext(ctx, "event handled but not marked done; its mark lapses at the end of its lease", "error", ferr)
	}
	out.Status = StatusDone
	log.InfoContext(ctx, "event handled", "deployed", len(out.Deployed), "unchanged", len(out.Unchanged),
		"blocked", len(out.Blocked), "alerts", len(out.Alerts))
	return out, nil
}

// HandleStep acts on a fired rollout schedule (a "certferry Rollout Step"
// event, id its schedule's name) once, under the same dedupe mark as any
// event: the engine re-checks everything, so a late or repeated step
// changes nothing twice.
func (h *Handler) HandleStep(ctx context.Context, id string, st schedule.Step) (Outcome, error) {
	out := Outcome{EventID: id, Kind: "rollout-step"}
	log := slog.With("eventId", id, "name", st.Name, "rolloutId", st.RolloutID, "step", st.Kind)
	err := h.marks.MarkEvent(ctx, id, out.Kind, h.leaseEnd(ctx), KeepMarks)
	if errors.Is(err, inventory.ErrConflict) {
		m, gerr := h.marks.GetEvent(ctx, id)
		if gerr != nil {
			return out, fmt.Errorf("step %s: %w", id, gerr)
		}
		if m == nil || m.State != inventory.EventDone {
			out.Status = StatusBusy
			return out, fmt.Errorf("step %s is being handled by another invocation (mark %s); retry: %w", id, markState(m), ErrInProgress)
		}
		out.Status = StatusDuplicate
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("step %s: %w", id, err)
	}
	res, err := h.deploy.Step(ctx, st)
	if err != nil {
		if rerr := h.marks.ReleaseEvent(context.WithoutCancel(ctx), id); rerr != nil {
			log.WarnContext(ctx, "event mark not released; it lapses at the end of its lease", "error", rerr)
		}
		log.ErrorContext(ctx, "rollout step not handled; Lambda retries it", "error", err)
		return out, err
	}
	if ferr := h.marks.FinishEvent(context.WithoutCancel(ctx), id); ferr != nil {
		log.WarnContext(ctx, "step handled but not marked done; its mark lapses at the end of its lease", "error", ferr)
	}
	out.Status = StatusDone
	if res.RolloutID != "" {
		out.Deployed = append(out.Deployed, deployed(st.Name, res))
	} else {
		out.Reason = res.Reason
	}
	log.InfoContext(ctx, "rollout step handled", "phase", res.Phase, "wave", res.Wave)
	return out, nil
}

// leaseEnd is when this invocation's mark stops blocking redeliveries: just
// after the invocation's own deadline, so a retry after a crash or timeout
// (Lambda retries no sooner than a minute later) acts again.
func (h *Handler) leaseEnd(ctx context.Context) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl.Add(30 * time.Second)
	}
	return h.now().Add(5 * time.Minute)
}

// sync runs the pipeline's serial check for every bound name. Names that
// cannot be deployed for a lasting reason (certificate gone, not issued, not
// exportable) are reported in one alert; anything else is returned so that
// Lambda retries the event.
func (h *Handler) sync(ctx context.Context, log *slog.Logger, ev events.Event, bound map[string][]string, out *Outcome) error {
	var errs []error
	blocked := map[string][]string{} // arn → "name: reason"
	for _, arn := range ev.CertificateARNs {
		for _, name := range bound[arn] {
			res, err := h.deploy.Renew(ctx, name, ev.Trigger())
			switch {
			case err == nil && res.Unchanged:
				out.Unchanged = append(out.Unchanged, name)
			case err == nil:
				out.Deployed = append(out.Deployed, deployed(name, res))
				log.InfoContext(ctx, "renewed certificate deployed", "name", name, "serial", res.Serial, "commandId", res.CommandID,
					"rolloutId", res.RolloutID, "phase", res.Phase, "wave", res.Wave)
			case errors.Is(err, pipeline.ErrUnknownName):
				log.InfoContext(ctx, "name was deleted meanwhile; skipped", "name", name)
			case errors.Is(err, certs.ErrNotFound), errors.Is(err, certs.ErrNotIssued), errors.Is(err, certs.ErrNotExportable),
				errors.Is(err, pipeline.ErrTargetsGone):
				log.ErrorContext(ctx, "renewed certificate cannot be deployed", "name", name, "error", err)
				out.Blocked = append(out.Blocked, name)
				blocked[arn] = append(blocked[arn], name+": "+err.Error())
			default:
				errs = append(errs, fmt.Errorf("deploy %s: %w", name, err))
			}
		}
	}
	if len(errs) > 0 {
		// The retry alerts on blocked names too; alerting now would send it twice.
		return errors.Join(errs...)
	}
	for _, arn := range ev.CertificateARNs {
		if len(blocked[arn]) == 0 {
			continue
		}
		a := notify.DeploymentBlocked(h.gather(ctx, ev, arn, bound[arn]), blocked[arn])
		id, err := h.alerts.Publish(ctx, a)
		if err != nil {
			return err
		}
		out.Alerts = append(out.Alerts, id)
	}
	return nil
}

// revoked handles "ACM Certificate Revoked". Revocation is permanent for
// the ARN and ACM then reports the certificate REVOKED, which the pipeline
// never deploys (Sync, redeploys and the sweep's resends all require
// ISSUED). Sync still runs for every bound name so that a newer serial ACM
// already holds goes out at once. Then one alert per certificate names the
// bound names, their nodes, and what to do.
func (h *Handler) revoked(ctx context.Context, log *slog.Logger, ev events.Event, bound map[string][]string, out *Outcome) error {
	var errs []error
	facts := map[string][]string{} // arn → what happened to each name
	for _, arn := range ev.CertificateARNs {
		for _, name := range bound[arn] {
			// Deployments of the revoked certificate stop (a rollout of it
			// halts); a newer serial ACM holds goes through Renew.
			if err := h.deploy.Halt(ctx, name, "certificate "+arn+" revoked"); err != nil {
				errs = append(errs, fmt.Errorf("halt rollout of %s: %w", name, err))
				continue
			}
			res, err := h.deploy.Renew(ctx, name, ev.Trigger())
			switch {
			case err == nil && !res.Unchanged:
				out.Deployed = append(out.Deployed, deployed(name, res))
				facts[arn] = append(facts[arn], fmt.Sprintf("%s: newer serial %s deployed (command %s)", name, res.Serial, res.CommandID))
				log.InfoContext(ctx, "newer certificate deployed after a revocation", "name", name, "serial", res.Serial, "commandId", res.CommandID)
			case err == nil:
				out.Unchanged = append(out.Unchanged, name)
				facts[arn] = append(facts[arn], fmt.Sprintf("%s: ACM reports the deployed serial %s as current; nothing deployed", name, res.Serial))
			case errors.Is(err, pipeline.ErrUnknownName):
				log.InfoContext(ctx, "name was deleted meanwhile; skipped", "name", name)
			case errors.Is(err, certs.ErrNotFound), errors.Is(err, certs.ErrNotIssued), errors.Is(err, certs.ErrNotExportable):
				out.Blocked = append(out.Blocked, name)
				facts[arn] = append(facts[arn], fmt.Sprintf("%s: not deployed (%v)", name, err))
			default:
				errs = append(errs, fmt.Errorf("deploy %s: %w", name, err))
			}
		}
	}
	// Every bound name is marked at risk and its deployments halted; a
	// revocation made through certferry's API marked them already and
	// alerted, so the event alerts only for names it marked itself or
	// deployed.
	needed := map[string]bool{}
	for _, arn := range ev.CertificateARNs {
		if len(bound[arn]) == 0 {
			continue
		}
		more, need, err := h.markRevoked(ctx, ev, arn)
		if err != nil {
			errs = append(errs, err)
		}
		facts[arn] = append(facts[arn], more...)
		needed[arn] = need
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // the retry alerts once, after deploying
	}
	for _, arn := range ev.CertificateARNs {
		if len(bound[arn]) == 0 || !needed[arn] && !deployedAny(out, bound[arn]) {
			continue
		}
		a := notify.ForEvent(h.gather(ctx, ev, arn, bound[arn]), facts[arn]...)
		id, err := h.alerts.Publish(ctx, a)
		if err != nil {
			return err
		}
		out.Alerts = append(out.Alerts, id)
		log.InfoContext(ctx, "revocation alert published", "certificateArn", arn, "messageId", id, "names", len(a.Names))
	}
	return nil
}

// alert publishes one message per certificate the event names.
func (h *Handler) alert(ctx context.Context, log *slog.Logger, ev events.Event, bound map[string][]string, out *Outcome) error {
	for _, arn := range ev.CertificateARNs {
		if len(bound[arn]) == 0 {
			continue
		}
		a := notify.ForEvent(h.gather(ctx, ev, arn, bound[arn]))
		id, err := h.alerts.Publish(ctx, a)
		if err != nil {
			return err
		}
		out.Alerts = append(out.Alerts, id)
		log.InfoContext(ctx, "alert published", "certificateArn", arn, "alertKind", a.Kind, "messageId", id, "names", len(a.Names))
	}
	return nil
}

// gather reads what ACM and the inventory know about arn and its names
// for an alert (notify composes the words). ACM or inventory read failures
// degrade the message; they do not stop it.
func (h *Handler) gather(ctx context.Context, ev events.Event, arn string, names []string) notify.CertEvent {
	info, err := h.acm.Describe(ctx, arn)
	if err != nil {
		slog.WarnContext(ctx, "alert without ACM details", "certificateArn", arn, "error", err)
		info = certs.Info{ARN: arn}
	}
	in := notify.CertEvent{ARN: arn, Event: ev, Info: info, Now: h.now()}
	for _, n := range names {
		d, err := h.inv.Describe(ctx, n)
		if err != nil {
			slog.WarnContext(ctx, "alert without node list", "name", n, "error", err)
			d = nil
		}
		in.Names = append(in.Names, notify.NameFrom(n, d))
	}
	return in
}
