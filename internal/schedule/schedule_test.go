package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

var (
	t0   = time.Date(2027, 3, 6, 2, 0, 0, 0, time.UTC)
	step = Step{Name: "shop-web", RolloutID: "r-20270301T101500Z-1a2b", Kind: KindWindow, At: t0}
	cfg  = Config{
		Group:     "certferry-prod",
		TargetARN: "arn:aws:lambda:us-east-1:123456789012:function:certferry-prod-RenewalFunction-AbC123",
		RoleARN:   "arn:aws:iam::123456789012:role/certferry-prod-SchedulerRole-XyZ",
	}
)

// The model's Name shape ("CreateSchedule", API Reference).
var modelName = regexp.MustCompile(`^[0-9a-zA-Z-_.]+$`)

func TestScheduleName(t *testing.T) {
	long := strings.Repeat("a", 63)
	base := step.ScheduleName()
	if base != step.ScheduleName() {
		t.Fatal("not deterministic")
	}
	if !strings.HasPrefix(base, "cf-window-shop-web-") {
		t.Fatalf("name %q does not show kind and name", base)
	}
	seen := map[string]string{base: "base"}
	variants := map[string]Step{
		"other name":      {Name: "shop-api", RolloutID: step.RolloutID, Kind: step.Kind, At: step.At},
		"other rollout":   {Name: step.Name, RolloutID: "r-2", Kind: step.Kind, At: step.At},
		"other kind":      {Name: step.Name, RolloutID: step.RolloutID, Kind: KindPause, At: step.At},
		"other time":      {Name: step.Name, RolloutID: step.RolloutID, Kind: step.Kind, At: step.At.Add(time.Second)},
		"long name":       {Name: long, RolloutID: step.RolloutID, Kind: KindDeadline, At: step.At},
		"long name other": {Name: long[:62] + "b", RolloutID: step.RolloutID, Kind: KindDeadline, At: step.At},
	}
	for label, s := range variants {
		n := s.ScheduleName()
		if len(n) > 64 || !modelName.MatchString(n) {
			t.Errorf("%s: name %q (%d characters) breaks the model", label, n, len(n))
		}
		if prev, dup := seen[n]; dup {
			t.Errorf("%s: name %q also names %s", label, n, prev)
		}
		seen[n] = label
	}
	// The same step in another zone or with sub-seconds is the same step.
	same := step
	same.At = step.At.In(time.FixedZone("CET", 3600)).Add(400 * time.Millisecond)
	if same.ScheduleName() != base {
		t.Fatalf("zone or sub-seconds changed the name: %s vs %s", same.ScheduleName(), base)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Step)
		want string // "" = valid
	}{
		{name: "valid"},
		{name: "every kind", mod: func(s *Step) { s.Kind = KindRemind }},
		{name: "no name", mod: func(s *Step) { s.Name = "" }, want: "no name"},
		{name: "hostile name", mod: func(s *Step) { s.Name = "shop;rm -rf" }, want: "name must match"},
		{name: "no rollout", mod: func(s *Step) { s.RolloutID = "" }, want: "no rolloutId"},
		{name: "rollout with spaces", mod: func(s *Step) { s.RolloutID = "a b" }, want: "rolloutId must match"},
		{name: "huge rollout", mod: func(s *Step) { s.RolloutID = strings.Repeat("r", 129) }, want: "rolloutId must match"},
		{name: "no kind", mod: func(s *Step) { s.Kind = "" }, want: "no step kind"},
		{name: "unknown kind", mod: func(s *Step) { s.Kind = "later" }, want: "step kind must be one of"},
		{name: "no time", mod: func(s *Step) { s.At = time.Time{} }, want: "no time"},
		{name: "time before 2000", mod: func(s *Step) { s.At = time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC) }, want: "must lie between"},
		{name: "five-digit year", mod: func(s *Step) { s.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, want: "must lie between"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := step
			if tc.mod != nil {
				tc.mod(&s)
			}
			err := s.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

// The payload is exactly ROLLOUT.md §3's shape, and FromDetail reads back
// the step it was rendered from.
func TestRenderRoundTrip(t *testing.T) {
	s := step
	s.At = t0.Add(1500 * time.Millisecond).In(time.FixedZone("X", -7*3600))
	raw, err := Render(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"0","id":"` + s.ScheduleName() + `","source":"certferry","detail-type":"certferry Rollout Step","time":"2027-03-06T02:00:01Z","resources":[],` +
		`"detail":{"name":"shop-web","rolloutId":"r-20270301T101500Z-1a2b","step":"window","at":"2027-03-06T02:00:01Z"}}`
	if string(raw) != want {
		t.Fatalf("rendered\n%s\nwant\n%s", raw, want)
	}
	var p Payload
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	back, err := FromDetail(p.Detail)
	if err != nil {
		t.Fatal(err)
	}
	if back.Name != s.Name || back.RolloutID != s.RolloutID || back.Kind != s.Kind || !back.At.Equal(t0.Add(time.Second)) || back.At.Location() != time.UTC {
		t.Fatalf("read back %+v from %+v", back, s)
	}
	if back.ScheduleName() != p.ID {
		t.Fatalf("id %s, read-back step names %s", p.ID, back.ScheduleName())
	}
	if _, err := Render(Step{Name: "x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid step rendered: %v", err)
	}
	for _, d := range []Detail{{Name: "a", RolloutID: "r", Step: KindPause}, {Name: "a", RolloutID: "r", Step: KindPause, At: "tomorrow"}} {
		if _, err := FromDetail(d); !errors.Is(err, ErrInvalid) {
			t.Errorf("FromDetail(%+v) = %v", d, err)
		}
	}
}

type fakeAPI struct {
	create    func(*scheduler.CreateScheduleInput) error
	del       func(*scheduler.DeleteScheduleInput) error
	creates   []*scheduler.CreateScheduleInput
	deletions []*scheduler.DeleteScheduleInput
}

func (f *fakeAPI) CreateSchedule(_ context.Context, in *scheduler.CreateScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	f.creates = append(f.creates, in)
	if f.create != nil {
		if err := f.create(in); err != nil {
			return nil, err
		}
	}
	return &scheduler.CreateScheduleOutput{ScheduleArn: aws.String("arn:aws:scheduler:us-east-1:123456789012:schedule/g/" + *in.Name)}, nil
}

func (f *fakeAPI) DeleteSchedule(_ context.Context, in *scheduler.DeleteScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error) {
	f.deletions = append(f.deletions, in)
	if f.del != nil {
		if err := f.del(in); err != nil {
			return nil, err
		}
	}
	return &scheduler.DeleteScheduleOutput{}, nil
}

func newAt(api API, c Config, now time.Time) *Scheduler {
	s := New(api, c)
	s.Now = func() time.Time { return now }
	return s
}

func TestAtCreatesOneTimeSchedule(t *testing.T) {
	f := &fakeAPI{}
	c := cfg
	c.DeadLetterARN = "arn:aws:sqs:us-east-1:123456789012:certferry-prod-EventsDLQ-1"
	if err := newAt(f, c, t0.Add(-48*time.Hour)).At(context.Background(), step); err != nil {
		t.Fatal(err)
	}
	if len(f.creates) != 1 {
		t.Fatalf("%d CreateSchedule calls", len(f.creates))
	}
	in := f.creates[0]
	input, _ := Render(step)
	checks := map[string][2]string{
		"Name":                       {aws.ToString(in.Name), step.ScheduleName()},
		"GroupName":                  {aws.ToString(in.GroupName), c.Group},
		"ScheduleExpression":         {aws.ToString(in.ScheduleExpression), "at(2027-03-06T02:00:00)"},
		"ScheduleExpressionTimezone": {aws.ToString(in.ScheduleExpressionTimezone), "UTC"},
		"FlexibleTimeWindow.Mode":    {string(in.FlexibleTimeWindow.Mode), "OFF"},
		"ActionAfterCompletion":      {string(in.ActionAfterCompletion), "DELETE"},
		"State":                      {string(in.State), "ENABLED"},
		"Target.Arn":                 {aws.ToString(in.Target.Arn), c.TargetARN},
		"Target.RoleArn":             {aws.ToString(in.Target.RoleArn), c.RoleARN},
		"Target.Input":               {aws.ToString(in.Target.Input), string(input)},
		"Target.DeadLetterConfig":    {aws.ToString(in.Target.DeadLetterConfig.Arn), c.DeadLetterARN},
	}
	for field, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", field, v[0], v[1])
		}
	}
	rp := in.Target.RetryPolicy
	if rp == nil || aws.ToInt32(rp.MaximumEventAgeInSeconds) != MaxEventAge || aws.ToInt32(rp.MaximumRetryAttempts) != MaxRetries {
		t.Errorf("retry policy %+v", rp)
	}
	if n := len(aws.ToString(in.Description)); n > 512 {
		t.Errorf("description of %d characters (the model allows 512)", n)
	}
	// No dead-letter queue configured: no DeadLetterConfig.
	f = &fakeAPI{}
	if err := newAt(f, cfg, t0.Add(-time.Hour)).At(context.Background(), step); err != nil {
		t.Fatal(err)
	}
	if f.creates[0].Target.DeadLetterConfig != nil {
		t.Fatalf("DeadLetterConfig %+v without a queue", f.creates[0].Target.DeadLetterConfig)
	}
}

// A step due in less than MinLead, or already past, goes out MinLead from
// now; its payload still says when it was due.
func TestAtLateStepGoesInAMinute(t *testing.T) {
	for _, late := range []time.Duration{0, 30 * time.Second, time.Hour, 400 * 24 * time.Hour} {
		f := &fakeAPI{}
		now := t0.Add(late).Add(250 * time.Millisecond)
		if err := newAt(f, cfg, now).At(context.Background(), step); err != nil {
			t.Fatal(err)
		}
		want := Expression(ceilMinute(now.Add(time.Minute)))
		if got := aws.ToString(f.creates[0].ScheduleExpression); got != want {
			t.Errorf("late by %s: expression %s, want %s", late, got, want)
		}
		if !strings.Contains(aws.ToString(f.creates[0].Target.Input), `"at":"2027-03-06T02:00:00Z"`) {
			t.Errorf("late by %s: payload %s lost the due time", late, aws.ToString(f.creates[0].Target.Input))
		}
	}
	// Due in exactly a minute or more: its own time.
	f := &fakeAPI{}
	if err := newAt(f, cfg, t0.Add(-time.Minute)).At(context.Background(), step); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(f.creates[0].ScheduleExpression); got != "at(2027-03-06T02:00:00)" {
		t.Fatalf("expression %s", got)
	}
}

// Scheduler invokes within the minute its at() names ("60 second
// precision"): a step off the minute is set for the next whole minute, so
// it never arrives before it is due.
func TestWhenNeverEarly(t *testing.T) {
	for _, off := range []time.Duration{0, time.Second, 30 * time.Second, 59*time.Second + 999*time.Millisecond} {
		st := step
		st.At = t0.Add(time.Hour + off)
		w := newAt(&fakeAPI{}, cfg, t0).When(st)
		if w.Before(st.At.Truncate(time.Second)) || !w.Equal(w.Truncate(time.Minute)) || w.Sub(st.At) >= time.Minute {
			t.Errorf("step at %s: scheduled for %s, want the first whole minute at or after it", st.At, w)
		}
	}
}

func TestAtAndCancelErrors(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("connection reset")
	tests := []struct {
		name    string
		api     *fakeAPI
		cfg     Config
		st      Step
		cancel  bool
		want    string // "" = success
		noCalls bool
	}{
		{name: "existing schedule is success", api: &fakeAPI{create: func(*scheduler.CreateScheduleInput) error {
			return &types.ConflictException{Message: aws.String("Schedule cf-… already exists.")}
		}}},
		{name: "other create error wrapped", api: &fakeAPI{create: func(*scheduler.CreateScheduleInput) error { return boom }},
			want: "create schedule " + step.ScheduleName() + " (window step of shop-web): connection reset"},
		{name: "missing group refused before any call", api: &fakeAPI{}, cfg: Config{TargetARN: cfg.TargetARN, RoleARN: cfg.RoleARN},
			want: "schedule window step of shop-web: no schedule group", noCalls: true},
		{name: "invalid step refused before any call", api: &fakeAPI{}, st: Step{Name: "shop-web", RolloutID: "r", Kind: "soon", At: t0},
			want: "step kind must be one of", noCalls: true},
		{name: "cancel of a missing schedule is success", cancel: true, api: &fakeAPI{del: func(*scheduler.DeleteScheduleInput) error {
			return &types.ResourceNotFoundException{Message: aws.String("Schedule not found")}
		}}},
		{name: "other cancel error wrapped", cancel: true, api: &fakeAPI{del: func(*scheduler.DeleteScheduleInput) error {
			return &types.ConflictException{Message: aws.String("concurrent modification")}
		}}, want: "delete schedule " + step.ScheduleName() + " (window step of shop-web)"},
		{name: "cancel without role refused", cancel: true, api: &fakeAPI{}, cfg: Config{Group: "g", TargetARN: "t"},
			want: "no scheduler role ARN", noCalls: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, st := tc.cfg, tc.st
			if c == (Config{}) {
				c = cfg
			}
			if st == (Step{}) {
				st = step
			}
			s := newAt(tc.api, c, t0.Add(-time.Hour))
			var err error
			if tc.cancel {
				err = s.Cancel(ctx, st)
			} else {
				err = s.At(ctx, st)
			}
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if calls := len(tc.api.creates) + len(tc.api.deletions); tc.noCalls && calls != 0 || !tc.noCalls && calls != 1 {
				t.Fatalf("%d calls", calls)
			}
		})
	}
	// Cancel names the step's schedule in the group.
	f := &fakeAPI{}
	if err := newAt(f, cfg, t0).Cancel(ctx, step); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(f.deletions[0].Name) != step.ScheduleName() || aws.ToString(f.deletions[0].GroupName) != cfg.Group {
		t.Fatalf("deleted %+v", f.deletions[0])
	}
}
