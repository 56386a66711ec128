package localenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/schedule"
	"github.com/certferry/certferry/internal/schedulerstandin"
)

// The local rig's EventBridge Scheduler setup, as the stack's
// (template.yaml: StepSchedules, StepSchedulerRole, RenewalFunction). The
// ARNs name the emulator's account and region; nothing checks the role
// (IAM is not emulated), and the local proxy delivers only schedules whose
// target is the step target below, to the renewal handler in its process.
const (
	ScheduleGroup     = "certferry-steps"
	stepRoleName      = "certferry-StepSchedulerRole"
	stepFunctionName  = "certferry-RenewalFunction"
	defaultAccount    = "123456789012" // moto_server's default account
	StepMaxAttempts   = 3              // RenewalFunction's EventInvokeConfig: MaximumRetryAttempts 2
	RenewalTimeout    = 300 * time.Second
	defaultStepRegion = "us-east-1"
)

// LocalSchedule is the local rig's schedule settings for account and
// region (CERTFERRY_SCHEDULE_GROUP, CERTFERRY_SCHEDULER_ROLE_ARN,
// CERTFERRY_STEP_TARGET_ARN; no dead-letter queue).
func LocalSchedule(account, region string) config.Schedule {
	if account == "" {
		account = defaultAccount
	}
	if region == "" {
		region = defaultStepRegion
	}
	return config.Schedule{
		Group:     ScheduleGroup,
		RoleARN:   fmt.Sprintf("arn:aws:iam::%s:role/%s", account, stepRoleName),
		TargetARN: fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, account, stepFunctionName),
	}
}

// accountOf is the account of an ARN ("" when it is not one).
func accountOf(arn string) string {
	f := strings.Split(arn, ":")
	if len(f) < 6 || f[0] != "arn" {
		return ""
	}
	return f[4]
}

// StepFirer plays, for the local rig, what the cloud does with certferry's
// timed rollout steps: EventBridge Scheduler invoking the target of each
// due one-time schedule once and deleting it (ActionAfterCompletion
// DELETE), and Lambda running the renewal function on it. A schedule whose
// target is not Target fails its delivery (no such function here). A
// failed delivery is retried on the next tick, at most MaxAttempts in all:
// Scheduler invokes a Lambda target asynchronously, so a handler error is
// retried by Lambda ("Asynchronous invocation", Lambda Developer Guide:
// the function's MaximumRetryAttempts, 2 in template.yaml, then the
// on-failure destination); after the last attempt the schedule is dropped
// and the error logged, where the stack would send the event to its
// dead-letter queue.
type StepFirer struct {
	Schedules *schedulerstandin.StandIn
	Target    string // the renewal function's ARN (CERTFERRY_STEP_TARGET_ARN)
	// Handle runs the renewal handler on a delivered event (the schedule's
	// Target.Input) and returns its answer.
	Handle func(ctx context.Context, event json.RawMessage) (any, error)
	// MaxAttempts bounds the attempts of one schedule (default
	// StepMaxAttempts); Timeout bounds one (default RenewalTimeout, the
	// function's Timeout).
	MaxAttempts int
	Timeout     time.Duration
	Log         io.Writer

	seen map[string]bool
}

// Tick fires the schedules due at now and logs each delivery; it also
// logs each schedule it has not seen before, with its due time.
func (f *StepFirer) Tick(ctx context.Context, now time.Time) []schedulerstandin.Delivery {
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	for _, x := range f.Schedules.Schedules() {
		key := x.Group + "/" + x.Name + "@" + x.Created.String()
		if !f.seen[key] {
			f.seen[key] = true
			fmt.Fprintf(f.Log, "certferry: step schedule %s pending: %s, due %s (in %s)\n",
				x.Name, Describe(x), x.At.Format(time.RFC3339), x.At.Sub(now).Round(time.Second))
		}
	}
	max := f.MaxAttempts
	if max <= 0 {
		max = StepMaxAttempts
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = RenewalTimeout
	}
	ds := f.Schedules.Deliver(ctx, now, max, func(ctx context.Context, x schedulerstandin.Schedule) error {
		if x.TargetARN != f.Target {
			return fmt.Errorf("target %s is not the renewal function %s (no such function here)", x.TargetARN, f.Target)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		out, err := f.Handle(ctx, json.RawMessage(x.Input))
		if err != nil {
			return fmt.Errorf("renewal handler: %w", err)
		}
		b, _ := json.Marshal(out)
		fmt.Fprintf(f.Log, "certferry: step schedule %s (%s) delivered (attempt %d): %s\n", x.Name, Describe(x), x.Attempts, b)
		return nil
	})
	for _, d := range ds {
		switch {
		case d.Err == nil:
		case d.GaveUp:
			fmt.Fprintf(f.Log, "certferry: step schedule %s (%s) NOT delivered, given up after %d attempts (the stack would send it to its dead-letter queue): %v\n",
				d.Schedule.Name, Describe(d.Schedule), d.Schedule.Attempts, d.Err)
		default:
			fmt.Fprintf(f.Log, "certferry: step schedule %s (%s) failed (attempt %d of %d; retried on the next tick): %v\n",
				d.Schedule.Name, Describe(d.Schedule), d.Schedule.Attempts, max, d.Err)
		}
	}
	return ds
}

// Run calls Tick for each time ticks delivers (a time.Ticker's C in the
// local proxy) until ctx ends or ticks is closed.
func (f *StepFirer) Run(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case now, ok := <-ticks:
			if !ok {
				return
			}
			f.Tick(ctx, now)
		}
	}
}

// Describe says what a schedule certferry created will do: its step's
// kind, name and rollout, read from its input; the schedule's description
// otherwise.
func Describe(x schedulerstandin.Schedule) string {
	var in struct {
		Detail schedule.Detail `json:"detail"`
	}
	if json.Unmarshal([]byte(x.Input), &in) == nil {
		if st, err := schedule.FromDetail(in.Detail); err == nil {
			return fmt.Sprintf("%s step of %s, rollout %s", st.Kind, st.Name, st.RolloutID)
		}
	}
	if x.Description != "" {
		return x.Description
	}
	return "target " + x.TargetARN
}

// SchedulerAPI is the part of EventBridge Scheduler `certferry local
// schedules` reads.
type SchedulerAPI interface {
	ListSchedules(ctx context.Context, in *scheduler.ListSchedulesInput, optFns ...func(*scheduler.Options)) (*scheduler.ListSchedulesOutput, error)
	GetSchedule(ctx context.Context, in *scheduler.GetScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.GetScheduleOutput, error)
}

var _ SchedulerAPI = (*scheduler.Client)(nil)

// Pending is one schedule of the group, as `local schedules` shows it.
type Pending struct {
	Name  string    // the schedule's name
	Due   time.Time // its at() time, UTC (zero when not an at() expression)
	State string    // ENABLED or DISABLED
	What  string    // the step it delivers (Describe)
}

// PendingSchedules lists group's schedules with their due times (the
// at() expression in its time zone), soonest first: ListSchedules, then
// GetSchedule for each ("ListSchedules" answers neither the expression
// nor the target's input). It reads any Scheduler: the local proxy's, or
// the stack's in an AWS account.
func PendingSchedules(ctx context.Context, api SchedulerAPI, group string) ([]Pending, error) {
	var out []Pending
	pages := scheduler.NewListSchedulesPaginator(api, &scheduler.ListSchedulesInput{GroupName: aws.String(group)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list schedules of group %s: %w", group, err)
		}
		for _, sum := range page.Schedules {
			g, err := api.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: sum.Name, GroupName: aws.String(group)})
			var gone *schedtypes.ResourceNotFoundException
			if errors.As(err, &gone) {
				continue // fired (and deleted) or cancelled since the list
			}
			if err != nil {
				return nil, fmt.Errorf("get schedule %s of group %s: %w", aws.ToString(sum.Name), group, err)
			}
			x := schedulerstandin.Schedule{Name: aws.ToString(g.Name), Description: aws.ToString(g.Description)}
			if g.Target != nil {
				x.TargetARN, x.Input = aws.ToString(g.Target.Arn), aws.ToString(g.Target.Input)
			}
			out = append(out, Pending{Name: x.Name, Due: AtTime(aws.ToString(g.ScheduleExpression), aws.ToString(g.ScheduleExpressionTimezone)),
				State: string(g.State), What: Describe(x)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Due.Equal(out[j].Due) {
			return out[i].Due.Before(out[j].Due)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// AtTime is the time of a one-time schedule's expression
// "at(yyyy-mm-ddThh:mm:ss)" in timezone (default UTC), in UTC; zero for
// any other expression.
func AtTime(expr, timezone string) time.Time {
	v, pre := strings.CutPrefix(expr, "at(")
	v, suf := strings.CutSuffix(v, ")")
	if !pre || !suf {
		return time.Time{}
	}
	loc := time.UTC
	if timezone != "" {
		l, err := time.LoadLocation(timezone)
		if err != nil {
			return time.Time{}
		}
		loc = l
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", v, loc)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}
