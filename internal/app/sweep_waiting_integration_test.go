//go:build integration

package app

// The sweep and a renewal waiting for its window or approval (moto, the
// SSM stand-in, the test's clock and recording scheduler, as the rollout
// tests): a node that joins the tag target meanwhile gets the certificate
// the other nodes have (META's serial and secret version) at once, once,
// with nothing exported and the rollout untouched; when the renewal goes,
// its waves include that node and deploy the new serial to it. A rolling,
// paused or halted rollout gets nothing from the sweep, which names the
// nodes waiting for it.

import (
	"context"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/renewal"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/sweeper"
	"github.com/certferry/certferry/internal/testkit"
	"github.com/certferry/certferry/internal/tracker"
)

// countedSweep is the local sweep on the rig's clock and scheduler, its
// AWS calls through a proxy that counts them by operation.
func (r *rolloutRig) countedSweep() (LocalSweeper, *testkit.FaultProxy) {
	r.t.Helper()
	proxy, err := testkit.NewFaultProxy(aws.ToString(r.aws.BaseEndpoint))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.(*testing.T).Cleanup(proxy.Close)
	cfg := r.aws.Copy()
	cfg.BaseEndpoint = aws.String(proxy.URL)
	cfg.ConfigSources = nil
	sweep, err := LocalSweep(r.ctx, cfg, r.cfg, Options{Now: r.clock.Now, Scheduler: r.sched, SSM: ssm.NewFromConfig(cfg), Metrics: io.Discard,
		Sweep: sweeper.Config{Now: r.clock.Now}, SweepPacing: -1})
	if err != nil {
		r.t.Fatal(err)
	}
	return sweep, proxy
}

// sweepOnce runs one whole sweep and returns the name's report.
func (r *rolloutRig) sweepOnce(sweep LocalSweeper, name string) sweeper.NameReport {
	r.t.Helper()
	rep, err := sweep.Run(r.ctx)
	if err != nil {
		r.t.Fatalf("sweep: %v (%+v)", err, rep)
	}
	for _, n := range rep.Names {
		if n.Name == name {
			if n.Error != "" {
				r.t.Fatalf("sweep of %s: %+v", name, n)
			}
			return n
		}
	}
	r.t.Fatalf("no report of %s in %+v", name, rep)
	return sweeper.NameReport{}
}

const exportOp = "CertificateManager.ExportCertificate"

// concludeStaged delivers the command-level success of the staged
// onboarding (stagedRenewal reports its nodes only): a deployment still
// in progress defers the sweep's sends (its tag-target nodes may be on
// their way).
func (r *rolloutRig) concludeStaged(name string, fleet []string) {
	r.t.Helper()
	c := r.cert(name)
	r.mustTrack("tracker-command-success.json", c.LastCommandID, fleet[0])
	for _, d := range r.deployments(name) {
		if d.Outcome == inventory.OutcomeInProgress {
			r.t.Fatalf("staged deployment still in progress: %+v", d)
		}
	}
}

func TestSweepCoversANewNodeWhileARenewalWaits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		phase inventory.RolloutPhase
		gate  func(r *rolloutRig) func(*spec.Spec)
		// release lets the waiting renewal go (approval, the window step).
		release func(r *rolloutRig)
	}{
		{name: "awaiting approval", phase: inventory.PhaseAwaitingApproval,
			gate: func(*rolloutRig) func(*spec.Spec) {
				return func(sp *spec.Spec) { sp.Approval = spec.ApprovalRequired }
			},
			release: func(r *rolloutRig) {
				if _, err := r.parts.Rollouts.Approve(r.ctx, "shop-web", rollout.Caller{ARN: "arn:aws:iam::123456789012:user/ops"}); err != nil {
					r.t.Fatalf("approve: %v", err)
				}
			}},
		{name: "waiting for the window", phase: inventory.PhaseWaitingWindow,
			gate: func(r *rolloutRig) func(*spec.Spec) {
				day := r.clock.Now().Add(48 * time.Hour).Weekday().String()[:3] // two days on: not open now
				return func(sp *spec.Spec) {
					sp.MaintenanceWindows = []spec.MaintenanceWindow{{Days: []string{day}, Start: "02:00", End: "05:00", Timezone: "UTC"}}
				}
			},
			release: func(r *rolloutRig) {
				win, ok := r.sched.find("window")
				if !ok {
					r.t.Fatalf("no window step in %+v", r.sched.steps)
				}
				r.clock.Set(win.At.Add(time.Second))
				if so, err := r.renewal.HandleStep(r.ctx, stepID(win), win); err != nil || so.Status != renewal.StatusDone {
					r.t.Fatalf("window step: %+v %v", so, err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRolloutRig(t)
			ids := r.fleet(2)
			gate := tc.gate(r)
			arn, renewed := r.stagedRenewal("shop-web", ids, func(sp *spec.Spec) {
				sp.Rollout = &spec.Rollout{Waves: []string{"1", "100%"}}
				gate(sp)
			})
			r.concludeStaged("shop-web", ids)
			if out := r.handle(r.event("renewal-available-renewal.json", arn, "")); len(out.Deployed) != 1 || out.Deployed[0].Phase != string(tc.phase) {
				t.Fatalf("renewal: %+v", out)
			}
			r.alerts()
			meta, ro := r.cert("shop-web"), r.rollout("shop-web")
			before := r.counts()
			added := r.fleet(1)[0] // joins the tag target while the renewal waits
			sweep, proxy := r.countedSweep()

			// The first sweep sends META's certificate to the new node only.
			nr := r.sweepOnce(sweep, "shop-web")
			if !slices.Equal(nr.Resent, []string{added}) || nr.ResentSerial != meta.Serial || nr.Serial != renewed || !strings.HasPrefix(nr.Rollout, string(tc.phase)) {
				t.Fatalf("first sweep: %+v", nr)
			}
			deps := r.deployments("shop-web")
			last := deps[len(deps)-1]
			targets, _ := r.nodes.Targets(last.CommandID)
			if n := r.commandsSent(); n != 1 || !slices.Equal(targets, []string{added}) || last.Serial != meta.Serial ||
				last.Fingerprint != meta.Fingerprint || last.SecretVersionID != meta.SecretVersionID || last.RolloutID != "" || last.Trigger != inventory.TriggerSweep {
				t.Fatalf("%d command(s); the sweep's deployment %+v to %v, want META's serial %s (version %s) to %s", n, last, targets, meta.Serial, meta.SecretVersionID, added)
			}
			if b := r.bundleOf("shop-web"); b.Serial != meta.Serial {
				t.Fatalf("the secret now holds %s, want META's %s", b.Serial, meta.Serial)
			}
			// The same name's message delivered twice at once (SQS delivers
			// at least once), then a whole sweep: the node's send is
			// pending: nothing more goes.
			r.duplicateDelivery(sweep, "shop-web")
			if n := r.commandsSent(); n != 0 {
				t.Fatalf("a duplicate delivery sent %d command(s)", n)
			}
			if nr := r.sweepOnce(sweep, "shop-web"); len(nr.Resent) != 0 || r.commandsSent() != 0 {
				t.Fatalf("sweeps after the send: %+v", nr)
			}
			// The node installs it; the next sweep has nothing to send.
			if o := r.report("shop-web", added, true); o.Status == tracker.StatusStale {
				t.Fatalf("report: %+v", o)
			}
			if n := r.nodeRecord("shop-web", added); n.State != inventory.NodeInstalled || n.Serial != meta.Serial {
				t.Fatalf("node %+v", n)
			}
			if nr := r.sweepOnce(sweep, "shop-web"); len(nr.Resent) != 0 || r.commandsSent() != 0 || nr.NotCovered != "" {
				t.Fatalf("sweep after the install: %+v", nr)
			}
			// Nothing exported, no secret version added, the rollout as it was.
			if n := proxy.Calls()[exportOp]; n != 0 {
				t.Fatalf("the sweeps exported %d times", n)
			}
			now := r.rollout("shop-web")
			if after := r.counts(); after.versions != before.versions || now.Version != ro.Version || now.Phase != ro.Phase || len(now.Nodes) != 0 {
				t.Fatalf("secret versions %d -> %d; rollout %+v -> %+v", before.versions, after.versions, ro, now)
			}
			if c := r.cert("shop-web"); c.Serial != meta.Serial || c.SecretVersionID != meta.SecretVersionID {
				t.Fatalf("META %+v", c)
			}

			// The renewal goes: its nodes, resolved now, include the new
			// one, and the waves deploy the renewed serial to every node.
			tc.release(r)
			ro = r.rollout("shop-web")
			all := slices.Sorted(slices.Values(append(slices.Clone(ids), added)))
			if ro.Phase != inventory.PhaseRolling || !slices.Equal(ro.Nodes, all) || r.commandsSent() != 1 {
				t.Fatalf("after the release: %+v", ro)
			}
			r.report("shop-web", ro.Nodes[0], true)
			sent := map[string]bool{}
			for _, d := range r.deployments("shop-web") {
				if d.RolloutID != ro.ID {
					continue
				}
				if d.Serial != renewed {
					t.Fatalf("rollout deployment %+v, want serial %s", d, renewed)
				}
				for _, id := range d.InstanceIDs {
					sent[id] = true
				}
			}
			if r.commandsSent() != 1 || len(sent) != 3 || !sent[added] {
				t.Fatalf("the rollout sent to %v, want %v", sent, all)
			}
			for _, id := range ro.Nodes[1:] {
				r.report("shop-web", id, true)
			}
			if n := r.nodeRecord("shop-web", added); n.State != inventory.NodeInstalled || n.Serial != renewed {
				t.Fatalf("the new node after the rollout: %+v", n)
			}
			if ro := r.rollout("shop-web"); ro.Phase != inventory.PhaseDone {
				t.Fatalf("rollout %+v", ro)
			}
		})
	}
}

// duplicateDelivery hands one message of name to two workers at once, as
// two deliveries of it would: the name is swept twice concurrently. The
// caller counts the commands sent. A
// delivery that fails (DynamoDB cancels one of two conflicting
// transactions recording the result: TransactionConflict) is delivered
// again, as SQS would, until the name has its result.
func (r *rolloutRig) duplicateDelivery(sweep LocalSweeper, name string) {
	r.t.Helper()
	body, _ := json.Marshal(sweeper.Message{Name: name, RunID: "dup-" + name})
	ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m-dup", Body: string(body), EventSource: "aws:sqs",
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}}
	var wg sync.WaitGroup
	answers := make(chan events.SQSEventResponse, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := sweep.Local.Worker.Handle(context.WithoutCancel(r.ctx), ev)
			answers <- resp
		}()
	}
	wg.Wait()
	close(answers)
	failed := 0
	for resp := range answers {
		failed += len(resp.BatchItemFailures)
	}
	for attempt := 2; failed > 0; attempt++ {
		if attempt > 3 {
			r.t.Fatalf("the delivery of %s keeps failing", name)
		}
		ev.Records[0].Attributes["ApproximateReceiveCount"] = strconv.Itoa(attempt)
		resp, _ := sweep.Local.Worker.Handle(r.ctx, ev)
		failed = len(resp.BatchItemFailures)
	}
}

// Two deliveries of one name at once, before anything was sent: one
// command, whichever delivery wins (META's version guards the send).
func TestSweepWaitingRenewalDuplicateDeliverySendsOnce(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(2)
	arn, _ := r.stagedRenewal("shop-web", ids, func(sp *spec.Spec) { sp.Approval = spec.ApprovalRequired })
	r.concludeStaged("shop-web", ids)
	r.handle(r.event("renewal-available-renewal.json", arn, ""))
	r.alerts()
	added := r.fleet(2)
	sweep, proxy := r.countedSweep()
	r.duplicateDelivery(sweep, "shop-web")
	var sent []string
	meta := r.cert("shop-web")
	for _, d := range r.deployments("shop-web") {
		if d.Trigger == inventory.TriggerSweep {
			if d.Serial != meta.Serial {
				t.Fatalf("sweep deployment %+v, want META's serial %s", d, meta.Serial)
			}
			sent = append(sent, d.InstanceIDs...)
		}
	}
	slices.Sort(sent)
	if n := r.commandsSent(); n != 1 || !slices.Equal(sent, added) || proxy.Calls()[exportOp] != 0 {
		t.Fatalf("%d command(s) to %v, want one to %v", n, sent, added)
	}
	// A later sweep: the nodes are pending in that send: nothing more.
	if nr := r.sweepOnce(sweep, "shop-web"); len(nr.Resent) != 0 || r.commandsSent() != 0 {
		t.Fatalf("later sweep: %+v", nr)
	}
}

// A paused or halted rollout: a node that joined after it resolved its
// nodes gets nothing from the sweep (nor do the rollout's own nodes); the
// report names the waiting nodes and the risk the one the rollout never
// reaches.
func TestSweepLeavesAnUnfinishedRolloutsNodesAndSaysWhoWaits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		canary bool
		phase  inventory.RolloutPhase
		then   string
	}{
		{"paused", true, inventory.PhasePaused, "the first sweep after the rollout is done sends them the certificate"},
		{"halted", false, inventory.PhaseHalted, "`certferry redeploy shop-web` resumes it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRolloutRig(t)
			ids := r.fleet(3)
			r.onboardWaved("shop-web", `"rollout": {"waves": ["1", "100%"], "pauseMinutes": 60}`)
			r.report("shop-web", ids[0], tc.canary)
			ro := r.rollout("shop-web")
			if ro.Phase != tc.phase {
				t.Fatalf("rollout %+v", ro)
			}
			r.commandsSent()
			r.alerts()
			added := r.fleet(1)[0]
			sweep, proxy := r.countedSweep()
			nr := r.sweepOnce(sweep, "shop-web")
			if r.commandsSent() != 0 || len(nr.Resent) != 0 || proxy.Calls()[exportOp] != 0 {
				t.Fatalf("the sweep sent: %+v", nr)
			}
			want := slices.Sorted(slices.Values([]string{ids[1], ids[2], added}))
			if nr.WaitingForRollout != 3 || !slices.Equal(nr.WaitingNodes, want) {
				t.Fatalf("waiting for the rollout %d %v, want %v (the rollout's unsent nodes and %s)", nr.WaitingForRollout, nr.WaitingNodes, want, added)
			}
			risk := ""
			for _, s := range nr.Risks {
				if strings.Contains(s, "wait for it with nothing sent") {
					risk = s
				}
			}
			if !strings.Contains(risk, "1 node(s) of the targets joined after rollout "+ro.ID) || !strings.Contains(risk, added) ||
				strings.Contains(risk, ids[2]) || !strings.Contains(risk, tc.then) {
				t.Fatalf("risks %q", nr.Risks)
			}
			if now := r.rollout("shop-web"); now.Version != ro.Version {
				t.Fatalf("rollout %+v -> %+v", ro, now)
			}
		})
	}
}
