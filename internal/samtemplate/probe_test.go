package samtemplate

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/config"
)

// The probe function: invoked by the tracker and the sweeper only
// (lambda:InvokeFunction on that function alone), told its name through
// CERTFERRY_PROBE_FUNCTION; in a VPC only when both VPC parameters are
// set, and only then allowed to manage network interfaces.
func TestProbeFunction(t *testing.T) {
	_, tmpl := readTemplate(t)
	var invokers []string
	for id, stmts := range statements(tmpl) {
		for _, s := range stmts {
			for _, a := range asList(s["Action"]) {
				if !strings.HasPrefix(fmt.Sprint(a), "lambda:") || !strings.Contains(fmt.Sprint(s["Resource"]), "ProbeFunction") {
					continue // other Lambda grants: TestLeastPrivilege, TestStepSchedulesIAM
				}
				if a != "lambda:InvokeFunction" || fmt.Sprint(asList(s["Resource"])) != "[ProbeFunction.Arn]" {
					t.Errorf("%s: %v on %v, want only lambda:InvokeFunction on ProbeFunction.Arn", id, a, s["Resource"])
				}
				invokers = append(invokers, id)
			}
		}
	}
	slices.Sort(invokers)
	if !slices.Equal(invokers, []string{"SweepWorkerFunction", "TrackerFunction"}) {
		t.Errorf("the probe function is invoked by %v, want the tracker and the sweeper", invokers)
	}
	for _, id := range []string{"TrackerFunction", "SweepWorkerFunction"} {
		e, _ := props(t, tmpl, id)["Environment"].(map[string]any)
		vars, _ := e["Variables"].(map[string]any)
		if fmt.Sprint(vars[config.EnvProbeFunction]) != "ProbeFunction" {
			t.Errorf("%s: %s = %v, want !Ref ProbeFunction", id, config.EnvProbeFunction, vars[config.EnvProbeFunction])
		}
	}

	fn := props(t, tmpl, "ProbeFunction")
	if fmt.Sprint(fn["Role"]) != "ProbeFunctionRole.Arn" || fn["Policies"] != nil {
		t.Errorf("probe function role %v, policies %v: want its own role only", fn["Role"], fn["Policies"])
	}
	vpc := asList(fn["VpcConfig"])
	if len(vpc) != 3 || vpc[0] != "ProbeInVpc" || fmt.Sprint(vpc[2]) != "AWS::NoValue" ||
		fmt.Sprint(vpc[1]) != "map[SecurityGroupIds:ProbeSecurityGroupIds SubnetIds:ProbeSubnetIds]" {
		t.Errorf("VpcConfig %v, want !If [ProbeInVpc, {SubnetIds, SecurityGroupIds}, !Ref AWS::NoValue]", fn["VpcConfig"])
	}
	role := props(t, tmpl, "ProbeFunctionRole")
	if role["Policies"] != nil {
		t.Errorf("probe role has inline policies %v", role["Policies"])
	}
	arns := asList(role["ManagedPolicyArns"])
	if len(arns) != 2 || !strings.HasSuffix(fmt.Sprint(arns[0]), "service-role/AWSLambdaBasicExecutionRole") {
		t.Fatalf("probe role managed policies %v", arns)
	}
	cond := asList(arns[1])
	if len(cond) != 3 || cond[0] != "ProbeInVpc" || !strings.HasSuffix(fmt.Sprint(cond[1]), "service-role/AWSLambdaVPCAccessExecutionRole") ||
		fmt.Sprint(cond[2]) != "AWS::NoValue" {
		t.Errorf("the VPC access policy is not conditional on ProbeInVpc: %v", arns[1])
	}
	params := tmpl["Parameters"].(map[string]any)
	for _, p := range []string{"ProbeSubnetIds", "ProbeSecurityGroupIds"} {
		pm := params[p].(map[string]any)
		if pm["Type"] != "CommaDelimitedList" || pm["Default"] != "" {
			t.Errorf("%s: %v, want an optional CommaDelimitedList", p, pm)
		}
	}
	if _, ok := tmpl["Conditions"].(map[string]any)["ProbeInVpc"]; !ok {
		t.Error("no ProbeInVpc condition")
	}
	rules, _ := tmpl["Rules"].(map[string]any)
	if len(rules) < 2 {
		t.Errorf("rules %v: want the two VPC parameters required together", rules)
	}
}
