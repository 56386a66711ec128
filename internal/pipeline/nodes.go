package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
)

// MaxRedeployNodes is the most nodes one redeploy may name: SendCommand
// takes at most 50 InstanceIds ("SendCommand", Systems Manager API
// Reference; the API model's InstanceIdList max 50).
const MaxRedeployNodes = 50

// ErrNotCurrent refuses a redeploy to some nodes while ACM holds a newer
// serial than the one deployed: the whole name must move first, or the
// named nodes alone would get the new certificate.
var ErrNotCurrent = errors.New("the deployed serial is not ACM's current one")

// CheckInstanceIDs validates the instance ids of a redeploy to some nodes:
// 1 to MaxRedeployNodes, each in SendCommand's InstanceId pattern, no
// duplicates.
func CheckInstanceIDs(ids []string) error {
	if len(ids) == 0 || len(ids) > MaxRedeployNodes {
		return spec.Invalid("instanceIds", "must list 1 to %d instance ids (SendCommand's limit); got %d", MaxRedeployNodes, len(ids))
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if !spec.InstanceIDPattern.MatchString(id) {
			return spec.Invalid(fmt.Sprintf("instanceIds[%d]", i), "must match %s", spec.InstanceIDPattern)
		}
		if seen[id] {
			return spec.Invalid(fmt.Sprintf("instanceIds[%d]", i), "%s is listed twice", id)
		}
		seen[id] = true
	}
	return nil
}

// RedeployNodes sends name's current certificate again to the given nodes
// only (POST /certificates/{name}/deployments with instanceIds), even when
// they already have it. The caller has checked that each node belongs to
// the name (the API's membership check). It is refused with ErrNotCurrent
// while ACM holds a serial the name has not been deployed at (redeploy the
// whole name first).
func (p *Pipeline) RedeployNodes(ctx context.Context, name string, instanceIDs []string, trigger inventory.Trigger) (Result, error) {
	if err := CheckInstanceIDs(instanceIDs); err != nil {
		return Result{}, err
	}
	existing, info, err := p.knownDeployable(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if existing.Serial != info.Serial {
		return Result{}, fmt.Errorf("%w: %s is deployed at serial %q and ACM now holds %s; redeploy the whole name first",
			ErrNotCurrent, name, existing.Serial, info.Serial)
	}
	return p.deploy(ctx, existing, existing.Spec, info, trigger, sendOpts{force: true, only: append([]string(nil), instanceIDs...)})
}
