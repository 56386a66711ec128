package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
)

// unmanagedChecker tells which instance ids SSM no longer manages
// (fleet.Resolver.Unmanaged: DescribeInstanceInformation asked one id at a
// time, as Resolve leaves such ids out). The engine's resolver has it in
// production; a resolver without it (a test's fixed list) cannot tell,
// and a refused wave command stays an error.
type unmanagedChecker interface {
	Unmanaged(ctx context.Context, ids []string) ([]string, error)
}

var _ unmanagedChecker = (*fleet.Resolver)(nil)

// drop takes the gone nodes out of r (dropNodes) and records them in
// r.Dropped; false, changing nothing, when no node would remain.
func drop(r *inventory.Rollout, gone map[string]bool) bool {
	if !dropNodes(r, gone) {
		return false
	}
	r.Dropped = appendNew(r.Dropped, slices.Sorted(maps.Keys(gone))...)
	return true
}

func appendNew(xs []string, ys ...string) []string {
	out := slices.Clone(xs)
	for _, y := range ys {
		if !slices.Contains(out, y) {
			out = append(out, y)
		}
	}
	return out
}

// goneHook is the wave send's pipeline.Wave.Gone: SSM refused a command of
// the wave with InvalidInstanceId, which fails the whole SendCommand
// ("SendCommand", Systems Manager API Reference) and does not say which
// id in a documented way. The refused ids are asked about one by one
// (DescribeInstanceInformation); the ones SSM no longer manages are
// dropped from the rollout with a write conditional on its version,
// before anything more is sent, so that a retry (the repair of the
// wave's unsent nodes) never sends to them again and sends the rest as
// this run does. *cur follows the rollout's writes.
//
// A wave left without nodes is skipped: the wave after it takes its place
// and goes at once (its nodes have no command: WaveSentAt is cleared so
// that the look that follows sends them); when it was the last, the
// rollout is at its previous wave, done. When no node of the rollout
// remains, it goes on as a rollout without waves: one command to the
// targets (tags never name a gone node), then done.
func (e *Engine) goneHook(cur **inventory.Rollout) func(ctx context.Context, refused []string) ([]string, error) {
	return func(ctx context.Context, refused []string) ([]string, error) {
		um, ok := e.nodes.(unmanagedChecker)
		if !ok {
			return nil, nil
		}
		gone, err := um.Unmanaged(ctx, refused)
		if err != nil || len(gone) == 0 {
			return nil, err
		}
		r := *cur
		k := r.Wave
		set := map[string]bool{}
		for _, id := range gone {
			set[id] = true
		}
		emptied := !slices.ContainsFunc(r.WaveNodes(k), func(id string) bool { return !set[id] })
		next := *r
		why := fmt.Sprintf("wave %d of %d: %d node(s) no longer managed by SSM (terminated or deregistered) dropped: %s",
			k, len(r.Waves), len(gone), strings.Join(clip(gone, 10), ", "))
		switch {
		case !drop(&next, set):
			next.Dropped = appendNew(next.Dropped, gone...)
			next.Nodes, next.Waves, next.Wave, next.WaveSentAt = nil, nil, 0, time.Time{}
			why += "; no node of the rollout remains: one command to the targets"
		case emptied:
			next.Wave, next.WaveSentAt = min(k, len(next.Waves)), time.Time{}
			why += fmt.Sprintf("; the wave is empty: the rollout goes on at wave %d of %d", next.Wave, len(next.Waves))
		default:
			next.WaveSentAt = e.now()
		}
		next.Reason = why
		w, err := e.inv.PutRollout(ctx, next, r.Version)
		if errors.Is(err, inventory.ErrConflict) {
			return nil, fmt.Errorf("%w: %s: rollout %s changed while dropping nodes gone; the next look sends the wave", pipeline.ErrBusy, r.Name, r.ID)
		}
		if err != nil {
			return nil, err
		}
		slog.WarnContext(ctx, "wave nodes no longer managed by SSM dropped", "name", r.Name, "rolloutId", r.ID, "wave", k,
			"nodes", gone, "nowWave", w.Wave, "waves", len(w.Waves))
		*cur = w
		return gone, nil
	}
}

// sendWave sends ids (nodes of r's current wave) and returns the commands
// sent, the rollout as it is after the send (nodes gone dropped: goneHook)
// and whether nodes were dropped.
func (e *Engine) sendWave(ctx context.Context, r *inventory.Rollout, ids []string, chk *pipeline.Checked, force bool) ([]pipeline.Result, *inventory.Rollout, bool, error) {
	trigger := r.Trigger
	if trigger == "" {
		trigger = inventory.TriggerAPI
	}
	cur := r
	k := r.Wave
	sent, err := e.deploy.SendWave(ctx, pipeline.Wave{Name: r.Name, RolloutID: r.ID, Wave: k, Waves: len(r.Waves), Serial: r.Serial,
		InstanceIDs: ids, Onboard: chk, Force: force, Trigger: trigger, Gone: e.goneHook(&cur)})
	for _, s := range sent {
		slog.InfoContext(ctx, "wave sent", "name", r.Name, "rolloutId", r.ID, "wave", k, "waves", len(cur.Waves), "commandId", s.CommandID,
			"deploymentId", s.DeploymentID)
	}
	return sent, cur, cur != r, err
}

// afterSend ends a wave send: a failed one is looked at again past the
// repair delay (repairLater); one that dropped nodes gone and sent nothing
// (the wave emptied, or its unsent nodes all left) looks at the rollout
// again at once, so that it goes on. c may be nil (read then).
func (e *Engine) afterSend(ctx context.Context, c *inventory.Cert, sent []pipeline.Result, w *inventory.Rollout, dropped bool, err error, trigger inventory.Trigger) (Result, error) {
	res := sentResult(sent, w)
	if err != nil {
		e.repairLater(ctx, w)
		return res, err
	}
	if !dropped || len(sent) > 0 {
		return res, nil
	}
	if c == nil {
		if c, err = e.known(ctx, w.Name); err != nil {
			return res, err
		}
	}
	more, err := e.apply(ctx, c, w, trigger)
	more.Sent += res.Sent
	return more, err
}
