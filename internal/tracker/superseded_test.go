package tracker

import (
	"context"
	"testing"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/inventory"
)

// overtakenStore is a store where the node's report is stale because a
// newer deployment took the node over, and Describe shows the name's
// nodes.
type overtakenStore struct {
	fakeStore
	node  *inventory.Node
	nodes []inventory.Node
}

func (f *overtakenStore) GetNode(context.Context, string, string) (*inventory.Node, error) {
	return f.node, nil
}

func (f *overtakenStore) RecordReport(_ context.Context, _ inventory.CommandRef, _ *inventory.Node, r inventory.Report) error {
	f.reports = append(f.reports, r)
	return inventory.ErrStale
}

func (f *overtakenStore) Describe(context.Context, string) (*inventory.Detail, error) {
	return &inventory.Detail{Nodes: f.nodes}, nil
}

// A node a newer deployment took over before it reported here never
// reports here: the stale report of its run makes the deployment look
// again, and it concludes (superseded, no alert) once every node it still
// waits for is such a node. Only a node that moved to a newer deployment
// does this; a duplicate of this deployment's report does not.
func TestOvertakenNodesConcludeTheDeployment(t *testing.T) {
	const d1, d2 = "2026-11-30T05:00:00.000Z#c1", "2026-11-30T05:01:00.000Z#c2"
	tests := []struct {
		name     string
		node     *inventory.Node // the node as the stale report finds it
		others   []inventory.Node
		listed   []string
		counts   map[inventory.NodeState]int
		status   Status
		finished []inventory.Outcome
	}{
		{name: "the only node was taken over", node: &inventory.Node{InstanceID: nodeID, DeploymentID: d2, State: inventory.NodePending},
			listed: []string{nodeID}, counts: map[inventory.NodeState]int{"pending": 1},
			status: StatusFinished, finished: []inventory.Outcome{inventory.OutcomeSuperseded}},
		{name: "one installed, the other taken over", node: &inventory.Node{InstanceID: nodeID, DeploymentID: d2, State: inventory.NodePending},
			listed: []string{nodeID, "i-other"}, counts: map[inventory.NodeState]int{"pending": 1, "installed": 1},
			status: StatusFinished, finished: []inventory.Outcome{inventory.OutcomeSucceeded}},
		{name: "another node still pending here", node: &inventory.Node{InstanceID: nodeID, DeploymentID: d2, State: inventory.NodePending},
			others: []inventory.Node{{InstanceID: "i-other", DeploymentID: d1, State: inventory.NodePending}},
			listed: []string{nodeID, "i-other"}, counts: map[inventory.NodeState]int{"pending": 2},
			status: StatusStale},
		{name: "a duplicate of this deployment's report", node: &inventory.Node{InstanceID: nodeID, DeploymentID: d1, State: inventory.NodeSuperseded},
			listed: []string{nodeID}, counts: map[inventory.NodeState]int{"superseded": 1},
			status: StatusStale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &overtakenStore{node: tc.node, nodes: append([]inventory.Node{*tc.node}, tc.others...)}
			st.ref = &inventory.CommandRef{CommandID: cmdID, Name: "shop-web", DeploymentID: d1}
			st.dep = &inventory.Deployment{ID: d1, Serial: "0c", Fingerprint: fp, InstanceIDs: tc.listed,
				Outcome: inventory.OutcomeInProgress, Counts: tc.counts}
			alerts := &fakeAlerts{}
			tr := New(st, &fakeSSM{stdout: resultWith("superseded", "", superseded)}, alerts, nil, Config{Document: "certferry-install"})
			out, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", ""))
			if err != nil {
				t.Fatal(err)
			}
			if out.Status != tc.status || len(st.finished) != len(tc.finished) || len(tc.finished) > 0 && st.finished[0] != tc.finished[0] {
				t.Fatalf("outcome %+v, finished %v; want %s, %v", out, st.finished, tc.status, tc.finished)
			}
			if len(alerts.sent) != 0 {
				t.Fatalf("alerts %+v", alerts.sent)
			}
		})
	}
	// The sweep's timeout: nodes taken over are not silent failures.
	t.Run("timed out", func(t *testing.T) {
		st := &overtakenStore{nodes: []inventory.Node{{InstanceID: nodeID, DeploymentID: d2, State: inventory.NodePending}}}
		dep := &inventory.Deployment{ID: d1, InstanceIDs: []string{nodeID, "i-other"}, Outcome: inventory.OutcomeInProgress,
			Counts: map[inventory.NodeState]int{"pending": 1, "installed": 1}}
		alerts := &fakeAlerts{}
		out, err := New(st, &fakeSSM{}, alerts, nil, Config{}).Conclude(context.Background(), "shop-web", dep, true, Outcome{})
		if err != nil || out.Deployment != inventory.OutcomeSucceeded || len(alerts.sent) != 0 {
			t.Fatalf("%+v %v alerts %d, want succeeded without an alert", out, err, len(alerts.sent))
		}
	})
}

// A superseded node sends no Node Failed; the deployment it ends sends
// Deployment Finished with outcome superseded and nothing pending.
func TestBusEventsOfASupersededNode(t *testing.T) {
	tr, st := trackerFor(&fakeSSM{stdout: resultWith("superseded", "", superseded)}, nodeID)
	bus := &fakeBus{}
	tr.WithEvents(bus)
	st.dep.Counts[inventory.NodeSuperseded] = 1 // as the inventory counts the report
	if _, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", "")); err != nil {
		t.Fatal(err)
	}
	if len(bus.sent) != 1 {
		t.Fatalf("sent %+v, want only Deployment Finished", bus.sent)
	}
	d, ok := bus.sent[0].(busevents.DeploymentFinished)
	if !ok || d.Outcome != string(inventory.OutcomeSuperseded) || d.Counts != (busevents.Counts{}) {
		t.Fatalf("sent %+v, want Deployment Finished superseded, counts all 0", bus.sent[0])
	}
	if len(st.reports) != 1 || st.reports[0].State != inventory.NodeSuperseded {
		t.Fatalf("reports %+v", st.reports)
	}
}
