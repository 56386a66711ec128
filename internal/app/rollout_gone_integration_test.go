//go:build integration

package app

// A node that leaves SSM (terminated, deregistered) between a waved
// rollout's start and its wave's send. SSM refuses a SendCommand whose
// InstanceIds name a node that is not a managed node any more with
// InvalidInstanceId, for the whole call ("SendCommand", Systems Manager
// API Reference; the SSM stand-in does the same once a test deregisters a
// node). The rollout asks DescribeInstanceInformation about the refused
// ids one by one (fleet.Resolver.Unmanaged), drops the gone ones from the
// rollout (recorded on the ROLLOUT item, said once in the done alert) and
// sends the rest once; a wave left without nodes is skipped.

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/schedule"
	"github.com/certferry/certferry/internal/testkit"
)

// goneRig is the rollout rig with a fault proxy in front of everything
// the handlers call (the SSM stand-in and the emulator behind it), and
// success alerts on (the rollout's done alert).
type goneRig struct {
	*rolloutRig
	faults *testkit.FaultProxy
}

func newGoneRig(t *testing.T) *goneRig {
	r := newRolloutRig(t)
	faults, err := testkit.NewFaultProxy(aws.ToString(r.aws.BaseEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(faults.Close)
	cfg := r.aws.Copy()
	cfg.BaseEndpoint = aws.String(faults.URL)
	cfg.ConfigSources = nil
	r.aws = cfg
	r.cfg.NotifySuccess = true
	opts := Options{Now: r.clock.Now, Scheduler: r.sched, SSM: ssm.NewFromConfig(cfg)}
	r.handler, r.renewal = Onboard(cfg, r.cfg, opts), Renewal(cfg, r.cfg, opts)
	r.parts, r.track = newParts(cfg, r.cfg, opts), Tracker(cfg, r.cfg, opts)
	r.tracker = r.track
	return &goneRig{rolloutRig: r, faults: faults}
}

// fire delivers the last scheduled step of kind, with the clock past it.
func (r *goneRig) fire(kind schedule.StepKind) error {
	r.t.Helper()
	st, ok := r.sched.find(kind)
	if !ok {
		r.t.Fatalf("no %s step scheduled: %+v", kind, r.sched.steps)
	}
	return r.fireAt(st, st.At.Add(time.Minute))
}

// fireAt delivers st at clock time at (a delivery of its own: a distinct
// event id, as a retry of the schedule's target).
func (r *goneRig) fireAt(st schedule.Step, at time.Time) error {
	r.t.Helper()
	r.clock.Set(at)
	_, err := r.renewal.HandleStep(r.ctx, stepID(st)+"-"+at.Format("150405.000"), st)
	return err
}

// failAfter makes every call of op after the first n answer 503 (the
// faults Inject would fail the first ones too), until the test clears it.
func (r *goneRig) failAfter(op string, n int) (clear func()) {
	var mu sync.Mutex
	seen, on := 0, true
	r.faults.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			mu.Lock()
			fail := false
			if req.Header.Get("X-Amz-Target") == op && on {
				seen++
				fail = seen > n
			}
			mu.Unlock()
			if fail {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"__type":"ServiceUnavailable","message":"injected"}`))
				return
			}
			next.ServeHTTP(w, req)
		})
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		on = false
	}
}

// wave returns the deployments of wave k, oldest first.
func (r *goneRig) wave(name string, k int) []inventory.Deployment {
	var out []inventory.Deployment
	for _, d := range r.deployments(name) {
		if d.Wave == k {
			out = append(out, d)
		}
	}
	return out
}

const pausedWaves = `"rollout": {"waves": ["1", "50%", "100%"], "pauseMinutes": 10}`

// A node of wave 2 is deregistered during the pause after wave 1: wave 2
// goes to the rest of its nodes in one command, the node is recorded as
// dropped, the rollout goes on to done, and the done alert names the node
// once.
func TestRolloutDropsNodeGoneBeforeItsWave(t *testing.T) {
	t.Parallel()
	r := newGoneRig(t)
	ids := r.fleet(6) // waves of 1, 3 and 6 nodes
	r.onboardWaved("shop-web", pausedWaves)
	r.commandsSent()
	r.report("shop-web", ids[0], true)
	if ro := r.rollout("shop-web"); ro.Phase != inventory.PhasePaused || !slices.Equal(ro.Waves, []int{1, 3, 6}) {
		t.Fatalf("after the canary: %+v", ro)
	}
	r.nodes.Deregister(ids[1])
	r.nodes.Calls()

	if err := r.fire("pause"); err != nil {
		t.Fatalf("pause step: %v", err)
	}
	calls := r.nodes.Calls()
	w2 := r.wave("shop-web", 2)
	if len(w2) != 1 || !slices.Equal(w2[0].InstanceIDs, ids[2:3]) || calls["AmazonSSM.SendCommand"] != 1 || calls[testkit.RefusedSends] != 1 {
		t.Fatalf("wave 2: deployments %+v, calls %v; want one refused send, then one command to %s alone", w2, calls, ids[2])
	}
	if got, _ := r.nodes.Targets(w2[0].CommandID); !slices.Equal(got, ids[2:3]) {
		t.Fatalf("wave 2's command targets %v", got)
	}
	ro := r.rollout("shop-web")
	if ro.Phase != inventory.PhaseRolling || ro.Wave != 2 || slices.Contains(ro.Nodes, ids[1]) || !slices.Equal(ro.Dropped, ids[1:2]) ||
		!slices.Equal(ro.Waves, []int{1, 2, 5}) || !strings.Contains(ro.Reason, ids[1]) {
		t.Fatalf("rollout %+v, want wave 2 rolling without %s, recorded as dropped", ro, ids[1])
	}

	r.report("shop-web", ids[2], true)
	if err := r.fire("pause"); err != nil {
		t.Fatal(err)
	}
	w3 := r.wave("shop-web", 3)
	if len(w3) != 1 || !slices.Equal(w3[0].InstanceIDs, ids[3:]) || r.commandsSent() != 1 {
		t.Fatalf("wave 3: %+v", w3)
	}
	for _, id := range ids[3:] {
		r.report("shop-web", id, true)
	}
	if ro := r.rollout("shop-web"); ro.Phase != inventory.PhaseDone || !slices.Equal(ro.Dropped, ids[1:2]) {
		t.Fatalf("rollout %+v", ro)
	}
	alerts := r.alerts()
	if len(alerts) != 1 || !strings.Contains(alerts[0].Subject, "rollout done") || strings.Count(alerts[0].Message, ids[1]) != 1 ||
		!strings.Contains(alerts[0].Message, "no longer managed by SSM") {
		t.Fatalf("alerts %+v, want one done alert naming %s once as dropped", alerts, ids[1])
	}
}

// Every node of wave 2 left: the wave is skipped (nothing to send) and
// the next wave goes at once, in the same look (the tracker's conclusion
// of wave 1).
func TestRolloutSkipsWaveWhoseNodesAllLeft(t *testing.T) {
	t.Parallel()
	r := newGoneRig(t)
	ids := r.fleet(4) // waves of 1, 2 and 4 nodes
	r.onboardWaved("shop-web", waves)
	r.commandsSent()
	r.nodes.Deregister(ids[1])
	r.nodes.Calls()
	r.report("shop-web", ids[0], true)

	calls := r.nodes.Calls()
	w2 := r.wave("shop-web", 2)
	ro := r.rollout("shop-web")
	if len(w2) != 1 || !slices.Equal(w2[0].InstanceIDs, ids[2:]) || calls["AmazonSSM.SendCommand"] != 1 || calls[testkit.RefusedSends] != 1 {
		t.Fatalf("after wave 1: deployments %+v, calls %v; want the wave after the empty one sent to %v", r.deployments("shop-web"), calls, ids[2:])
	}
	if ro.Phase != inventory.PhaseRolling || ro.Wave != 2 || !slices.Equal(ro.Waves, []int{1, 3}) || !slices.Equal(ro.Dropped, ids[1:2]) {
		t.Fatalf("rollout %+v", ro)
	}
	for _, id := range ids[2:] {
		r.report("shop-web", id, true)
	}
	if ro := r.rollout("shop-web"); ro.Phase != inventory.PhaseDone || r.commandsSent() != 0 {
		t.Fatalf("rollout %+v", ro)
	}
}

// Throttling is no node gone: a throttled SendCommand fails the look as
// today (the SDK's bounded retries, then a repair step), nothing is
// dropped and nobody is asked one by one; a refusal whose one-by-one
// check is throttled drops nothing either; once SSM answers, the gone
// node is dropped and the rest goes.
func TestRolloutThrottlingIsNotANodeGone(t *testing.T) {
	t.Parallel()
	r := newGoneRig(t)
	ids := r.fleet(6)
	r.onboardWaved("shop-web", pausedWaves)
	r.commandsSent()
	r.report("shop-web", ids[0], true)
	r.nodes.Calls()

	r.faults.Inject("AmazonSSM.SendCommand", testkit.Fault{Status: 400, Code: "ThrottlingException", Times: -1})
	if err := r.fire("pause"); err == nil {
		t.Fatal("a throttled send succeeded")
	}
	calls := r.nodes.Calls()
	ro := r.rollout("shop-web")
	if calls["AmazonSSM.DescribeInstanceInformation"] != 0 || len(ro.Dropped) != 0 || len(ro.Nodes) != 6 || len(r.wave("shop-web", 2)) != 0 {
		t.Fatalf("throttled: calls %v, rollout %+v", calls, ro)
	}
	if n := r.faults.Calls()["AmazonSSM.SendCommand"]; n < 2 || n > 5 {
		t.Fatalf("%d SendCommand attempts, want the SDK's few retries", n)
	}

	r.faults.Clear()
	r.nodes.Deregister(ids[1])
	r.faults.Inject("AmazonSSM.DescribeInstanceInformation", testkit.Fault{Status: 400, Code: "ThrottlingException", Times: -1})
	if err := r.fire("pause"); err == nil { // the repair step the failed send scheduled
		t.Fatal("a refusal whose check was throttled succeeded")
	}
	if ro := r.rollout("shop-web"); len(ro.Dropped) != 0 || len(ro.Nodes) != 6 || len(r.wave("shop-web", 2)) != 0 {
		t.Fatalf("check throttled: rollout %+v", ro)
	}

	// The repair ran and failed: the scheduler's retry of the step
	// delivers it again; the repair goes once its delay passed again.
	r.faults.Clear()
	st, _ := r.sched.find("pause")
	if err := r.fireAt(st, r.rollout("shop-web").WaveSentAt.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	w2 := r.wave("shop-web", 2)
	if ro := r.rollout("shop-web"); len(w2) != 1 || !slices.Equal(w2[0].InstanceIDs, ids[2:3]) || !slices.Equal(ro.Dropped, ids[1:2]) {
		t.Fatalf("once SSM answers: wave 2 %+v, rollout %+v", w2, ro)
	}
}

// A run that stopped after dropping the gone node, before or after its
// command for the rest went: the retry (the repair step) sends the rest
// once, or adopts the command the run sent before its record failed.
func TestRolloutDropThenStopSendsRestOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		op   string // the call that fails after the drop
		sent int    // commands the failed run sent
	}{
		{"before the send", "AmazonSSM.SendCommand", 0},
		{"after the send", "DynamoDB_20120810.TransactWriteItems", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newGoneRig(t)
			ids := r.fleet(6)
			r.onboardWaved("shop-web", pausedWaves)
			r.report("shop-web", ids[0], true)
			r.commandsSent()
			r.nodes.Deregister(ids[1])
			// The send naming the gone node goes through to the stand-in,
			// which refuses it; op fails from its next call on (for
			// TransactWriteItems: the commit of the rest's command).
			n := 1
			if tc.op != "AmazonSSM.SendCommand" {
				n = 0
			}
			stop := r.failAfter(tc.op, n)
			if err := r.fire("pause"); err == nil {
				t.Fatal("the run did not fail")
			}
			ro := r.rollout("shop-web")
			if n := r.commandsSent(); n != tc.sent || !slices.Equal(ro.Dropped, ids[1:2]) || len(r.wave("shop-web", 2)) != 0 {
				t.Fatalf("failed run: %d command(s), rollout %+v", n, ro)
			}
			sentBefore := r.deployments("shop-web")

			stop()
			if err := r.fire("pause"); err != nil { // the repair step
				t.Fatal(err)
			}
			w2 := r.wave("shop-web", 2)
			if n := r.commandsSent(); n != 1-tc.sent || len(w2) != 1 || !slices.Equal(w2[0].InstanceIDs, ids[2:3]) {
				t.Fatalf("retry: %d more command(s), wave 2 %+v (before: %+v)", n, w2, sentBefore)
			}
			if err := r.fire("pause"); err != nil { // a late duplicate of the step
				t.Fatal(err)
			}
			if n := r.commandsSent(); n != 0 || len(r.wave("shop-web", 2)) != 1 {
				t.Fatalf("duplicate step: %d command(s)", n)
			}
		})
	}
}
