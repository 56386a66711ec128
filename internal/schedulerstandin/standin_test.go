package schedulerstandin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/schedule"
)

var standInT0 = time.Date(2027, 3, 6, 2, 0, 0, 0, time.UTC)

// clock is a settable clock for the stand-in and the scheduler.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func startStandIn(t *testing.T) (*StandIn, *schedule.Scheduler, *clock, string) {
	t.Helper()
	c := &clock{t: standInT0.Add(-24 * time.Hour)}
	s := New()
	s.Now = c.now
	url, stop := s.Start()
	t.Cleanup(stop)
	return s, s.Scheduler(url, s.SchedulerConfig("certferry-test")), c, url
}

func sdkClient(url string) *scheduler.Client {
	return scheduler.New(scheduler.Options{Region: Region, BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
}

// The production Scheduler creates a one-time schedule through the SDK;
// the stand-in holds it as Scheduler would, fires it once when it is due,
// and the delivered input parses to the step; the schedule is then gone.
func TestSchedulerStandInLifecycle(t *testing.T) {
	ctx := context.Background()
	s, sch, c, url := startStandIn(t)
	st := schedule.Step{Name: "shop-web", RolloutID: "r-1", Kind: schedule.KindPause, At: standInT0}
	if err := sch.At(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := sch.At(ctx, st); err != nil { // ConflictException = success
		t.Fatalf("second At: %v", err)
	}
	all := s.Schedules()
	if len(all) != 1 {
		t.Fatalf("%d schedules: %+v", len(all), all)
	}
	x := all[0]
	if x.Group != "certferry-test" || x.Name != st.ScheduleName() || !x.At.Equal(standInT0) || x.ActionAfterCompletion != "DELETE" ||
		x.Timezone != "UTC" || x.Expression != "at(2027-03-06T02:00:00)" || x.TargetARN != sch.Config().TargetARN {
		t.Fatalf("held %+v", x)
	}
	got, err := sdkClient(url).GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(x.Name), GroupName: aws.String("certferry-test")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Target.Input) != x.Input || aws.ToInt32(got.Target.RetryPolicy.MaximumRetryAttempts) != schedule.MaxRetries ||
		got.FlexibleTimeWindow.Mode != types.FlexibleTimeWindowModeOff || aws.ToString(got.Arn) != x.ARN() {
		t.Fatalf("GetSchedule answered %+v", got)
	}

	if d := s.Due(standInT0.Add(-time.Second)); len(d) != 0 {
		t.Fatalf("due a second early: %+v", d)
	}
	// Off the minute, a schedule runs anywhere in its minute ("60 second
	// precision"): the stand-in fires it at the minute's start, early.
	sc := sch.Config()
	_, err = sdkClient(url).CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name: aws.String("off-the-minute"), GroupName: aws.String("certferry-test"),
		ScheduleExpression: aws.String("at(2027-03-06T03:00:30)"), ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		Target:             &types.Target{Arn: aws.String(sc.TargetARN), RoleArn: aws.String(sc.RoleARN), Input: aws.String(`{}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Due(standInT0.Add(time.Hour)); len(d) != 2 || d[1].Name != "off-the-minute" {
		t.Fatalf("at 03:00:00, due %+v: want the 03:00:30 schedule too", d)
	}
	if _, err := sdkClient(url).DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("off-the-minute"), GroupName: aws.String("certferry-test")}); err != nil {
		t.Fatal(err)
	}
	var delivered []events.Event
	deliver := func(_ context.Context, raw json.RawMessage) error {
		ev, err := events.Parse(raw)
		if err != nil {
			return err
		}
		delivered = append(delivered, ev)
		return nil
	}
	c.t = standInT0
	n, err := s.Fire(ctx, standInT0, deliver)
	if err != nil || n != 1 || len(delivered) != 1 {
		t.Fatalf("Fire = %d, %v; delivered %d", n, err, len(delivered))
	}
	ev := delivered[0]
	if ev.Kind != events.KindRolloutStep || ev.Step == nil || *ev.Step != st || ev.ID != st.ScheduleName() {
		t.Fatalf("delivered %+v (step %+v)", ev, ev.Step)
	}
	if left := s.Schedules(); len(left) != 0 {
		t.Fatalf("ActionAfterCompletion DELETE left %+v", left)
	}
	if n, err := s.Fire(ctx, standInT0.Add(time.Hour), deliver); n != 0 || err != nil || len(delivered) != 1 {
		t.Fatalf("fired twice: %d %v", n, err)
	}
	// Cancel after it ran (ResourceNotFound) is success.
	if err := sch.Cancel(ctx, st); err != nil {
		t.Fatal(err)
	}
}

// A failed delivery keeps the schedule for the next Fire; a step already
// past when scheduled goes out a minute later; Cancel removes one.
func TestSchedulerStandInRetriesAndCancel(t *testing.T) {
	ctx := context.Background()
	s, sch, c, _ := startStandIn(t)
	c.t = standInT0
	late := schedule.Step{Name: "shop-web", RolloutID: "r-1", Kind: schedule.KindDeadline, At: standInT0.Add(-2 * time.Hour)}
	later := schedule.Step{Name: "shop-api", RolloutID: "r-2", Kind: schedule.KindRemind, At: standInT0.Add(3 * time.Hour)}
	for _, st := range []schedule.Step{late, later} {
		if err := sch.At(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	due := s.Due(standInT0.Add(time.Minute))
	if len(due) != 1 || due[0].Name != late.ScheduleName() || !due[0].At.Equal(standInT0.Add(time.Minute)) {
		t.Fatalf("due %+v", due)
	}
	fail := errors.New("handler failed")
	n, err := s.Fire(ctx, standInT0.Add(time.Minute), func(context.Context, json.RawMessage) error { return fail })
	if n != 0 || !errors.Is(err, fail) || !strings.Contains(err.Error(), late.ScheduleName()) {
		t.Fatalf("Fire = %d, %v", n, err)
	}
	if d := s.Due(standInT0.Add(time.Minute)); len(d) != 1 || d[0].Attempts != 1 {
		t.Fatalf("after a failed delivery: %+v", d)
	}
	n, err = s.Fire(ctx, standInT0.Add(2*time.Minute), func(context.Context, json.RawMessage) error { return nil })
	if n != 1 || err != nil {
		t.Fatalf("retry Fire = %d, %v", n, err)
	}
	if err := sch.Cancel(ctx, later); err != nil {
		t.Fatal(err)
	}
	if left := s.Schedules(); len(left) != 0 {
		t.Fatalf("left %+v", left)
	}
	if calls := s.Calls(); calls["CreateSchedule"] != 2 || calls["DeleteSchedule"] != 1 {
		t.Fatalf("calls %v", calls)
	}
}

// What AWS refuses, the stand-in refuses, with the error AWS answers.
func TestSchedulerStandInRefusals(t *testing.T) {
	s := New("certferry-test")
	s.Now = func() time.Time { return standInT0 }
	future := "at(2027-03-07T00:00:00)"
	body := func(mod func(m map[string]any)) string {
		m := map[string]any{
			"GroupName": "certferry-test", "ScheduleExpression": future, "ScheduleExpressionTimezone": "UTC",
			"FlexibleTimeWindow": map[string]any{"Mode": "OFF"}, "ActionAfterCompletion": "DELETE",
			"Target": map[string]any{"Arn": "arn:aws:lambda:us-east-1:123456789012:function:f", "RoleArn": "arn:aws:iam::123456789012:role/r", "Input": `{"a":1}`},
		}
		if mod != nil {
			mod(m)
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	target := func(mod func(t map[string]any)) func(m map[string]any) {
		return func(m map[string]any) { mod(m["Target"].(map[string]any)) }
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		code, message            string
	}{
		{name: "valid", method: "POST", path: "/schedules/ok-1", body: body(nil), status: 200},
		{name: "duplicate name", method: "POST", path: "/schedules/dup", body: body(nil), status: 409, code: "ConflictException", message: "already exists"},
		{name: "name with a slash-free bad character", method: "POST", path: "/schedules/bad%20name", body: body(nil), status: 400, code: "ValidationException", message: "regular expression"},
		{name: "name of 65 characters", method: "POST", path: "/schedules/" + strings.Repeat("a", 65), body: body(nil), status: 400, code: "ValidationException"},
		{name: "missing role ARN", method: "POST", path: "/schedules/x1", body: body(target(func(t map[string]any) { delete(t, "RoleArn") })), status: 400, code: "ValidationException", message: "target.roleArn"},
		{name: "role ARN of another service", method: "POST", path: "/schedules/x2", body: body(target(func(t map[string]any) { t["RoleArn"] = "arn:aws:lambda:us-east-1:123456789012:function:f" })), status: 400, code: "ValidationException", message: "target.roleArn"},
		{name: "Lambda input not JSON", method: "POST", path: "/schedules/x3", body: body(target(func(t map[string]any) { t["Input"] = "not json" })), status: 400, code: "ValidationException", message: "well-formed JSON"},
		{name: "retry attempts out of range", method: "POST", path: "/schedules/x4", body: body(target(func(t map[string]any) { t["RetryPolicy"] = map[string]any{"MaximumRetryAttempts": 186} })), status: 400, code: "ValidationException", message: "maximumRetryAttempts"},
		{name: "event age out of range", method: "POST", path: "/schedules/x5", body: body(target(func(t map[string]any) { t["RetryPolicy"] = map[string]any{"MaximumEventAgeInSeconds": 59} })), status: 400, code: "ValidationException"},
		{name: "dead-letter queue not SQS", method: "POST", path: "/schedules/x6", body: body(target(func(t map[string]any) {
			t["DeadLetterConfig"] = map[string]any{"Arn": "arn:aws:sns:us-east-1:123456789012:t"}
		})), status: 400, code: "ValidationException"},
		{name: "no flexible time window", method: "POST", path: "/schedules/x7", body: body(func(m map[string]any) { delete(m, "FlexibleTimeWindow") }), status: 400, code: "ValidationException", message: "flexibleTimeWindow"},
		{name: "flexible without a window", method: "POST", path: "/schedules/x8", body: body(func(m map[string]any) { m["FlexibleTimeWindow"] = map[string]any{"Mode": "FLEXIBLE"} }), status: 400, code: "ValidationException"},
		{name: "unknown action after completion", method: "POST", path: "/schedules/x9", body: body(func(m map[string]any) { m["ActionAfterCompletion"] = "ARCHIVE" }), status: 400, code: "ValidationException"},
		{name: "at() in the past", method: "POST", path: "/schedules/x10", body: body(func(m map[string]any) { m["ScheduleExpression"] = "at(2027-03-06T01:59:59)" }), status: 400, code: "ValidationException", message: "in the past"},
		{name: "at() now", method: "POST", path: "/schedules/x11", body: body(func(m map[string]any) { m["ScheduleExpression"] = "at(2027-03-06T02:00:00)" }), status: 400, code: "ValidationException", message: "in the past"},
		{name: "at() in a zone", method: "POST", path: "/schedules/x12", body: body(func(m map[string]any) {
			m["ScheduleExpression"], m["ScheduleExpressionTimezone"] = "at(2027-03-06T03:30:00)", "Europe/Berlin"
		}), status: 200},
		{name: "unknown zone", method: "POST", path: "/schedules/x13", body: body(func(m map[string]any) { m["ScheduleExpressionTimezone"] = "Mars/Olympus" }), status: 400, code: "ValidationException"},
		{name: "at() with a zone suffix", method: "POST", path: "/schedules/x14", body: body(func(m map[string]any) { m["ScheduleExpression"] = "at(2027-03-07T00:00:00Z)" }), status: 400, code: "ValidationException"},
		{name: "rate expression", method: "POST", path: "/schedules/x15", body: body(func(m map[string]any) { m["ScheduleExpression"] = "rate(5 minutes)" }), status: 400, code: "ValidationException"},
		{name: "group that does not exist", method: "POST", path: "/schedules/x16", body: body(func(m map[string]any) { m["GroupName"] = "nope" }), status: 404, code: "ResourceNotFoundException", message: "Schedule group nope"},
		{name: "default group", method: "POST", path: "/schedules/x17", body: body(func(m map[string]any) { delete(m, "GroupName") }), status: 200},
		{name: "get unknown", method: "GET", path: "/schedules/none?groupName=certferry-test", status: 404, code: "ResourceNotFoundException"},
		{name: "delete unknown", method: "DELETE", path: "/schedules/none?groupName=certferry-test", status: 404, code: "ResourceNotFoundException"},
		{name: "delete in unknown group", method: "DELETE", path: "/schedules/ok-1?groupName=nope", status: 404, code: "ResourceNotFoundException"},
		{name: "list unknown group", method: "GET", path: "/schedules?ScheduleGroup=nope", status: 404, code: "ResourceNotFoundException"},
		{name: "list too many", method: "GET", path: "/schedules?MaxResults=101", status: 400, code: "ValidationException"},
		{name: "operation not served", method: "PUT", path: "/schedules/ok-1", body: body(nil), status: 400, code: "ValidationException", message: "does not serve"},
	}
	// The duplicate exists first.
	pre := httptest.NewRecorder()
	s.ServeHTTP(pre, httptest.NewRequest("POST", "/schedules/dup", strings.NewReader(body(nil))))
	if pre.Code != 200 {
		t.Fatalf("setup: %d %s", pre.Code, pre.Body)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Schedules())
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			if rec.Code != tc.status {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tc.status)
			}
			if tc.status == 200 {
				return
			}
			if got := rec.Header().Get("X-Amzn-ErrorType"); got != tc.code {
				t.Errorf("error type %q, want %q", got, tc.code)
			}
			var e struct{ Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e.Message, tc.message) {
				t.Errorf("message %q, want it to contain %q (%v)", e.Message, tc.message, err)
			}
			if tc.method == "POST" && len(s.Schedules()) != before {
				t.Errorf("a refused create changed the schedules")
			}
		})
	}
}

// The SDK maps the stand-in's errors to Scheduler's typed errors, and
// ListSchedules pages as the SDK's paginator expects.
func TestSchedulerStandInSDK(t *testing.T) {
	ctx := context.Background()
	s, sch, _, url := startStandIn(t)
	c := sdkClient(url)
	for i := range 5 {
		if err := sch.At(ctx, schedule.Step{Name: fmt.Sprintf("n-%d", i), RolloutID: "r", Kind: schedule.KindWindow, At: standInT0}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("none"), GroupName: aws.String("certferry-test")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("delete unknown: %v", err)
	}
	x := s.Schedules()[0]
	_, err = c.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name: aws.String(x.Name), GroupName: aws.String("certferry-test"), ScheduleExpression: aws.String(x.Expression),
		FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		Target:             &types.Target{Arn: aws.String(x.TargetARN), RoleArn: aws.String(x.RoleARN), Input: aws.String("{}")},
	})
	var conflict *types.ConflictException
	if !errors.As(err, &conflict) {
		t.Fatalf("duplicate: %v", err)
	}
	var names []string
	p := scheduler.NewListSchedulesPaginator(c, &scheduler.ListSchedulesInput{GroupName: aws.String("certferry-test"), NamePrefix: aws.String("cf-window-n-"), MaxResults: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, sc := range out.Schedules {
			names = append(names, aws.ToString(sc.Name))
		}
	}
	if len(names) != 5 || pages != 3 {
		t.Fatalf("listed %d in %d pages: %v", len(names), pages, names)
	}
}

// The layer answers only requests signed for "scheduler"; the rest go on.
func TestSchedulerStandInLayer(t *testing.T) {
	s := New()
	next := 0
	h := s.Layer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next++ }))
	for _, svc := range []string{"scheduler", "events", "ssm"} {
		r := httptest.NewRequest("GET", "/schedules", nil)
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x/20270306/us-east-1/"+svc+"/aws4_request, SignedHeaders=host, Signature=0")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if next != 2 || s.Calls()["ListSchedules"] != 1 {
		t.Fatalf("next saw %d requests, stand-in %v", next, s.Calls())
	}
}
