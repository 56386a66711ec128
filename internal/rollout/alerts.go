package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
)

// Alert kinds the rollout publishes (SNS attribute "kind").
const (
	KindApproval   = "rollout-awaiting-approval"
	KindReminder   = "rollout-approval-reminder"
	KindOverride   = "rollout-expiry-override"
	KindHalted     = "rollout-halted"
	KindDone       = "rollout-done"
	KindSuperseded = "rollout-superseded"
)

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// base is an alert about c's rollout r, listing the name's nodes (nil:
// they were not read).
func base(c *inventory.Cert, r *inventory.Rollout, nodes []notify.Node) notify.Alert {
	n := notify.Name{Name: c.Name, Serial: c.Serial, Targets: notify.TargetsText(c.Targets), Nodes: nodes, NodesUnknown: nodes == nil}
	return notify.Alert{CertificateARN: r.CertificateARN, Domain: c.DomainName, NotAfter: stamp(r.OldNotAfter), Names: []notify.Name{n}}
}

func (e *Engine) approvalAlert(c *inventory.Cert, r *inventory.Rollout, nodes []notify.Node, reminder bool) notify.Alert {
	a := base(c, r, nodes)
	a.Kind, a.Title = KindApproval, c.Name+": renewal awaits approval"
	if reminder {
		a.Kind, a.Title = KindReminder, c.Name+": renewal still awaits approval"
	}
	a.Facts = []string{
		fmt.Sprintf("Rollout %s of serial %s (trigger %s) waits for an approval; nothing of it is exported or sent until then (nodes that join meanwhile get the certificate the others have from the daily sweep).", r.ID, r.Serial, r.Trigger),
	}
	if !r.GoBy.IsZero() {
		a.Facts = append(a.Facts, fmt.Sprintf("The certificate on the nodes expires %s: at %s (the safety margin) it deploys on its own, approved or not.",
			stamp(r.OldNotAfter), stamp(r.GoBy)))
	}
	a.Advice = []string{
		fmt.Sprintf("Approve with `certferry approve %s` or POST /certificates/%s/approvals (IAM-authorized).", c.Name, c.Name),
		"Maintenance windows, if the name has any, still apply after the approval.",
	}
	return a
}

func (e *Engine) overrideAlert(c *inventory.Cert, r *inventory.Rollout, nodes []notify.Node) notify.Alert {
	a := base(c, r, nodes)
	a.Kind, a.Title = KindOverride, c.Name+": renewal deployed now (expiry override)"
	a.Facts = []string{fmt.Sprintf("Rollout %s of serial %s (trigger %s).", r.ID, r.Serial, r.Trigger), r.Reason}
	a.Advice = []string{fmt.Sprintf("Follow it with `certferry status %s`.", c.Name)}
	return a
}

func (e *Engine) haltAlert(c *inventory.Cert, r *inventory.Rollout, failed []string, nodes map[string]inventory.Node) notify.Alert {
	a := base(c, r, []notify.Node{})
	a.Kind, a.Title = KindHalted, fmt.Sprintf("%s: rollout halted at wave %d of %d", c.Name, r.Wave, len(r.Waves))
	rest := len(r.Nodes) - r.Waves[max(r.Wave-1, 0)]
	a.Facts = []string{r.Reason,
		fmt.Sprintf("Rollout %s of serial %s stopped; %d node(s) of later waves stay on their current certificate.", r.ID, r.Serial, rest)}
	if !r.OldNotAfter.IsZero() {
		a.Facts = append(a.Facts, "The certificate they hold expires "+stamp(r.OldNotAfter)+".")
	}
	for _, id := range failed {
		n := nodes[id]
		why := n.Error
		if why == "" && n.Unverified {
			why = "installed but not verified"
		}
		a.Names[0].Nodes = append(a.Names[0].Nodes, notify.Node{InstanceID: id, State: string(n.State), Serial: n.Serial, Error: why})
	}
	a.Names[0].Which = "that did not install"
	a.Advice = []string{
		fmt.Sprintf("Find the cause on the failed node(s) (`certferry status %s`), then resume from wave %d with `certferry redeploy %s`.", c.Name, r.Wave, c.Name),
	}
	if alarm := stopAlarm(c); alarm != "" && cancelled(failed, nodes) {
		// SSM cancels a command whose alarm is in ALARM or cannot be read
		// (IgnorePollAlarmFailure false: "AlarmConfiguration", Systems
		// Manager API Reference); a misspelt or deleted alarm cancels
		// every command of the name, so the node is not where the cause is.
		a.Advice = []string{
			fmt.Sprintf("SSM cancelled the command: the name's stop alarm %s was in ALARM, or SSM could not read it (a misspelt or deleted alarm cancels every command of the name). "+
				"Check it with `aws cloudwatch describe-alarms --alarm-names %s`; when it fired, find why, and once it is OK resume from wave %d with `certferry redeploy %s`; "+
				"when it does not exist, create it or onboard the name again without rollout.stopAlarm, then `certferry redeploy %s`.",
				alarm, alarm, r.Wave, c.Name, c.Name),
		}
	}
	a.Advice = append(a.Advice,
		"A halted rollout does not continue on its own, even near expiry; the daily sweep reports it as a risk.")
	return a
}

func stopAlarm(c *inventory.Cert) string {
	if c.Rollout == nil {
		return ""
	}
	return c.Rollout.StopAlarm
}

// cancelled reports whether SSM cancelled a failed node's invocation (the
// tracker records "SSM reports Cancelled").
func cancelled(failed []string, nodes map[string]inventory.Node) bool {
	for _, id := range failed {
		if strings.HasSuffix(nodes[id].Error, "Cancelled") {
			return true
		}
	}
	return false
}

func (e *Engine) doneAlert(c *inventory.Cert, r *inventory.Rollout, nodes []notify.Node) notify.Alert {
	a := base(c, r, nodes)
	a.Kind, a.Title = KindDone, c.Name+": rollout done"
	a.Facts = []string{fmt.Sprintf("Rollout %s of serial %s: %s.", r.ID, r.Serial, r.Reason)}
	if len(r.Dropped) > 0 {
		a.Facts = append(a.Facts, droppedFact(r.Dropped))
	}
	return a
}

// droppedFact says which nodes a rollout went on without (said once: in
// the alert of the rollout's end).
func droppedFact(ids []string) string {
	return fmt.Sprintf("%d node(s) left the fleet during the rollout (no longer managed by SSM, or no longer online when a halted wave resumed) and were dropped from it: %s. "+
		"A node that comes back gets the certificate from the daily sweep.", len(ids), strings.Join(clip(ids, 20), ", "))
}

func supersededAlert(r *inventory.Rollout, serial string) notify.Alert {
	a := notify.Alert{
		Kind: KindSuperseded, Title: r.Name + ": rollout superseded by a newer serial",
		CertificateARN: r.CertificateARN,
		Facts: []string{fmt.Sprintf("Rollout %s (%s, wave %d of %d) stopped: ACM holds a newer serial %s; a new rollout of it starts from wave 1 (behind the name's gates, if any).",
			r.ID, r.Phase, r.Wave, len(r.Waves), serial)},
		Names:  []notify.Name{{Name: r.Name, Serial: r.Serial}},
		Advice: []string{fmt.Sprintf("Follow the new rollout with `certferry status %s`.", r.Name)},
	}
	if serial == r.Serial {
		// An onboarding that changed the spec: same certificate, new plan.
		a.Title = r.Name + ": rollout replaced by a new rollout of the same serial"
		a.Facts = []string{fmt.Sprintf("Rollout %s (%s, wave %d of %d) stopped: the name was onboarded again with a changed spec; the same serial %s deploys under the new spec, from wave 1.",
			r.ID, r.Phase, r.Wave, len(r.Waves), serial)}
	}
	return a
}

// alertNodes lists name's nodes for an alert; nil when they cannot be read
// (the alert says so rather than "none").
func (e *Engine) alertNodes(ctx context.Context, name string) []notify.Node {
	d, err := e.inv.Describe(ctx, name)
	if err != nil {
		slog.WarnContext(ctx, "alert without node list", "name", name, "error", err)
		return nil
	}
	out := []notify.Node{}
	for _, n := range d.Nodes {
		out = append(out, notify.Node{InstanceID: n.InstanceID, State: string(n.State), Serial: n.Serial, Error: n.Error})
	}
	return out
}
