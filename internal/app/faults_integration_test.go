//go:build integration

package app

// Faults: the pipeline's AWS calls go through testkit.FaultProxy, which
// answers chosen operations with throttling (429 ThrottlingException) or
// server errors (503) before they reach moto. The operations are not listed
// by hand: a clean onboarding through the proxy records every call the
// pipeline makes, and each of them is then failed in turn.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/testkit"
)

// faultyHandler is the onboarding API on SDK clients aimed at endpoint,
// with the production retry count (5 attempts) but short backoffs, and a
// 1-second claim lease on the pipeline clock now (nil: time.Now), which a
// test moves on past the lease instead of sleeping.
func faultyHandler(r *rig, endpoint string, now func() time.Time) *api.Handler {
	cfg := aimedAt(r, endpoint)
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.MaxBackoff = 20 * time.Millisecond
			o.RateLimiter = ratelimit.None
		})
	}
	parts := NewParts(cfg, r.cfg)
	parts.ACM.ExportBackoff = 10 * time.Millisecond
	p := pipeline.New(parts.ACM, parts.Bundles, parts.Inventory, parts.Fleet, pipeline.Config{Region: "us-east-1", Lease: time.Second, Now: now})
	return api.NewHandler(p, parts.Inventory)
}

// aimedAt copies the rig's SDK config to another endpoint. The config's
// sources are dropped: they hold the rig's endpoint, which service clients
// would otherwise prefer to BaseEndpoint.
func aimedAt(r *rig, endpoint string) aws.Config {
	cfg := r.aws.Copy()
	cfg.BaseEndpoint = aws.String(endpoint)
	cfg.ConfigSources = nil
	return cfg
}

// postTo onboards through h (a handler on the fault proxy) as r.post does
// through the rig's own handler.
func (r *rig) postTo(h apiHandler, body string) (int, map[string]any) {
	r.t.Helper()
	return r.callOn(h, "POST", "/certificates", "", body)
}

// clock is a pipeline clock a test moves on instead of sleeping.
type clock struct {
	mu    sync.Mutex
	ahead time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.ahead)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ahead += d
}

// faultStack is one stack for a fault suite: moto reset once, the stack's
// resources, two tagged instances. Its subtests share it (faultCase), each
// with a name and a certificate of its own, so none sees or counts
// another's writes; sharedTotals then checks the whole stack.
func faultStack(t *testing.T) *rig {
	r := newRig(t, moto)
	r.launch(2, map[string]string{"env": "prod"})
	return r
}

// faultCase is one subtest on the shared stack: the rig as t sees it, a
// fault proxy of its own in front of moto, and a new exportable
// certificate.
func faultCase(t *testing.T, shared *rig) (*rig, *testkit.FaultProxy, string) {
	r := *shared
	r.t = t
	proxy, err := testkit.NewFaultProxy(moto.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	return &r, proxy, r.exportable("shop.example.com")
}

// caseName is subtest i's certificate name on a shared stack.
func caseName(i int) string { return fmt.Sprintf("shop-web-%d", i) }

// sharedTotals checks a shared stack after its subtests: every name the
// suite onboarded holds one secret version and one command, and nothing
// else was written (no version or command outside those names).
func sharedTotals(t *testing.T, r *rig, names int) {
	t.Helper()
	if t.Failed() {
		return
	}
	r.t = t
	if c := r.counts(); c.secrets != names || c.versions != names || c.commands != names {
		t.Fatalf("stack %+v after the suite: want %d secrets, versions and commands, one per name", c, names)
	}
}

// pipelineOps onboards once (name ops-probe) through a clean proxy on the
// shared stack and returns every operation the pipeline called.
func pipelineOps(t *testing.T, shared *rig) []string {
	r, proxy, arn := faultCase(t, shared)
	h := faultyHandler(r, proxy.URL, nil)
	proxy.Calls()
	if status, ans := r.postTo(h, onboardBody(arn, "ops-probe")); status != 202 {
		t.Fatalf("clean onboarding: %d %v", status, ans)
	}
	ops := testkit.Ops(proxy.Calls())
	for _, want := range []string{"CertificateManager.DescribeCertificate", "CertificateManager.ExportCertificate",
		"secretsmanager.GetRandomPassword", "secretsmanager.CreateSecret", "AmazonSSM.SendCommand",
		"DynamoDB_20120810.TransactWriteItems"} {
		if !slices.Contains(ops, want) {
			t.Fatalf("the pipeline's calls %v lack %s", ops, want)
		}
	}
	return ops
}

// consistent asserts the stack holds exactly one secret version, one
// command, and a committed inventory: META active without a claim, one
// DEPLOY item for that command (tag targets: nodes appear as they report).
func consistent(t *testing.T, r *rig, name string, nodes int) {
	t.Helper()
	c := r.counts()
	if c.versions != 1 || c.commands != 1 {
		t.Fatalf("stack %+v: want exactly one secret version and one command", c)
	}
	committed(t, r, name, r.commands()[0].ID, nodes)
}

// consistentName is consistent for one name of a shared stack: exactly
// one secret version and one command for name, and a committed inventory.
func consistentName(t *testing.T, r *rig, name string, nodes int) {
	t.Helper()
	v, cmds := r.versionsOf(name), r.commandsOf(name)
	if v != 1 || len(cmds) != 1 {
		t.Fatalf("%s: %d secret versions and %d commands, want exactly one of each", name, v, len(cmds))
	}
	committed(t, r, name, cmds[0].ID, nodes)
}

// committed asserts name's inventory: META active without a claim, one
// DEPLOY item for command.
func committed(t *testing.T, r *rig, name, command string, nodes int) {
	t.Helper()
	d, err := inventory.NewStore(r.ddb, r.cfg.Table).Describe(r.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if d.Cert == nil || d.Cert.Status != inventory.StatusActive || d.Cert.Claim != nil || len(d.Deployments) != 1 ||
		d.Deployments[0].CommandID != command || len(d.Nodes) != nodes || d.Cert.LastCommandID != d.Deployments[0].CommandID {
		t.Fatalf("inventory not consistent: %+v", d)
	}
}

// versionsOf counts the versions of name's secret (0: no secret).
func (r *rig) versionsOf(name string) int {
	r.t.Helper()
	for p := secretsmanager.NewListSecretsPaginator(r.sm, &secretsmanager.ListSecretsInput{}); p.HasMorePages(); {
		page, err := p.NextPage(r.ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, sec := range page.SecretList {
			if aws.ToString(sec.Name) != r.cfg.SecretPrefix+name {
				continue
			}
			v, err := r.sm.ListSecretVersionIds(r.ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: sec.ARN, IncludeDeprecated: aws.Bool(true)})
			if err != nil {
				r.t.Fatal(err)
			}
			return len(v.Versions)
		}
	}
	return 0
}

// commandsOf lists the commands sent for name (CertName), every page.
func (r *rig) commandsOf(name string) []ssmCommand {
	r.t.Helper()
	var out []ssmCommand
	for p := ssm.NewListCommandsPaginator(r.ssm, &ssm.ListCommandsInput{}); p.HasMorePages(); {
		page, err := p.NextPage(r.ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, c := range page.Commands {
			if slices.Contains(c.Parameters["CertName"], name) {
				out = append(out, ssmCommand{ID: aws.ToString(c.CommandId), Document: aws.ToString(c.DocumentName), Instances: c.InstanceIds, Parameters: c.Parameters})
			}
		}
	}
	return out
}

// Throttling and 5xx on each call: the SDK retries with backoff and the
// onboarding succeeds once, with nothing duplicated.
func TestFaultsTransient(t *testing.T) {
	t.Parallel()
	shared := faultStack(t)
	names := 1 // pipelineOps'
	for _, op := range pipelineOps(t, shared) {
		for _, fault := range []testkit.Fault{testkit.Throttle, testkit.Unavailable} {
			name := caseName(names)
			names++
			t.Run(op+"/"+fault.Code, func(t *testing.T) {
				r, proxy, arn := faultCase(t, shared)
				fault.Times = 2
				proxy.Inject(op, fault)
				if status, ans := r.postTo(faultyHandler(r, proxy.URL, nil), onboardBody(arn, name)); status != 202 {
					t.Fatalf("%d %v: two %s answers should be retried away", status, ans, fault.Code)
				}
				consistentName(t, r, name, 0)
			})
		}
	}
	sharedTotals(t, shared, names)
}

// A call that keeps failing: the request fails cleanly (502, no internals
// in the answer), and the retry after the fault ends completes the
// onboarding with exactly one secret version and one command.
func TestFaultsPersistentThenRetry(t *testing.T) {
	t.Parallel()
	shared := faultStack(t)
	names := 1 // pipelineOps'
	for _, op := range pipelineOps(t, shared) {
		name := caseName(names)
		names++
		t.Run(op, func(t *testing.T) {
			r, proxy, arn := faultCase(t, shared)
			var clk clock
			h := faultyHandler(r, proxy.URL, clk.now)
			proxy.Inject(op, testkit.Fault{Status: 503, Code: "ServiceUnavailable", Times: -1})
			status, ans := r.postTo(h, onboardBody(arn, name))
			switch status {
			case 502:
				e, _ := ans["error"].(map[string]any)
				if e["code"] != "DependencyFailure" || strings.Contains(e["message"].(string), "injected") {
					t.Fatalf("failure answer %v", ans)
				}
			case 202:
				// The call was not needed for success (e.g. a best-effort step).
			default:
				t.Fatalf("%d %v", status, ans)
			}
			if v, cmds := r.versionsOf(name), r.commandsOf(name); v > 1 || len(cmds) > 1 {
				t.Fatalf("the failed run duplicated: %d secret versions, %d commands", v, len(cmds))
			}
			proxy.Clear()
			clk.advance(1100 * time.Millisecond) // a claim left by a failed release lapses (1 s lease)
			if status, ans := r.postTo(h, onboardBody(arn, name)); status != 202 {
				t.Fatalf("retry: %d %v", status, ans)
			}
			consistentName(t, r, name, 0)
		})
	}
	sharedTotals(t, shared, names)
}

// The emulator unreachable: a clear error, nothing written.
func TestFaultsUnreachable(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	r.launch(2, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	dead, err := testkit.NewFaultProxy(moto.URL)
	if err != nil {
		t.Fatal(err)
	}
	deadURL := dead.URL
	dead.Close() // nothing listens there any more
	before := r.counts()
	status, ans := r.postTo(faultyHandler(r, deadURL, nil), onboardBody(arn, "shop-web"))
	if e, _ := ans["error"].(map[string]any); status != 502 || e["code"] != "DependencyFailure" {
		t.Fatalf("%d %v", status, ans)
	}
	if got := r.counts(); got != before {
		t.Fatalf("an unreachable AWS wrote something: %+v -> %+v", before, got)
	}
	cfg := aimedAt(r, deadURL)
	cfg.RetryMaxAttempts = 2
	_, err = Renewal(cfg, r.cfg, Options{}).Handle(r.ctx, mustReadEvent(t, "renewal-available-renewal.json", arn))
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), arn) {
		t.Fatalf("renewal with AWS unreachable: %v, want an error naming the certificate and the cause", err)
	}
}

func mustReadEvent(t *testing.T, file, arn string) json.RawMessage {
	t.Helper()
	rr := &renewalRig{rig: &rig{t: t}}
	return rr.event(file, arn, "")
}
