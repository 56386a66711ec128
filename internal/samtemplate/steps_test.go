package samtemplate

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/config"
)

// stepSchedulesResource is where certferry's functions may create, read
// and delete schedules: this stack's group only.
const stepSchedulesResource = "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${StepSchedules}/*"

// stepFunctions create and cancel timed rollout steps.
var stepFunctions = []string{"OnboardFunction", "RenewalFunction", "TrackerFunction", "SweepWorkerFunction"}

// The timed rollout steps' IAM, pinned: the functions that schedule steps
// create, read and delete schedules of the stack's group only and pass
// the step role to EventBridge Scheduler only; Scheduler alone (for this
// account and group) assumes that role, which invokes the renewal function
// and reaches the dead-letter queue, nothing else.
func TestStepSchedulesIAM(t *testing.T) {
	_, tmpl := readTemplate(t)
	group := res(t, tmpl, "StepSchedules")
	if group["Type"] != "AWS::Scheduler::ScheduleGroup" {
		t.Fatalf("StepSchedules is %v", group["Type"])
	}
	if props, ok := group["Properties"].(map[string]any); ok && props["Name"] != nil {
		// "AWS::Scheduler::ScheduleGroup": Name 1-64 of ^[0-9a-zA-Z-_.]+$.
		if n := fmt.Sprint(props["Name"]); !regexp.MustCompile(`^[0-9a-zA-Z-_.]{1,64}$`).MatchString(n) {
			t.Errorf("group name %q breaks the model", n)
		}
	}

	role := res(t, tmpl, "StepSchedulerRole")["Properties"].(map[string]any)
	trust := asList(role["AssumeRolePolicyDocument"].(map[string]any)["Statement"])
	if len(trust) != 1 {
		t.Fatalf("trust policy has %d statements", len(trust))
	}
	ts := trust[0].(map[string]any)
	if got := fmt.Sprint(ts["Effect"], " ", ts["Principal"], " ", ts["Action"], " ", ts["Condition"]); got !=
		"Allow map[Service:scheduler.amazonaws.com] sts:AssumeRole map[ArnEquals:map[aws:SourceArn:StepSchedules.Arn] StringEquals:map[aws:SourceAccount:AWS::AccountId]]" {
		t.Errorf("trust statement %s", got)
	}

	all := statements(tmpl)
	grants := func(ids ...string) []string {
		var out []string
		for _, id := range ids {
			for _, s := range all[id] {
				for _, a := range asList(s["Action"]) {
					out = append(out, fmt.Sprintf("%s %v %v", a, asList(s["Resource"]), s["Condition"]))
				}
			}
		}
		sort.Strings(out)
		return out
	}
	want := []string{
		"lambda:InvokeFunction [RenewalFunction.Arn] <nil>",
		"sqs:SendMessage [EventsDLQ.Arn] <nil>",
	}
	if got := grants("StepSchedulerRole", "StepSchedulerInvokePolicy"); !slices.Equal(got, want) {
		t.Errorf("the step role may:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if roles := fmt.Sprint(res(t, tmpl, "StepSchedulerInvokePolicy")["Properties"].(map[string]any)["Roles"]); roles != "[StepSchedulerRole]" {
		t.Errorf("the invoke policy is attached to %s", roles)
	}
	want = []string{
		"iam:PassRole [StepSchedulerRole.Arn] map[StringEquals:map[iam:PassedToService:scheduler.amazonaws.com]]",
		"scheduler:CreateSchedule [" + stepSchedulesResource + "] <nil>",
		"scheduler:DeleteSchedule [" + stepSchedulesResource + "] <nil>",
		"scheduler:GetSchedule [" + stepSchedulesResource + "] <nil>",
	}
	if got := grants("StepSchedulesPolicy"); !slices.Equal(got, want) {
		t.Errorf("StepSchedulesPolicy allows:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	// Nothing else grants Scheduler, PassRole or Lambda invocation.
	for id := range all {
		if id == "StepSchedulesPolicy" || id == "StepSchedulerInvokePolicy" {
			continue
		}
		for _, g := range grants(id) {
			if g == "lambda:InvokeFunction [ProbeFunction.Arn] <nil>" && (id == "TrackerFunction" || id == "SweepWorkerFunction") {
				continue // the outside probes (TestProbeFunction)
			}
			if strings.HasPrefix(g, "scheduler:") || strings.HasPrefix(g, "iam:PassRole") || strings.HasPrefix(g, "lambda:") {
				t.Errorf("%s also grants %s", id, g)
			}
		}
	}

	for _, id := range stepFunctions {
		p := props(t, tmpl, id)
		if !slices.ContainsFunc(asList(p["Policies"]), func(v any) bool { return v == "StepSchedulesPolicy" }) {
			t.Errorf("%s lacks StepSchedulesPolicy", id)
		}
		e, _ := p["Environment"].(map[string]any)
		vars, _ := e["Variables"].(map[string]any)
		target := "RenewalFunction.Arn"
		if id == "RenewalFunction" {
			target = config.StepTargetSelf // its own ARN would be a cycle
		}
		for k, v := range map[string]string{
			config.EnvScheduleGroup: "StepSchedules", config.EnvSchedulerRoleARN: "StepSchedulerRole.Arn",
			config.EnvStepTargetARN: target, config.EnvStepDLQARN: "EventsDLQ.Arn",
		} {
			if fmt.Sprint(vars[k]) != v {
				t.Errorf("%s: %s = %v, want %s", id, k, vars[k], v)
			}
		}
	}
	if strings.Contains(fmt.Sprint(props(t, tmpl, "RenewalFunction")["Environment"]), "RenewalFunction.Arn") {
		t.Error("the renewal function names its own ARN (a circular reference)")
	}
}
