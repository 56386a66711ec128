package rollout

import (
	"context"
	"testing"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
)

// A renewal started by a person through the renewal path (a rebind to a
// certificate that is neither revoked nor expired: lifecycle calls Renew
// with the api trigger and tells the caller it goes "through the name's
// waves, maintenance windows and approval") is gated like any renewal:
// only Deploy/Onboard (explicit redeploys) bypass the gates.
func TestRenewByAPITriggerIsGated(t *testing.T) {
	ctx := context.Background()
	sp := wavedSpec()
	sp.Approval = spec.ApprovalRequired
	w := newWorld(sp)
	e := w.engine(nil)
	res, err := e.Renew(ctx, "shop-web", inventory.TriggerAPI)
	if err != nil {
		t.Fatal(err)
	}
	if res.Phase != inventory.PhaseAwaitingApproval || len(w.waves) != 0 || w.syncs != 0 {
		t.Fatalf("renew with the api trigger: %+v, sent %v; want awaiting_approval and nothing sent", res, sentTo(w))
	}
	// The sweep's next look at it changes nothing either.
	if _, err := e.Check(ctx, "shop-web"); err != nil || len(w.waves) != 0 || w.rollout.Phase != inventory.PhaseAwaitingApproval {
		t.Fatalf("check: %v, phase %s, sent %v", err, w.rollout.Phase, sentTo(w))
	}
}
