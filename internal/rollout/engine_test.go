package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/schedule"
	"github.com/certferry/certferry/internal/spec"
)

// world is an in-memory inventory, ACM, SSM and scheduler for the engine.
type world struct {
	mu       sync.Mutex
	now      time.Time
	cert     *inventory.Cert
	rollout  *inventory.Rollout
	nodes    map[string]inventory.Node
	deps     []inventory.Deployment
	serial   string // ACM's current serial
	online   []string
	waves    []pipeline.Wave // SendWave calls
	syncs    int
	alerts   []notify.Alert
	steps    []schedule.Step
	canceled []schedule.Step
	cmd      int
}

func newWorld(sp spec.Spec) *world {
	sp.Name, sp.CertificateARN = "shop-web", "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	sp.Targets = []spec.Target{{Key: "tag:env", Values: []string{"prod"}}}
	return &world{
		now:    t0,
		cert:   &inventory.Cert{Spec: sp, Serial: "01", Status: inventory.StatusActive, NotAfter: t0.Add(30 * 24 * time.Hour), Version: 3},
		nodes:  map[string]inventory.Node{},
		serial: "02",
		online: []string{"i-1", "i-2", "i-3", "i-4"},
	}
}

// store
func (w *world) GetCert(context.Context, string) (*inventory.Cert, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := *w.cert
	return &c, nil
}
func (w *world) GetRollout(context.Context, string) (*inventory.Rollout, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.rollout == nil {
		return nil, nil
	}
	r := *w.rollout
	return &r, nil
}
func (w *world) PutRollout(_ context.Context, r inventory.Rollout, prev int64) (*inventory.Rollout, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := int64(0)
	if w.rollout != nil {
		cur = w.rollout.Version
	}
	if cur != prev {
		return nil, fmt.Errorf("put: %w", inventory.ErrConflict)
	}
	r.Version = prev + 1
	w.rollout = &r
	out := r
	return &out, nil
}
func (w *world) Describe(context.Context, string) (*inventory.Detail, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := &inventory.Detail{Cert: w.cert, Deployments: slices.Clone(w.deps)}
	for _, n := range w.nodes {
		d.Nodes = append(d.Nodes, n)
	}
	return d, nil
}

type acmFake struct{ w *world }

func (a acmFake) Describe(context.Context, string) (certs.Info, error) {
	return certs.Info{Serial: a.w.serial, Status: "ISSUED", Type: "PRIVATE", NotBefore: t0, NotAfter: t0.Add(90 * 24 * time.Hour)}, nil
}

// resolver
func (w *world) Resolve(context.Context, []spec.Target) ([]string, error) {
	return slices.Clone(w.online), nil
}

// deployer
func (w *world) CheckOnboard(_ context.Context, sp spec.Spec) (pipeline.Checked, error) {
	return pipeline.Checked{Spec: sp, Serial: w.serial}, nil
}
func (w *world) Onboard(context.Context, spec.Spec) (pipeline.Result, error) {
	return pipeline.Result{}, errors.New("not here")
}
func (w *world) Sync(context.Context, string, inventory.Trigger) (pipeline.Result, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.syncs++
	w.cert.Serial = w.serial
	return pipeline.Result{Serial: w.serial, CommandID: "cmd-sync"}, nil
}
func (w *world) Redeploy(context.Context, string, inventory.Trigger) (pipeline.Result, error) {
	return pipeline.Result{}, errors.New("not here")
}
func (w *world) RedeployNodes(context.Context, string, []string, inventory.Trigger) (pipeline.Result, error) {
	return pipeline.Result{}, errors.New("not here")
}
func (w *world) Delete(context.Context, string) (bool, error) { return false, nil }
func (w *world) SendWave(_ context.Context, wv pipeline.Wave) ([]pipeline.Result, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if wv.Serial != w.serial {
		return nil, pipeline.ErrSerialChanged
	}
	w.waves = append(w.waves, wv)
	w.cmd++
	id := fmt.Sprintf("d%d", w.cmd)
	w.deps = append(w.deps, inventory.Deployment{ID: id, RolloutID: wv.RolloutID, Wave: wv.Wave, Waves: wv.Waves, InstanceIDs: wv.InstanceIDs})
	for _, n := range wv.InstanceIDs {
		prev := w.nodes[n]
		w.nodes[n] = inventory.Node{InstanceID: n, State: inventory.NodePending, Serial: prev.Serial, DeploymentID: id}
	}
	w.cert.Serial = w.serial
	return []pipeline.Result{{CommandID: "cmd-" + id, DeploymentID: id, Serial: w.serial}}, nil
}

// scheduler and publisher
func (w *world) At(_ context.Context, st schedule.Step) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.steps = append(w.steps, st)
	return nil
}
func (w *world) Cancel(_ context.Context, st schedule.Step) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.canceled = append(w.canceled, st)
	return nil
}
func (w *world) Publish(_ context.Context, a notify.Alert) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.alerts = append(w.alerts, a)
	return "m", nil
}

// report sets a node's state as the tracker would record it.
func (w *world) report(id string, st inventory.NodeState) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.nodes[id]
	n.State = st
	if st == inventory.NodeInstalled {
		n.Serial = w.serial
	}
	w.nodes[id] = n
}

func (w *world) engine(windows WindowFunc) *Engine {
	return New(w, w, acmFake{w}, w, w, w, Config{Now: func() time.Time { return w.now }, Windows: windows})
}

func wavedSpec() spec.Spec {
	return spec.Spec{Rollout: &spec.Rollout{Waves: []string{"1", "50%", "100%"}}}
}

func sentTo(w *world) [][]string {
	var out [][]string
	for _, wv := range w.waves {
		out = append(out, wv.InstanceIDs)
	}
	return out
}

func TestEngineWaves(t *testing.T) {
	ctx := context.Background()
	w := newWorld(wavedSpec())
	e := w.engine(nil)
	res, err := e.Renew(ctx, "shop-web", inventory.TriggerACM)
	if err != nil {
		t.Fatal(err)
	}
	if res.Phase != inventory.PhaseRolling || res.Wave != 1 || res.Waves != 3 || fmt.Sprint(sentTo(w)) != "[[i-1]]" {
		t.Fatalf("renew: %+v, sent %v; want wave 1 of 3 to i-1 alone", res, sentTo(w))
	}
	// Redelivered renewal event and an early tracker look: nothing more.
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	if err := e.Advance(ctx, "shop-web"); err != nil || len(w.waves) != 1 {
		t.Fatalf("advance with the canary pending: %v, sent %v", err, sentTo(w))
	}
	w.report("i-1", inventory.NodeInstalled)
	for range 2 { // a duplicate conclusion changes nothing twice
		if err := e.Advance(ctx, "shop-web"); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(sentTo(w)) != "[[i-1] [i-2]]" {
		t.Fatalf("after the canary: sent %v", sentTo(w))
	}
	w.report("i-2", inventory.NodeInstalled)
	_ = e.Advance(ctx, "shop-web")
	w.report("i-3", inventory.NodeInstalled)
	w.report("i-4", inventory.NodeInstalled)
	_ = e.Advance(ctx, "shop-web")
	_ = e.Advance(ctx, "shop-web")
	if fmt.Sprint(sentTo(w)) != "[[i-1] [i-2] [i-3 i-4]]" || w.rollout.Phase != inventory.PhaseDone {
		t.Fatalf("sent %v, phase %s", sentTo(w), w.rollout.Phase)
	}
	for _, wv := range w.waves {
		if wv.Waves != 3 || wv.RolloutID != w.rollout.ID || wv.Serial != "02" {
			t.Fatalf("wave %+v", wv)
		}
	}
	if len(w.alerts) != 0 {
		t.Fatalf("alerts %v on a successful rollout without NotifySuccess", w.alerts)
	}
}

func TestEngineHaltsOnceAndResumes(t *testing.T) {
	ctx := context.Background()
	w := newWorld(wavedSpec())
	e := w.engine(nil)
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	w.report("i-1", inventory.NodeFailed)
	for range 3 {
		if err := e.Advance(ctx, "shop-web"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerSweep); err != nil {
		t.Fatal(err)
	}
	if w.rollout.Phase != inventory.PhaseHalted || len(w.waves) != 1 || len(w.alerts) != 1 || w.alerts[0].Kind != KindHalted {
		t.Fatalf("phase %s, sent %v, alerts %d", w.rollout.Phase, sentTo(w), len(w.alerts))
	}
	if !strings.Contains(w.alerts[0].Text(), "certferry redeploy shop-web") {
		t.Fatalf("halt alert does not say how to resume:\n%s", w.alerts[0].Text())
	}
	res, err := e.Deploy(ctx, "shop-web", inventory.TriggerAPI)
	if err != nil {
		t.Fatal(err)
	}
	if res.Phase != inventory.PhaseRolling || res.Wave != 1 || fmt.Sprint(sentTo(w)) != "[[i-1] [i-1]]" || !w.waves[1].Force {
		t.Fatalf("resume: %+v, sent %v", res, sentTo(w))
	}
	w.report("i-1", inventory.NodeInstalled)
	_ = e.Advance(ctx, "shop-web")
	if fmt.Sprint(sentTo(w)) != "[[i-1] [i-1] [i-2]]" {
		t.Fatalf("after the resumed canary: %v", sentTo(w))
	}
}

func TestEngineApprovalReminderDeadline(t *testing.T) {
	ctx := context.Background()
	sp := wavedSpec()
	sp.Approval = spec.ApprovalRequired
	w := newWorld(sp)
	e := w.engine(nil)
	res, err := e.Renew(ctx, "shop-web", inventory.TriggerACM)
	if err != nil {
		t.Fatal(err)
	}
	if res.Phase != inventory.PhaseAwaitingApproval || len(w.waves) != 0 || w.syncs != 0 {
		t.Fatalf("%+v sent %v", res, sentTo(w))
	}
	if len(w.alerts) != 1 || w.alerts[0].Kind != KindApproval || !strings.Contains(w.alerts[0].Text(), "certferry approve shop-web") {
		t.Fatalf("alerts %+v", w.alerts)
	}
	var kinds []schedule.StepKind
	for _, s := range w.steps {
		kinds = append(kinds, s.Kind)
	}
	if !slices.Equal(kinds, []schedule.StepKind{StepRemind, StepDeadline}) {
		t.Fatalf("steps %v", w.steps)
	}
	remind, deadline := w.steps[0], w.steps[1]
	// 30 days of certificate left, 90-day lifetime: margin 9 days.
	if want := w.cert.NotAfter.Add(-9 * 24 * time.Hour); !deadline.At.Equal(want) {
		t.Fatalf("deadline at %s, want %s", deadline.At, want)
	}
	w.now = remind.At
	for range 2 { // the reminder alerts once however often it is delivered
		if _, err := e.Step(ctx, remind); err != nil {
			t.Fatal(err)
		}
	}
	if len(w.alerts) != 2 || w.alerts[1].Kind != KindReminder || len(w.waves) != 0 {
		t.Fatalf("after the reminder: alerts %d, sent %v", len(w.alerts), sentTo(w))
	}
	w.now = deadline.At
	res, err = e.Step(ctx, deadline)
	if err != nil {
		t.Fatal(err)
	}
	if res.Phase != inventory.PhaseRolling || fmt.Sprint(sentTo(w)) != "[[i-1]]" || !strings.HasPrefix(res.Reason, "expiry override") {
		t.Fatalf("deadline: %+v sent %v", res, sentTo(w))
	}
	if len(w.alerts) != 3 || w.alerts[2].Kind != KindOverride || !strings.Contains(w.alerts[2].Text(), "without approval") {
		t.Fatalf("alerts %+v", w.alerts)
	}
	if _, err := e.Step(ctx, deadline); err != nil || len(w.waves) != 1 {
		t.Fatalf("a second deadline delivery sent again: %v %v", err, sentTo(w))
	}
	if _, err := e.Approve(ctx, "shop-web", Caller{ARN: "arn:aws:iam::123456789012:user/ops"}); !errors.Is(err, ErrNotAwaitingApproval) {
		t.Fatalf("approve after it went: %v", err)
	}
}

func TestEngineApproveThenWindow(t *testing.T) {
	ctx := context.Background()
	sp := wavedSpec()
	sp.Approval = spec.ApprovalRequired
	sp.MaintenanceWindows = []spec.MaintenanceWindow{{Days: []string{"Sat"}, Start: "02:00", End: "05:00", Timezone: "UTC"}}
	w := newWorld(sp)
	open := false
	next := t0.Add(38 * time.Hour)
	e := w.engine(func([]spec.MaintenanceWindow, time.Time) (bool, time.Time, error) { return open, next, nil })
	if res, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil || res.Phase != inventory.PhaseAwaitingApproval {
		t.Fatalf("%+v %v", res, err)
	}
	res, err := e.Approve(ctx, "shop-web", Caller{ARN: "arn:aws:iam::123456789012:user/ops", At: t0})
	if err != nil || res.Phase != inventory.PhaseWaitingWindow || !res.NotBefore.Equal(next) || len(w.waves) != 0 {
		t.Fatalf("approve: %+v %v sent %v", res, err, sentTo(w))
	}
	if w.rollout.ApprovedBy != "arn:aws:iam::123456789012:user/ops" {
		t.Fatalf("approvedBy %q", w.rollout.ApprovedBy)
	}
	w.now, open = next, true
	res, err = e.Step(ctx, schedule.Step{Name: "shop-web", RolloutID: w.rollout.ID, Kind: StepWindow, At: next})
	if err != nil || res.Phase != inventory.PhaseRolling || fmt.Sprint(sentTo(w)) != "[[i-1]]" {
		t.Fatalf("window step: %+v %v sent %v", res, err, sentTo(w))
	}
	if _, err := e.Step(ctx, schedule.Step{Name: "shop-web", RolloutID: "other", Kind: StepWindow, At: next}); err != nil || len(w.waves) != 1 {
		t.Fatalf("a step of another rollout acted: %v", err)
	}
}

func TestEngineWindowWithinMarginGoesNow(t *testing.T) {
	ctx := context.Background()
	sp := wavedSpec()
	sp.MaintenanceWindows = []spec.MaintenanceWindow{{Days: []string{"Sat"}, Start: "02:00", End: "05:00", Timezone: "UTC"}}
	w := newWorld(sp)
	w.cert.NotAfter = t0.Add(3 * 24 * time.Hour) // inside the 9-day margin
	e := w.engine(func([]spec.MaintenanceWindow, time.Time) (bool, time.Time, error) {
		return false, t0.Add(38 * time.Hour), nil
	})
	res, err := e.Renew(ctx, "shop-web", inventory.TriggerACM)
	if err != nil || res.Phase != inventory.PhaseRolling || len(w.waves) != 1 || !strings.Contains(res.Reason, "outside the maintenance window") {
		t.Fatalf("%+v %v", res, err)
	}
	if len(w.alerts) != 1 || w.alerts[0].Kind != KindOverride {
		t.Fatalf("alerts %+v", w.alerts)
	}
}

func TestEngineNewSerialSupersedes(t *testing.T) {
	ctx := context.Background()
	w := newWorld(wavedSpec())
	e := w.engine(nil)
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	old := w.rollout.ID
	w.serial = "03"
	res, err := e.Renew(ctx, "shop-web", inventory.TriggerACM)
	if err != nil || res.RolloutID == old || res.Wave != 1 || len(w.waves) != 2 || w.waves[1].Serial != "03" {
		t.Fatalf("%+v %v sent %v", res, err, w.waves)
	}
	if len(w.alerts) != 1 || w.alerts[0].Kind != KindSuperseded {
		t.Fatalf("alerts %+v", w.alerts)
	}
}

func TestEnginePlainSpecKeepsSync(t *testing.T) {
	w := newWorld(spec.Spec{})
	res, err := w.engine(nil).Renew(context.Background(), "shop-web", inventory.TriggerACM)
	if err != nil || w.syncs != 1 || len(w.waves) != 0 || w.rollout != nil || res.CommandID != "cmd-sync" {
		t.Fatalf("%+v %v syncs %d waves %d rollout %+v", res, err, w.syncs, len(w.waves), w.rollout)
	}
}

func TestEngineHaltStops(t *testing.T) {
	ctx := context.Background()
	w := newWorld(wavedSpec())
	e := w.engine(nil)
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	if err := e.Halt(ctx, "shop-web", "certificate revoked"); err != nil {
		t.Fatal(err)
	}
	w.report("i-1", inventory.NodeInstalled)
	_ = e.Advance(ctx, "shop-web")
	if w.rollout.Phase != inventory.PhaseHalted || len(w.waves) != 1 {
		t.Fatalf("phase %s sent %v", w.rollout.Phase, sentTo(w))
	}
}

// Ten concurrent looks at a finished canary (duplicate tracker events,
// a schedule and the sweep at once): the conditional ROLLOUT write lets
// one of them send wave 2, once.
func TestEngineConcurrentAdvanceSendsOnce(t *testing.T) {
	ctx := context.Background()
	w := newWorld(wavedSpec())
	e := w.engine(nil)
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	w.report("i-1", inventory.NodeInstalled)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.Advance(ctx, "shop-web"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if fmt.Sprint(sentTo(w)) != "[[i-1] [i-2]]" {
		t.Fatalf("sent %v, want wave 2 once", sentTo(w))
	}
}

type busFake struct{ sent []busevents.RenewalWaiting }

func (b *busFake) RenewalWaiting(_ context.Context, d busevents.RenewalWaiting) busevents.Result {
	b.sent = append(b.sent, d)
	return busevents.Result{Sent: 1}
}

// "Renewal Waiting" goes out once when a rollout starts waiting for an
// approval (with when it goes on its own) and once when it halts.
func TestEngineRenewalWaitingEvents(t *testing.T) {
	ctx := context.Background()
	sp := wavedSpec()
	sp.Approval = spec.ApprovalRequired
	w := newWorld(sp)
	bus := &busFake{}
	e := w.engine(nil).WithEvents(bus)
	for range 2 {
		if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
			t.Fatal(err)
		}
	}
	if len(bus.sent) != 1 || bus.sent[0].Reason != busevents.WaitingApproval || bus.sent[0].GoesAt == nil || !bus.sent[0].GoesAt.Equal(w.rollout.GoBy) {
		t.Fatalf("events %+v", bus.sent)
	}
	if _, err := e.Approve(ctx, "shop-web", Caller{ARN: "arn:aws:iam::123456789012:user/ops"}); err != nil {
		t.Fatal(err)
	}
	w.report("i-1", inventory.NodeFailed)
	_ = e.Advance(ctx, "shop-web")
	_ = e.Advance(ctx, "shop-web")
	if len(bus.sent) != 2 || bus.sent[1].Reason != busevents.WaitingHalted || bus.sent[1].RolloutID != w.rollout.ID {
		t.Fatalf("events %+v", bus.sent)
	}
}

// countingProber counts the probe checks the engine asks for.
type countingProber struct{ names []string }

func (p *countingProber) CheckProbes(_ context.Context, name string) error {
	p.names = append(p.names, name)
	return nil
}

// A waved rollout's deployments are not probed one by one: the engine
// probes once, when the rollout is done (duplicate looks included).
func TestEngineProbesOnceWhenDone(t *testing.T) {
	ctx := context.Background()
	sp := wavedSpec()
	sp.Probes = []string{"shop.example.com:443"}
	w := newWorld(sp)
	pr := &countingProber{}
	e := w.engine(nil).WithProbes(pr)
	if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"i-1", "i-2", "i-3", "i-4"} {
		if len(pr.names) != 0 {
			t.Fatalf("probed %v before the rollout was done (phase %s)", pr.names, w.rollout.Phase)
		}
		w.report(id, inventory.NodeInstalled)
		_ = e.Advance(ctx, "shop-web")
	}
	for range 2 {
		_ = e.Advance(ctx, "shop-web")
	}
	if w.rollout.Phase != inventory.PhaseDone || fmt.Sprint(pr.names) != "[shop-web]" {
		t.Fatalf("phase %s, probed %v; want done and one probe check", w.rollout.Phase, pr.names)
	}
}
