//go:build integration

package app

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/sweeper"
	"github.com/certferry/certferry/internal/testkit"
)

// Two sweeps of a name with no rollout that planned on the same read (a
// duplicate delivery of its message, or two runs), held apart so that the
// first one's send commits between the second one's read and its send:
// the node that joined gets one command, not two (Resend plans on META's
// version: the second is refused as busy and sends nothing).
func TestSweepResendTwoSweepsOfOneReadSendOnce(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(2)
	if status, ans := r.post(onboardBody(r.exportable("shop.example.com"), "shop-web")); status != 202 {
		t.Fatalf("onboard: %d %v", status, ans)
	}
	c := r.cert("shop-web")
	for _, id := range ids {
		r.postResult(c.LastCommandID, id, testkit.NodeResult{Status: "Success", Stdout: resultLine("installed", c.Fingerprint, c.Serial, "ok")})
		r.mustTrack("tracker-invocation-success.json", c.LastCommandID, id)
	}
	r.concludeStaged("shop-web", ids)
	r.commandsSent()
	added := r.fleet(1)[0] // joins the tag target

	first, _ := r.countedSweep()
	second, proxy := r.countedSweep()
	// The second sweep resolves the targets' nodes after it read the
	// name: the first sweep runs whole right then.
	var once sync.Once
	proxy.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get("X-Amz-Target") == "AmazonSSM.DescribeInstanceInformation" {
				once.Do(func() {
					body, _ := json.Marshal(sweeper.Message{Name: "shop-web", RunID: "other-run"})
					ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m-other", Body: string(body), EventSource: "aws:sqs",
						Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}}
					if resp, err := first.Local.Worker.Handle(r.ctx, ev); err != nil || len(resp.BatchItemFailures) != 0 {
						t.Errorf("first sweep: %+v %v", resp, err)
					}
				})
			}
			next.ServeHTTP(w, req)
		})
	})
	nr := r.sweepOnce(second, "shop-web")
	var sweeps []inventory.Deployment
	for _, d := range r.deployments("shop-web") {
		if d.Trigger == inventory.TriggerSweep {
			sweeps = append(sweeps, d)
		}
	}
	if len(sweeps) != 1 || !slices.Equal(sweeps[0].InstanceIDs, []string{added}) {
		t.Fatalf("sweep deployments %+v, want the first sweep's to %s", sweeps, added)
	}
	if n := r.commandsSent(); n != 1 || len(sweeps) != 1 || len(nr.Resent) != 0 {
		t.Fatalf("%d command(s), sweep deployments %+v, second sweep %+v: want one command to %s", n, sweeps, nr, added)
	}
}

// While a renewal awaits approval, the secret's AWSCURRENT moved to a
// version of the renewed serial that no commit recorded (an export that
// crashed before its commit): the sweep sends the joining node nothing
// (that version would install the waiting serial), says why, exports
// nothing and leaves the secret, META and the rollout as they were.
func TestSweepWaitingRenewalSecretMovedSendsNothing(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(2)
	arn, renewed := r.stagedRenewal("shop-web", ids, func(sp *spec.Spec) { sp.Approval = spec.ApprovalRequired })
	r.concludeStaged("shop-web", ids)
	if out := r.handle(r.event("renewal-available-renewal.json", arn, "")); len(out.Deployed) != 1 || out.Deployed[0].Phase != string(inventory.PhaseAwaitingApproval) {
		t.Fatalf("renewal: %+v", out)
	}
	r.alerts()
	added := r.fleet(1)[0]
	meta, ro := r.cert("shop-web"), r.rollout("shop-web")
	moved := r.bundleOf("shop-web")
	moved.Serial = renewed
	if _, err := r.parts.Bundles.Put(r.ctx, "shop-web", &moved, "0f0e0d0c-0b0a-4909-8807-060504030201"); err != nil {
		t.Fatal(err)
	}
	sweep, proxy := r.countedSweep()
	nr := r.sweepOnce(sweep, "shop-web")
	if n := r.commandsSent(); n != 0 || len(nr.Resent) != 0 || !strings.Contains(nr.NotCovered, "not the deployed certificate") || proxy.Calls()[exportOp] != 0 {
		t.Fatalf("%d command(s), report %+v (want none sent, NotCovered saying why, no export)", n, nr)
	}
	if c := r.cert("shop-web"); c.Serial != meta.Serial || c.SecretVersionID != meta.SecretVersionID || c.Claim != nil {
		t.Fatalf("META %+v, was %+v", c, meta)
	}
	if now := r.rollout("shop-web"); now.Version != ro.Version || now.Phase != inventory.PhaseAwaitingApproval {
		t.Fatalf("rollout %+v -> %+v", ro, now)
	}
	if n := r.nodeRecord("shop-web", added); n != nil {
		t.Fatalf("node %s recorded %+v", added, n)
	}
}
