package rollout

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"context"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/schedule"
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

// partialSender sends only the first instance of the next `fail` waves
// and then fails, as SendWave does when its second chunk of 50 fails
// (throttling, an instance deregistered meanwhile).
type partialSender struct {
	*world
	fail int
}

func (p *partialSender) SendWave(ctx context.Context, wv pipeline.Wave) ([]pipeline.Result, error) {
	if p.fail == 0 {
		return p.world.SendWave(ctx, wv)
	}
	p.fail--
	first := wv
	first.InstanceIDs = wv.InstanceIDs[:1]
	sent, err := p.world.SendWave(ctx, first)
	if err != nil {
		return nil, err
	}
	return sent, errors.New("send wave: chunk 2: ThrottlingException")
}

// A wave whose send failed half-way (its first chunk went, the second
// did not) must not wait for the daily sweep: the nodes of the first
// chunk conclude within minutes, the tracker's look comes before the
// repair delay, and nothing else looks again. The engine schedules a
// step past the repair delay, and that step sends the rest, once.
func TestWaveSendFailedHalfwayIsRepairedByAStep(t *testing.T) {
	ctx := context.Background()
	sp := spec.Spec{Rollout: &spec.Rollout{Waves: []string{"1", "100%"}}}
	w := newWorld(sp)
	d := &partialSender{world: w}
	e := New(d, w, acmFake{w}, w, w, w, Config{Now: func() time.Time { return w.now }})
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	w.report("i-1", inventory.NodeInstalled)
	d.fail = 1
	if err := e.Advance(ctx, "shop-web"); err == nil {
		t.Fatal("the failed half of the wave was not reported")
	}
	if fmt.Sprint(sentTo(w)) != "[[i-1] [i-2]]" {
		t.Fatalf("sent %v", sentTo(w))
	}
	w.now = w.now.Add(time.Minute)
	w.report("i-2", inventory.NodeInstalled)
	if err := e.Advance(ctx, "shop-web"); err != nil { // the tracker, before the repair delay
		t.Fatal(err)
	}
	var repair *schedule.Step
	for i, st := range w.steps {
		if st.RolloutID == w.rollout.ID && !st.At.Before(w.rollout.WaveSentAt.Add(3*time.Minute)) {
			repair = &w.steps[i]
		}
	}
	if repair == nil {
		t.Fatalf("no step scheduled to send the rest of wave 2 (steps %+v): the rollout waits for the daily sweep", w.steps)
	}
	w.now = repair.At
	for range 2 { // at-least-once delivery
		if _, err := e.Step(ctx, *repair); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(sentTo(w)) != "[[i-1] [i-2] [i-3 i-4]]" {
		t.Fatalf("after the repair step: sent %v", sentTo(w))
	}
	w.report("i-3", inventory.NodeInstalled)
	w.report("i-4", inventory.NodeInstalled)
	_ = e.Advance(ctx, "shop-web")
	if w.rollout.Phase != inventory.PhaseDone {
		t.Fatalf("phase %s", w.rollout.Phase)
	}
}

// A canary cancelled by SSM on a name with a stop alarm was stopped by
// the alarm (in ALARM, or unreadable: IgnorePollAlarmFailure is false, so
// a misspelt or deleted alarm cancels every command of the name). The
// halt alert must say so and how to check it, not send the operator to
// the node for a cause that is not there.
func TestHaltAlertNamesTheStopAlarm(t *testing.T) {
	ctx := context.Background()
	sp := wavedSpec()
	sp.Rollout.StopAlarm = "shop-5xx"
	w := newWorld(sp)
	e := w.engine(nil)
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	n := w.nodes["i-1"]
	n.State, n.Error = inventory.NodeFailed, "SSM reports Cancelled"
	w.nodes["i-1"] = n
	w.mu.Unlock()
	if err := e.Advance(ctx, "shop-web"); err != nil {
		t.Fatal(err)
	}
	if len(w.alerts) != 1 || w.alerts[0].Kind != KindHalted {
		t.Fatalf("alerts %+v", w.alerts)
	}
	text := w.alerts[0].Text()
	for _, want := range []string{"shop-5xx", "aws cloudwatch describe-alarms --alarm-names shop-5xx", "certferry redeploy shop-web"} {
		if !strings.Contains(text, want) {
			t.Errorf("halt alert lacks %q:\n%s", want, text)
		}
	}
}

// racingStore runs another look at the rollout (the sweep worker, a
// repair step, a tracker event) right after this one read the nodes: this
// one acts on what it read, the other has already acted.
type racingStore struct {
	*world
	race func()
}

func (s *racingStore) Describe(ctx context.Context, name string) (*inventory.Detail, error) {
	d, err := s.world.Describe(ctx, name)
	if f := s.race; f != nil {
		s.race = nil
		f()
	}
	return d, err
}

// Two looks past the repair delay at a wave with unsent nodes: only the
// one that wins the ROLLOUT write sends them (repair acted before any
// conditional write, so both sent the same nodes).
func TestRepairSendsOnceUnderRace(t *testing.T) {
	ctx := context.Background()
	sp := spec.Spec{Rollout: &spec.Rollout{Waves: []string{"1", "100%"}}}
	w := newWorld(sp)
	d := &partialSender{world: w}
	rs := &racingStore{world: w}
	e := New(d, rs, acmFake{w}, w, w, w, Config{Now: func() time.Time { return w.now }})
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	w.report("i-1", inventory.NodeInstalled)
	d.fail = 1
	_ = e.Advance(ctx, "shop-web") // wave 2 reaches i-2 only
	w.now = w.now.Add(5 * time.Minute)
	other := New(d, w, acmFake{w}, w, w, w, Config{Now: func() time.Time { return w.now }})
	rs.race = func() {
		if err := other.Advance(ctx, "shop-web"); err != nil {
			t.Error(err)
		}
	}
	if err := e.Advance(ctx, "shop-web"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sentTo(w)) != "[[i-1] [i-2] [i-3 i-4]]" {
		t.Fatalf("sent %v, want the unsent nodes i-3 i-4 sent once", sentTo(w))
	}
}

// The canary was terminated mid-wave: SSM reports it Undeliverable (or
// the sweep closes it as stuck), the rollout halts. A redeploy resent to
// the same gone instance and halted again, for ever: a name whose canary
// was replaced could not be rolled out without a delete. The resume drops
// the wave's failed nodes that are no longer online managed nodes of the
// targets (left to the sweep, as nodes tagged mid-rollout are) and goes
// on with the others.
func TestResumeSkipsNodesGoneFromTheFleet(t *testing.T) {
	ctx := context.Background()
	w := newWorld(wavedSpec())
	e := w.engine(nil)
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	w.report("i-1", inventory.NodeFailed)
	_ = e.Advance(ctx, "shop-web")
	if w.rollout.Phase != inventory.PhaseHalted {
		t.Fatalf("phase %s", w.rollout.Phase)
	}
	w.online = []string{"i-2", "i-3", "i-4"} // i-1 terminated
	res, err := e.Deploy(ctx, "shop-web", inventory.TriggerAPI)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sentTo(w)) != "[[i-1] [i-2]]" || res.Phase != inventory.PhaseRolling {
		t.Fatalf("resume: %+v sent %v; want i-2 as the new canary, not i-1 again", res, sentTo(w))
	}
	w.report("i-2", inventory.NodeInstalled)
	_ = e.Advance(ctx, "shop-web")
	w.report("i-3", inventory.NodeInstalled)
	w.report("i-4", inventory.NodeInstalled)
	_ = e.Advance(ctx, "shop-web")
	if fmt.Sprint(sentTo(w)) != "[[i-1] [i-2] [i-3 i-4]]" || w.rollout.Phase != inventory.PhaseDone {
		t.Fatalf("sent %v phase %s", sentTo(w), w.rollout.Phase)
	}
}

// Onboarding a changed spec (here: waves) while a rollout of the same
// serial is rolling ends that rollout; the alert must not claim ACM holds
// a newer serial, and must say what follows.
func TestSupersededAlertSameSerial(t *testing.T) {
	ctx := context.Background()
	w := newWorld(wavedSpec())
	e := w.engine(nil)
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	sp := w.cert.Spec
	sp.Rollout = &spec.Rollout{Waves: []string{"2", "100%"}}
	if _, err := e.Onboard(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if len(w.alerts) != 1 || w.alerts[0].Kind != KindSuperseded {
		t.Fatalf("alerts %+v", w.alerts)
	}
	text := w.alerts[0].Text()
	if strings.Contains(text, "newer serial") || !strings.Contains(text, "same serial 02") {
		t.Fatalf("superseded alert for the same serial:\n%s", text)
	}
}

// failingSync fails the next `fail` Sync calls (SSM throttling).
type failingSync struct {
	*world
	fail int
}

func (f *failingSync) Sync(ctx context.Context, name string, t inventory.Trigger) (pipeline.Result, error) {
	if f.fail > 0 {
		f.fail--
		return pipeline.Result{}, errors.New("send command: ThrottlingException")
	}
	return f.world.Sync(ctx, name, t)
}

// A gated renewal without waves whose one command failed when its window
// opened is sent again by a step past the repair delay, not a day later
// by the sweep.
func TestGatedSingleSendFailureIsRepairedByAStep(t *testing.T) {
	ctx := context.Background()
	sp := spec.Spec{Approval: spec.ApprovalRequired}
	w := newWorld(sp)
	d := &failingSync{world: w, fail: 1}
	e := New(d, w, acmFake{w}, w, w, w, Config{Now: func() time.Time { return w.now }})
	if res, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil || res.Phase != inventory.PhaseAwaitingApproval {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := e.Approve(ctx, "shop-web", Caller{ARN: "arn:aws:iam::123456789012:user/ops"}); err == nil {
		t.Fatal("the failed send was not reported")
	}
	steps := len(w.steps)
	var repair *schedule.Step
	for i := range w.steps {
		if st := w.steps[i]; st.Kind == StepPause && st.RolloutID == w.rollout.ID {
			repair = &w.steps[i]
		}
	}
	if repair == nil {
		t.Fatalf("no repair step (steps %+v)", w.steps[:steps])
	}
	w.now = repair.At
	if _, err := e.Step(ctx, *repair); err != nil {
		t.Fatal(err)
	}
	if w.syncs != 1 || w.rollout.Phase != inventory.PhaseDone {
		t.Fatalf("syncs %d phase %s", w.syncs, w.rollout.Phase)
	}
}

// A rollout a person started (redeploy, onboarding of a new certificate)
// that halts leaves the rest of the nodes on the old certificate just as
// a renewal's does; the sweep reports a halted rollout as a risk from its
// goBy on (sweeper.haltedRisk), so every rollout that replaces a
// certificate on nodes carries one: without it the halted rollout was
// never reported, up to the old certificate's expiry.
func TestPersonStartedRolloutsCarryGoBy(t *testing.T) {
	ctx := context.Background()
	want := t0.Add(30 * 24 * time.Hour).Add(-9 * 24 * time.Hour) // 90-day lifetime: 9-day margin

	w := newWorld(wavedSpec())
	if _, err := w.engine(nil).Deploy(ctx, "shop-web", inventory.TriggerAPI); err != nil {
		t.Fatal(err)
	}
	if !w.rollout.GoBy.Equal(want) {
		t.Errorf("redeploy: goBy %s, want %s", w.rollout.GoBy, want)
	}

	w = newWorld(wavedSpec())
	sp := w.cert.Spec
	sp.Rollout = &spec.Rollout{Waves: []string{"2", "100%"}}
	if _, err := w.engine(nil).Onboard(ctx, sp); err != nil {
		t.Fatal(err)
	}
	// The fake's Checked carries no ACM dates: the default 7-day margin.
	if want := t0.Add(23 * 24 * time.Hour); !w.rollout.GoBy.Equal(want) {
		t.Errorf("onboard: goBy %s, want %s", w.rollout.GoBy, want)
	}
}

// Decide at the edges the review tried: a margin already passed when the
// renewal arrives (safetyMarginDays beyond the lifetime, or the node's
// certificate already expired), waves over a single node, a deadline
// step delivered after the approval.
func TestDecideReviewEdges(t *testing.T) {
	fresh := inventory.Rollout{ID: "r1", Name: "shop-web", Serial: "02", CreatedAt: t0}
	tests := []struct {
		name      string
		goBy      time.Time
		approved  bool
		g         Gates
		want      Kind
		reasonHas string
	}{
		{"margin passed at the renewal: approval", t0.Add(-time.Hour), false, Gates{Approval: true}, ActSend, "without approval"},
		{"certificate on the nodes expired: window", t0.Add(-30 * 24 * time.Hour), false,
			Gates{Windowed: true, WindowNext: t0.Add(time.Hour)}, ActSend, "outside the maintenance window"},
		{"deadline delivered after the approval, window open", t0.Add(-time.Minute), true, Gates{Approval: true, Windowed: true, WindowOpen: true}, ActSend, "approved by"},
		{"deadline delivered after the approval, no window", t0, true, Gates{Approval: true}, ActSend, "approved by"},
		{"no notAfter known: waits for approval", time.Time{}, false, Gates{Approval: true}, ActWait, "awaiting approval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fresh
			r.GoBy = tt.goBy
			if tt.approved {
				r.Phase, r.ApprovedBy, r.ApprovedAt = inventory.PhaseAwaitingApproval, "arn:aws:iam::123456789012:user/ops", t0
			}
			a := Decide(Input{Rollout: r, Gates: tt.g, Now: t0})
			if a.Kind != tt.want || !strings.Contains(a.Reason, tt.reasonHas) {
				t.Fatalf("Decide = %+v; want %s with %q", a, tt.want, tt.reasonHas)
			}
		})
	}
	for _, c := range []struct {
		shares []string
		n      int
		want   string
	}{
		{[]string{"1", "50%", "100%"}, 1, "[1]"},
		{[]string{"1", "50%", "100%"}, 2, "[1 2]"},
		{[]string{"1", "50%", "100%"}, 3, "[1 2 3]"},
		{[]string{"50%"}, 3, "[2 3]"},
		{[]string{"1", "25%", "100%"}, 51, "[1 13 51]"},
	} {
		got, err := WaveSizes(c.shares, c.n)
		if err != nil || fmt.Sprint(got) != c.want {
			t.Errorf("WaveSizes(%v, %d) = %v %v; want %s", c.shares, c.n, got, err, c.want)
		}
	}
}

// A wave half sent (its second chunk failed) whose sent half failed must
// halt, not have its unsent half sent by the repair: the repair ran
// before Decide and sent the bad certificate to more nodes.
func TestRepairNeverSendsPastAFailure(t *testing.T) {
	ctx := context.Background()
	sp := spec.Spec{Rollout: &spec.Rollout{Waves: []string{"1", "100%"}}}
	w := newWorld(sp)
	d := &partialSender{world: w}
	e := New(d, w, acmFake{w}, w, w, w, Config{Now: func() time.Time { return w.now }})
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	w.report("i-1", inventory.NodeInstalled)
	d.fail = 1
	_ = e.Advance(ctx, "shop-web") // wave 2 reaches i-2 only
	w.now = w.now.Add(5 * time.Minute)
	w.report("i-2", inventory.NodeFailed)
	if err := e.Advance(ctx, "shop-web"); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sentTo(w)) != "[[i-1] [i-2]]" || w.rollout.Phase != inventory.PhaseHalted {
		t.Fatalf("sent %v, phase %s; want halted with i-3, i-4 untouched", sentTo(w), w.rollout.Phase)
	}
}

// busyOnce answers the next wave send ErrBusy (another run holds the name)
// once, as SendWave does when a sweep's short send holds the claim.
type busyOnce struct {
	*world
	busy bool
}

func (b *busyOnce) SendWave(ctx context.Context, wv pipeline.Wave) ([]pipeline.Result, error) {
	if b.busy {
		b.busy = false
		return nil, fmt.Errorf("send wave 1 of 2 of shop-web: %w: shop-web (serial 0a)", pipeline.ErrBusy)
	}
	return b.world.SendWave(ctx, wv)
}

// An approval whose first wave finds the name held by another short run
// is still an approval: the rollout is rolling, the repair step sends the
// wave, and the person who approved is told when, not given an error
// (approving again would be refused: the rollout no longer awaits it).
func TestApproveWhileTheNameIsBusyIsApproved(t *testing.T) {
	ctx := context.Background()
	sp := wavedSpec()
	sp.Approval = spec.ApprovalRequired
	w := newWorld(sp)
	d := &busyOnce{world: w}
	e := New(d, w, acmFake{w}, w, w, w, Config{Now: func() time.Time { return w.now }})
	if res, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil || res.Phase != inventory.PhaseAwaitingApproval {
		t.Fatalf("renew: %+v %v", res, err)
	}
	d.busy = true
	steps := len(w.steps)
	res, err := e.Approve(ctx, "shop-web", Caller{ARN: "arn:aws:iam::123456789012:user/ops", At: w.now})
	if err != nil {
		t.Fatalf("approve while the name is busy: %v; want the approval recorded and the wave left to the repair step", err)
	}
	if res.Phase != inventory.PhaseRolling || !strings.Contains(res.Reason, "repair step") || len(w.waves) != 0 {
		t.Fatalf("approve: %+v, sent %v; want rolling, a reason naming the repair step, nothing sent yet", res, sentTo(w))
	}
	if len(w.steps) != steps+1 || w.steps[len(w.steps)-1].Kind != StepPause {
		t.Fatalf("steps %v; want one repair step", w.steps[steps:])
	}
	if _, err := e.Approve(ctx, "shop-web", Caller{ARN: "arn:aws:iam::123456789012:user/ops", At: w.now}); !errors.Is(err, ErrNotAwaitingApproval) {
		t.Fatalf("second approve: %v, want ErrNotAwaitingApproval", err)
	}
	// The repair step sends the wave, once.
	w.now = w.steps[len(w.steps)-1].At
	if _, err := e.Step(ctx, w.steps[len(w.steps)-1]); err != nil || fmt.Sprint(sentTo(w)) != "[[i-1]]" {
		t.Fatalf("repair step: %v, sent %v; want wave 1 sent once", err, sentTo(w))
	}
}
