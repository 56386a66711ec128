package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/certferry/certferry/internal/spec"
)

// alarmDescriber is the CloudWatch call the stop-alarm check makes.
type alarmDescriber interface {
	DescribeAlarms(ctx context.Context, in *cloudwatch.DescribeAlarmsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.DescribeAlarmsOutput, error)
}

var _ alarmDescriber = (*cloudwatch.Client)(nil)

// Errors of the stop-alarm check that are not the caller's: CloudWatch
// refused certferry's read, or throttled it past the SDK's retries. The
// request fails (502) rather than accepting an alarm nobody could check.
var (
	ErrAlarmAccessDenied = errors.New("CloudWatch refused cloudwatch:DescribeAlarms")
	ErrAlarmThrottled    = errors.New("CloudWatch throttled cloudwatch:DescribeAlarms")
)

// StopAlarmError is a stop alarm certferry could not check (wraps
// ErrAlarmAccessDenied or ErrAlarmThrottled).
type StopAlarmError struct {
	Alarm, Region string
	Err           error
}

func (e *StopAlarmError) Error() string {
	return fmt.Sprintf("check CloudWatch alarm %q in %s: %v", e.Alarm, e.Region, e.Err)
}

func (e *StopAlarmError) Unwrap() error { return e.Err }

// AlarmChecker checks that a name's rollout.stopAlarm exists, so a wrong
// name is refused at onboarding instead of stopping every command:
// SendCommand's AlarmConfiguration ("AlarmConfiguration", Systems Manager
// API Reference) names "the CloudWatch alarm you want to apply to an
// automation or command" and sets no alarm type, so metric and composite
// alarms both count. DescribeAlarms returns only metric alarms unless
// AlarmTypes names CompositeAlarm too, and composite alarms only to a
// cloudwatch:DescribeAlarms permission on "*" ("DescribeAlarms", Amazon
// CloudWatch API Reference; botocore cloudwatch 2010-08-01 model).
type AlarmChecker struct {
	cw     alarmDescriber
	region string
}

// NewAlarmChecker returns a checker on cw, whose region names the alarms'
// region in its answers.
func NewAlarmChecker(cw alarmDescriber, region string) *AlarmChecker {
	return &AlarmChecker{cw: cw, region: region}
}

// Check returns nil when the alarm exists, a *spec.FieldError on
// rollout.stopAlarm when it does not (or its name is malformed), a *StopAlarmError when CloudWatch
// refused or throttled the read, and any other failure wrapped.
func (c *AlarmChecker) Check(ctx context.Context, name string) error {
	if err := spec.ValidateStopAlarm(name); err != nil {
		return err // a malformed name never reaches CloudWatch
	}
	out, err := c.cw.DescribeAlarms(ctx, &cloudwatch.DescribeAlarmsInput{
		AlarmNames: []string{name},
		AlarmTypes: []cwtypes.AlarmType{cwtypes.AlarmTypeMetricAlarm, cwtypes.AlarmTypeCompositeAlarm},
	})
	switch {
	case err == nil:
	case accessDenied(err):
		return &StopAlarmError{Alarm: name, Region: c.region, Err: fmt.Errorf("%w: %w", ErrAlarmAccessDenied, err)}
	case throttled(err):
		return &StopAlarmError{Alarm: name, Region: c.region, Err: fmt.Errorf("%w: %w", ErrAlarmThrottled, err)}
	default:
		return fmt.Errorf("describe CloudWatch alarm %q: %w", name, err)
	}
	for _, a := range out.MetricAlarms {
		if a.AlarmName != nil && *a.AlarmName == name {
			return nil
		}
	}
	for _, a := range out.CompositeAlarms {
		if a.AlarmName != nil && *a.AlarmName == name {
			return nil
		}
	}
	if strings.HasPrefix(name, "arn:") {
		// SendCommand's AlarmConfiguration names an alarm ("The name of
		// your CloudWatch alarm", Systems Manager API Reference), read in
		// the caller's account and region: an ARN is not a way to name
		// one elsewhere.
		return spec.Invalid("rollout.stopAlarm", "no CloudWatch alarm is named %q: SSM reads alarms by name, in certferry's account and region (%s): give the name, not an ARN (an alarm of another account or region cannot stop certferry's commands)", name, c.region)
	}
	return spec.Invalid("rollout.stopAlarm", "CloudWatch alarm %q not found in %s (metric or composite alarm; create it first, or leave rollout.stopAlarm out)", name, c.region)
}

// accessDenied: CloudWatch's AccessDenied (query), AccessDeniedException
// (JSON) or any 403.
func accessDenied(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation":
			return true
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden
}

// throttled: the SDK's throttling codes (Throttling, ThrottlingException,
// RequestLimitExceeded, …) or a 429, once its retries are spent.
func throttled(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if _, ok := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]; ok {
			return true
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusTooManyRequests
}
