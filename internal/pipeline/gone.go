package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
)

// unmanagedChecker tells which instance ids SSM no longer manages
// (fleet.Resolver.Unmanaged: DescribeInstanceInformation, one id at a
// time where a call is refused). Any other error (throttling) is an
// error, never a node gone.
type unmanagedChecker interface {
	Unmanaged(ctx context.Context, ids []string) ([]string, error)
}

var _ unmanagedChecker = (*fleet.Resolver)(nil)

// ErrTargetsGone refuses a deployment whose instance ids are all no
// longer managed by SSM (terminated, deregistered): nothing was sent.
var ErrTargetsGone = errors.New("no instance id of the targets is a managed node any more")

// WithUnmanaged lets the pipeline tell which instance ids of a refused
// command SSM no longer manages (SendCommand fails the whole call with
// InvalidInstanceId when one id is not a managed node: "SendCommand",
// Systems Manager API Reference), so that a deployment to instance-id
// targets goes on without them (sendOrAdopt), and an onboarding naming
// one is refused up front (CheckOnboard). Without it, such a refusal
// stays the deployment's error.
func (p *Pipeline) WithUnmanaged(u unmanagedChecker) *Pipeline {
	p.gone = u
	return p
}

// checkManaged refuses (400) an onboarding whose instance-id targets name
// a node SSM does not manage: such a command would be refused for every
// node of the name. A check SSM does not answer (throttled, or the call
// unavailable) does not hold the onboarding up: its send leaves out, and
// reports, any id SSM then refuses as gone (sendOrAdopt).
func (p *Pipeline) checkManaged(ctx context.Context, sp spec.Spec) error {
	ids := sp.InstanceIDs()
	if p.gone == nil || len(ids) == 0 {
		return nil
	}
	gone, err := p.gone.Unmanaged(ctx, ids)
	if err != nil {
		slog.WarnContext(ctx, "instance ids of the onboarding not checked; a node gone is left out when its command is refused",
			"name", sp.Name, "error", err)
		return nil
	}
	if len(gone) > 0 {
		return spec.Invalid("targets", "%s: not managed by SSM (terminated, deregistered, or not this account's and region's); remove them from the InstanceIds target",
			strings.Join(gone, ", "))
	}
	return nil
}

// narrowed is in sent to its instances without drop; false when none
// remains.
func narrowed(in fleet.Install, drop []string) (fleet.Install, bool) {
	in.Only = slices.DeleteFunc(slices.Clone(in.Instances()), func(id string) bool { return slices.Contains(drop, id) })
	return in, len(in.Only) > 0
}

// dropsGone tells whether a deploy goes on without the instance ids SSM
// refused as no longer managed: instance-id targets, outside a rollout's
// wave (SendWave drops them from the rollout itself: Wave.Gone).
func (p *Pipeline) dropsGone(in fleet.Install, opts sendOpts) bool {
	return p.gone != nil && opts.wave == nil && in.Instances() != nil
}

// sendOrAdopt is deploy's send, under its claim (token): it adopts the
// command an interrupted run of this very install sent, else records a
// fresh send id on META and sends. When SSM refuses the command because
// an instance id in it is not a managed node any more
// (fleet.ErrInstancesRefused), the ids are asked about
// (unmanagedChecker) and the gone ones dropped: a fresh send id is
// recorded for the rest, with the dropped ids (PendingSend.Dropped), and
// one command goes to the rest. A retry after a crash rebuilds that
// install from the recorded Dropped, so its key matches and it adopts
// the command rather than sending another. Every id gone: ErrTargetsGone,
// nothing sent. Any other error (throttling) is returned as it is.
//
// It returns META as written, the command, the install sent (narrowed
// when ids were dropped) and the dropped ids.
func (p *Pipeline) sendOrAdopt(ctx context.Context, c *inventory.Cert, token string, install fleet.Install, trigger inventory.Trigger, opts sendOpts) (*inventory.Cert, *fleet.Command, fleet.Install, []string, error) {
	name := install.Spec.Name
	var dropped []string
	key := fleet.InstallKey(install)
	ps := c.PendingSend
	if ps != nil && len(ps.Dropped) > 0 && !opts.force && p.dropsGone(install, opts) {
		// An earlier run of this install dropped nodes gone and recorded
		// the send to the rest: the same install without them.
		if n, ok := narrowed(install, ps.Dropped); ok && fleet.InstallKey(n) == ps.Install {
			install, key, dropped = n, ps.Install, slices.Clone(ps.Dropped)
		}
	}
	if ps != nil && ps.Install == key && !opts.force {
		// An earlier run of this very install recorded a send and failed
		// before its commit: adopt the command it sent, if SSM has it.
		install.SendID = ps.ID
		cmd, err := p.fleet.Find(ctx, install, p.now().Add(-p.cfg.Lookback))
		if err != nil {
			return nil, nil, install, nil, err
		}
		if cmd != nil {
			slog.InfoContext(ctx, "adopting the command an interrupted run sent", "name", name, "commandId", cmd.ID, "sendId", ps.ID)
			return c, cmd, install, dropped, nil
		}
	}
	for checks := 1; ; checks++ {
		install.SendID = fleet.NewSendID()
		next, err := p.inv.RecordSend(ctx, c, token, inventory.PendingSend{ID: install.SendID, Install: fleet.InstallKey(install), At: p.now().Unix(), Dropped: dropped})
		if errors.Is(err, inventory.ErrConflict) {
			return nil, nil, install, nil, fmt.Errorf("%w: %s was deleted or taken over before this run sent its command", ErrBusy, name)
		}
		if err != nil {
			return nil, nil, install, nil, err
		}
		c = next
		sent, err := p.fleet.Send(ctx, install)
		if err == nil {
			slog.InfoContext(ctx, "install command sent", "name", name, "commandId", sent.ID, "serial", install.Serial,
				"targets", len(install.Spec.Targets), "instances", len(sent.InstanceIDs), "trigger", trigger, "dropped", len(dropped))
			return c, &sent, install, dropped, nil
		}
		if !errors.Is(err, fleet.ErrInstancesRefused) || !p.dropsGone(install, opts) || checks > maxGoneChecks {
			return nil, nil, install, nil, err
		}
		gone, gerr := p.gone.Unmanaged(ctx, install.Instances())
		if gerr != nil {
			return nil, nil, install, nil, fmt.Errorf("%w (and the check for nodes gone failed: %w)", err, gerr)
		}
		if len(gone) == 0 {
			return nil, nil, install, nil, err
		}
		all := append(slices.Clone(dropped), gone...)
		rest, ok := narrowed(install, gone)
		if !ok {
			slog.ErrorContext(ctx, "no instance id of the targets is managed by SSM; nothing sent", "name", name, "gone", all)
			return nil, nil, install, nil, fmt.Errorf("%w: %s: %s no longer managed by SSM (terminated or deregistered); nothing was sent. %s",
				ErrTargetsGone, name, strings.Join(all, ", "), GoneAdvice(name))
		}
		slog.WarnContext(ctx, "instance ids no longer managed by SSM left out; sending to the rest", "name", name, "gone", gone,
			"rest", len(rest.Only))
		install, dropped = rest, all
	}
}

// GoneAdvice says what to do about instance ids of a name's targets SSM
// no longer manages.
func GoneAdvice(name string) string {
	return fmt.Sprintf("Remove them from the name's targets: onboard %s again with the current instance ids only (`certferry onboard --name %s --instance <id> …`, or POST /certificates with the updated InstanceIds target).", name, name)
}
