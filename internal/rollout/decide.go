// Package rollout runs a name's deployments in waves, behind gates:
// maintenance windows, approvals and the expiry override (issue 14,
// ROLLOUT.md §4–5). What happens next is decided by one pure function,
// Decide, from the ROLLOUT item, the nodes' states and the time; the
// Engine reads the state, applies the decision with a write conditional
// on the ROLLOUT item's version, and only the winner of that write acts
// (sends, schedules, alerts). Every trigger (a renewal, a tracker
// conclusion, a schedule, the sweep, an approval) re-evaluates the same
// state, so duplicate, late and out-of-order deliveries change nothing
// twice.
package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/schedule"
	"github.com/certferry/certferry/internal/spec"
)

// Step kinds (ROLLOUT.md §3).
const (
	StepWindow   schedule.StepKind = "window"
	StepPause    schedule.StepKind = "pause"
	StepDeadline schedule.StepKind = "deadline"
	StepRemind   schedule.StepKind = "remind"
)

// RemindBefore is how long before the expiry override an unanswered
// approval is reminded of (when the rollout started later than that, the
// reminder comes halfway between its start and the override).
const RemindBefore = 24 * time.Hour

// WaveSizes turns cumulative shares ("1" nodes, "25%" of the nodes) into
// cumulative node counts over n nodes: a percentage rounds up, a count
// larger than n is n, a share that adds no node to the previous wave is
// skipped, and the last wave takes every node. "1", "50%", "100%" over 4
// nodes gives 1, 2, 4.
func WaveSizes(shares []string, n int) ([]int, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []int
	for i, s := range shares {
		w, err := spec.ParseWave(s)
		if err != nil {
			return nil, fmt.Errorf("rollout.waves[%d]: %q %w", i, s, err)
		}
		c := w.Of(n)
		if len(out) > 0 && c <= out[len(out)-1] {
			continue // adds no node
		}
		out = append(out, c)
	}
	if len(out) == 0 || out[len(out)-1] < n {
		out = append(out, n)
	}
	return out, nil
}

// Gates are what the spec and the clock say about a rollout that has not
// gone yet (the Engine computes them; Decide only reads them).
type Gates struct {
	Approval   bool      // the spec requires an approval
	Windowed   bool      // the spec has maintenance windows
	WindowOpen bool      // now lies in one of them
	WindowNext time.Time // else: when the next one opens
	Pause      time.Duration
}

// Input is everything Decide looks at.
type Input struct {
	Rollout inventory.Rollout
	// Nodes are the name's NODE items by instance id; Sent tells which
	// deployment ids belong to this rollout (a failure counts only for a
	// send of this rollout).
	Nodes map[string]inventory.Node
	Sent  map[string]bool
	Gates Gates
	Now   time.Time
	// waveSent: the deployment ids of this rollout's current wave (the
	// Engine's repair of unsent nodes).
	waveSent map[string]bool
}

// Kind is what Decide asks the Engine to do.
type Kind string

// Kinds of Action.
const (
	ActNone   Kind = "none"   // nothing changes
	ActWait   Kind = "wait"   // wait for a gate (Phase, NotBefore, Steps)
	ActRemind Kind = "remind" // alert again about an unanswered approval
	ActSend   Kind = "send"   // send wave Wave (0: one command to the targets)
	ActPause  Kind = "pause"  // the wave is done; the next goes at NotBefore
	ActHalt   Kind = "halt"   // a node of the wave failed: stop here
	ActDone   Kind = "done"   // every wave is done
)

// Action is Decide's answer.
type Action struct {
	Kind      Kind
	Phase     inventory.RolloutPhase // the phase after the action
	Wave      int                    // ActSend: the wave to send (1-based; 0 when not waved)
	NotBefore time.Time
	Reason    string
	Steps     []schedule.Step // one-time schedules to create
	Failed    []string        // ActHalt: the wave's nodes that failed
}

// RemindAt is when an unanswered approval is reminded of: RemindBefore
// before the override, or halfway there when that is before the rollout
// began; in UTC, to the second (as schedules keep it).
func RemindAt(r inventory.Rollout) time.Time {
	if r.GoBy.IsZero() {
		return time.Time{}
	}
	at := r.GoBy.Add(-RemindBefore)
	if !r.CreatedAt.IsZero() && !at.After(r.CreatedAt) {
		at = r.CreatedAt.Add(r.GoBy.Sub(r.CreatedAt) / 2)
	}
	return at.UTC().Truncate(time.Second) // schedules are kept to the second
}

// Decide is the rollout's next move. It is pure: the same input gives the
// same action.
func Decide(in Input) Action {
	r, now := in.Rollout, in.Now
	switch {
	case r.Phase.Final(), r.Phase == inventory.PhaseHalted:
		return Action{Kind: ActNone, Phase: r.Phase}
	case r.Phase == "" || r.Phase.Waiting():
		return gate(in)
	case r.Phase == inventory.PhasePaused:
		if now.Before(r.NotBefore) {
			return Action{Kind: ActNone, Phase: r.Phase}
		}
		return Action{Kind: ActSend, Phase: inventory.PhaseRolling, Wave: r.Wave + 1,
			Reason: fmt.Sprintf("the pause after wave %d ended", r.Wave)}
	}
	// Rolling.
	if len(r.Waves) == 0 || r.Wave < 1 {
		return Action{Kind: ActNone, Phase: r.Phase}
	}
	var failed, pending []string
	for _, id := range r.WaveNodes(r.Wave) {
		n, ok := in.Nodes[id]
		switch {
		case !ok:
			pending = append(pending, id)
		case n.State == inventory.NodeInstalled && n.Serial == r.Serial && !n.Unverified:
		case !in.Sent[n.DeploymentID]:
			pending = append(pending, id) // not reported for a send of this rollout yet
		case n.State == inventory.NodeFailed, n.State == inventory.NodeRolledBack,
			n.State == inventory.NodeInstalled && n.Unverified:
			failed = append(failed, id)
		default:
			pending = append(pending, id)
		}
	}
	switch {
	case len(failed) > 0:
		return Action{Kind: ActHalt, Phase: inventory.PhaseHalted, Failed: failed,
			Reason: fmt.Sprintf("wave %d of %d: %d node(s) did not install and verify serial %s (%s)",
				r.Wave, len(r.Waves), len(failed), r.Serial, strings.Join(clip(failed, 10), ", "))}
	case len(pending) > 0:
		return Action{Kind: ActNone, Phase: r.Phase}
	case r.Wave >= len(r.Waves):
		return Action{Kind: ActDone, Phase: inventory.PhaseDone,
			Reason: fmt.Sprintf("all %d waves installed and verified serial %s on %d node(s)", len(r.Waves), r.Serial, len(r.Nodes))}
	case in.Gates.Pause > 0:
		at := now.Add(in.Gates.Pause).UTC().Truncate(time.Second)
		return Action{Kind: ActPause, Phase: inventory.PhasePaused, NotBefore: at,
			Reason: fmt.Sprintf("wave %d done; wave %d goes after the pause, at %s", r.Wave, r.Wave+1, at.Format(time.RFC3339)),
			Steps:  []schedule.Step{{Name: r.Name, RolloutID: r.ID, Kind: StepPause, At: at}}}
	}
	return Action{Kind: ActSend, Phase: inventory.PhaseRolling, Wave: r.Wave + 1,
		Reason: fmt.Sprintf("wave %d done", r.Wave)}
}

// gate decides for a rollout that has sent nothing yet: the expiry
// override first, then the approval, then the window.
func gate(in Input) Action {
	r, g, now := in.Rollout, in.Gates, in.Now
	first := 0
	if len(r.Waves) > 0 {
		first = 1
	}
	if !r.GoBy.IsZero() && !now.Before(r.GoBy) && (g.Approval && r.ApprovedAt.IsZero() || g.Windowed && !g.WindowOpen) {
		return Action{Kind: ActSend, Phase: inventory.PhaseRolling, Wave: first, Reason: overrideReason(r, g)}
	}
	deadline := []schedule.Step{}
	if !r.GoBy.IsZero() {
		deadline = append(deadline, schedule.Step{Name: r.Name, RolloutID: r.ID, Kind: StepDeadline, At: r.GoBy})
	}
	if g.Approval && r.ApprovedAt.IsZero() {
		if r.Phase == inventory.PhaseAwaitingApproval {
			if remind := RemindAt(r); r.RemindedAt.IsZero() && !remind.IsZero() && !now.Before(remind) {
				return Action{Kind: ActRemind, Phase: r.Phase,
					Reason: fmt.Sprintf("still awaiting approval; it deploys on its own at %s (expiry override)", r.GoBy.Format(time.RFC3339))}
			}
			return Action{Kind: ActNone, Phase: r.Phase}
		}
		steps := deadline
		if remind := RemindAt(r); !remind.IsZero() && remind.After(now) {
			steps = append([]schedule.Step{{Name: r.Name, RolloutID: r.ID, Kind: StepRemind, At: remind}}, steps...)
		}
		return Action{Kind: ActWait, Phase: inventory.PhaseAwaitingApproval, Steps: steps, Reason: "awaiting approval"}
	}
	if g.Windowed && !g.WindowOpen {
		if r.Phase == inventory.PhaseWaitingWindow && r.NotBefore.Equal(g.WindowNext) {
			return Action{Kind: ActNone, Phase: r.Phase}
		}
		steps := append([]schedule.Step{{Name: r.Name, RolloutID: r.ID, Kind: StepWindow, At: g.WindowNext}}, deadline...)
		return Action{Kind: ActWait, Phase: inventory.PhaseWaitingWindow, NotBefore: g.WindowNext, Steps: steps,
			Reason: "waiting for the maintenance window opening at " + g.WindowNext.Format(time.RFC3339)}
	}
	reason := "no gate"
	switch {
	case g.Windowed && !r.ApprovedAt.IsZero():
		reason = "approved by " + r.ApprovedBy + "; the maintenance window is open"
	case g.Windowed:
		reason = "the maintenance window is open"
	case !r.ApprovedAt.IsZero():
		reason = "approved by " + r.ApprovedBy
	}
	return Action{Kind: ActSend, Phase: inventory.PhaseRolling, Wave: first, Reason: reason}
}

func overrideReason(r inventory.Rollout, g Gates) string {
	var held []string
	if g.Approval && r.ApprovedAt.IsZero() {
		held = append(held, "without approval")
	}
	if g.Windowed && !g.WindowOpen {
		held = append(held, "outside the maintenance window")
	}
	on := "the certificate on the nodes"
	if !r.OldNotAfter.IsZero() {
		on += " expires " + r.OldNotAfter.UTC().Format(time.RFC3339) + ","
	}
	return fmt.Sprintf("expiry override: %s within the safety margin (from %s); deploying now %s",
		on, r.GoBy.UTC().Format(time.RFC3339), strings.Join(held, " and "))
}

func clip(xs []string, n int) []string {
	if len(xs) <= n {
		return xs
	}
	return append(slices.Clone(xs[:n]), fmt.Sprintf("… %d more", len(xs)-n))
}
