//go:build integration

package app

// A name without rollout options whose spec targets InstanceIds, one of
// them no longer a managed node (terminated, deregistered). SSM refuses a
// SendCommand naming it with InvalidInstanceId, for the whole call
// ("SendCommand", Systems Manager API Reference; the SSM stand-in does the
// same once a test deregisters the node). The pipeline asks
// DescribeInstanceInformation which ids are gone
// (fleet.Resolver.Unmanaged) and sends one command to the rest, under the
// same claim; the deployment records the gone ids (its DEPLOY item's
// dropped) and its finish alert names them with what to do. Every id
// gone: nothing sent, the renewal reported blocked. Throttling is never
// taken for a node gone.

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/renewal"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/testkit"
)

func byInstanceIDs(ids []string) func(*spec.Spec) {
	return func(sp *spec.Spec) { sp.Targets = []spec.Target{{Key: spec.TargetInstanceIDs, Values: ids}} }
}

func instanceIDsBody(arn, name string, ids ...string) string {
	return fmt.Sprintf(`{"certificateArn": %q, "name": %q, "targets": [{"key": "InstanceIds", "values": ["%s"]}],
		"linux": {"reloadService": "nginx", "serverName": "shop.example.com"}}`, arn, name, strings.Join(ids, `", "`))
}

// The renewal of a name on three instance ids, one of them deregistered:
// one refused call, then one command to the other two at the new serial;
// the gone id recorded on the deployment; the other two install it; one
// alert (success alerts are off) names the gone id and how to remove it;
// a later renewal event sends nothing more.
func TestRenewalLeavesOutAnInstanceIDGone(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(3)
	arn, renewed := r.stagedRenewal("shop-web", ids, byInstanceIDs(ids))
	r.nodes.Deregister(ids[1])
	r.nodes.Calls()

	out := r.handle(r.event("renewal-available-renewal.json", arn, ""))
	calls := r.nodes.Calls()
	rest := []string{ids[0], ids[2]}
	c := r.cert("shop-web")
	got, _ := r.nodes.Targets(c.LastCommandID)
	if len(out.Deployed) != 1 || calls["AmazonSSM.SendCommand"] != 1 || calls[testkit.RefusedSends] != 1 || c.Serial != renewed || !slices.Equal(got, rest) {
		t.Fatalf("renewal %+v, calls %v, serial %s, command to %v; want one refused send, then one command to %v at %s", out, calls, c.Serial, got, rest, renewed)
	}
	deps := r.deployments("shop-web")
	d := deps[len(deps)-1]
	if d.CommandID != c.LastCommandID || !slices.Equal(d.InstanceIDs, rest) || !slices.Equal(d.Dropped, ids[1:2]) || d.Serial != renewed ||
		c.PendingSend != nil {
		t.Fatalf("deployment %+v (META pending %+v)", d, c.PendingSend)
	}
	if a := r.alerts(); len(a) != 0 {
		t.Fatalf("alerted before the deployment finished: %+v", a)
	}
	for _, id := range rest {
		r.report("shop-web", id, true)
	}
	for _, id := range rest {
		if n := r.nodeRecord("shop-web", id); n.State != inventory.NodeInstalled || n.Serial != renewed {
			t.Fatalf("node %s: %+v", id, n)
		}
	}
	alerts := r.alerts()
	if len(alerts) != 1 || strings.Count(alerts[0].Message, ids[1]) != 1 || !strings.Contains(alerts[0].Message, "no longer managed by SSM") ||
		!strings.Contains(alerts[0].Message, "certferry onboard --name shop-web --instance") {
		t.Fatalf("alerts %+v, want one naming %s once and how to remove it", alerts, ids[1])
	}
	out = r.handle(r.event("renewal-available-renewal.json", arn, "another-delivery"))
	if calls := r.nodes.Calls(); calls["AmazonSSM.SendCommand"] != 0 || calls[testkit.RefusedSends] != 0 || len(out.Deployed) != 0 {
		t.Fatalf("a later event: %+v, calls %v", out, calls)
	}
}

// Every instance id of the name gone: no command, nothing committed, the
// name's renewal reported blocked in one alert naming the ids.
func TestRenewalWithEveryInstanceIDGoneSendsNothing(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(3)
	arn, renewed := r.stagedRenewal("shop-web", ids, byInstanceIDs(ids))
	before := len(r.deployments("shop-web"))
	r.nodes.Deregister(ids...)
	r.nodes.Calls()

	out := r.handle(r.event("renewal-available-renewal.json", arn, ""))
	calls := r.nodes.Calls()
	c := r.cert("shop-web")
	if out.Status != renewal.StatusDone || !slices.Equal(out.Blocked, []string{"shop-web"}) || calls["AmazonSSM.SendCommand"] != 0 ||
		calls[testkit.RefusedSends] != 1 || c.Serial == renewed || c.Claim != nil || len(r.deployments("shop-web")) != before {
		t.Fatalf("renewal %+v, calls %v, META %+v", out, calls, c)
	}
	alerts := r.alerts()
	if len(alerts) != 1 || !strings.Contains(alerts[0].Message, "no longer managed by SSM") || !strings.Contains(alerts[0].Message, strings.Join(ids, ", ")) {
		t.Fatalf("alerts %+v", alerts)
	}
}

// An explicit redeploy: a throttled SendCommand is an error and drops
// nothing (no DescribeInstanceInformation asked); the retry sends one
// command to the managed nodes and answers the dropped id; an onboarding
// naming a node SSM does not manage is refused up front (400 naming it),
// nothing written.
func TestRedeployInstanceIDGoneAndThrottling(t *testing.T) {
	t.Parallel()
	r := newGoneRig(t)
	ids := r.fleet(3)
	arn := r.exportable("shop.example.com")
	if status, ans := r.post(instanceIDsBody(arn, "shop-web", ids...)); status != 202 {
		t.Fatalf("onboard: %d %v", status, ans)
	}
	r.nodes.Deregister(ids[1])
	before := len(r.deployments("shop-web"))
	r.nodes.Calls()

	clear := r.failAfter("AmazonSSM.SendCommand", 0)
	status, ans := r.call("POST", "/certificates/shop-web/deployments", "shop-web", "")
	clear()
	calls := r.nodes.Calls()
	if status != 502 || calls["AmazonSSM.DescribeInstanceInformation"] != 0 || calls["AmazonSSM.SendCommand"] != 0 || len(r.deployments("shop-web")) != before {
		t.Fatalf("throttled redeploy: %d %v, calls %v", status, ans, calls)
	}

	status, ans = r.call("POST", "/certificates/shop-web/deployments", "shop-web", "")
	calls = r.nodes.Calls()
	rest := []string{ids[0], ids[2]}
	c := r.cert("shop-web")
	got, _ := r.nodes.Targets(c.LastCommandID)
	if status != 202 || fmt.Sprint(ans["droppedInstanceIds"]) != fmt.Sprint([]any{ids[1]}) || calls["AmazonSSM.SendCommand"] != 1 ||
		calls[testkit.RefusedSends] != 1 || !slices.Equal(got, rest) {
		t.Fatalf("redeploy: %d %v, calls %v, command to %v", status, ans, calls, got)
	}
	if deps := r.deployments("shop-web"); len(deps) != before+1 || !slices.Equal(deps[len(deps)-1].Dropped, ids[1:2]) {
		t.Fatalf("deployments %+v", deps)
	}

	status, ans = r.post(instanceIDsBody(arn, "shop-api", ids...))
	calls = r.nodes.Calls()
	if status != 400 || !strings.Contains(fmt.Sprint(ans), ids[1]) || strings.Contains(fmt.Sprint(ans), ids[0]) || calls["AmazonSSM.SendCommand"] != 0 {
		t.Fatalf("onboarding naming %s: %d %v, calls %v", ids[1], status, ans, calls)
	}
	if got, err := r.inv.GetCert(r.ctx, "shop-api"); err != nil || got != nil {
		t.Fatalf("refused onboarding wrote %+v %v", got, err)
	}
}

// The sweep resends to two failed nodes of a name on instance ids; one
// of them leaves SSM between the sweep's resolve and its SendCommand: the
// refused command is followed by one command to the other node alone, the
// deployment records the gone one, the sweep's report lists only the node
// sent to.
func TestSweepResendLeavesOutANodeGoneMeanwhile(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(3)
	arn := r.exportable("shop.example.com")
	if status, ans := r.post(instanceIDsBody(arn, "shop-web", ids...)); status != 202 {
		t.Fatalf("onboard: %d %v", status, ans)
	}
	r.report("shop-web", ids[0], true)
	r.report("shop-web", ids[1], false)
	r.report("shop-web", ids[2], false)
	r.alerts()
	r.clock.Set(r.clock.Now().Add(25 * time.Hour)) // past the retry backoff
	sweep, proxy := r.countedSweep()
	var once sync.Once
	proxy.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get("X-Amz-Target") == "AmazonSSM.SendCommand" {
				once.Do(func() { r.nodes.Deregister(ids[1]) }) // terminated after the sweep resolved it
			}
			next.ServeHTTP(w, req)
		})
	})
	before := len(r.deployments("shop-web"))
	r.nodes.Calls()

	nr := r.sweepOnce(sweep, "shop-web")
	calls := r.nodes.Calls()
	c := r.cert("shop-web")
	got, _ := r.nodes.Targets(c.LastCommandID)
	if !slices.Equal(nr.Resent, ids[2:]) || calls["AmazonSSM.SendCommand"] != 1 || calls[testkit.RefusedSends] != 1 || !slices.Equal(got, ids[2:]) {
		t.Fatalf("sweep report %+v, calls %v, command to %v; want one refused send, then one command to %s", nr, calls, got, ids[2])
	}
	deps := r.deployments("shop-web")
	if d := deps[len(deps)-1]; len(deps) != before+1 || d.Trigger != inventory.TriggerSweep || !slices.Equal(d.Dropped, ids[1:2]) || !slices.Equal(d.InstanceIDs, ids[2:]) {
		t.Fatalf("deployments %+v", deps)
	}
}
