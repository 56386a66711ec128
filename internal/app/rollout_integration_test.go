//go:build integration

package app

// Rollouts (issue 14) on moto with the SSM stand-in: waves resolved with
// DescribeInstanceInformation and sent by instance ids, the tracker moving
// them on from SSM's status events, the stop alarm honoured as
// SendCommand's AlarmConfiguration documents, gates on renewals (windows,
// approvals, the expiry override) with an injected clock and a recording
// scheduler whose steps the test fires: no sleeps.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/cli"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/renewal"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/schedule"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/sweeper"
	"github.com/certferry/certferry/internal/testkit"
	"github.com/certferry/certferry/internal/tracker"
)

// testClock is the handlers' clock, moved on by the test; each reading
// moves it a millisecond on, so that deployment ids (which start with the
// time) keep the order of the sends.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// recordingScheduler keeps the one-time steps the engine asks for, as
// EventBridge Scheduler would hold them; the test fires them.
type recordingScheduler struct {
	mu       sync.Mutex
	steps    []schedule.Step
	canceled []schedule.Step
}

func (s *recordingScheduler) At(_ context.Context, st schedule.Step) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, st)
	return nil
}

func (s *recordingScheduler) Cancel(_ context.Context, st schedule.Step) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.canceled = append(s.canceled, st)
	return nil
}

func (s *recordingScheduler) find(kind schedule.StepKind) (schedule.Step, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.steps) - 1; i >= 0; i-- {
		if s.steps[i].Kind == kind {
			return s.steps[i], true
		}
	}
	return schedule.Step{}, false
}

type rolloutRig struct {
	*ssmRig
	clock *testClock
	sched *recordingScheduler
	parts *Parts
	track *tracker.Tracker
}

// newRolloutRig is the stand-in rig with every handler on the test's
// clock and scheduler; the tracker moves rollouts on.
func newRolloutRig(t *testing.T) *rolloutRig {
	r := newSSMRig(t)
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	sched := &recordingScheduler{}
	opts := Options{Now: clock.Now, Scheduler: sched, SSM: ssm.NewFromConfig(r.aws)}
	r.handler, r.renewal = Onboard(r.aws, r.cfg, opts), Renewal(r.aws, r.cfg, opts)
	rr := &rolloutRig{ssmRig: r, clock: clock, sched: sched, parts: newParts(r.aws, r.cfg, opts), track: Tracker(r.aws, r.cfg, opts)}
	rr.tracker = rr.track
	return rr
}

// fleet launches n instances tagged env=prod, known to SSM as Linux
// nodes, sorted as the resolver sorts them.
func (r *rolloutRig) fleet(n int) []string {
	r.t.Helper()
	tags := map[string]string{"env": "prod"}
	ids := r.launch(n, tags)
	for _, id := range ids {
		r.nodes.Register(testkit.SSMNode{InstanceID: id, Platform: "Linux", Tags: tags})
	}
	slices.Sort(ids)
	return ids
}

// onboardWaved onboards name for a new exportable certificate through the
// API, with the body's top-level options given as JSON members (e.g.
// `"rollout": {"waves": ["1", "100%"]}`).
func (r *rolloutRig) onboardWaved(name, options string) {
	r.t.Helper()
	body := strings.Replace(onboardBody(r.exportable("shop.example.com"), name), `"name":`, options+`, "name":`, 1)
	if status, ans := r.post(body); status != 202 {
		r.t.Fatalf("onboard %s: %d %v", name, status, ans)
	}
}

// sent is every deployment of name, oldest first.
func (r *rolloutRig) deployments(name string) []inventory.Deployment {
	r.t.Helper()
	d, err := r.inv.Describe(r.ctx, name)
	if err != nil {
		r.t.Fatal(err)
	}
	return d.Deployments
}

func (r *rolloutRig) rollout(name string) *inventory.Rollout {
	r.t.Helper()
	ro, err := r.inv.GetRollout(r.ctx, name)
	if err != nil || ro == nil {
		r.t.Fatalf("rollout of %s: %+v %v", name, ro, err)
	}
	return ro
}

// report posts a node's result for its last command and delivers the
// invocation's status event to the tracker.
func (r *rolloutRig) report(name, id string, ok bool) tracker.Outcome {
	r.t.Helper()
	c, n := r.cert(name), r.nodeRecord(name, id)
	if n == nil {
		r.t.Fatalf("no node record of %s", id)
	}
	file, res := "tracker-invocation-success.json", testkit.NodeResult{Status: "Success", Stdout: resultLine("installed", c.Fingerprint, c.Serial, "ok")}
	if !ok {
		file = "tracker-invocation-failed.json"
		res = testkit.NodeResult{Status: "Failed", ResponseCode: 1, Stderr: "certferry: handshake failed\n",
			Stdout: resultLine("rolled_back", c.Fingerprint, c.Serial, "handshake served another certificate")}
	}
	r.postResult(n.LastCommandID, id, res)
	return r.mustTrack(file, n.LastCommandID, id)
}

// commandsSent is how many SendCommand calls the stand-in saw since the
// last call.
func (r *rolloutRig) commandsSent() int { return r.nodes.Calls()["AmazonSSM.SendCommand"] }

const waves = `"rollout": {"waves": ["1", "50%", "100%"]}`

// Waves of 1, 50% and 100% over 4 instances: the first command goes to
// exactly one instance; the next only after its success event (a
// duplicate of that event sends nothing more); each deployment says its
// wave; the rollout ends done with no alert.
func TestRolloutWavesOverFourInstances(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(4)
	r.onboardWaved("shop-web", waves)
	deps := r.deployments("shop-web")
	if n := r.commandsSent(); n != 1 || len(deps) != 1 || !slices.Equal(deps[0].InstanceIDs, ids[:1]) || deps[0].Wave != 1 || deps[0].Waves != 3 {
		t.Fatalf("onboarding sent %d command(s), deployments %+v; want one to %s alone, wave 1 of 3", n, deps, ids[0])
	}
	if got, _ := r.nodes.Targets(deps[0].CommandID); !slices.Equal(got, ids[:1]) {
		t.Fatalf("first command targets %v", got)
	}
	if ro := r.rollout("shop-web"); ro.Phase != inventory.PhaseRolling || ro.Wave != 1 || !slices.Equal(ro.Waves, []int{1, 2, 4}) {
		t.Fatalf("rollout %+v", ro)
	}

	r.report("shop-web", ids[0], true)
	// The same success event again: recorded once, nothing more sent.
	if o := r.mustTrack("tracker-invocation-success.json", deps[0].CommandID, ids[0]); o.Status != tracker.StatusStale {
		t.Fatalf("duplicate event: %+v", o)
	}
	deps = r.deployments("shop-web")
	if n := r.commandsSent(); n != 1 || len(deps) != 2 || !slices.Equal(deps[1].InstanceIDs, ids[1:2]) || deps[1].Wave != 2 {
		t.Fatalf("after the canary: %d command(s), deployments %+v", n, deps)
	}
	r.report("shop-web", ids[1], true)
	deps = r.deployments("shop-web")
	if n := r.commandsSent(); n != 1 || len(deps) != 3 || !slices.Equal(deps[2].InstanceIDs, ids[2:]) || deps[2].Wave != 3 {
		t.Fatalf("after wave 2: %d command(s), deployments %+v", n, deps)
	}
	r.report("shop-web", ids[2], true)
	r.report("shop-web", ids[3], true)
	if ro := r.rollout("shop-web"); ro.Phase != inventory.PhaseDone || r.commandsSent() != 0 {
		t.Fatalf("rollout %+v", ro)
	}
	if a := r.alerts(); len(a) != 0 {
		t.Fatalf("alerts %+v for a rollout that succeeded", a)
	}
	// The API shows each deployment's wave and the rollout.
	status, page := r.call("GET", "/certificates/shop-web", "shop-web", "")
	if status != 200 || page["currentRollout"].(map[string]any)["phase"] != "done" {
		t.Fatalf("GET: %d %v", status, page["currentRollout"])
	}
	for i, d := range page["deployments"].([]any) {
		if w := d.(map[string]any)["wave"]; w != float64(i+1) || d.(map[string]any)["waves"] != float64(3) {
			t.Fatalf("deployment %d shows wave %v", i, d)
		}
	}
	// DELETE removes the ROLLOUT item with the rest.
	if status, ans := r.call("DELETE", "/certificates/shop-web", "shop-web", ""); status != 200 {
		t.Fatalf("delete: %d %v", status, ans)
	}
	if ro, err := r.inv.GetRollout(r.ctx, "shop-web"); err != nil || ro != nil {
		t.Fatalf("rollout after DELETE: %+v %v", ro, err)
	}
}

// A failure in the canary halts the rollout: one alert, nothing more sent
// (a redelivered failure changes nothing); redeploy resumes from the
// halted wave, re-sending its failed node, and the rollout goes on.
func TestRolloutCanaryFailureHaltsAndRedeployResumes(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(4)
	r.onboardWaved("shop-web", waves)
	r.commandsSent()
	r.report("shop-web", ids[0], false)
	first := r.deployments("shop-web")[0]
	if o := r.mustTrack("tracker-invocation-failed.json", first.CommandID, ids[0]); o.Status != tracker.StatusStale {
		t.Fatalf("duplicate failure: %+v", o)
	}
	ro := r.rollout("shop-web")
	if ro.Phase != inventory.PhaseHalted || r.commandsSent() != 0 || len(r.deployments("shop-web")) != 1 {
		t.Fatalf("after the canary failed: %+v", ro)
	}
	alerts := r.alerts()
	if len(alerts) != 1 || !strings.Contains(alerts[0].Subject, "rollout halted at wave 1 of 3") ||
		!strings.Contains(alerts[0].Message, ids[0]) || !strings.Contains(alerts[0].Message, "certferry redeploy shop-web") {
		t.Fatalf("alerts %+v, want one saying the rollout halted, the node and how to resume", alerts)
	}

	status, ans := r.call("POST", "/certificates/shop-web/deployments", "shop-web", "")
	if status != 202 {
		t.Fatalf("redeploy: %d %v", status, ans)
	}
	deps := r.deployments("shop-web")
	if r.commandsSent() != 1 || len(deps) != 2 || !slices.Equal(deps[1].InstanceIDs, ids[:1]) || deps[1].Wave != 1 {
		t.Fatalf("resume: deployments %+v", deps)
	}
	r.report("shop-web", ids[0], true)
	if deps = r.deployments("shop-web"); len(deps) != 3 || !slices.Equal(deps[2].InstanceIDs, ids[1:2]) {
		t.Fatalf("after the resumed canary: %+v", deps)
	}
	if ro := r.rollout("shop-web"); ro.Phase != inventory.PhaseRolling || ro.Wave != 2 {
		t.Fatalf("rollout %+v", ro)
	}
	if a := r.alerts(); len(a) != 0 {
		t.Fatalf("more alerts: %+v", a)
	}
}

// awsCLI runs the aws CLI against the rig's emulator directly.
func (r *rolloutRig) awsCLI(args ...string) []byte {
	r.t.Helper()
	cmd := exec.Command("aws", append(args, "--endpoint-url", r.server.URL, "--region", "us-east-1", "--output", "json")...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_PAGER=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("aws %v: %v\n%s", args, err, out)
	}
	return out
}

// An alarm in ALARM stops the command (SendCommand's AlarmConfiguration,
// exactly one alarm, on every command of the name): its invocations end
// Cancelled, the rollout halts with one alert and nothing more is sent.
// The alarm lives in moto's CloudWatch (PutMetricAlarm, SetAlarmState);
// the stand-in reads it as SSM does.
func TestRolloutStopAlarmStopsIt(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	r.nodes.AlarmState = func(name string) (string, error) {
		var out struct{ MetricAlarms []struct{ StateValue string } }
		cmd := exec.Command("aws", "cloudwatch", "describe-alarms", "--alarm-names", name, "--endpoint-url", r.server.URL,
			"--region", "us-east-1", "--output", "json")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_PAGER=")
		b, err := cmd.Output()
		if err != nil {
			return "", err
		}
		if err := json.Unmarshal(b, &out); err != nil || len(out.MetricAlarms) != 1 {
			return "", fmt.Errorf("alarm %s: %v %s", name, err, b)
		}
		return out.MetricAlarms[0].StateValue, nil
	}
	r.awsCLI("cloudwatch", "put-metric-alarm", "--alarm-name", "shop-5xx", "--namespace", "Shop", "--metric-name", "5xx",
		"--statistic", "Sum", "--period", "60", "--evaluation-periods", "1", "--threshold", "1", "--comparison-operator", "GreaterThanThreshold")
	r.awsCLI("cloudwatch", "set-alarm-state", "--alarm-name", "shop-5xx", "--state-value", "OK", "--state-reason", "quiet")
	ids := r.fleet(4)
	r.onboardWaved("shop-web", `"rollout": {"waves": ["1", "50%", "100%"], "stopAlarm": "shop-5xx"}`)
	r.commandsSent()
	dep := r.deployments("shop-web")[0]
	lc, err := ssm.NewFromConfig(r.aws).ListCommands(r.ctx, &ssm.ListCommandsInput{CommandId: aws.String(dep.CommandID)})
	if err != nil || len(lc.Commands) != 1 || lc.Commands[0].AlarmConfiguration == nil ||
		aws.ToString(lc.Commands[0].AlarmConfiguration.Alarms[0].Name) != "shop-5xx" || lc.Commands[0].AlarmConfiguration.IgnorePollAlarmFailure {
		t.Fatalf("command %+v %v, want AlarmConfiguration with shop-5xx", lc, err)
	}
	if got := r.nodes.PollAlarms(); len(got) != 0 {
		t.Fatalf("alarm OK stopped %v", got)
	}

	r.awsCLI("cloudwatch", "set-alarm-state", "--alarm-name", "shop-5xx", "--state-value", "ALARM", "--state-reason", "5xx spike")
	stopped := r.nodes.PollAlarms()
	if !slices.Equal(stopped[dep.CommandID], ids[:1]) {
		t.Fatalf("stopped %v, want the canary's invocation", stopped)
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "tracker-invocation-failed.json"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := localenv.StatusEvent([]byte(strings.Replace(string(raw), `"status": "Failed"`, `"status": "Cancelled"`, 1)),
		dep.CommandID, ids[0], r.cfg.Document, "cancelled-"+ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if o, err := r.tracker.Handle(r.ctx, ev); err != nil || o.NodeState != inventory.NodeFailed {
		t.Fatalf("cancelled invocation: %+v %v", o, err)
	}
	if ro := r.rollout("shop-web"); ro.Phase != inventory.PhaseHalted || r.commandsSent() != 0 {
		t.Fatalf("rollout %+v", ro)
	}
	if a := r.alerts(); len(a) != 1 || !strings.Contains(a[0].Message, "SSM reports Cancelled") {
		t.Fatalf("alerts %+v", a)
	}
}

// A spec without rollout or gates keeps today's path: one tag-target
// command to every node, no DescribeInstanceInformation, no ROLLOUT item,
// and a renewal is one tag-target command too.
func TestRolloutPlainSpecKeepsOneTagTargetCommand(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(3)
	r.nodes.Calls()
	if status, ans := r.post(onboardBody(r.exportable("shop.example.com"), "shop-web")); status != 202 {
		t.Fatalf("onboard: %d %v", status, ans)
	}
	calls := r.nodes.Calls()
	if calls["AmazonSSM.SendCommand"] != 1 || calls["AmazonSSM.DescribeInstanceInformation"] != 0 {
		t.Fatalf("calls %v", calls)
	}
	c := r.cert("shop-web")
	if got, _ := r.nodes.Targets(c.LastCommandID); !slices.Equal(got, ids) {
		t.Fatalf("targets %v", got)
	}
	if ro, err := r.inv.GetRollout(r.ctx, "shop-web"); err != nil || ro != nil {
		t.Fatalf("rollout item %+v %v", ro, err)
	}
	out := r.handle(r.event("renewal-available-renewal.json", c.CertificateARN, "")) // same serial: checked, nothing sent
	if out.Status != renewal.StatusDone || !slices.Equal(out.Unchanged, []string{"shop-web"}) || r.nodes.Calls()["AmazonSSM.SendCommand"] != 0 {
		t.Fatalf("renewal of an unchanged serial: %+v", out)
	}
}

// stagedRenewal onboards name with the given options as it was before ACM
// renewed its certificate (renewalRig.onboardedBeforeRenewal, with
// options): the nodes of fleet have the old serial, ACM holds a newer one.
func (r *rolloutRig) stagedRenewal(name string, fleet []string, opts func(*spec.Spec)) (arn, renewed string) {
	r.t.Helper()
	arn = r.exportable("shop.example.com")
	now, err := r.parts.ACM.Describe(r.ctx, arn)
	if err != nil {
		r.t.Fatal(err)
	}
	exp := testkit.NewExport(r.t, testkit.RSA2048, "shop.example.com", "unused")
	before := now
	before.Serial = certs.SerialHex(exp.Leaf.SerialNumber)
	before.NotBefore, before.NotAfter = exp.Leaf.NotBefore, exp.Leaf.NotAfter
	sp := specOf(r.t.(*testing.T), onboardBody(arn, name))
	opts(&sp)
	p := pipeline.New(&preRenewalACM{t: r.t, info: before, exp: exp}, r.parts.Bundles, r.parts.Inventory, r.parts.Fleet,
		pipeline.Config{Region: "us-east-1", Now: r.clock.Now})
	if _, err := p.Onboard(r.ctx, sp); err != nil {
		r.t.Fatal(err)
	}
	c := r.cert(name)
	for _, id := range fleet { // every node has the old serial
		r.postResult(c.LastCommandID, id, testkit.NodeResult{Status: "Success", Stdout: resultLine("installed", c.Fingerprint, c.Serial, "ok")})
		r.mustTrack("tracker-invocation-success.json", c.LastCommandID, id)
	}
	if c.Serial != before.Serial || now.Serial == before.Serial {
		r.t.Fatalf("staged serial %s, ACM %s", c.Serial, now.Serial)
	}
	r.bundleOf(name)
	r.commandsSent()
	r.alerts()
	return arn, now.Serial
}

// stepID is the schedule's name, which the delivered event carries as id.
func stepID(st schedule.Step) string {
	return fmt.Sprintf("certferry-%s-%s-%s-%d", st.Name, st.RolloutID, st.Kind, st.At.Unix())
}

// A renewal outside the maintenance window waits (waiting_window:
// nothing exported, nothing sent; status says when it goes) and goes,
// in waves, when the window step fires; a repeated step changes nothing.
func TestRolloutRenewalWaitsForTheWindow(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(2)
	day := r.clock.Now().Add(48 * time.Hour).Weekday().String()[:3] // two days on: not open now
	arn, renewed := r.stagedRenewal("shop-web", ids, func(sp *spec.Spec) {
		sp.Rollout = &spec.Rollout{Waves: []string{"1", "100%"}}
		sp.MaintenanceWindows = []spec.MaintenanceWindow{{Days: []string{day}, Start: "02:00", End: "05:00", Timezone: "UTC"}}
	})
	before := r.counts()
	out := r.handle(r.event("renewal-available-renewal.json", arn, ""))
	if out.Status != renewal.StatusDone || len(out.Deployed) != 1 || out.Deployed[0].Phase != "waiting_window" {
		t.Fatalf("renewal: %+v", out)
	}
	if after := r.counts(); after.versions != before.versions || r.commandsSent() != 0 {
		t.Fatalf("a waiting renewal exported or sent: %+v -> %+v", before, after)
	}
	win, ok := r.sched.find("window")
	if _, dl := r.sched.find("deadline"); !ok || !dl || win.At.Weekday().String()[:3] != day || win.At.Hour() != 2 {
		t.Fatalf("steps %+v", r.sched.steps)
	}
	// status shows when the waiting deployment goes.
	page, err := r.client().Get(r.ctx, "shop-web")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := cli.NameStatus(&b, page, r.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "waiting_window; goes at "+win.At.UTC().Format(time.RFC3339)) {
		t.Fatalf("status:\n%s", b.String())
	}

	r.clock.Set(win.At.Add(time.Second))
	so, err := r.renewal.HandleStep(r.ctx, stepID(win), win)
	if err != nil || so.Status != renewal.StatusDone {
		t.Fatalf("window step: %+v %v", so, err)
	}
	deps := r.deployments("shop-web")
	last := deps[len(deps)-1]
	if r.commandsSent() != 1 || last.Wave != 1 || last.Waves != 2 || !slices.Equal(last.InstanceIDs, ids[:1]) || last.Serial != renewed {
		t.Fatalf("after the window opened: %+v", last)
	}
	if b := r.bundleOf("shop-web"); b.Serial != renewed {
		t.Fatalf("secret holds %s, want the renewed %s", b.Serial, renewed)
	}
	// The same step delivered again, and another delivery of it: nothing more.
	if so, err := r.renewal.HandleStep(r.ctx, stepID(win), win); err != nil || so.Status != renewal.StatusDuplicate {
		t.Fatalf("redelivery: %+v %v", so, err)
	}
	if _, err := r.renewal.HandleStep(r.ctx, stepID(win)+"-again", win); err != nil || r.commandsSent() != 0 {
		t.Fatalf("second delivery sent again: %v", err)
	}
	if a := r.alerts(); len(a) != 0 {
		t.Fatalf("alerts %+v", a)
	}
}

// A renewal within the safety margin of the certificate on the nodes goes
// now, outside the window, and says why (the alert and the rollout's
// reason).
func TestRolloutRenewalWithinTheMarginGoesNow(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(2)
	day := r.clock.Now().Add(48 * time.Hour).Weekday().String()[:3]
	arn, renewed := r.stagedRenewal("shop-web", ids, func(sp *spec.Spec) {
		margin := 60
		sp.SafetyMarginDays = &margin
		sp.MaintenanceWindows = []spec.MaintenanceWindow{{Days: []string{day}, Start: "02:00", End: "05:00", Timezone: "UTC"}}
	})
	r.clock.Set(r.cert("shop-web").NotAfter.Add(-30 * 24 * time.Hour)) // 30 days left, margin 60
	out := r.handle(r.event("renewal-available-renewal.json", arn, ""))
	if len(out.Deployed) != 1 || !strings.Contains(out.Deployed[0].Reason, "expiry override") ||
		!strings.Contains(out.Deployed[0].Reason, "outside the maintenance window") {
		t.Fatalf("renewal: %+v", out)
	}
	c := r.cert("shop-web")
	if got, _ := r.nodes.Targets(c.LastCommandID); r.commandsSent() != 1 || c.Serial != renewed || !slices.Equal(got, ids) {
		t.Fatalf("within the margin: command to %v, serial %s", got, c.Serial)
	}
	if a := r.alerts(); len(a) != 1 || !strings.Contains(a[0].Subject, "shop-web: renewal deployed now (expiry override)") ||
		!strings.Contains(a[0].Message, "within the safety margin") || !strings.Contains(a[0].Message, ids[0]) {
		t.Fatalf("alerts %+v", a)
	}
}

// An approval-required renewal sends nothing until approved: the alert
// says how to approve; the reminder alerts again once; at the margin
// (the deadline step) it goes on its own and says why. Another name is
// approved and goes at once.
func TestRolloutApprovalRequired(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(2)
	required := func(sp *spec.Spec) { sp.Approval = spec.ApprovalRequired }
	arn, renewed := r.stagedRenewal("shop-web", ids, required)
	before := r.counts()
	out := r.handle(r.event("renewal-available-renewal.json", arn, ""))
	if len(out.Deployed) != 1 || out.Deployed[0].Phase != "awaiting_approval" || r.commandsSent() != 0 || r.counts().versions != before.versions {
		t.Fatalf("renewal: %+v", out)
	}
	a := r.alerts()
	if len(a) != 1 || !strings.Contains(a[0].Message, "certferry approve shop-web") || !strings.Contains(a[0].Message, "POST /certificates/shop-web/approvals") {
		t.Fatalf("alerts %+v", a)
	}
	remind, ok1 := r.sched.find("remind")
	deadline, ok2 := r.sched.find("deadline")
	if !ok1 || !ok2 || !remind.At.Before(deadline.At) {
		t.Fatalf("steps %+v", r.sched.steps)
	}
	r.clock.Set(remind.At.Add(time.Second))
	for _, id := range []string{stepID(remind), stepID(remind) + "-again"} {
		if _, err := r.renewal.HandleStep(r.ctx, id, remind); err != nil {
			t.Fatal(err)
		}
	}
	if a := r.alerts(); len(a) != 1 || !strings.Contains(a[0].Subject, "still awaits approval") || r.commandsSent() != 0 {
		t.Fatalf("reminder: %+v", a)
	}
	r.clock.Set(deadline.At.Add(time.Second))
	if _, err := r.renewal.HandleStep(r.ctx, stepID(deadline), deadline); err != nil {
		t.Fatal(err)
	}
	c := r.cert("shop-web")
	if got, _ := r.nodes.Targets(c.LastCommandID); r.commandsSent() != 1 || c.Serial != renewed || !slices.Equal(got, ids) {
		t.Fatalf("deadline: command to %v, serial %s", got, c.Serial)
	}
	if ro := r.rollout("shop-web"); ro.Phase != inventory.PhaseDone {
		t.Fatalf("rollout %+v", ro)
	}
	if a := r.alerts(); len(a) != 1 || !strings.Contains(a[0].Message, "without approval") {
		t.Fatalf("alerts %+v", a)
	}

	// Approved before the margin: goes at once, recording who approved.
	r.clock.Set(time.Now().UTC()) // back before shop-api's own margin
	arn2, renewed2 := r.stagedRenewal("shop-api", ids, required)
	r.handle(r.event("renewal-available-renewal.json", arn2, "renewal-of-shop-api"))
	r.alerts()
	status, ans := r.call("POST", "/certificates/shop-api/approvals", "shop-api", "")
	if status != 202 || ans["phase"] != "done" || r.commandsSent() != 1 || r.cert("shop-api").Serial != renewed2 {
		t.Fatalf("approve through the API: %d %v", status, ans)
	}
	if ro := r.rollout("shop-api"); ro.ApprovedBy == "" || ro.ApprovedAt.IsZero() {
		t.Fatalf("rollout %+v, want who approved and when", ro)
	}
	// Nothing waits any more: 409, nothing sent.
	if status, ans := r.call("POST", "/certificates/shop-api/approvals", "shop-api", ""); status != 409 || r.commandsSent() != 0 {
		t.Fatalf("second approval: %d %v", status, ans)
	}
	if _, err := r.parts.Rollouts.Approve(r.ctx, "shop-api", rollout.Caller{ARN: "arn:aws:iam::123456789012:user/ops"}); !errors.Is(err, rollout.ErrNotAwaitingApproval) {
		t.Fatalf("engine approval of a done rollout: %v", err)
	}
}

// The sweep and a rollout: while a rollout of the name is under way the
// sweep sends nothing to its nodes (three of them have no record yet, which
// would otherwise be "new" nodes to send to); a pause whose schedule was
// lost is stepped by the sweep once it is overdue.
func TestRolloutSweepStepsOverduePauseAndResendsNothing(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(4)
	r.onboardWaved("shop-web", `"rollout": {"waves": ["1", "50%", "100%"], "pauseMinutes": 10}`)
	r.commandsSent()
	r.report("shop-web", ids[0], true)
	ro := r.rollout("shop-web")
	if _, ok := r.sched.find("pause"); !ok || ro.Phase != inventory.PhasePaused || r.commandsSent() != 0 {
		t.Fatalf("after the canary: %+v, steps %+v", ro, r.sched.steps)
	}
	sweep, err := LocalSweep(r.ctx, r.aws, r.cfg, Options{Now: r.clock.Now, Scheduler: r.sched, SSM: ssm.NewFromConfig(r.aws), Metrics: io.Discard,
		Sweep: sweeper.Config{Now: r.clock.Now}, SweepPacing: -1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sweep.Run(r.ctx)
	if err != nil || r.commandsSent() != 0 || len(rep.Names) != 1 || len(rep.Names[0].Resent) != 0 || rep.Names[0].Rollout != "paused at wave 1 of 3" {
		t.Fatalf("sweep during the pause: %+v %v", rep, err)
	}
	r.clock.Set(ro.NotBefore.Add(time.Minute)) // the pause step was lost
	rep, err = sweep.Run(r.ctx)
	deps := r.deployments("shop-web")
	if err != nil || r.commandsSent() != 1 || !slices.Equal(deps[len(deps)-1].InstanceIDs, ids[1:2]) || rep.Names[0].Rollout != "rolling at wave 2 of 3" {
		t.Fatalf("sweep after the pause: %+v %v, deployments %+v", rep, err, deps)
	}
}
