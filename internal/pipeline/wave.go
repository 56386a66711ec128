package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/certferry/certferry/internal/inventory"
)

// ErrSerialChanged refuses a wave of a rollout whose serial is no longer
// ACM's current one: a newer certificate supersedes the rollout.
var ErrSerialChanged = errors.New("ACM's current serial is not the rollout's")

// Wave is one wave of a rollout to send: the rollout's serial to the given
// instances, in commands of at most 50 instances (SendCommand's limit).
type Wave struct {
	Name      string
	RolloutID string
	Wave      int // 1-based
	Waves     int
	Serial    string // the serial the rollout deploys
	// InstanceIDs are the wave's nodes to send to (already filtered by the
	// caller: nodes a command of this wave already went to are left out).
	InstanceIDs []string
	// Onboard, when set, is the checked onboarding the wave's first
	// command stores (CheckOnboard); else the name's stored spec is used.
	Onboard *Checked
	// Force sends even where an interrupted earlier run's command could be
	// adopted (explicit redeploys).
	Force   bool
	Trigger inventory.Trigger
}

// SendWave sends a wave: ACM's current serial (exported only when the
// secret does not hold it, exactly as every deployment) to the wave's
// instances, one DEPLOY item per command carrying the rollout id and the
// wave. Each command is a deployment with every guarantee of deploy: the
// claim, adoption of an interrupted send of the same instances, nothing
// written on refusal. It is refused with ErrSerialChanged when ACM's
// serial is no longer w.Serial. The results are the commands sent, in
// order; on an error, those sent before it.
func (p *Pipeline) SendWave(ctx context.Context, w Wave) ([]Result, error) {
	if len(w.InstanceIDs) == 0 {
		return nil, fmt.Errorf("send wave %d of %s: no instance", w.Wave, w.Name)
	}
	tag := &waveTag{rolloutID: w.RolloutID, wave: w.Wave, waves: w.Waves}
	var out []Result
	for chunk := range slices.Chunk(slices.Clone(w.InstanceIDs), MaxRedeployNodes) {
		var res Result
		var err error
		if w.Onboard != nil && len(out) == 0 {
			c := *w.Onboard
			if c.info.Serial != w.Serial {
				return out, fmt.Errorf("%w: %s (rollout %s deploys %s, ACM holds %s)", ErrSerialChanged, w.Name, w.RolloutID, w.Serial, c.info.Serial)
			}
			res, err = p.deploy(ctx, c.existing, c.Spec, c.info, inventory.TriggerAPI, sendOpts{force: w.Force, only: chunk, wave: tag})
		} else {
			res, err = p.sendChunk(ctx, w, chunk, tag)
		}
		if err != nil {
			return out, fmt.Errorf("send wave %d of %d of %s: %w", w.Wave, w.Waves, w.Name, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (p *Pipeline) sendChunk(ctx context.Context, w Wave, chunk []string, tag *waveTag) (Result, error) {
	existing, info, err := p.knownDeployable(ctx, w.Name)
	if err != nil {
		return Result{}, err
	}
	if info.Serial != w.Serial {
		return Result{}, fmt.Errorf("%w: %s (rollout %s deploys %s, ACM holds %s)", ErrSerialChanged, w.Name, w.RolloutID, w.Serial, info.Serial)
	}
	if err := CheckInstanceIDs(chunk); err != nil {
		return Result{}, err
	}
	return p.deploy(ctx, existing, existing.Spec, info, w.Trigger, sendOpts{force: w.Force, only: chunk, wave: tag})
}
