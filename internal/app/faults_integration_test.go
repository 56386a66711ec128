//go:build integration

package app

// Faults: the pipeline's AWS calls go through testkit.FaultProxy, which
// answers chosen operations with throttling (429 ThrottlingException) or
// server errors (503) before they reach moto. The operations are not listed
// by hand: a clean onboarding through the proxy records every call the
// pipeline makes, and each of them is then failed in turn.

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/testkit"
)

// faultyHandler is the onboarding API on SDK clients aimed at endpoint,
// with the production retry count (5 attempts) but short backoffs, and a
// 1-second claim lease so a retry after a crash-like failure need not wait.
func faultyHandler(r *rig, endpoint string) *api.Handler {
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
	p := pipeline.New(parts.ACM, parts.Bundles, parts.Inventory, parts.Fleet, pipeline.Config{Region: "us-east-1", Lease: time.Second})
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

// faultSetup is a fresh rig with a fault proxy in front of moto, two
// tagged instances and an exportable certificate.
func faultSetup(t *testing.T) (*rig, *testkit.FaultProxy, string) {
	r := newRig(t, moto)
	proxy, err := testkit.NewFaultProxy(moto.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	r.launch(2, map[string]string{"env": "prod"})
	return r, proxy, r.exportable("shop.example.com")
}

// pipelineOps onboards once through a clean proxy and returns every
// operation the pipeline called.
func pipelineOps(t *testing.T) []string {
	r, proxy, arn := faultSetup(t)
	h := faultyHandler(r, proxy.URL)
	proxy.Calls()
	if status, ans := r.postTo(h, onboardBody(arn, "shop-web")); status != 202 {
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
	d, err := inventory.NewStore(r.ddb, r.cfg.Table).Describe(r.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if d.Cert == nil || d.Cert.Status != inventory.StatusActive || d.Cert.Claim != nil || len(d.Deployments) != 1 ||
		d.Deployments[0].CommandID != r.commands()[0].ID || len(d.Nodes) != nodes || d.Cert.LastCommandID != d.Deployments[0].CommandID {
		t.Fatalf("inventory not consistent: %+v", d)
	}
}

// Throttling and 5xx on each call: the SDK retries with backoff and the
// onboarding succeeds once, with nothing duplicated.
func TestFaultsTransient(t *testing.T) {
	for _, op := range pipelineOps(t) {
		for _, fault := range []testkit.Fault{testkit.Throttle, testkit.Unavailable} {
			t.Run(op+"/"+fault.Code, func(t *testing.T) {
				r, proxy, arn := faultSetup(t)
				fault.Times = 2
				proxy.Inject(op, fault)
				if status, ans := r.postTo(faultyHandler(r, proxy.URL), onboardBody(arn, "shop-web")); status != 202 {
					t.Fatalf("%d %v: two %s answers should be retried away", status, ans, fault.Code)
				}
				consistent(t, r, "shop-web", 0)
			})
		}
	}
}

// A call that keeps failing: the request fails cleanly (502, no internals
// in the answer), and the retry after the fault ends completes the
// onboarding with exactly one secret version and one command.
func TestFaultsPersistentThenRetry(t *testing.T) {
	for _, op := range pipelineOps(t) {
		t.Run(op, func(t *testing.T) {
			r, proxy, arn := faultSetup(t)
			h := faultyHandler(r, proxy.URL)
			proxy.Inject(op, testkit.Fault{Status: 503, Code: "ServiceUnavailable", Times: -1})
			status, ans := r.postTo(h, onboardBody(arn, "shop-web"))
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
			if c := r.counts(); c.versions > 1 || c.commands > 1 {
				t.Fatalf("the failed run duplicated: %+v", c)
			}
			proxy.Clear()
			time.Sleep(1100 * time.Millisecond) // a claim left by a failed release lapses
			if status, ans := r.postTo(h, onboardBody(arn, "shop-web")); status != 202 {
				t.Fatalf("retry: %d %v", status, ans)
			}
			consistent(t, r, "shop-web", 0)
		})
	}
}

// The emulator unreachable: a clear error, nothing written.
func TestFaultsUnreachable(t *testing.T) {
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
	status, ans := r.postTo(faultyHandler(r, deadURL), onboardBody(arn, "shop-web"))
	if e, _ := ans["error"].(map[string]any); status != 502 || e["code"] != "DependencyFailure" {
		t.Fatalf("%d %v", status, ans)
	}
	if got := r.counts(); got != before {
		t.Fatalf("an unreachable AWS wrote something: %+v -> %+v", before, got)
	}
	cfg := aimedAt(r, deadURL)
	cfg.RetryMaxAttempts = 2
	_, err = Renewal(cfg, r.cfg).Handle(r.ctx, mustReadEvent(t, "renewal-available-renewal.json", arn))
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), arn) {
		t.Fatalf("renewal with AWS unreachable: %v, want an error naming the certificate and the cause", err)
	}
}

func mustReadEvent(t *testing.T, file, arn string) json.RawMessage {
	t.Helper()
	rr := &renewalRig{rig: &rig{t: t}}
	return rr.event(file, arn, "")
}
