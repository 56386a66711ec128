//go:build integration

package main

import (
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
