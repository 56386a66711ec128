package samtemplate

import (
	"fmt"
	"testing"
)

// actionsOf is every action a function's policies allow (its own
// statements and the managed policies it references), with the resources.
func actionsOf(tmpl map[string]any, function string) map[string]string {
	all := statements(tmpl)
	out := map[string]string{}
	addFrom := func(id string) {
		for _, s := range all[id] {
			for _, a := range asList(s["Action"]) {
				out[fmt.Sprint(a)] += fmt.Sprint(asList(s["Resource"]))
			}
		}
	}
	addFrom(function)
	props := tmpl["Resources"].(map[string]any)[function].(map[string]any)["Properties"].(map[string]any)
	for _, p := range asList(props["Policies"]) {
		if ref, ok := p.(string); ok {
			addFrom(ref)
		}
	}
	return out
}

// Waved rollouts: every function that starts or moves on a rollout
// resolves tag targets (ssm:DescribeInstanceInformation) and sends
// through the pipeline, with the stop alarm readable (metric and
// composite alarms); the tracker, which sends the next wave,
// has the pipeline's permissions and the installer's location; each may
// alert and send Renewal Waiting (a rollout's transitions).
func TestRolloutPermissions(t *testing.T) {
	_, tmpl := readTemplate(t)
	for _, fn := range []string{"OnboardFunction", "RenewalFunction", "TrackerFunction", "SweepWorkerFunction"} {
		acts := actionsOf(tmpl, fn)
		for _, a := range []string{"ssm:DescribeInstanceInformation", "ssm:SendCommand", "cloudwatch:DescribeAlarms", "secretsmanager:GetSecretValue",
			"sns:Publish", "events:PutEvents"} {
			if _, ok := acts[a]; !ok {
				t.Errorf("%s lacks %s", fn, a)
			}
		}
		// "*": DescribeAlarms returns composite alarms only to a permission
		// scoped to * ("DescribeAlarms", Amazon CloudWatch API Reference).
		if r := acts["cloudwatch:DescribeAlarms"]; r != "" && r != "[*]" {
			t.Errorf("%s: cloudwatch:DescribeAlarms on %s, want * (composite stop alarms)", fn, r)
		}
	}
	env := res(t, tmpl, "TrackerFunction")["Properties"].(map[string]any)["Environment"].(map[string]any)["Variables"].(map[string]any)
	for _, k := range []string{"CERTFERRY_INSTALLER_BUCKET", "CERTFERRY_INSTALLER_SHA256_LINUX_AMD64", "CERTFERRY_INSTALLER_SHA256_LINUX_ARM64",
		"CERTFERRY_INSTALLER_SHA256_WINDOWS_AMD64"} {
		if env[k] == nil {
			t.Errorf("tracker lacks %s (the next wave's commands carry the installer)", k)
		}
	}
}
