//go:build integration

package app

// The API answers within API Gateway's 29 s whatever AWS does: one deadline
// for the whole request (25 s in production, derived from the Lambda
// invocation's deadline), every SDK retry and backoff and every
// ExportCertificate retry inside it, the claim released on the way out.
// The test gives the invocation a short deadline instead of sleeping 25 s.

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/testkit"
)

// hang holds every request for op until the client gives up (its context
// ends; the emulator never sees it). Once release is closed, requests pass.
func hang(op string, release <-chan struct{}) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
				next.ServeHTTP(w, r)
				return
			default:
			}
			if r.Header.Get("X-Amz-Target") != op {
				next.ServeHTTP(w, r)
				return
			}
			<-r.Context().Done()
		})
	}
}

// The cases wait for their deadline far more than they call moto: they
// share one stack (a name and a certificate each) and run in parallel.
func TestAPIAnswersWithinItsDeadline(t *testing.T) {
	t.Parallel() // beside TestOnboardPendingValidation's own moto, after the serial tests
	ops := []string{"CertificateManager.DescribeCertificate", "CertificateManager.ExportCertificate",
		"secretsmanager.CreateSecret", "AmazonSSM.SendCommand", "DynamoDB_20120810.TransactWriteItems"}
	shared := faultStack(t)
	names := 0
	t.Run("cases", func(t *testing.T) {
		for _, op := range ops {
			for _, mode := range []string{"keeps failing", "hangs"} {
				name := caseName(names)
				names++
				t.Run(op+"/"+mode, func(t *testing.T) {
					t.Parallel()
					deadlineCase(t, shared, op, mode, name)
				})
			}
		}
	})
	sharedTotals(t, shared, names)
}

// deadlineCase onboards name while op keeps failing or hangs, within a
// 9 s invocation deadline, then retries after the fault ends.
func deadlineCase(t *testing.T, shared *rig, op, mode, name string) {
	r, proxy, arn := faultCase(t, shared)
	release := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(release) }) }
	t.Cleanup(stop)
	if mode == "hangs" {
		proxy.Use(hang(op, release))
	} else {
		proxy.Inject(op, testkit.Fault{Status: 503, Code: "ServiceUnavailable", Times: -1})
	}
	// Production wiring and retry settings (5 attempts, the SDK's
	// backoff, 4 export attempts from 2 s): only the endpoint differs.
	cfg := aimedAt(r, proxy.URL)
	cfg.RetryMaxAttempts = 5
	h := Onboard(cfg, r.cfg, Options{})

	// The invocation's deadline, as Lambda gives it; the handler
	// keeps a reserve to answer and release its claim.
	ctx, cancel := context.WithTimeout(r.ctx, 9*time.Second)
	defer cancel()
	rc := *r
	rc.ctx = ctx
	status, ans := rc.callOn(h, "POST", "/certificates", "", onboardBody(arn, name))
	if ctx.Err() != nil {
		t.Fatalf("the handler answered %d after the invocation's deadline", status)
	}
	e, _ := ans["error"].(map[string]any)
	if (status != 502 && status != 503) || e == nil {
		t.Fatalf("%d %v, want 502 or 503 with the error contract", status, ans)
	}
	if v, cmds := r.versionsOf(name), r.commandsOf(name); v > 1 || len(cmds) > 1 {
		t.Fatalf("the failed run duplicated: %d secret versions, %d commands", v, len(cmds))
	}
	d, err := inventory.NewStore(r.ddb, r.cfg.Table).Describe(r.ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if d.Cert != nil && d.Cert.Claim != nil {
		t.Fatalf("claim left behind: %+v (the retry would be refused until it lapses)", d.Cert.Claim)
	}
	stop()
	proxy.Clear()
	if status, ans := r.postTo(h, onboardBody(arn, name)); status != 202 {
		t.Fatalf("retry: %d %v", status, ans)
	}
	consistentName(t, r, name, 0)
}
