package sweeper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/spec"
)

// waitDeployer records what the sweep asks of the pipeline and the
// rollout engine for a name whose rollout is unfinished.
type waitDeployer struct {
	renew          rollout.Result // what Renew and Check answer
	renewed        int
	checked        int
	resent         [][]string
	deployed       []deployedSend
	resendDeployed error      // ResendDeployed's answer
	store          *fakeStore // when set, a send commits to its META
}

type deployedSend struct {
	version  int64
	behind   pipeline.WaitingRollout
	ids      []string
	failures map[string]int
}

func (f *waitDeployer) Renew(context.Context, string, inventory.Trigger) (rollout.Result, error) {
	f.renewed++
	return f.renew, nil
}
func (f *waitDeployer) Check(context.Context, string) (rollout.Result, error) {
	f.checked++
	return f.renew, nil
}
func (f *waitDeployer) Resend(_ context.Context, _ string, _ int64, ids []string, _ map[string]int, _ inventory.Trigger) (pipeline.Result, error) {
	f.resent = append(f.resent, ids)
	return pipeline.Result{}, errors.New("unexpected Resend")
}
func (f *waitDeployer) ResendDeployed(_ context.Context, _ string, version int64, behind pipeline.WaitingRollout, ids []string, failures map[string]int, _ inventory.Trigger) (pipeline.Result, error) {
	if f.resendDeployed != nil {
		return pipeline.Result{}, f.resendDeployed
	}
	f.deployed = append(f.deployed, deployedSend{version, behind, slices.Clone(ids), maps.Clone(failures)})
	if f.store != nil { // the commit, as inventory.Store.Commit writes META
		c := *f.store.detail.Cert
		c.Version++
		c.LastDeploymentID = fmt.Sprintf("dep-%d", len(f.deployed))
		f.store.detail.Cert = &c
	}
	return pipeline.Result{CommandID: "cmd-sweep", DeploymentID: fmt.Sprintf("dep-%d", len(f.deployed))}, nil
}

// While a renewal waits for its window or approval, the nodes of the
// target that are new, failed (attempts left, backoff over) or behind
// META's serial get META's serial and secret version, never the waiting
// renewal's, and never through Resend (which would need ACM's serial);
// nodes at META's serial get nothing; a META with nothing deployed, or
// already at the rollout's serial, sends nothing and says why. Rolling,
// paused and halted rollouts send nothing and name the nodes that wait
// for them, as a risk those the rollout never reaches.
func TestSweepCoversNodesWhileARenewalWaits(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const arn = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	info := certs.Info{ARN: arn, Serial: "0c", Type: "AMAZON_ISSUED", Status: "ISSUED", ValidationMethods: []string{"DNS"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(395 * day), RenewalEligibility: "ELIGIBLE"}
	meta := func(serial string) *inventory.Cert {
		return &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: arn}, Status: inventory.StatusActive, Serial: serial,
			SecretVersionID: "v-" + serial, Version: 7, ExportedAt: now.Add(-300 * day), NotAfter: now.Add(60 * day)}
	}
	installed := func(id, serial string) inventory.Node {
		return inventory.Node{InstanceID: id, State: inventory.NodeInstalled, Serial: serial, DeploymentID: "d0", UpdatedAt: now.Add(-day)}
	}
	failed := inventory.Node{InstanceID: "i-3", State: inventory.NodeFailed, Serial: "0a", Failures: 1, DeploymentID: "d0",
		UpdatedAt: now.Add(-2 * time.Hour)}
	done := []inventory.Deployment{{ID: "d0", Serial: "0b", Outcome: inventory.OutcomeSucceeded, CreatedAt: now.Add(-day)}}
	waitingRollout := func(phase inventory.RolloutPhase, serial string) *inventory.Rollout {
		return &inventory.Rollout{ID: "r1", Name: "shop-web", Serial: serial, Phase: phase, GoBy: now.Add(40 * day), Version: 3}
	}
	waved := func(phase inventory.RolloutPhase) *inventory.Rollout {
		return &inventory.Rollout{ID: "r1", Name: "shop-web", Serial: "0c", Phase: phase, Waves: []int{1, 3}, Wave: 1,
			Nodes: []string{"i-1", "i-2", "i-3"}, GoBy: now.Add(40 * day), OldNotAfter: now.Add(60 * day), HaltedAt: now.Add(-day)}
	}
	result := func(r *inventory.Rollout) rollout.Result {
		res := rollout.Result{RolloutID: r.ID, Phase: r.Phase, Wave: r.Wave, Waves: len(r.Waves)}
		res.Serial = r.Serial
		return res
	}
	tests := []struct {
		name       string
		cert       *inventory.Cert
		nodes      []inventory.Node
		deps       []inventory.Deployment
		rollout    *inventory.Rollout
		current    []string
		answer     error // ResendDeployed's
		renews     int
		checks     int
		want       *deployedSend
		waitingFor []string
		risk       string // in the report's risks ("" none about waiting nodes)
		notCovered string
		deferred   bool
	}{
		{name: "awaiting approval: a new and a failed node get META's certificate",
			cert: meta("0b"), nodes: []inventory.Node{installed("i-1", "0b"), failed}, deps: done,
			rollout: waitingRollout(inventory.PhaseAwaitingApproval, "0c"), current: []string{"i-1", "i-2", "i-3"}, renews: 1,
			want: &deployedSend{7, pipeline.WaitingRollout{ID: "r1", Version: 3}, []string{"i-2", "i-3"}, map[string]int{"i-3": 1}}},
		{name: "waiting window: a node behind META's serial gets it",
			cert: meta("0b"), nodes: []inventory.Node{installed("i-1", "0b"), installed("i-2", "0a")}, deps: done,
			rollout: waitingRollout(inventory.PhaseWaitingWindow, "0c"), current: []string{"i-1", "i-2"}, renews: 1,
			want: &deployedSend{7, pipeline.WaitingRollout{ID: "r1", Version: 3}, []string{"i-2"}, map[string]int{}}},
		{name: "waiting window: every node at META's serial: nothing",
			cert: meta("0b"), nodes: []inventory.Node{installed("i-1", "0b"), installed("i-2", "0b")}, deps: done,
			rollout: waitingRollout(inventory.PhaseWaitingWindow, "0c"), current: []string{"i-1", "i-2"}, renews: 1},
		{name: "awaiting approval: a send of it still running: nothing more",
			cert: meta("0b"), nodes: []inventory.Node{installed("i-1", "0b"),
				{InstanceID: "i-2", State: inventory.NodePending, DeploymentID: "d1", UpdatedAt: now.Add(-time.Minute)}},
			deps:    append(slices.Clone(done), inventory.Deployment{ID: "d1", Serial: "0b", Outcome: inventory.OutcomeInProgress, CreatedAt: now.Add(-time.Minute)}),
			rollout: waitingRollout(inventory.PhaseAwaitingApproval, "0c"), current: []string{"i-1", "i-2", "i-4"}, renews: 1, deferred: true},
		{name: "awaiting approval: nothing deployed yet",
			cert:    &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: arn}, Status: inventory.StatusOnboarding},
			rollout: waitingRollout(inventory.PhaseAwaitingApproval, "0c"), current: []string{"i-1"}, renews: 1,
			notCovered: "no certificate of the name was deployed yet"},
		{name: "waiting window: META already at the rollout's serial",
			cert: meta("0c"), nodes: []inventory.Node{installed("i-1", "0b")}, deps: done,
			rollout: waitingRollout(inventory.PhaseWaitingWindow, "0c"), current: []string{"i-1"}, checks: 1,
			notCovered: "META already holds serial 0c, the one rollout r1 waits to deploy"},
		{name: "awaiting approval: the secret's current version is not META's",
			cert: meta("0b"), nodes: []inventory.Node{installed("i-1", "0b")}, deps: done,
			rollout: waitingRollout(inventory.PhaseAwaitingApproval, "0c"), current: []string{"i-1", "i-2"}, renews: 1,
			answer:     fmt.Errorf("%w: shop-web records serial 0b (secret version v-0b)", pipeline.ErrNotDeployed),
			notCovered: "the secret's current version is not the deployed certificate"},
		{name: "rolling: nothing sent, the waiting nodes named, the one outside the rollout a risk",
			cert: meta("0c"), nodes: []inventory.Node{installed("i-1", "0c"), installed("i-2", "0b"), failed}, deps: done,
			rollout: waved(inventory.PhaseRolling), current: []string{"i-1", "i-2", "i-3", "i-9"}, checks: 1,
			waitingFor: []string{"i-2", "i-3", "i-9"},
			risk:       "1 node(s) of the targets joined after rollout r1 (rolling at wave 1 of 2) resolved its nodes and wait for it with nothing sent: i-9; the first sweep after the rollout is done sends them the certificate"},
		{name: "paused: the rollout's own nodes wait, no risk",
			cert: meta("0c"), nodes: []inventory.Node{installed("i-1", "0c"), installed("i-2", "0b"), installed("i-3", "0b")}, deps: done,
			rollout: waved(inventory.PhasePaused), current: []string{"i-1", "i-2", "i-3"}, checks: 1,
			waitingFor: []string{"i-2", "i-3"}},
		{name: "halted: nothing sent, the new node a risk with how to resume",
			cert: meta("0c"), nodes: []inventory.Node{installed("i-1", "0b"), installed("i-2", "0b"), installed("i-3", "0b")}, deps: done,
			rollout: waved(inventory.PhaseHalted), current: []string{"i-1", "i-2", "i-3", "i-9"},
			waitingFor: []string{"i-1", "i-2", "i-3", "i-9"},
			risk:       "1 node(s) of the targets joined after rollout r1 (halted at wave 1 of 2) resolved its nodes and wait for it with nothing sent: i-9; the first sweep after the rollout is done sends them the certificate (`certferry redeploy shop-web` resumes it)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := inventory.Detail{Cert: tc.cert, Nodes: tc.nodes, Deployments: tc.deps, Rollout: tc.rollout}
			st := &fakeStore{detail: d}
			dep := &waitDeployer{renew: result(tc.rollout), resendDeployed: tc.answer}
			pub := &fakePublisher{}
			s := New(st, &fakeACM{info: info}, dep, dep, fakeNodes{ids: tc.current}, fakeTracker{}, pub, metrics.New(io.Discard), Config{})
			s.now = func() time.Time { return now }
			rollBefore := *tc.rollout
			rep, err := localSweep(s, st, pub, newFakeRuns(), &fakeSQS{maxReceive: 3}, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			nr := rep.Names[0]
			if nr.Error != "" {
				t.Fatalf("report %+v", nr)
			}
			if dep.renewed != tc.renews || dep.checked != tc.checks || len(dep.resent) != 0 {
				t.Fatalf("Renew %d (want %d), Check %d (want %d), Resend %v", dep.renewed, tc.renews, dep.checked, tc.checks, dep.resent)
			}
			if !strings.HasPrefix(nr.Rollout, string(tc.rollout.Phase)) {
				t.Errorf("report's rollout %q, want %s", nr.Rollout, tc.rollout.Phase)
			}
			switch {
			case tc.want == nil && (len(dep.deployed) != 0 || len(nr.Resent) != 0 || nr.ResentSerial != ""):
				t.Errorf("sent %+v (report %+v), want nothing", dep.deployed, nr)
			case tc.want != nil:
				if len(dep.deployed) != 1 {
					t.Fatalf("ResendDeployed calls %+v, want one", dep.deployed)
				}
				got := dep.deployed[0]
				if got.version != tc.want.version || got.behind != tc.want.behind || !slices.Equal(got.ids, tc.want.ids) || !maps.Equal(got.failures, tc.want.failures) {
					t.Errorf("ResendDeployed %+v, want %+v", got, *tc.want)
				}
				if !slices.Equal(nr.Resent, tc.want.ids) || nr.ResentSerial != "0b" || nr.Serial != "0c" {
					t.Errorf("report %+v: want resent %v at META's 0b, the waiting serial 0c", nr, tc.want.ids)
				}
			}
			if !slices.Equal(nr.WaitingNodes, tc.waitingFor) || nr.WaitingForRollout != len(tc.waitingFor) {
				t.Errorf("waiting for the rollout %d %v, want %v", nr.WaitingForRollout, nr.WaitingNodes, tc.waitingFor)
			}
			if !strings.Contains(nr.NotCovered, tc.notCovered) || (tc.notCovered == "") != (nr.NotCovered == "") {
				t.Errorf("not covered %q, want %q", nr.NotCovered, tc.notCovered)
			}
			if nr.Deferred != tc.deferred {
				t.Errorf("deferred %v, want %v", nr.Deferred, tc.deferred)
			}
			var risks []string
			for _, r := range nr.Risks {
				if strings.Contains(r, "wait for it") {
					risks = append(risks, r)
				}
			}
			if tc.risk == "" && len(risks) != 0 || tc.risk != "" && (len(risks) != 1 || risks[0] != tc.risk) {
				t.Errorf("risks %q, want %q", risks, tc.risk)
			}
			if tc.risk != "" && (len(pub.published) != 1 || !strings.Contains(pub.published[0].Text(), tc.risk)) {
				t.Errorf("alert %+v lacks the risk", pub.published)
			}
			if st.detail.Rollout.Version != rollBefore.Version || st.detail.Rollout.Phase != rollBefore.Phase {
				t.Errorf("rollout changed: %+v", st.detail.Rollout)
			}
		})
	}
}

// The risk lists at most 10 nodes and says how many more wait; the
// report counts them all and lists MaxListedNodes.
func TestLeaveToRolloutClipsTheList(t *testing.T) {
	r := &inventory.Rollout{ID: "r1", Phase: inventory.PhasePaused, Waves: []int{1, 2}, Wave: 1, Nodes: []string{"i-a", "i-b"}}
	var send []string
	for i := range 25 {
		send = append(send, fmt.Sprintf("i-%02d", i))
	}
	nr := &NameReport{}
	(&Sweeper{}).leaveToRollout("shop-web", r, send, nr)
	if nr.WaitingForRollout != 25 || !slices.Equal(nr.WaitingNodes, send[:MaxListedNodes]) || len(nr.Risks) != 1 || !strings.Contains(nr.Risks[0], "25 node(s)") ||
		!strings.Contains(nr.Risks[0], "i-09, and 15 more;") || strings.Contains(nr.Risks[0], "i-10") {
		t.Fatalf("report %+v", nr)
	}
}

// More than 50 nodes while a renewal waits: chunks of 50 (SendCommand's
// limit), each planned on META as the previous send committed it; when
// something else wrote META between them, the rest waits for the next
// sweep.
func TestSweepCoversManyNodesInChunksWhileARenewalWaits(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const arn = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	info := certs.Info{ARN: arn, Serial: "0c", Type: "AMAZON_ISSUED", Status: "ISSUED", ValidationMethods: []string{"DNS"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(395 * day), RenewalEligibility: "ELIGIBLE"}
	var ids []string
	for i := range 60 {
		ids = append(ids, fmt.Sprintf("i-%03d", i))
	}
	for _, tc := range []struct {
		name     string
		commits  bool // the fake pipeline's send commits to the store's META
		versions []int64
		resent   int
	}{
		{"each chunk on the META the last committed", true, []int64{7, 8}, 60},
		{"META written by another run between them", false, []int64{7}, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &inventory.Rollout{ID: "r1", Name: "shop-web", Serial: "0c", Phase: inventory.PhaseAwaitingApproval}
			st := &fakeStore{detail: inventory.Detail{Rollout: r,
				Cert: &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: arn}, Status: inventory.StatusActive, Serial: "0b",
					SecretVersionID: "v-0b", Version: 7, ExportedAt: now.Add(-300 * day), NotAfter: now.Add(60 * day)}}}
			dep := &waitDeployer{renew: rollout.Result{RolloutID: "r1", Phase: r.Phase}}
			if tc.commits {
				dep.store = st
			}
			pub := &fakePublisher{}
			s := New(st, &fakeACM{info: info}, dep, dep, fakeNodes{ids: ids}, fakeTracker{}, pub, metrics.New(io.Discard), Config{})
			s.now = func() time.Time { return now }
			rep, err := localSweep(s, st, pub, newFakeRuns(), &fakeSQS{maxReceive: 3}, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			var versions []int64
			for _, d := range dep.deployed {
				versions = append(versions, d.version)
			}
			if nr := rep.Names[0]; !slices.Equal(versions, tc.versions) || len(nr.Resent) != tc.resent || !slices.Equal(nr.Resent, ids[:tc.resent]) {
				t.Fatalf("sends at META versions %v (want %v), report %+v", versions, tc.versions, nr)
			}
		})
	}
}
