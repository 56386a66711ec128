package api

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
)

// fakeCloudWatch answers DescribeAlarms from its alarms, or with err.
type fakeCloudWatch struct {
	metric, composite []string
	err               error
	calls             []*cloudwatch.DescribeAlarmsInput
}

func (f *fakeCloudWatch) DescribeAlarms(_ context.Context, in *cloudwatch.DescribeAlarmsInput, _ ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	f.calls = append(f.calls, in)
	if f.err != nil {
		return nil, f.err
	}
	out := &cloudwatch.DescribeAlarmsOutput{}
	for _, n := range in.AlarmNames {
		if slices.Contains(f.metric, n) && slices.Contains(in.AlarmTypes, cwtypes.AlarmTypeMetricAlarm) {
			out.MetricAlarms = append(out.MetricAlarms, cwtypes.MetricAlarm{AlarmName: aws.String(n)})
		}
		if slices.Contains(f.composite, n) && slices.Contains(in.AlarmTypes, cwtypes.AlarmTypeCompositeAlarm) {
			out.CompositeAlarms = append(out.CompositeAlarms, cwtypes.CompositeAlarm{AlarmName: aws.String(n)})
		}
	}
	return out, nil
}

// TestStopAlarmCheck: POST /certificates with rollout.stopAlarm asks
// CloudWatch for that alarm (metric and composite); an existing one goes
// on, a missing one is a 400 on the field, a refused or throttled read a
// 502 naming cloudwatch:DescribeAlarms, any other failure the generic
// 502; a refused request onboards nothing. A body without a stop alarm
// makes no call.
func TestStopAlarmCheck(t *testing.T) {
	base := `{"certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
		"name": "shop-web", "targets": [{"key": "tag:env", "values": ["prod"]}]`
	withAlarm := func(n string) string { return base + `, "rollout": {"stopAlarm": "` + n + `"}}` }
	cases := []struct {
		name       string
		cw         *fakeCloudWatch
		body       string
		status     int
		code       string
		field      string
		message    string // the answer's message contains it
		calls      int
		onboarded  bool
		noInternal bool // the answer must not echo the SDK error
	}{
		{name: "metric alarm exists", cw: &fakeCloudWatch{metric: []string{"shop-5xx"}}, body: withAlarm("shop-5xx"), status: 202, calls: 1, onboarded: true},
		{name: "composite alarm exists", cw: &fakeCloudWatch{composite: []string{"shop-health"}}, body: withAlarm("shop-health"), status: 202, calls: 1, onboarded: true},
		{name: "missing", cw: &fakeCloudWatch{metric: []string{"shop-5xx"}}, body: withAlarm("shop-5xz"), status: 400, code: "ValidationError",
			field: "rollout.stopAlarm", message: `rollout.stopAlarm: CloudWatch alarm "shop-5xz" not found in eu-west-1`, calls: 1},
		{name: "an alarm's ARN, not its name", cw: &fakeCloudWatch{metric: []string{"shop-5xx"}}, body: withAlarm("arn:aws:cloudwatch:us-east-1:210987654321:alarm:shop-5xx"),
			status: 400, code: "ValidationError", field: "rollout.stopAlarm", message: "SSM reads alarms by name, in certferry's account and region (eu-west-1): give the name, not an ARN", calls: 1},
		{name: "access denied", cw: &fakeCloudWatch{err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "User: arn:aws:sts::1:assumed-role/x is not authorized"}},
			body: withAlarm("shop-5xx"), status: 502, code: "StopAlarmUnreadable", field: "rollout.stopAlarm", message: "needs cloudwatch:DescribeAlarms", calls: 1, noInternal: true},
		{name: "access denied (JSON code)", cw: &fakeCloudWatch{err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}},
			body: withAlarm("shop-5xx"), status: 502, code: "StopAlarmUnreadable", field: "rollout.stopAlarm", message: "needs cloudwatch:DescribeAlarms", calls: 1, noInternal: true},
		{name: "throttled", cw: &fakeCloudWatch{err: &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}},
			body: withAlarm("shop-5xx"), status: 502, code: "StopAlarmUnreadable", field: "rollout.stopAlarm", message: "throttled cloudwatch:DescribeAlarms", calls: 1, noInternal: true},
		{name: "other failure", cw: &fakeCloudWatch{err: errors.New("dial tcp: boom")}, body: withAlarm("shop-5xx"), status: 502, code: "DependencyFailure", calls: 1, noInternal: true},
		{name: "no stop alarm, no call", cw: &fakeCloudWatch{err: errors.New("must not be called")}, body: base + `}`, status: 202, onboarded: true},
		{name: "invalid name refused before the call", cw: &fakeCloudWatch{}, body: withAlarm(" "), status: 400, code: "ValidationError", field: "rollout.stopAlarm"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dep := &fakeDeployer{}
			h := NewHandler(dep, &fakeCatalog{}).WithAlarms(NewAlarmChecker(tc.cw, "eu-west-1"))
			resp, err := h.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/certificates", Resource: "/certificates", Body: tc.body})
			if err != nil || resp.StatusCode != tc.status {
				t.Fatalf("%d %v %s, want %d", resp.StatusCode, err, resp.Body, tc.status)
			}
			if got := len(dep.onboarded) > 0; got != tc.onboarded {
				t.Fatalf("onboarded %v, want %v (%s)", got, tc.onboarded, resp.Body)
			}
			if len(tc.cw.calls) != tc.calls {
				t.Fatalf("%d DescribeAlarms calls, want %d", len(tc.cw.calls), tc.calls)
			}
			for _, in := range tc.cw.calls {
				if !slices.Equal(in.AlarmNames, []string{strings.TrimSuffix(strings.SplitAfter(tc.body, `"stopAlarm": "`)[1], `"}}`)}) ||
					!slices.Equal(in.AlarmTypes, []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm, cwtypes.AlarmTypeCompositeAlarm}) {
					t.Fatalf("DescribeAlarms %+v, want the one name and both alarm types", in)
				}
			}
			if tc.status < 300 {
				return
			}
			var eb errorBody
			if err := json.Unmarshal([]byte(resp.Body), &eb); err != nil || eb.Error.Code != tc.code || eb.Error.Field != tc.field ||
				!strings.Contains(eb.Error.Message, tc.message) {
				t.Fatalf("answer %s, want %s on %q containing %q", resp.Body, tc.code, tc.field, tc.message)
			}
			if tc.noInternal && (strings.Contains(resp.Body, "not authorized") || strings.Contains(resp.Body, "boom") || strings.Contains(resp.Body, "Rate exceeded")) {
				t.Fatalf("answer echoes the SDK error: %s", resp.Body)
			}
		})
	}
}

// TestAlarmCheckerErrors: the checker's own classification, for callers
// other than the handler.
func TestAlarmCheckerErrors(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		is    error
		field bool
	}{
		{"found", nil, nil, false},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDenied"}, ErrAlarmAccessDenied, false},
		{"throttling exception", &smithy.GenericAPIError{Code: "ThrottlingException"}, ErrAlarmThrottled, false},
		{"request limit", &smithy.GenericAPIError{Code: "RequestLimitExceeded"}, ErrAlarmThrottled, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := NewAlarmChecker(&fakeCloudWatch{metric: []string{"a"}, err: tc.err}, "us-east-1").Check(context.Background(), "a")
			if tc.is == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *StopAlarmError
			if !errors.Is(err, tc.is) || !errors.As(err, &se) || se.Alarm != "a" || se.Region != "us-east-1" {
				t.Fatalf("%v, want %v", err, tc.is)
			}
		})
	}
	// An alarm whose name only starts like the one asked for is not it.
	err := NewAlarmChecker(&prefixCloudWatch{}, "us-east-1").Check(context.Background(), "shop")
	if err == nil || err.Error() != `rollout.stopAlarm: CloudWatch alarm "shop" not found in us-east-1 (metric or composite alarm; create it first, or leave rollout.stopAlarm out)` {
		t.Fatalf("prefix match: %v", err)
	}
}

// prefixCloudWatch answers with an alarm of another name.
type prefixCloudWatch struct{}

func (prefixCloudWatch) DescribeAlarms(context.Context, *cloudwatch.DescribeAlarmsInput, ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error) {
	return &cloudwatch.DescribeAlarmsOutput{MetricAlarms: []cwtypes.MetricAlarm{{AlarmName: aws.String("shop-5xx")}}}, nil
}
