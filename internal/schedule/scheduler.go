package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
)

// API is the part of EventBridge Scheduler certferry calls.
type API interface {
	CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
	DeleteSchedule(ctx context.Context, in *scheduler.DeleteScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
}

var _ API = (*scheduler.Client)(nil)

// Config is where steps are scheduled and what they invoke.
type Config struct {
	Group     string // the stack's schedule group (CERTFERRY_SCHEDULE_GROUP)
	TargetARN string // the renewal function (CERTFERRY_STEP_TARGET_ARN)
	RoleARN   string // the role Scheduler assumes to invoke it (CERTFERRY_SCHEDULER_ROLE_ARN)
	// DeadLetterARN: optional SQS queue for a step Scheduler could not
	// deliver within its retry policy (CERTFERRY_STEP_DLQ_ARN).
	DeadLetterARN string
}

// Validate reports a missing setting.
func (c Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, errors.New("no schedule group"))
	}
	if c.TargetARN == "" {
		errs = append(errs, errors.New("no step target ARN"))
	}
	if c.RoleARN == "" {
		errs = append(errs, errors.New("no scheduler role ARN"))
	}
	return errors.Join(errs...)
}

// Delivery settings of every step's schedule.
const (
	// Timezone: at() is written in UTC and said to be.
	Timezone = "UTC"
	// MinLead is the least time between now and a schedule's at(): a step
	// due sooner (or already past) is scheduled this long from now. The
	// "CreateSchedule" API Reference does not say what Scheduler does with
	// an at() time in the past, and "Schedule types on EventBridge
	// Scheduler" (User Guide) says schedules invoke "with 60 second
	// precision"; a step is never dropped for being late, so it goes out
	// one minute from now, and the rig's stand-in refuses an at() in the
	// past so that no code path relies on whatever AWS does with one.
	MinLead = time.Minute
	// MaxEventAge and MaxRetries bound Scheduler's own retries of a
	// delivery that failed ("RetryPolicy", API Reference: age 60-86400 s,
	// attempts 0-185): an hour of retries keeps a deadline step within the
	// hour it is due; the daily sweep reconciles anything later.
	MaxEventAge = 3600
	MaxRetries  = 20
	// callTimeout and callAttempts bound one API call and the SDK's
	// retries of it (throttling, 5xx), so a step never holds a handler
	// past its own deadline.
	callTimeout  = 15 * time.Second
	callAttempts = 4
)

// Scheduler creates and deletes steps' one-time schedules.
type Scheduler struct {
	api API
	cfg Config
	// Now is the clock At compares a step's time with (default time.Now);
	// tests set it to the clock of the stand-in they fire.
	Now func() time.Time
}

// New returns a Scheduler on api with cfg.
func New(api API, cfg Config) *Scheduler {
	return &Scheduler{api: api, cfg: cfg, Now: time.Now}
}

// Config returns the scheduler's settings.
func (s *Scheduler) Config() Config { return s.cfg }

func callOpts(o *scheduler.Options) { o.RetryMaxAttempts = callAttempts }

// Expression returns the at() expression for t (UTC, to the second):
// "at(yyyy-mm-ddThh:mm:ss)" ("CreateSchedule", EventBridge Scheduler API
// Reference, ScheduleExpression).
func Expression(t time.Time) string {
	return "at(" + t.UTC().Format("2006-01-02T15:04:05") + ")"
}

// When is the time a step's schedule is set for: the step's time, or
// MinLead from now when that is sooner, rounded up to a whole minute.
// Scheduler invokes "with 60 second precision": a schedule set for 1:00
// runs between 1:00:00 and 1:00:59 ("Schedule types on EventBridge
// Scheduler", User Guide), so an at() of 1:00:30 could arrive half a
// minute before the step is due, and the engine would find its pause or
// window not over yet. On a whole minute it never arrives early.
func (s *Scheduler) When(st Step) time.Time {
	at, earliest := ceilMinute(st.at()), ceilMinute(s.Now().UTC().Add(MinLead))
	if at.Before(earliest) {
		return earliest
	}
	return at
}

// ceilMinute is t rounded up to the next whole minute (t itself when it
// is one).
func ceilMinute(t time.Time) time.Time {
	m := t.Truncate(time.Minute)
	if m.Equal(t) {
		return m
	}
	return m.Add(time.Minute)
}

// At schedules st once: a one-time schedule in the stack's group that
// invokes the target with Render(st) at st.At (UTC; MinLead from now when
// that is sooner), flexible time window OFF, deleted after it ran. A
// schedule of that name already existing is success: names are unique per
// step, so it is this step's.
func (s *Scheduler) At(ctx context.Context, st Step) error {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("schedule %s step of %s: %w", st.Kind, st.Name, err)
	}
	input, err := Render(st)
	if err != nil {
		return fmt.Errorf("schedule %s step of %s: %w", st.Kind, st.Name, err)
	}
	name, when := st.ScheduleName(), s.When(st)
	target := &types.Target{
		Arn:     aws.String(s.cfg.TargetARN),
		RoleArn: aws.String(s.cfg.RoleARN),
		Input:   aws.String(string(input)),
		RetryPolicy: &types.RetryPolicy{
			MaximumEventAgeInSeconds: aws.Int32(MaxEventAge),
			MaximumRetryAttempts:     aws.Int32(MaxRetries),
		},
	}
	if s.cfg.DeadLetterARN != "" {
		target.DeadLetterConfig = &types.DeadLetterConfig{Arn: aws.String(s.cfg.DeadLetterARN)}
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout*callAttempts)
	defer cancel()
	_, err = s.api.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name:                       aws.String(name),
		GroupName:                  aws.String(s.cfg.Group),
		ScheduleExpression:         aws.String(Expression(when)),
		ScheduleExpressionTimezone: aws.String(Timezone),
		FlexibleTimeWindow:         &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      types.ActionAfterCompletionDelete,
		State:                      types.ScheduleStateEnabled,
		Description:                aws.String(fmt.Sprintf("certferry %s step of %s, rollout %s, due %s", st.Kind, st.Name, st.RolloutID, st.at().Format(time.RFC3339))),
		Target:                     target,
	}, callOpts)
	var conflict *types.ConflictException
	switch {
	case errors.As(err, &conflict):
		slog.DebugContext(ctx, "rollout step already scheduled", "schedule", name, "name", st.Name, "step", st.Kind)
		return nil
	case err != nil:
		return fmt.Errorf("create schedule %s (%s step of %s): %w", name, st.Kind, st.Name, err)
	}
	slog.InfoContext(ctx, "rollout step scheduled", "schedule", name, "name", st.Name, "rolloutId", st.RolloutID,
		"step", st.Kind, "at", when.Format(time.RFC3339))
	return nil
}

// Cancel deletes st's schedule; one that does not exist (never created,
// already ran and was deleted, cancelled before) is success.
func (s *Scheduler) Cancel(ctx context.Context, st Step) error {
	if err := s.cfg.Validate(); err != nil {
		return fmt.Errorf("cancel %s step of %s: %w", st.Kind, st.Name, err)
	}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("cancel %s step of %s: %w", st.Kind, st.Name, err)
	}
	name := st.ScheduleName()
	ctx, cancel := context.WithTimeout(ctx, callTimeout*callAttempts)
	defer cancel()
	_, err := s.api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(s.cfg.Group)}, callOpts)
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		return nil
	case err != nil:
		return fmt.Errorf("delete schedule %s (%s step of %s): %w", name, st.Kind, st.Name, err)
	}
	slog.InfoContext(ctx, "rollout step cancelled", "schedule", name, "name", st.Name, "step", st.Kind)
	return nil
}
