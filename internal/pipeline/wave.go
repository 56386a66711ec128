package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
)

// ErrSerialChanged refuses a wave of a rollout whose serial is no longer
// ACM's current one: a newer certificate supersedes the rollout.
var ErrSerialChanged = errors.New("ACM's current serial is not the rollout's")

// maxGoneChecks bounds how many refused commands of one wave send are
// checked for nodes gone (each check drops at least one node; more means
// nodes keep leaving while the wave goes, and the next look goes on).
const maxGoneChecks = 5

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
	// Gone, when set, is asked about a command SSM refused because an
	// instance id in it is not a managed node any more (InvalidInstanceId
	// fails the whole SendCommand: fleet.ErrInstancesRefused). It gets the
	// refused command's ids and returns those SSM no longer manages, once
	// it recorded that the wave goes on without them (the rollout drops
	// them); the wave's remaining ids are then sent, chunked as before.
	// No id gone, or an error, leaves the refusal as the send's error.
	Gone func(ctx context.Context, refused []string) ([]string, error)
}

// SendWave sends a wave: ACM's current serial (exported only when the
// secret does not hold it, exactly as every deployment) to the wave's
// instances, one DEPLOY item per command carrying the rollout id and the
// wave. Each command is a deployment with every guarantee of deploy: the
// claim, adoption of an interrupted send of the same instances, nothing
// written on refusal. It is refused with ErrSerialChanged when ACM's
// serial is no longer w.Serial. A command SSM refuses for a node gone is
// handled by w.Gone (above). The results are the commands sent, in order;
// on an error, those sent before it.
func (p *Pipeline) SendWave(ctx context.Context, w Wave) ([]Result, error) {
	if len(w.InstanceIDs) == 0 {
		return nil, fmt.Errorf("send wave %d of %s: no instance", w.Wave, w.Name)
	}
	tag := &waveTag{rolloutID: w.RolloutID, wave: w.Wave, waves: w.Waves}
	var out []Result
	rest, checks := slices.Clone(w.InstanceIDs), 0
	for len(rest) > 0 {
		chunk := rest[:min(MaxRedeployNodes, len(rest))]
		res, err := p.sendWaveChunk(ctx, w, chunk, tag, len(out) == 0)
		if errors.Is(err, fleet.ErrInstancesRefused) && w.Gone != nil && checks < maxGoneChecks {
			checks++
			gone, gerr := w.Gone(ctx, slices.Clone(chunk))
			if gerr != nil {
				err = fmt.Errorf("%w (and the check for nodes gone failed: %w)", err, gerr)
			} else if len(gone) > 0 {
				// Nothing of the refused command was sent: the remaining
				// ids go again without the gone ones, chunked as a retry
				// of the wave (the repair of its unsent nodes) chunks
				// them, so that a retry adopts what this run sent.
				rest = slices.DeleteFunc(rest, func(id string) bool { return slices.Contains(gone, id) })
				continue
			}
		}
		if err != nil {
			return out, fmt.Errorf("send wave %d of %d of %s: %w", w.Wave, w.Waves, w.Name, err)
		}
		out = append(out, res)
		rest = rest[len(chunk):]
	}
	return out, nil
}

// sendWaveChunk sends one command of a wave: the onboarding's (its first
// command stores the checked spec), else the name's stored spec.
func (p *Pipeline) sendWaveChunk(ctx context.Context, w Wave, chunk []string, tag *waveTag, first bool) (Result, error) {
	if w.Onboard == nil || !first {
		return p.sendChunk(ctx, w, chunk, tag)
	}
	c := w.Onboard
	if c.info.Serial != w.Serial {
		return Result{}, fmt.Errorf("%w: %s (rollout %s deploys %s, ACM holds %s)", ErrSerialChanged, w.Name, w.RolloutID, w.Serial, c.info.Serial)
	}
	existing := c.existing
	if c.refused {
		// An earlier command of this onboarding was refused after the
		// name's item was created or claimed: deploy from the item as it
		// is now, still bound to the checked certificate.
		cur, err := p.inv.GetCert(ctx, w.Name)
		if err != nil {
			return Result{}, err
		}
		if cur != nil && cur.CertificateARN != "" && cur.CertificateARN != c.Spec.CertificateARN {
			return Result{}, fmt.Errorf("%w: %s was bound to %s meanwhile", ErrBusy, w.Name, cur.CertificateARN)
		}
		existing = cur
	}
	res, err := p.deploy(ctx, existing, c.Spec, c.info, inventory.TriggerAPI, sendOpts{force: w.Force, only: chunk, wave: tag})
	if errors.Is(err, fleet.ErrInstancesRefused) {
		c.refused = true
	}
	return res, err
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
	for attempt := 1; ; attempt++ {
		res, err := p.deploy(ctx, existing, existing.Spec, info, w.Trigger, sendOpts{force: w.Force, only: chunk, wave: tag})
		if !errors.Is(err, errRaced) || attempt == 3 {
			return res, err
		}
		// Somebody wrote the name between our read and our claim (a
		// sweep's short send to nodes outside the rollout, a tracker
		// commit): look again, as Sync does.
		if existing, err = p.known(ctx, w.Name); err != nil {
			return Result{}, err
		}
	}
}
