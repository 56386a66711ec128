package localenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/schedule"
	"github.com/certferry/certferry/internal/schedulerstandin"
)

var t0 = time.Date(2027, 3, 6, 2, 0, 0, 0, time.UTC)

// stepRig is the local proxy's Scheduler stand-in on its own server, with
// the production scheduler on local up's settings, both on a settable
// clock, and a firer whose handler records what it got.
type stepRig struct {
	now   time.Time
	stand *schedulerstandin.StandIn
	sch   *schedule.Scheduler
	url   string
	firer *StepFirer
	log   *bytes.Buffer
	got   []json.RawMessage
	fail  int // the handler fails this many more calls
}

func newStepRig(t *testing.T) *stepRig {
	t.Helper()
	r := &stepRig{now: t0.Add(-time.Hour), log: &bytes.Buffer{}}
	r.stand = schedulerstandin.New(ScheduleGroup)
	r.stand.Now = func() time.Time { return r.now }
	url, stop := r.stand.Start()
	t.Cleanup(stop)
	r.url = url
	sc := LocalSchedule("123456789012", "us-east-1")
	r.sch = r.stand.Scheduler(url, schedule.Config{Group: sc.Group, TargetARN: sc.TargetARN, RoleARN: sc.RoleARN})
	r.firer = &StepFirer{Schedules: r.stand, Target: sc.TargetARN, Log: r.log,
		Handle: func(_ context.Context, ev json.RawMessage) (any, error) {
			r.got = append(r.got, ev)
			if r.fail > 0 {
				r.fail--
				return nil, errors.New("table certferry-inventory: throttled")
			}
			return map[string]string{"status": "ok"}, nil
		}}
	return r
}

// run feeds ticks to Run as a ticker would and returns once Run has
// handled them all (the channel is unbuffered and closed at the end).
func (r *stepRig) run(t *testing.T, ticks ...time.Time) {
	t.Helper()
	c := make(chan time.Time)
	done := make(chan struct{})
	go func() {
		r.firer.Run(context.Background(), c)
		close(done)
	}()
	for _, tick := range ticks {
		c <- tick
	}
	close(c)
	<-done
}

// A due step is delivered once, as the renewal handler's event, and its
// schedule is deleted; nothing is delivered before it is due.
func TestStepFirerDeliversOnceWhenDue(t *testing.T) {
	r := newStepRig(t)
	st := schedule.Step{Name: "shop-web", RolloutID: "r-1", Kind: schedule.KindPause, At: t0}
	if err := r.sch.At(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	r.run(t, t0.Add(-2*time.Second), t0.Add(-time.Second))
	if len(r.got) != 0 {
		t.Fatalf("delivered before due: %s", r.got)
	}
	if !strings.Contains(r.log.String(), "step schedule "+st.ScheduleName()+" pending: pause step of shop-web, rollout r-1, due 2027-03-06T02:00:00Z (in 2s)") {
		t.Errorf("no pending line:\n%s", r.log)
	}
	r.run(t, t0, t0.Add(time.Second), t0.Add(time.Minute))
	if len(r.got) != 1 {
		t.Fatalf("delivered %d times, want once", len(r.got))
	}
	ev, err := events.Parse(r.got[0])
	if err != nil || ev.Kind != events.KindRolloutStep || ev.Step == nil || *ev.Step != st || ev.ID != st.ScheduleName() {
		t.Fatalf("delivered %s: %+v, %v", r.got[0], ev, err)
	}
	if left := r.stand.Schedules(); len(left) != 0 {
		t.Errorf("schedules left after delivery: %+v", left)
	}
	if !strings.Contains(r.log.String(), "step schedule "+st.ScheduleName()+" (pause step of shop-web, rollout r-1) delivered (attempt 1): {\"status\":\"ok\"}") {
		t.Errorf("no delivery line:\n%s", r.log)
	}
	if strings.Count(r.log.String(), " pending: ") != 1 {
		t.Errorf("the schedule was announced more than once:\n%s", r.log)
	}
}

// A failing delivery is retried on the next tick; after MaxAttempts
// failures the schedule is dropped with an error logged, and later ticks
// deliver nothing. One that fails once is delivered on the retry.
func TestStepFirerRetriesThenGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fail      int
		calls     int
		delivered bool
	}{
		{name: "fails always", fail: 100, calls: StepMaxAttempts},
		{name: "fails once", fail: 1, calls: 2, delivered: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newStepRig(t)
			r.fail = tc.fail
			st := schedule.Step{Name: "shop-web", RolloutID: "r-1", Kind: schedule.KindDeadline, At: t0}
			if err := r.sch.At(context.Background(), st); err != nil {
				t.Fatal(err)
			}
			var ticks []time.Time
			for i := range 6 {
				ticks = append(ticks, t0.Add(time.Duration(i)*time.Second))
			}
			r.run(t, ticks...)
			if len(r.got) != tc.calls {
				t.Fatalf("handler called %d times, want %d:\n%s", len(r.got), tc.calls, r.log)
			}
			for _, ev := range r.got {
				if !bytes.Equal(ev, r.got[0]) {
					t.Fatalf("retries delivered another event: %s vs %s", ev, r.got[0])
				}
			}
			if left := r.stand.Schedules(); len(left) != 0 {
				t.Errorf("schedules left: %+v", left)
			}
			log := r.log.String()
			if !strings.Contains(log, "failed (attempt 1 of 3; retried on the next tick): renewal handler: table certferry-inventory: throttled") {
				t.Errorf("no retry line:\n%s", log)
			}
			gaveUp := strings.Contains(log, "NOT delivered, given up after 3 attempts (the stack would send it to its dead-letter queue): renewal handler: table certferry-inventory: throttled")
			if gaveUp == tc.delivered {
				t.Errorf("given-up line present = %v, want %v:\n%s", gaveUp, !tc.delivered, log)
			}
			if tc.delivered && !strings.Contains(log, "delivered (attempt 2)") {
				t.Errorf("no delivery on the retry:\n%s", log)
			}
		})
	}
}

// A schedule whose target is not the renewal function is never handed to
// it: its deliveries fail (no such function here) and it is given up.
func TestStepFirerOtherTarget(t *testing.T) {
	r := newStepRig(t)
	other := r.stand.Scheduler(r.url, schedule.Config{Group: ScheduleGroup,
		TargetARN: "arn:aws:lambda:us-east-1:123456789012:function:someone-else", RoleARN: LocalSchedule("", "").RoleARN})
	if err := other.At(context.Background(), schedule.Step{Name: "shop-web", RolloutID: "r-1", Kind: schedule.KindWindow, At: t0}); err != nil {
		t.Fatal(err)
	}
	r.run(t, t0, t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(3*time.Second))
	if len(r.got) != 0 {
		t.Fatalf("handler got %s", r.got)
	}
	if !strings.Contains(r.log.String(), "given up after 3 attempts") || !strings.Contains(r.log.String(), "is not the renewal function") {
		t.Errorf("log:\n%s", r.log)
	}
}

// Run returns when its context ends (Ctrl-C in `local proxy`), even with
// no tick coming.
func TestStepFirerStopsWithContext(t *testing.T) {
	r := newStepRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.firer.Run(ctx, make(chan time.Time))
		close(done)
	}()
	cancel()
	<-done
}

// `local schedules` reads the group through the SDK: every pending step
// with its due time, soonest first, and what it delivers.
func TestPendingSchedules(t *testing.T) {
	r := newStepRig(t)
	ctx := context.Background()
	steps := []schedule.Step{
		{Name: "shop-web", RolloutID: "r-2", Kind: schedule.KindWindow, At: t0.Add(3 * time.Hour)},
		{Name: "api", RolloutID: "r-1", Kind: schedule.KindRemind, At: t0},
	}
	for _, st := range steps {
		if err := r.sch.At(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	client := scheduler.New(scheduler.Options{Region: "us-east-1", BaseEndpoint: aws.String(r.url),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
	got, err := PendingSchedules(ctx, client, ScheduleGroup)
	if err != nil {
		t.Fatal(err)
	}
	want := []Pending{
		{Name: steps[1].ScheduleName(), Due: t0, State: "ENABLED", What: "remind step of api, rollout r-1"},
		{Name: steps[0].ScheduleName(), Due: t0.Add(3 * time.Hour), State: "ENABLED", What: "window step of shop-web, rollout r-2"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("schedule %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := PendingSchedules(ctx, client, "no-such-group"); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Errorf("unknown group: %v", err)
	}
}

func TestAtTime(t *testing.T) {
	for _, tc := range []struct {
		name, expr, tz string
		want           time.Time
	}{
		{name: "utc default", expr: "at(2027-03-06T02:00:00)", want: t0},
		{name: "zone", expr: "at(2027-03-06T03:00:00)", tz: "Europe/Berlin", want: t0},
		{name: "rate", expr: "rate(5 minutes)"},
		{name: "no closing", expr: "at(2027-03-06T02:00:00"},
		{name: "bad zone", expr: "at(2027-03-06T02:00:00)", tz: "Mars/Olympus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AtTime(tc.expr, tc.tz); !got.Equal(tc.want) {
				t.Errorf("AtTime(%q, %q) = %v, want %v", tc.expr, tc.tz, got, tc.want)
			}
		})
	}
}

// local up's schedule settings are what the handlers' configuration
// accepts, together, and name the emulator's account and region.
func TestLocalScheduleSettingsLoad(t *testing.T) {
	env := Env{Region: "eu-west-1", Config: config.Config{Table: "t", Document: "d", TopicARN: "arn:aws:sns:eu-west-1:000000000000:certferry-alerts",
		KMSKeyID: "k", SecretPrefix: "certferry/"}}
	env.Config.Schedule = LocalSchedule(accountOf(env.Config.TopicARN), env.Region)
	vars := map[string]string{}
	for _, l := range env.Exports() {
		k, v, _ := strings.Cut(strings.TrimPrefix(l, "export "), "=")
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, config.EnvTable)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Schedule{Group: "certferry-steps", RoleARN: "arn:aws:iam::000000000000:role/certferry-StepSchedulerRole",
		TargetARN: "arn:aws:lambda:eu-west-1:000000000000:function:certferry-RenewalFunction"}
	if cfg.Schedule != want {
		t.Fatalf("schedule settings %+v, want %+v", cfg.Schedule, want)
	}
	if len(Env{Region: "us-east-1"}.Exports()) != 6 {
		t.Errorf("without schedule settings (a real account) Exports has schedule lines: %v", Env{}.Exports())
	}
}
