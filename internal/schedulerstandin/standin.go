// Package schedulerstandin is the rig's EventBridge Scheduler: one-time
// schedules as the EventBridge Scheduler API Reference and User Guide
// document them, served over the service's REST-JSON protocol so that the
// SDK's own client talks to it, plus what the cloud does on its own: firing
// the due schedules (for a clock the caller gives: no sleeps) and deleting
// them after they ran. moto_server keeps schedules but never fires one, and
// accepts what AWS refuses; the stand-in answers every Scheduler request
// itself. In the test rig (testkit.UseSchedulerStandIn on a FaultProxy)
// each request is first checked against botocore's "scheduler" model; in
// the local rig (localenv.Proxy, `certferry local proxy`) and on its own
// (Start) it applies the checks below, each naming its page. Like
// internal/acmstandin it is its own package so that the local rig serves
// it without linking the test rig (internal/testkit); no Lambda function
// links it (internal/app's boundary test).
package schedulerstandin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // ScheduleExpressionTimezone names any IANA zone

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/certferry/certferry/internal/schedule"
)

// Grammars of "CreateSchedule" and "Target" (EventBridge Scheduler API
// Reference), as the model states them.
var (
	schedulerName   = regexp.MustCompile(`^[0-9a-zA-Z-_.]{1,64}$`)
	schedulerRole   = regexp.MustCompile(`^arn:aws(-[a-z]+)?:iam::\d{12}:role\/[\w+=,.@\/-]+$`)
	schedulerDLQ    = regexp.MustCompile(`^arn:aws(-[a-z]+)?:sqs:[a-z0-9\-]+:\d{12}:[a-zA-Z0-9\-_]+$`)
	atExpression    = regexp.MustCompile(`^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$`)
	lambdaTargetARN = regexp.MustCompile(`^arn:aws(-[a-z]+)?:lambda:`)
)

// Account and Region are the account and Region of the
// stand-in's ARNs, and of the role and target SchedulerConfig returns.
const (
	Account = "123456789012"
	Region  = "us-east-1"
)

// Schedule is one schedule the stand-in holds.
type Schedule struct {
	Group, Name           string
	Expression, Timezone  string
	At                    time.Time // the at() time, in UTC
	ActionAfterCompletion string    // NONE | DELETE
	State                 string    // ENABLED | DISABLED
	Description           string
	FlexibleMode          string // OFF | FLEXIBLE
	FlexibleWindow        int    // MaximumWindowInMinutes when FLEXIBLE
	TargetARN, RoleARN    string
	Input                 string
	Created               time.Time
	// Attempts counts deliveries Fire tried; Fired is set once one
	// succeeded (a schedule with ActionAfterCompletion NONE stays, fired).
	Attempts int
	Fired    bool

	target map[string]any // the Target as created, for GetSchedule
}

// ARN is the schedule's ARN ("ScheduleArn" in the model:
// arn:aws:scheduler:region:account:schedule/group/name).
func (s Schedule) ARN() string {
	return fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule/%s/%s", Region, Account, s.Group, s.Name)
}

// StandIn serves EventBridge Scheduler's CreateSchedule, GetSchedule,
// DeleteSchedule, ListSchedules and CreateScheduleGroup.
type StandIn struct {
	// Now is the stand-in's clock: an at() time not after it is refused
	// (default time.Now). Tests share it with the schedule.Scheduler they
	// build (Scheduler does).
	Now func() time.Time

	mu        sync.Mutex
	groups    map[string]time.Time
	schedules map[string]*Schedule // by group + "/" + name
	calls     map[string]int
}

// New returns a stand-in holding the "default" group and
// groups.
func New(groups ...string) *StandIn {
	s := &StandIn{Now: time.Now, groups: map[string]time.Time{"default": {}}, schedules: map[string]*Schedule{}, calls: map[string]int{}}
	for _, g := range groups {
		s.CreateGroup(g)
	}
	return s
}

// CreateGroup adds a schedule group (the stack's AWS::Scheduler::ScheduleGroup).
func (s *StandIn) CreateGroup(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[name]; !ok {
		s.groups[name] = s.Now()
	}
}

func (s *StandIn) now() time.Time { return s.Now() }

// Schedules returns every schedule held, by at() time then name.
func (s *StandIn) Schedules() []Schedule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sorted(func(*Schedule) bool { return true })
}

// Due returns the enabled schedules not yet fired whose at() time is not
// after now, by at() time then name.
func (s *StandIn) Due(now time.Time) []Schedule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sorted(func(x *Schedule) bool { return s.due(x, now) })
}

// due: Scheduler invokes "with 60 second precision" (a schedule set for
// 1:00 runs between 1:00:00 and 1:00:59, "Schedule types on EventBridge
// Scheduler", User Guide); the stand-in fires at the earliest of that
// minute, so a step scheduled off the minute arrives early here as it may
// on AWS.
func (s *StandIn) due(x *Schedule, now time.Time) bool {
	return x.State == "ENABLED" && !x.Fired && !x.At.Truncate(time.Minute).After(now)
}

func (s *StandIn) sorted(keep func(*Schedule) bool) []Schedule {
	var out []Schedule
	for _, x := range s.schedules {
		if keep(x) {
			c := *x
			c.target = nil
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Group+"/"+out[i].Name < out[j].Group+"/"+out[j].Name
	})
	return out
}

// Fire does what Scheduler does at now: each due schedule's Input goes to
// deliver once (in at() order); a delivered schedule with
// ActionAfterCompletion DELETE is deleted ("Deleting a schedule in
// EventBridge Scheduler", User Guide: "For one-time schedules, this occurs
// after the schedule has invoked its target once"), one with NONE stays,
// fired. A failed delivery keeps the schedule due, so a later Fire retries
// it (Scheduler's RetryPolicy); Fire returns how many were delivered and
// every failure, each naming its schedule. Deliveries run without the
// stand-in's lock: deliver may create and delete schedules (created ones
// are at least schedule.MinLead after the stand-in's clock, so they fire
// in a later Fire). Fire does not move the clock: a test advances the
// clock it shares with the stand-in (Now) and the scheduler to now first.
func (s *StandIn) Fire(ctx context.Context, now time.Time, deliver func(context.Context, json.RawMessage) error) (int, error) {
	delivered := 0
	var errs []error
	for _, d := range s.Deliver(ctx, now, 0, func(ctx context.Context, x Schedule) error {
		return deliver(ctx, json.RawMessage(x.Input))
	}) {
		if d.Err != nil {
			errs = append(errs, fmt.Errorf("deliver schedule %s/%s: %w", d.Schedule.Group, d.Schedule.Name, d.Err))
			continue
		}
		delivered++
	}
	return delivered, errors.Join(errs...)
}

// Delivery is one attempt Deliver made to deliver a schedule.
type Delivery struct {
	// Schedule as it was when delivered; Attempts counts this attempt.
	Schedule Schedule
	// Err is the delivery's failure (nil: delivered).
	Err error
	// GaveUp: the delivery failed on the last attempt maxAttempts allows,
	// and the schedule was removed (Scheduler then sends the event to the
	// target's dead-letter queue, "Configuring a dead-letter queue for
	// EventBridge Scheduler", User Guide; the stand-in has none).
	GaveUp bool
}

// Deliver is Fire with each attempt's outcome, and a bound: with
// maxAttempts > 0 a schedule whose delivery failed maxAttempts times is
// removed (GaveUp) instead of staying due ("RetryPolicy", API Reference:
// MaximumRetryAttempts bounds the retries of a failed delivery). deliver
// gets the whole schedule (its Input, TargetARN, name).
func (s *StandIn) Deliver(ctx context.Context, now time.Time, maxAttempts int, deliver func(context.Context, Schedule) error) []Delivery {
	var out []Delivery
	for _, x := range s.Due(now) {
		key := x.Group + "/" + x.Name
		s.mu.Lock()
		cur, ok := s.schedules[key]
		still := ok && cur.Created.Equal(x.Created) && s.due(cur, now)
		if still {
			cur.Attempts++
			x.Attempts = cur.Attempts
		}
		s.mu.Unlock()
		if !still {
			continue // deleted or replaced by an earlier delivery of this call
		}
		err := deliver(ctx, x)
		d := Delivery{Schedule: x, Err: err}
		s.mu.Lock()
		if cur, ok := s.schedules[key]; ok && cur.Created.Equal(x.Created) {
			switch {
			case err == nil:
				cur.Fired = true
				if cur.ActionAfterCompletion == "DELETE" {
					delete(s.schedules, key)
				}
			case maxAttempts > 0 && cur.Attempts >= maxAttempts:
				delete(s.schedules, key)
				d.GaveUp = true
			}
		}
		s.mu.Unlock()
		out = append(out, d)
	}
	return out
}

// Calls returns the requests answered, by operation, and resets the count.
func (s *StandIn) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = map[string]int{}
	return c
}

// SchedulerConfig is a schedule.Config for this stand-in: group (created
// here when missing), a role ARN and a Lambda target ARN of the stand-in's
// account.
func (s *StandIn) SchedulerConfig(group string) schedule.Config {
	s.CreateGroup(group)
	return schedule.Config{
		Group:     group,
		TargetARN: fmt.Sprintf("arn:aws:lambda:%s:%s:function:certferry-RenewalFunction", Region, Account),
		RoleARN:   fmt.Sprintf("arn:aws:iam::%s:role/certferry-SchedulerRole", Account),
	}
}

// Scheduler returns the production schedule.Scheduler on an SDK client
// whose endpoint is endpoint (the stand-in's own server from Start, or a
// FaultProxy it is plugged into), with cfg, sharing the stand-in's clock.
func (s *StandIn) Scheduler(endpoint string, cfg schedule.Config) *schedule.Scheduler {
	client := scheduler.New(scheduler.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("x", "x", ""),
	})
	sch := schedule.New(client, cfg)
	sch.Now = s.now
	return sch
}

// Start serves the stand-in alone on a loopback port (unit tests: no
// emulator, no model check) and returns its URL; the server stops with
// the returned function.
func (s *StandIn) Start() (string, func()) {
	srv := httptest.NewServer(s)
	return srv.URL, srv.Close
}

// Layer answers requests signed for "scheduler" (SigV4 credential scope)
// and passes the others to next.
func (s *StandIn) Layer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if IsRequest(r) {
			s.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

var scopeService = regexp.MustCompile(`Credential=[^/]+/[0-9]{8}/[^/]+/([^/]+)/aws4_request`)

// IsRequest reports whether r is signed for EventBridge Scheduler.
func IsRequest(r *http.Request) bool {
	m := scopeService.FindStringSubmatch(r.Header.Get("Authorization"))
	return m != nil && m[1] == "scheduler"
}

// schedulerError is an error as Scheduler's REST-JSON protocol answers it:
// the status, X-Amzn-ErrorType and {"Message"}.
type schedulerError struct {
	status  int
	code    string
	message string
}

func (e *schedulerError) Error() string { return e.code + ": " + e.message }

func invalid(format string, a ...any) *schedulerError {
	return &schedulerError{http.StatusBadRequest, "ValidationException", fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) *schedulerError {
	return &schedulerError{http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf(format, a...)}
}

// ServeHTTP answers one Scheduler request.
func (s *StandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	op, out, serr := s.route(r, body)
	s.mu.Lock()
	s.calls[op]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if serr != nil {
		w.Header().Set("X-Amzn-ErrorType", serr.code)
		w.WriteHeader(serr.status)
		b, _ := json.Marshal(map[string]string{"Message": serr.message})
		_, _ = w.Write(b)
		return
	}
	b, _ := json.Marshal(out)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func (s *StandIn) route(r *http.Request, body []byte) (string, any, *schedulerError) {
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	parts := strings.Split(path, "/")
	q := r.URL.Query()
	label := func() (string, *schedulerError) {
		n, err := url.PathUnescape(parts[1])
		if err != nil || !schedulerName.MatchString(n) {
			return "", invalid("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9a-zA-Z-_.]+$ and have length 1-64")
		}
		return n, nil
	}
	switch {
	case len(parts) == 1 && parts[0] == "schedules" && r.Method == http.MethodGet:
		out, err := s.list(q)
		return "ListSchedules", out, err
	case len(parts) == 2 && parts[0] == "schedules":
		name, err := label()
		switch r.Method {
		case http.MethodPost:
			if err == nil {
				var out any
				out, err = s.create(name, body)
				return "CreateSchedule", out, err
			}
			return "CreateSchedule", nil, err
		case http.MethodGet:
			if err == nil {
				var out any
				out, err = s.get(name, q.Get("groupName"))
				return "GetSchedule", out, err
			}
			return "GetSchedule", nil, err
		case http.MethodDelete:
			if err == nil {
				err = s.delete(name, q.Get("groupName"))
			}
			return "DeleteSchedule", map[string]any{}, err
		}
	case len(parts) == 2 && parts[0] == "schedule-groups" && r.Method == http.MethodPost:
		name, err := label()
		if err != nil {
			return "CreateScheduleGroup", nil, err
		}
		s.mu.Lock()
		_, exists := s.groups[name]
		s.mu.Unlock()
		if exists {
			return "CreateScheduleGroup", nil, &schedulerError{http.StatusConflict, "ConflictException", fmt.Sprintf("Schedule group %s already exists.", name)}
		}
		s.CreateGroup(name)
		return "CreateScheduleGroup", map[string]string{"ScheduleGroupArn": fmt.Sprintf("arn:aws:scheduler:%s:%s:schedule-group/%s", Region, Account, name)}, nil
	}
	return "Unsupported", nil, invalid("the certferry Scheduler stand-in does not serve %s %s", r.Method, r.URL.Path)
}

func (s *StandIn) group(g string) (string, *schedulerError) {
	if g == "" {
		g = "default"
	}
	if !schedulerName.MatchString(g) {
		return "", invalid("Value at 'groupName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9a-zA-Z-_.]+$ and have length 1-64")
	}
	if _, ok := s.groups[g]; !ok {
		return "", notFound("Schedule group %s does not exist.", g)
	}
	return g, nil
}

// createInput is CreateSchedule's body (the members certferry's stand-in
// checks; the model check refuses unknown ones first in the rig).
type createInput struct {
	ActionAfterCompletion string          `json:"ActionAfterCompletion"`
	ClientToken           string          `json:"ClientToken"`
	Description           *string         `json:"Description"`
	EndDate               json.RawMessage `json:"EndDate"`
	FlexibleTimeWindow    *struct {
		Mode                   string `json:"Mode"`
		MaximumWindowInMinutes *int   `json:"MaximumWindowInMinutes"`
	} `json:"FlexibleTimeWindow"`
	GroupName                  string          `json:"GroupName"`
	KmsKeyArn                  string          `json:"KmsKeyArn"`
	ScheduleExpression         string          `json:"ScheduleExpression"`
	ScheduleExpressionTimezone string          `json:"ScheduleExpressionTimezone"`
	StartDate                  json.RawMessage `json:"StartDate"`
	State                      string          `json:"State"`
	Target                     map[string]any  `json:"Target"`
}

// create checks a CreateSchedule as "CreateSchedule" (EventBridge
// Scheduler API Reference) and "Target" document it, and stores it.
func (s *StandIn) create(name string, body []byte) (any, *schedulerError) {
	var in createInput
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil {
		return nil, invalid("the request body is not a CreateSchedule input: %v", err)
	}
	// Required members: FlexibleTimeWindow (with Mode), ScheduleExpression,
	// Target (with Arn and RoleArn).
	switch {
	case in.FlexibleTimeWindow == nil || in.FlexibleTimeWindow.Mode == "":
		return nil, invalid("Value null at 'flexibleTimeWindow.mode' failed to satisfy constraint: Member must not be null")
	case in.FlexibleTimeWindow.Mode != "OFF" && in.FlexibleTimeWindow.Mode != "FLEXIBLE":
		return nil, invalid("Value at 'flexibleTimeWindow.mode' failed to satisfy constraint: Member must satisfy enum value set: [OFF, FLEXIBLE]")
	case in.FlexibleTimeWindow.Mode == "FLEXIBLE" && (in.FlexibleTimeWindow.MaximumWindowInMinutes == nil ||
		*in.FlexibleTimeWindow.MaximumWindowInMinutes < 1 || *in.FlexibleTimeWindow.MaximumWindowInMinutes > 1440):
		// "FlexibleTimeWindow": MaximumWindowInMinutes 1-1440, needed when
		// Mode is FLEXIBLE.
		return nil, invalid("MaximumWindowInMinutes (1-1440) is required when the flexible time window mode is FLEXIBLE")
	case in.ScheduleExpression == "":
		return nil, invalid("Value null at 'scheduleExpression' failed to satisfy constraint: Member must not be null")
	case in.Target == nil:
		return nil, invalid("Value null at 'target' failed to satisfy constraint: Member must not be null")
	case in.ActionAfterCompletion != "" && in.ActionAfterCompletion != "NONE" && in.ActionAfterCompletion != "DELETE":
		return nil, invalid("Value at 'actionAfterCompletion' failed to satisfy constraint: Member must satisfy enum value set: [NONE, DELETE]")
	case in.State != "" && in.State != "ENABLED" && in.State != "DISABLED":
		return nil, invalid("Value at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]")
	case in.Description != nil && len([]rune(*in.Description)) > 512:
		return nil, invalid("Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 512")
	}
	targetARN, _ := in.Target["Arn"].(string)
	roleARN, _ := in.Target["RoleArn"].(string)
	input, hasInput := in.Target["Input"].(string)
	switch {
	case targetARN == "" || len(targetARN) > 1600:
		return nil, invalid("Value at 'target.arn' failed to satisfy constraint: Member must not be null and have length 1-1600")
	case roleARN == "":
		return nil, invalid("Value null at 'target.roleArn' failed to satisfy constraint: Member must not be null")
	case !schedulerRole.MatchString(roleARN) || len(roleARN) > 1600:
		return nil, invalid("Value at 'target.roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: ^arn:aws(-[a-z]+)?:iam::\\d{12}:role\\/[\\w+=,.@\\/-]+$")
	case hasInput && input == "":
		return nil, invalid("Value at 'target.input' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case hasInput && lambdaTargetARN.MatchString(targetARN) && !json.Valid([]byte(input)):
		// "Target": "If you are configuring a templated Lambda, AWS Step
		// Functions, or Amazon EventBridge target, the input must be a
		// well-formed JSON."
		return nil, invalid("Target input for a Lambda target must be well-formed JSON")
	}
	if rp, ok := in.Target["RetryPolicy"].(map[string]any); ok {
		// "RetryPolicy": MaximumEventAgeInSeconds 60-86400,
		// MaximumRetryAttempts 0-185.
		if v, ok := rp["MaximumEventAgeInSeconds"].(float64); ok && (v < 60 || v > 86400) {
			return nil, invalid("Value at 'target.retryPolicy.maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 86400")
		}
		if v, ok := rp["MaximumRetryAttempts"].(float64); ok && (v < 0 || v > 185) {
			return nil, invalid("Value at 'target.retryPolicy.maximumRetryAttempts' failed to satisfy constraint: Member must have value between 0 and 185")
		}
	}
	if dl, ok := in.Target["DeadLetterConfig"].(map[string]any); ok {
		if a, _ := dl["Arn"].(string); a != "" && !schedulerDLQ.MatchString(a) {
			return nil, invalid("Value at 'target.deadLetterConfig.arn' failed to satisfy constraint: Member must satisfy regular expression pattern: ^arn:aws(-[a-z]+)?:sqs:[a-z0-9\\-]+:\\d{12}:[a-zA-Z0-9\\-_]+$")
		}
	}
	// The stand-in serves one-time schedules only (all certferry creates):
	// "at(yyyy-mm-ddThh:mm:ss)" in ScheduleExpressionTimezone (default UTC).
	m := atExpression.FindStringSubmatch(in.ScheduleExpression)
	if m == nil {
		return nil, invalid("Invalid Schedule Expression %s (the certferry stand-in serves one-time at(yyyy-mm-ddThh:mm:ss) schedules only)", in.ScheduleExpression)
	}
	tz := in.ScheduleExpressionTimezone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || len(tz) > 50 {
		return nil, invalid("Invalid time zone %s", tz)
	}
	at, err := time.ParseInLocation("2006-01-02T15:04:05", m[1], loc)
	if err != nil {
		return nil, invalid("Invalid Schedule Expression %s", in.ScheduleExpression)
	}
	now := s.now()
	if !at.After(now) {
		// Not documented either way in the API Reference; certferry never
		// sends one (schedule.MinLead), and the stand-in refuses it so that
		// no code path comes to rely on what AWS would do.
		return nil, invalid("The schedule expression %s lies in the past (now %s)", in.ScheduleExpression, now.UTC().Format(time.RFC3339))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	group, gerr := s.group(in.GroupName)
	if gerr != nil {
		return nil, gerr
	}
	key := group + "/" + name
	if _, exists := s.schedules[key]; exists {
		return nil, &schedulerError{http.StatusConflict, "ConflictException", fmt.Sprintf("Schedule %s already exists.", name)}
	}
	window := 0
	if in.FlexibleTimeWindow.MaximumWindowInMinutes != nil {
		window = *in.FlexibleTimeWindow.MaximumWindowInMinutes
	}
	x := &Schedule{
		Group: group, Name: name, Expression: in.ScheduleExpression, Timezone: tz, At: at.UTC(),
		ActionAfterCompletion: orDefault(in.ActionAfterCompletion, "NONE"), State: orDefault(in.State, "ENABLED"),
		Description: aws.ToString(in.Description), FlexibleMode: in.FlexibleTimeWindow.Mode, TargetARN: targetARN, RoleARN: roleARN, Input: input,
		FlexibleWindow: window, Created: now, target: in.Target,
	}
	s.schedules[key] = x
	return map[string]string{"ScheduleArn": x.ARN()}, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func epoch(t time.Time) json.Number {
	return json.Number(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64))
}

func (s *StandIn) get(name, g string) (any, *schedulerError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	group, err := s.group(g)
	if err != nil {
		return nil, err
	}
	x, ok := s.schedules[group+"/"+name]
	if !ok {
		return nil, notFound("Schedule %s does not exist.", name)
	}
	ftw := map[string]any{"Mode": x.FlexibleMode}
	if x.FlexibleMode == "FLEXIBLE" {
		ftw["MaximumWindowInMinutes"] = x.FlexibleWindow
	}
	return map[string]any{
		"ActionAfterCompletion": x.ActionAfterCompletion, "Arn": x.ARN(), "CreationDate": epoch(x.Created),
		"Description": x.Description, "FlexibleTimeWindow": ftw, "GroupName": x.Group,
		"LastModificationDate": epoch(x.Created), "Name": x.Name, "ScheduleExpression": x.Expression,
		"ScheduleExpressionTimezone": x.Timezone, "State": x.State, "Target": x.target,
	}, nil
}

func (s *StandIn) delete(name, g string) *schedulerError {
	s.mu.Lock()
	defer s.mu.Unlock()
	group, err := s.group(g)
	if err != nil {
		return err
	}
	if _, ok := s.schedules[group+"/"+name]; !ok {
		return notFound("Schedule %s does not exist.", name)
	}
	delete(s.schedules, group+"/"+name)
	return nil
}

// list answers ListSchedules: "ScheduleGroup", "NamePrefix", "State",
// "MaxResults" (1-100) and "NextToken" query parameters ("ListSchedules",
// API Reference); a group that does not exist is ResourceNotFound.
func (s *StandIn) list(q url.Values) (any, *schedulerError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var group string
	if g := q.Get("ScheduleGroup"); g != "" {
		var err *schedulerError
		if group, err = s.group(g); err != nil {
			return nil, err
		}
	}
	max := 100
	if v := q.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, invalid("Value at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100")
		}
		max = n
	}
	prefix, state := q.Get("NamePrefix"), q.Get("State")
	all := s.sorted(func(x *Schedule) bool {
		return (group == "" || x.Group == group) && strings.HasPrefix(x.Name, prefix) && (state == "" || x.State == state)
	})
	slices.SortFunc(all, func(a, b Schedule) int { return strings.Compare(a.Group+"/"+a.Name, b.Group+"/"+b.Name) })
	start := 0
	if tok := q.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(all) {
			return nil, invalid("Invalid NextToken")
		}
		start = n
	}
	end := min(start+max, len(all))
	list := []map[string]any{}
	for _, x := range all[start:end] {
		list = append(list, map[string]any{
			"Arn": x.ARN(), "CreationDate": epoch(x.Created), "GroupName": x.Group, "LastModificationDate": epoch(x.Created),
			"Name": x.Name, "State": x.State, "Target": map[string]string{"Arn": x.TargetARN},
		})
	}
	out := map[string]any{"Schedules": list}
	if end < len(all) {
		out["NextToken"] = strconv.Itoa(end)
	}
	return out, nil
}
