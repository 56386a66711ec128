//go:build integration

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/regions"
	"github.com/certferry/certferry/internal/testkit"
)

// stackTemplate is a certferry stack as far as `status --regions` reads
// it: a resource (a stack needs one) and the InventoryTableName output
// (template.yaml Outputs), naming the region's inventory table.
func stackTemplate(table string) string {
	return `{"AWSTemplateFormatVersion": "2010-09-09",
 "Resources": {"AlertTopic": {"Type": "AWS::SNS::Topic"}},
 "Outputs": {"InventoryTableName": {"Value": "` + table + `"}, "ApiUrl": {"Value": "https://example.invalid/v1"}}}`
}

// onboardedRegion creates the local resources in region, onboards name
// there through the real onboarding handler (ACM export, secret, SSM
// command to an EC2 instance, inventory), and creates the region's
// certferry stack whose output names that inventory.
func onboardedRegion(t *testing.T, ctx context.Context, base aws.Config, region, name, domain string) {
	t.Helper()
	cfg := base.Copy()
	cfg.Region = region
	env, err := localenv.Up(ctx, cfg, filepath.Join("..", "..", localenv.DocumentFile))
	if err != nil {
		t.Fatalf("local up in %s: %v", region, err)
	}
	ids, err := localenv.LaunchInstances(ctx, cfg, 1, map[string]string{"env": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	arn, err := localenv.RequestExportable(ctx, cfg, domain)
	if err != nil {
		t.Fatal(err)
	}
	h := app.Onboard(cfg, env.Config, app.Options{})
	var out bytes.Buffer
	e := Env{Stdout: &out, Connect: func(context.Context, string) (Caller, error) { return HandlerCaller(h), nil }, Now: time.Now}
	if err := RunOnboard(ctx, e, []string{"--name", name, "--arn", arn, "--instance", ids[0]}); err != nil {
		t.Fatalf("onboard %s in %s: %v\n%s", name, region, err, out.String())
	}
	cf := cloudformation.NewFromConfig(cfg)
	if _, err := cf.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("certferry"), TemplateBody: aws.String(stackTemplate(env.Config.Table))}); err != nil {
		t.Fatalf("create stack in %s: %v", region, err)
	}
	if err := cloudformation.NewStackCreateCompleteWaiter(cf).Wait(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("certferry")}, time.Minute); err != nil {
		t.Fatalf("stack in %s: %v", region, err)
	}
}

// regionsDoc is the part of `status --regions -o json` that does not
// change between runs (serials, ARNs, times do): the golden file's shape.
type regionsDoc struct {
	Certificates []struct {
		Account    string `json:"account"`
		Region     string `json:"region"`
		Name       string `json:"name"`
		DomainName string `json:"domainName"`
		Status     string `json:"status"`
		Nodes      []struct {
			State string `json:"state"`
		} `json:"nodes"`
		Deployments []struct {
			Trigger string `json:"trigger"`
		} `json:"deployments"`
	} `json:"certificates"`
	Regions []RegionSource `json:"regions"`
}

func stable(t *testing.T, raw []byte) string {
	t.Helper()
	var d regionsDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%v:\n%s", err, raw)
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out) + "\n"
}

// Issue 15: two stacks on one moto in two regions, aggregated by `status
// --regions`: each row carries the region whose stack and inventory it
// came from; with a role per account (moto's STS, which scopes each
// assumed session to the role's account) an account without the stacks
// says so in its rows and the exit code is 4; a DynamoDB throttled past
// the SDK's retries fails its region only.
func TestStatusRegionsOnMoto(t *testing.T) {
	ctx := context.Background()
	rig := testkit.StartRigT(t)
	t.Setenv("AWS_ENDPOINT_URL", rig.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	base, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"), awsconfig.WithRetryMaxAttempts(3))
	if err != nil {
		t.Fatal(err)
	}
	onboardedRegion(t, ctx, base, "us-east-1", "shop-web", "shop.example.com")
	onboardedRegion(t, ctx, base, "eu-west-1", "shop-eu", "shop.example.eu")

	run := func(t *testing.T, cfg aws.Config, capN int, args ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		e := RegionsEnv{Stdout: &out, Now: time.Now, Cap: capN,
			Connect: func(context.Context) (regions.Clients, error) { return regions.SDK{Config: cfg}, nil }}
		err := RunStatusRegions(ctx, e, args)
		return out.String(), err
	}

	t.Run("caller's account", func(t *testing.T) {
		out, err := run(t, base, 0, "--regions", "us-east-1,eu-west-1")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "ACCOUNT       REGION     NAME") {
			t.Fatalf("want a header and two rows:\n%s", out)
		}
		for i, want := range [][]string{{"123456789012", "us-east-1", "shop-web", "shop.example.com"}, {"123456789012", "eu-west-1", "shop-eu", "shop.example.eu"}} {
			f := strings.Fields(lines[i+1])
			if strings.Join(f[:4], " ") != strings.Join(want, " ") || f[len(f)-1] != "-" {
				t.Errorf("row %d = %q, want %v first and no error", i, lines[i+1], want)
			}
		}
		js, err := run(t, base, 0, "--regions", "us-east-1,eu-west-1", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "status-regions-moto.json", stable(t, []byte(js)))
	})

	t.Run("a role per account", func(t *testing.T) {
		js, err := run(t, base, 0, "--regions", "us-east-1,eu-west-1", "--role-arn", "arn:aws:iam::{account}:role/certferry-read",
			"--accounts", "123456789012,222222222222", "-o", "json")
		var re *RegionsError
		if !errors.As(err, &re) || re.Failed != 2 || ExitCode(err) != ExitServer {
			t.Fatalf("err = %v, want account 222222222222 failing in both regions, exit 4\n%s", err, js)
		}
		golden(t, "status-regions-moto-role.json", stable(t, []byte(js)))
	})

	t.Run("throttled past the SDK's retries", func(t *testing.T) {
		// Three attempts (the configuration's RetryMaxAttempts) of the
		// first region's Scan are throttled; one region at a time, so
		// they are all us-east-1's.
		rig.Proxy.Inject("DynamoDB_20120810.Scan", testkit.Fault{Status: testkit.Throttle.Status, Code: testkit.Throttle.Code, Times: 3})
		defer rig.Proxy.Clear()
		out, err := run(t, base, 1, "--regions", "us-east-1,eu-west-1")
		if ExitCode(err) != ExitServer {
			t.Fatalf("err = %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.Contains(lines[1], "us-east-1") || !strings.Contains(lines[1], "ThrottlingException") ||
			!strings.Contains(lines[1], "AWS throttled the calls after the SDK's retries") || !strings.Contains(lines[2], "shop-eu") {
			t.Fatalf("want us-east-1 throttled and eu-west-1 shown:\n%s", out)
		}
	})
}
