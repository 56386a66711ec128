//go:build integration

package app

import (
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/testkit"
	"github.com/certferry/certferry/internal/tracker"
)

// A node that joined while a renewal awaited approval got META's
// certificate from the sweep; before it ran that command, the renewal was
// approved and its first wave exported the renewed serial (AWSCURRENT
// moved). The node's run of the sweep's command finds a newer bundle and
// does nothing ("superseded"): no failure of anything, so no alert.
func TestSweepSendSupersededByTheApprovedRenewal(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(2)
	arn, _ := r.stagedRenewal("shop-web", ids, func(sp *spec.Spec) {
		sp.Approval = spec.ApprovalRequired
		sp.Rollout = &spec.Rollout{Waves: []string{"1", "100%"}}
	})
	r.concludeStaged("shop-web", ids)
	r.handle(r.event("renewal-available-renewal.json", arn, ""))
	r.alerts()
	added := r.fleet(1)[0]
	sweep, _ := r.countedSweep()
	if nr := r.sweepOnce(sweep, "shop-web"); len(nr.Resent) != 1 {
		t.Fatalf("sweep %+v", nr)
	}
	d1 := r.cert("shop-web").LastCommandID
	if _, err := r.parts.Rollouts.Approve(r.ctx, "shop-web", rollout.Caller{ARN: "arn:aws:iam::123456789012:user/ops"}); err != nil {
		t.Fatal(err)
	}
	if b := r.bundleOf("shop-web"); b.Serial == r.cert("shop-web").Serial && false {
		t.Fatal("unreachable")
	}
	// The node runs the sweep's command now: the bundle moved on.
	r.postResult(d1, added, testkit.NodeResult{Status: "Failed", ResponseCode: 1,
		Stdout: resultLine("failed", "", "", "superseded: the bundle holds AA but this command installs BB (a newer deployment supersedes it)")})
	o := r.mustTrack("tracker-invocation-failed.json", d1, added)
	n := r.nodeRecord("shop-web", added)
	var alerts []string
	for _, a := range r.alerts() {
		alerts = append(alerts, a.Subject)
	}
	t.Logf("tracker %+v; node %+v; alerts %q", o, n, alerts)
	for _, s := range alerts {
		if strings.Contains(s, "fail") {
			t.Errorf("alert %q for a command a newer deployment superseded", s)
		}
	}
	if n.State == inventory.NodeFailed {
		t.Errorf("node %s recorded failed (%d failures) for a superseded command", added, n.Failures)
	}
}

// The same, on both paths the approval can take, with the report of an
// installer that predates the superseded status (Failed, exit 1, status
// failed, detail "superseded: ...") and of one that has it (Success, exit
// 0, status superseded):
//   - without waves the approval sends one tag-target command: the node
//     is still pending in the sweep's deployment when its run reports, and
//     is recorded superseded there;
//   - with one wave of 100% the approval's wave takes the node over (it is
//     pending in the newer deployment) before its run of the sweep's
//     command reports: that report is stale for the node, and the sweep's
//     deployment concludes without it.
//
// Either way: no alert about a failure, no failure counted, and the sweep's
// deployment ends superseded (not left in progress for the sweep to time
// out into a failure).
func TestSupersededReportIsNoFailure(t *testing.T) {
	t.Parallel()
	const detail = "superseded: the bundle holds AA but this command installs BB (a newer deployment supersedes it)"
	reports := []struct {
		name  string
		file  string
		res   testkit.NodeResult
		state inventory.NodeState
	}{
		{"installer before the superseded status", "tracker-invocation-failed.json",
			testkit.NodeResult{Status: "Failed", ResponseCode: 1, Stdout: resultLine("failed", "", "", detail)}, inventory.NodeSuperseded},
		{"installer with the superseded status", "tracker-invocation-success.json",
			testkit.NodeResult{Status: "Success", ResponseCode: 0, Stdout: resultLine("superseded", "", "", detail)}, inventory.NodeSuperseded},
	}
	paths := []struct {
		name  string
		waves []string
		// taken: the approval's send takes the node over (pending there).
		taken bool
	}{
		{"approval sends one command", nil, false},
		{"approval's wave takes the node over", []string{"100%"}, true},
	}
	for _, p := range paths {
		for _, rep := range reports {
			t.Run(p.name+"/"+rep.name, func(t *testing.T) {
				t.Parallel()
				r := newRolloutRig(t)
				ids := r.fleet(2)
				arn, _ := r.stagedRenewal("shop-web", ids, func(sp *spec.Spec) {
					sp.Approval = spec.ApprovalRequired
					if p.waves != nil {
						sp.Rollout = &spec.Rollout{Waves: p.waves}
					}
				})
				r.concludeStaged("shop-web", ids)
				r.handle(r.event("renewal-available-renewal.json", arn, ""))
				r.alerts()
				added := r.fleet(1)[0]
				sweep, _ := r.countedSweep()
				if nr := r.sweepOnce(sweep, "shop-web"); len(nr.Resent) != 1 {
					t.Fatalf("sweep %+v", nr)
				}
				d1 := r.cert("shop-web").LastCommandID
				if _, err := r.parts.Rollouts.Approve(r.ctx, "shop-web", rollout.Caller{ARN: "arn:aws:iam::123456789012:user/ops"}); err != nil {
					t.Fatal(err)
				}
				before := r.nodeRecord("shop-web", added)
				if taken := before.LastCommandID != d1; taken != p.taken {
					t.Fatalf("node %+v after the approval: taken over %v, want %v", before, taken, p.taken)
				}
				r.postResult(d1, added, rep.res)
				o := r.mustTrack(rep.file, d1, added)
				n := r.nodeRecord("shop-web", added)
				var alerts []string
				for _, a := range r.alerts() {
					alerts = append(alerts, a.Subject)
				}
				t.Logf("tracker %+v; node %+v; alerts %q", o, n, alerts)
				for _, s := range alerts {
					if strings.Contains(s, "fail") {
						t.Errorf("alert %q for a command a newer deployment superseded", s)
					}
				}
				if n.State == inventory.NodeFailed || n.State == inventory.NodeRolledBack || n.Failures != 0 {
					t.Errorf("node %s recorded %s (%d failures) for a superseded command", added, n.State, n.Failures)
				}
				if p.taken {
					// The newer deployment's record of the node is untouched.
					if o.Status != tracker.StatusFinished || n.State != before.State || n.DeploymentID != before.DeploymentID {
						t.Errorf("tracker %+v, node %+v: want the sweep's deployment finished and the node as the wave left it (%+v)", o, n, before)
					}
				} else if n.State != rep.state || !strings.HasPrefix(n.Error, "superseded: ") {
					t.Errorf("node %+v, want %s with the installer's detail", n, rep.state)
				}
				var dep *inventory.Deployment
				for _, d := range r.deployments("shop-web") {
					if d.CommandID == d1 {
						dep = &d
					}
				}
				if dep == nil || dep.Outcome != inventory.OutcomeSuperseded || o.Deployment != inventory.OutcomeSuperseded {
					t.Fatalf("the sweep's deployment %+v (tracker %+v), want concluded superseded", dep, o)
				}
				if dep.Counts[inventory.NodeFailed] != 0 || dep.Counts[inventory.NodeRolledBack] != 0 {
					t.Errorf("counts %v: a superseded node counted as failed", dep.Counts)
				}
			})
		}
	}
}
