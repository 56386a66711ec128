//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/certferry/certferry/internal/cli"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/testkit"
)

// localStack starts a rig (moto behind the AWS model check), runs `local
// up` on it and sets the environment `local up` prints, as an operator
// would before using the CLI without -api.
func localStack(t *testing.T) aws.Config {
	t.Helper()
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
	t.Setenv(config.EnvTable, env.Config.Table)
	t.Setenv(config.EnvDocument, env.Config.Document)
	t.Setenv(config.EnvSecretPrefix, env.Config.SecretPrefix)
	return awsCfg
}

// verbs runs certferry's verbs in this process: cf answers what a verb
// printed and its error, must what it printed, failing the test on an
// error.
func verbs(ctx context.Context, t *testing.T) (cf func(args ...string) (string, error), must func(args ...string) string) {
	cf = func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(ctx, args, &out, &errOut)
		return out.String(), err
	}
	must = func(args ...string) string {
		t.Helper()
		out, err := cf(args...)
		if err != nil {
			t.Fatalf("certferry %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	return cf, must
}

// The CLI's verbs end to end, as an operator runs them without -api: the
// API handler in the process against moto (behind the AWS model check),
// configured from the environment `certferry local up` prints.
func TestCLIVerbsOnMoto(t *testing.T) {
	ctx := context.Background()
	awsCfg := localStack(t)
	ids, err := localenv.LaunchInstances(ctx, awsCfg, 2, map[string]string{"env": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	arn, err := localenv.RequestExportable(ctx, awsCfg, "shop.example.com")
	if err != nil {
		t.Fatal(err)
	}
	cf, must := verbs(ctx, t)

	out := must("onboard", "--name", "shop-web", "--arn", arn, "--instance", ids[0]+","+ids[1], "--reload", "nginx", "--server-name", "shop.example.com")
	var onboarded struct{ CommandID string }
	if err := json.Unmarshal([]byte(out), &onboarded); err != nil || onboarded.CommandID == "" {
		t.Fatalf("onboard printed %q", out)
	}
	// Both targeted nodes are listed, pending, with the command they wait for.
	out = must("status", "shop-web")
	for _, id := range ids {
		if !strings.Contains(out, id) || !strings.Contains(out, "pending") || !strings.Contains(out, onboarded.CommandID) {
			t.Fatalf("status shop-web lacks %s pending on %s:\n%s", id, onboarded.CommandID, out)
		}
	}
	if out = must("status"); !strings.Contains(out, "shop-web  shop.example.com") {
		t.Fatalf("status:\n%s", out)
	}
	if out = must("get", "shop-web"); !strings.Contains(out, "Reload:       nginx") || !strings.Contains(out, "InstanceIds="+ids[0]+","+ids[1]) {
		t.Fatalf("get:\n%s", out)
	}
	out = must("status", "--node", ids[0], "-o", "json")
	var node struct {
		Certificates []struct{ Name, State, LastCommandID string }
	}
	if err := json.Unmarshal([]byte(out), &node); err != nil || len(node.Certificates) != 1 || node.Certificates[0].LastCommandID != onboarded.CommandID {
		t.Fatalf("status --node: %q", out)
	}

	out = must("redeploy", "shop-web", "--instance", ids[1])
	var redeployed struct{ CommandID string }
	if err := json.Unmarshal([]byte(out), &redeployed); err != nil || redeployed.CommandID == "" || redeployed.CommandID == onboarded.CommandID {
		t.Fatalf("redeploy printed %q", out)
	}
	if out = must("status", "--node", ids[1]); !strings.Contains(out, redeployed.CommandID) {
		t.Fatalf("node %s after the redeploy:\n%s", ids[1], out)
	}
	if out = must("status", "--node", ids[0]); !strings.Contains(out, onboarded.CommandID) {
		t.Fatalf("node %s (not redeployed):\n%s", ids[0], out)
	}

	// Refusals tell: exit 3 with the API's message.
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"get", "nope"}, "404 NotFound: unknown certificate name: nope"},
		{[]string{"redeploy", "shop-web", "--instance", "i-0123456789abcdef0"}, "400 ValidationError: instanceIds[0]: i-0123456789abcdef0 is not a node of shop-web"},
		{[]string{"onboard", "--name", "Bad_Name", "--arn", arn, "--target", "tag:env=prod"}, "400 ValidationError: name"},
		{[]string{"status", "--node", "i-1"}, "400 ValidationError: instanceId"},
		// The in-process API checks the stop alarm in moto's CloudWatch,
		// as the Lambda does in the account's.
		{[]string{"onboard", "--name", "web-2", "--arn", arn, "--target", "tag:env=prod", "--stop-alarm", "shop-5xz"},
			`400 ValidationError: rollout.stopAlarm: CloudWatch alarm "shop-5xz" not found in us-east-1`},
	} {
		_, err := cf(tc.args...)
		if cli.ExitCode(err) != cli.ExitClient || !strings.Contains(fmt.Sprint(err), tc.msg) {
			t.Errorf("certferry %s: %v (exit %d), want exit 3 with %q", strings.Join(tc.args, " "), err, cli.ExitCode(err), tc.msg)
		}
	}

	out = must("delete", "shop-web", "--delete-secret")
	if !strings.Contains(out, `"recoveryWindowDays": 30`) || !strings.Contains(out, os.Getenv(config.EnvSecretPrefix)+"shop-web") {
		t.Fatalf("delete printed %q", out)
	}
	if out = must("status"); !strings.Contains(out, "no certificate onboarded yet") {
		t.Fatalf("status after delete:\n%s", out)
	}
}
