//go:build integration

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/testkit"
)

// make invoke-<fn> against moto (behind the AWS model check): the handler
// runs, and its 4xx answers fail make with the CLI's exit code 3 and the
// API's error. (Moved here from TestMakeInvokeRunsAndFails when invoke
// began checking the endpoint and table before running a handler.)
func TestMakeInvokeAnswers4xx(t *testing.T) {
	rig := testkit.StartRigT(t)
	ctx := context.Background()
	t.Setenv("AWS_ENDPOINT_URL", rig.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := localenv.Up(ctx, awsCfg, filepath.Join("..", "..", localenv.DocumentFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		event, out string
	}{
		{"events/onboard-post-malformed.json", "400 ValidationError: body: is not valid JSON"},
		{"events/onboard-get-node-malformed.json", "400 ValidationError: instanceId: must match"},
	} {
		cmd := exec.Command("make", "-C", "../..", "--no-print-directory", "invoke-onboard", "EVENT="+tc.event)
		cmd.Env = append(os.Environ(), "CERTFERRY_TABLE="+env.Config.Table, "CERTFERRY_DOCUMENT="+env.Config.Document)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.out) || !strings.Contains(string(out), "Error 3") {
			t.Errorf("make invoke-onboard EVENT=%s: %v (want exit 3 with %q)\n%s", tc.event, err, tc.out, out)
		}
	}
}
