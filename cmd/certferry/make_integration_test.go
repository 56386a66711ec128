//go:build integration

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// make invoke-<fn> against moto (behind the AWS model check): the handler
// runs, and its 4xx answers fail make with the CLI's exit code 3 and the
// API's error. (Moved here from TestMakeInvokeRunsAndFails when invoke
// began checking the endpoint and table before running a handler.)
func TestMakeInvokeAnswers4xx(t *testing.T) {
	localStack(t)
	for _, tc := range []struct {
		event, out string
	}{
		{"events/onboard-post-malformed.json", "400 ValidationError: body: is not valid JSON"},
		{"events/onboard-get-node-malformed.json", "400 ValidationError: instanceId: must match"},
	} {
		cmd := exec.Command("make", "-C", "../..", "--no-print-directory", "invoke-onboard", "EVENT="+tc.event)
		cmd.Env = os.Environ() // localStack set the endpoint and CERTFERRY_*
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.out) || !strings.Contains(string(out), "Error 3") {
			t.Errorf("make invoke-onboard EVENT=%s: %v (want exit 3 with %q)\n%s", tc.event, err, tc.out, out)
		}
	}
}

// make invoke-<fn> runs the handler (it printed "Nothing to be done" and
// exited 0 while invoke-% was a pattern rule for a .PHONY target) and
// fails: here with nothing answering at AWS_ENDPOINT_URL (invoke checks the
// endpoint and the table before the handler runs, and says what to do);
// TestMakeInvokeAnswers4xx (integration tier) runs it against moto, where
// the handler's 4xx answers fail make with exit 3.
func TestMakeInvokeRunsAndFails(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is not installed (scripts/ensure-deps.sh)")
	}
	dry, err := exec.Command("make", "-C", "../..", "-n", "invoke-onboard", "EVENT=events/onboard-post.json").CombinedOutput()
	if err != nil || !strings.Contains(string(dry), "bin/certferry invoke  onboard events/onboard-post.json") {
		t.Fatalf("make -n invoke-onboard: %v\n%s", err, dry)
	}
	// make build and make demo stamp the version and commit.
	for _, target := range []string{"build", "demo"} {
		dry, err := exec.Command("make", "-C", "../..", "-n", target).CombinedOutput()
		if err != nil || !strings.Contains(string(dry), "-X main.version=") || !strings.Contains(string(dry), "-X main.commit=") {
			t.Errorf("make -n %s does not stamp the version: %v\n%s", target, err, dry)
		}
	}
	for _, tc := range []struct {
		args []string
		exit int
		out  string
	}{
		{[]string{"invoke-onboard"}, 2, "EVENT= is required"},
		{[]string{"invoke-onboard", "EVENT=events/onboard-post-malformed.json"}, 1, "nothing answers at http://127.0.0.1:1: start moto_server there"},
	} {
		cmd := exec.Command("make", append([]string{"-C", "../..", "--no-print-directory"}, tc.args...)...)
		cmd.Env = append(os.Environ(), "CERTFERRY_TABLE=certferry", "CERTFERRY_DOCUMENT=certferry-install",
			"AWS_ENDPOINT_URL=http://127.0.0.1:1", "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_REGION=us-east-1")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.out) {
			t.Errorf("make %v: %v (want failure with %q)\n%s", tc.args, err, tc.out, out)
			continue
		}
		// make reports the recipe's exit code: "Error <n>".
		if !strings.Contains(string(out), fmt.Sprintf("Error %d", tc.exit)) {
			t.Errorf("make %v did not fail with the command's exit code %d:\n%s", tc.args, tc.exit, out)
		}
	}
}
