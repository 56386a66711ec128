package rollout

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/schedule"
)

func TestWaveSizes(t *testing.T) {
	tests := []struct {
		name   string
		shares []string
		n      int
		want   []int
	}{
		{"canary then halves over 4", []string{"1", "50%", "100%"}, 4, []int{1, 2, 4}},
		{"rounding up", []string{"10%", "100%"}, 15, []int{2, 15}},
		{"share adding no node is skipped", []string{"1", "25%", "100%"}, 4, []int{1, 4}},
		{"count beyond the nodes", []string{"5", "100%"}, 3, []int{3}},
		{"one node", []string{"1", "50%", "100%"}, 1, []int{1}},
		{"last wave takes every node", []string{"1", "50%"}, 10, []int{1, 5, 10}},
		{"no node", []string{"1", "100%"}, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WaveSizes(tt.shares, tt.n)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("WaveSizes(%v, %d) = %v, %v; want %v", tt.shares, tt.n, got, err, tt.want)
			}
		})
	}
	for _, bad := range [][]string{{"0"}, {"abc"}, {"150%"}, {"-1%"}} {
		if _, err := WaveSizes(bad, 4); err == nil {
			t.Errorf("WaveSizes(%v) accepted", bad)
		}
	}
}

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func rolling(wave int) inventory.Rollout {
	return inventory.Rollout{ID: "r1", Name: "shop-web", Serial: "02", Phase: inventory.PhaseRolling,
		Waves: []int{1, 2, 4}, Nodes: []string{"i-1", "i-2", "i-3", "i-4"}, Wave: wave, CreatedAt: t0.Add(-time.Hour)}
}

func node(id string, st inventory.NodeState, serial, dep string) inventory.Node {
	return inventory.Node{InstanceID: id, State: st, Serial: serial, DeploymentID: dep}
}

func nodes(ns ...inventory.Node) map[string]inventory.Node {
	m := map[string]inventory.Node{}
	for _, n := range ns {
		m[n.InstanceID] = n
	}
	return m
}

func TestDecideWaves(t *testing.T) {
	sent := map[string]bool{"d1": true, "d2": true}
	unverified := node("i-1", inventory.NodeInstalled, "02", "d1")
	unverified.Unverified = true
	tests := []struct {
		name      string
		r         inventory.Rollout
		nodes     map[string]inventory.Node
		pause     time.Duration
		want      Kind
		wantWave  int
		wantPhase inventory.RolloutPhase
	}{
		{"canary pending", rolling(1), nodes(node("i-1", inventory.NodePending, "01", "d1")), 0, ActNone, 0, inventory.PhaseRolling},
		{"canary not recorded yet", rolling(1), nodes(), 0, ActNone, 0, inventory.PhaseRolling},
		{"canary installed: next wave at once", rolling(1), nodes(node("i-1", inventory.NodeInstalled, "02", "d1")), 0, ActSend, 2, inventory.PhaseRolling},
		{"canary installed: pause", rolling(1), nodes(node("i-1", inventory.NodeInstalled, "02", "d1")), 10 * time.Minute, ActPause, 0, inventory.PhasePaused},
		{"canary installed an older serial", rolling(1), nodes(node("i-1", inventory.NodeInstalled, "01", "d0")), 0, ActNone, 0, inventory.PhaseRolling},
		{"canary failed: halt", rolling(1), nodes(node("i-1", inventory.NodeFailed, "01", "d1")), 0, ActHalt, 0, inventory.PhaseHalted},
		{"canary rolled back: halt", rolling(1), nodes(node("i-1", inventory.NodeRolledBack, "01", "d1")), 0, ActHalt, 0, inventory.PhaseHalted},
		{"canary unverified: halt", rolling(1), nodes(unverified), 0, ActHalt, 0, inventory.PhaseHalted},
		{"a failure of another send does not halt", rolling(1), nodes(node("i-1", inventory.NodeFailed, "01", "d0")), 0, ActNone, 0, inventory.PhaseRolling},
		{"wave 2 half done", rolling(2), nodes(node("i-1", inventory.NodeInstalled, "02", "d1"), node("i-2", inventory.NodeInstalled, "02", "d2")), 0, ActSend, 3, inventory.PhaseRolling},
		{"last wave done", rolling(3), nodes(node("i-3", inventory.NodeInstalled, "02", "d2"), node("i-4", inventory.NodeInstalled, "02", "d2")), 0, ActDone, 0, inventory.PhaseDone},
		{"last wave one failed", rolling(3), nodes(node("i-3", inventory.NodeInstalled, "02", "d2"), node("i-4", inventory.NodeFailed, "01", "d2")), 0, ActHalt, 0, inventory.PhaseHalted},
		{"halted stays halted", func() inventory.Rollout { r := rolling(1); r.Phase = inventory.PhaseHalted; return r }(), nodes(), 0, ActNone, 0, inventory.PhaseHalted},
		{"done stays done", func() inventory.Rollout { r := rolling(3); r.Phase = inventory.PhaseDone; return r }(), nodes(), 0, ActNone, 0, inventory.PhaseDone},
		{"paused before its end", func() inventory.Rollout {
			r := rolling(1)
			r.Phase, r.NotBefore = inventory.PhasePaused, t0.Add(time.Minute)
			return r
		}(), nodes(), 0, ActNone, 0, inventory.PhasePaused},
		{"pause over", func() inventory.Rollout {
			r := rolling(1)
			r.Phase, r.NotBefore = inventory.PhasePaused, t0
			return r
		}(), nodes(), 0, ActSend, 2, inventory.PhaseRolling},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Decide(Input{Rollout: tt.r, Nodes: tt.nodes, Sent: sent, Gates: Gates{Pause: tt.pause}, Now: t0})
			if a.Kind != tt.want || a.Wave != tt.wantWave || a.Phase != tt.wantPhase {
				t.Fatalf("Decide = %+v; want %s wave %d phase %s", a, tt.want, tt.wantWave, tt.wantPhase)
			}
			if a.Kind == ActPause && (!a.NotBefore.Equal(t0.Add(tt.pause)) || len(a.Steps) != 1 || a.Steps[0].Kind != StepPause) {
				t.Fatalf("pause %+v", a)
			}
			if a.Kind == ActHalt && (len(a.Failed) == 0 || !strings.Contains(a.Reason, "did not install")) {
				t.Fatalf("halt %+v", a)
			}
		})
	}
}

func TestDecideGates(t *testing.T) {
	next := t0.Add(14 * time.Hour)
	goBy := t0.Add(5 * 24 * time.Hour)
	fresh := inventory.Rollout{ID: "r1", Name: "shop-web", Serial: "02", Waves: []int{1, 2, 4}, GoBy: goBy,
		OldNotAfter: goBy.Add(7 * 24 * time.Hour), CreatedAt: t0}
	with := func(f func(*inventory.Rollout)) inventory.Rollout { r := fresh; f(&r); return r }
	tests := []struct {
		name      string
		r         inventory.Rollout
		g         Gates
		now       time.Time
		want      Kind
		phase     inventory.RolloutPhase
		steps     []schedule.StepKind
		reasonHas string
	}{
		{"no gate goes", fresh, Gates{}, t0, ActSend, inventory.PhaseRolling, nil, "no gate"},
		{"window open goes", fresh, Gates{Windowed: true, WindowOpen: true}, t0, ActSend, inventory.PhaseRolling, nil, "window is open"},
		{"window closed waits", fresh, Gates{Windowed: true, WindowNext: next}, t0, ActWait, inventory.PhaseWaitingWindow,
			[]schedule.StepKind{StepWindow, StepDeadline}, "window opening"},
		{"already waiting for that window", with(func(r *inventory.Rollout) {
			r.Phase, r.NotBefore = inventory.PhaseWaitingWindow, next
		}), Gates{Windowed: true, WindowNext: next}, t0, ActNone, inventory.PhaseWaitingWindow, nil, ""},
		{"window step fired: goes", with(func(r *inventory.Rollout) {
			r.Phase, r.NotBefore = inventory.PhaseWaitingWindow, next
		}), Gates{Windowed: true, WindowOpen: true}, next, ActSend, inventory.PhaseRolling, nil, "window is open"},
		{"within the margin goes now", fresh, Gates{Windowed: true, WindowNext: next}, goBy, ActSend, inventory.PhaseRolling, nil,
			"expiry override"},
		{"approval required waits", fresh, Gates{Approval: true}, t0, ActWait, inventory.PhaseAwaitingApproval,
			[]schedule.StepKind{StepRemind, StepDeadline}, "awaiting approval"},
		{"awaiting, before the reminder", with(func(r *inventory.Rollout) { r.Phase = inventory.PhaseAwaitingApproval }),
			Gates{Approval: true}, t0.Add(time.Hour), ActNone, inventory.PhaseAwaitingApproval, nil, ""},
		{"reminder due", with(func(r *inventory.Rollout) { r.Phase = inventory.PhaseAwaitingApproval }),
			Gates{Approval: true}, goBy.Add(-RemindBefore), ActRemind, inventory.PhaseAwaitingApproval, nil, "still awaiting approval"},
		{"reminded once", with(func(r *inventory.Rollout) {
			r.Phase, r.RemindedAt = inventory.PhaseAwaitingApproval, goBy.Add(-RemindBefore)
		}), Gates{Approval: true}, goBy.Add(-time.Hour), ActNone, inventory.PhaseAwaitingApproval, nil, ""},
		{"deadline: goes unapproved", with(func(r *inventory.Rollout) { r.Phase = inventory.PhaseAwaitingApproval }),
			Gates{Approval: true}, goBy, ActSend, inventory.PhaseRolling, nil, "without approval"},
		{"approved, no window", with(func(r *inventory.Rollout) {
			r.Phase, r.ApprovedBy, r.ApprovedAt = inventory.PhaseAwaitingApproval, "arn:aws:iam::1:user/ops", t0
		}), Gates{Approval: true}, t0, ActSend, inventory.PhaseRolling, nil, "approved by arn:aws:iam::1:user/ops"},
		{"approved, window closed: waits for the window", with(func(r *inventory.Rollout) {
			r.Phase, r.ApprovedBy, r.ApprovedAt = inventory.PhaseAwaitingApproval, "ops", t0
		}), Gates{Approval: true, Windowed: true, WindowNext: next}, t0, ActWait, inventory.PhaseWaitingWindow,
			[]schedule.StepKind{StepWindow, StepDeadline}, "window"},
		{"approved, window closed, margin reached: goes", with(func(r *inventory.Rollout) {
			r.Phase, r.ApprovedBy, r.ApprovedAt = inventory.PhaseWaitingWindow, "ops", t0
		}), Gates{Approval: true, Windowed: true, WindowNext: next}, goBy, ActSend, inventory.PhaseRolling, nil, "outside the maintenance window"},
		{"approval and window: approval first", fresh, Gates{Approval: true, Windowed: true, WindowNext: next}, t0, ActWait,
			inventory.PhaseAwaitingApproval, []schedule.StepKind{StepRemind, StepDeadline}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Decide(Input{Rollout: tt.r, Gates: tt.g, Now: tt.now})
			if a.Kind != tt.want || a.Phase != tt.phase {
				t.Fatalf("Decide = %+v; want %s phase %s", a, tt.want, tt.phase)
			}
			var kinds []schedule.StepKind
			for _, s := range a.Steps {
				kinds = append(kinds, s.Kind)
				if s.Name != "shop-web" || s.RolloutID != "r1" {
					t.Fatalf("step %+v", s)
				}
			}
			if !slices.Equal(kinds, tt.steps) {
				t.Fatalf("steps %v, want %v", kinds, tt.steps)
			}
			if a.Kind == ActSend && a.Wave != 1 {
				t.Fatalf("first send of a waved rollout is wave %d", a.Wave)
			}
			if !strings.Contains(a.Reason, tt.reasonHas) {
				t.Fatalf("reason %q, want it to say %q", a.Reason, tt.reasonHas)
			}
		})
	}
}

func TestRemindAt(t *testing.T) {
	r := inventory.Rollout{CreatedAt: t0, GoBy: t0.Add(10 * time.Hour)}
	if got := RemindAt(r); !got.Equal(t0.Add(5 * time.Hour)) {
		t.Fatalf("short lead: %s", got)
	}
	r.GoBy = t0.Add(72 * time.Hour)
	if got := RemindAt(r); !got.Equal(t0.Add(48 * time.Hour)) {
		t.Fatalf("long lead: %s", got)
	}
}

func TestRemindAtToTheSecond(t *testing.T) {
	r := inventory.Rollout{CreatedAt: t0, GoBy: t0.Add(10*time.Hour + time.Second)}
	if got := RemindAt(r); got.Nanosecond() != 0 || got.Location() != time.UTC {
		t.Fatalf("RemindAt %s not to the second in UTC", got)
	}
}
