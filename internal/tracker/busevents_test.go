package tracker

import (
	"context"
	"fmt"
	"testing"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/inventory"
)

type fakeBus struct{ sent []busevents.Detail }

func (f *fakeBus) Emit(_ context.Context, ds ...busevents.Detail) busevents.Result {
	f.sent = append(f.sent, ds...)
	return busevents.Result{Sent: len(ds)}
}

// A failed or rolled-back node sends Node Failed; an installed one sends
// nothing; the deployment that finishes sends Deployment Finished once.
func TestBusEvents(t *testing.T) {
	for _, tc := range []struct {
		name, status, stdout string
		want                 []string // detail-types, in order
		state                string
	}{
		{name: "installed", status: "Success", stdout: result("installed", fp), want: []string{busevents.TypeDeploymentFinished}},
		{name: "rolled back", status: "Failed", stdout: result("rolled_back", fp), state: "rolled_back",
			want: []string{busevents.TypeNodeFailed, busevents.TypeDeploymentFinished}},
		{name: "timed out", status: "TimedOut", state: "failed", want: []string{busevents.TypeNodeFailed, busevents.TypeDeploymentFinished}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, st := trackerFor(&fakeSSM{stdout: tc.stdout, status: tc.status}, nodeID)
			st.dep.Trigger = inventory.TriggerACM
			bus := &fakeBus{}
			tr.WithEvents(bus)
			// The fake store counts nothing: the deployment is finished by
			// its one node's report, as the inventory would count it.
			orig := st.dep
			st.dep = &inventory.Deployment{ID: orig.ID, Serial: orig.Serial, Fingerprint: fp, InstanceIDs: orig.InstanceIDs,
				Trigger: orig.Trigger, Outcome: inventory.OutcomeInProgress, Counts: map[inventory.NodeState]int{}}
			if tc.state == "" {
				st.dep.Counts[inventory.NodeInstalled] = 1
			} else {
				st.dep.Counts[inventory.NodeState(tc.state)] = 1
			}
			if _, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", tc.status)); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range bus.sent {
				got = append(got, d.DetailType())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("sent %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("sent %v, want %v", got, tc.want)
				}
			}
			if tc.state != "" {
				nf := bus.sent[0].(busevents.NodeFailed)
				if nf.Name != "shop-web" || nf.InstanceID != nodeID || nf.State != tc.state || nf.Error == "" || nf.DeploymentID != "d1" || nf.Serial != "0c" {
					t.Errorf("node failed %+v", nf)
				}
			}
			df := bus.sent[len(bus.sent)-1].(busevents.DeploymentFinished)
			wantOutcome := "succeeded"
			if tc.state != "" {
				wantOutcome = "failed"
			}
			if df.Name != "shop-web" || df.DeploymentID != "d1" || df.Outcome != wantOutcome || df.Serial != "0c" || df.Trigger != "acm-event" ||
				df.Counts.Installed+df.Counts.Failed != 1 || df.Counts.Pending != 0 {
				t.Errorf("deployment finished %+v", df)
			}
		})
	}
}

// A deployment another event already finished sends nothing again.
func TestBusEventsOnceOnConclude(t *testing.T) {
	st := &lostFinish{fakeStore: &fakeStore{}}
	bus := &fakeBus{}
	tr := New(st, &fakeSSM{}, &fakeAlerts{}, nil, Config{}).WithEvents(bus)
	dep := &inventory.Deployment{ID: "d1", Counts: map[inventory.NodeState]int{"installed": 1}, Outcome: inventory.OutcomeInProgress}
	if _, err := tr.Conclude(context.Background(), "shop-web", dep, false, Outcome{}); err != nil {
		t.Fatal(err)
	}
	if len(bus.sent) != 0 {
		t.Fatalf("sent %v for a deployment it did not finish", bus.sent)
	}
}

// A deployment of a waved rollout says which wave it was.
func TestDeploymentFinishedCarriesTheWave(t *testing.T) {
	for _, tc := range []struct {
		wave, waves int
		want        string
	}{
		{0, 0, "<nil>"},
		{2, 3, "&{2 3 r1}"},
	} {
		bus := &fakeBus{}
		tr := New(&fakeStore{}, &fakeSSM{}, &fakeAlerts{}, nil, Config{}).WithEvents(bus)
		dep := &inventory.Deployment{ID: "d1", Counts: map[inventory.NodeState]int{"installed": 1}, Outcome: inventory.OutcomeInProgress,
			Wave: tc.wave, Waves: tc.waves}
		if tc.wave > 0 {
			dep.RolloutID = "r1"
		}
		if _, err := tr.Conclude(context.Background(), "shop-web", dep, false, Outcome{}); err != nil {
			t.Fatal(err)
		}
		if len(bus.sent) != 1 {
			t.Fatalf("sent %v", bus.sent)
		}
		if got := fmt.Sprint(bus.sent[0].(busevents.DeploymentFinished).Wave); got != tc.want {
			t.Errorf("wave %d of %d: event wave %s, want %s", tc.wave, tc.waves, got, tc.want)
		}
	}
}
