//go:build integration

package app

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/testkit"
)

// A renewal awaiting approval is approved while a sweep that read it
// waiting covers a joining node: the approval wrote the rollout rolling
// and is about to claim the name for its wave when the sweep's
// ResendDeployed (META unchanged: the rollout is another item) claims it
// first. The sweep, holding the claim, sees the rollout moved on and sends
// nothing: no old certificate goes out once the rollout rolls. (The
// approval's wave lost the claim to the sweep and is left to the
// rollout's repair step: the engine does not retry it.)
func TestSweepWaitingRenewalApprovedMeanwhile(t *testing.T) {
	t.Parallel()
	r := newRolloutRig(t)
	ids := r.fleet(2)
	arn, renewed := r.stagedRenewal("shop-web", ids, func(sp *spec.Spec) {
		sp.Approval = spec.ApprovalRequired
		sp.Rollout = &spec.Rollout{Waves: []string{"1", "100%"}}
	})
	r.concludeStaged("shop-web", ids)
	r.handle(r.event("renewal-available-renewal.json", arn, ""))
	r.alerts()
	added := r.fleet(1)[0] // joins while the renewal waits
	meta := r.cert("shop-web")

	// The approver's AWS calls go through their own proxy: its claim
	// (TakeClaim's UpdateItem) waits until the sweep has sent.
	ap, err := testkit.NewFaultProxy(aws.ToString(r.aws.BaseEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ap.Close)
	acfg := r.aws.Copy()
	acfg.BaseEndpoint = aws.String(ap.URL)
	acfg.ConfigSources = nil
	approver := newParts(acfg, r.cfg, Options{Now: r.clock.Now, Scheduler: r.sched, SSM: ssm.NewFromConfig(acfg)})
	atClaim, sweepSent := make(chan struct{}), make(chan struct{})
	var claimOnce sync.Once
	ap.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Header.Get("X-Amz-Target") == "DynamoDB_20120810.UpdateItem" {
				body, _ := io.ReadAll(req.Body)
				req.Body = io.NopCloser(bytes.NewReader(body))
				if bytes.Contains(body, []byte("#claim")) {
					claimOnce.Do(func() { close(atClaim); <-sweepSent })
				}
			}
			next.ServeHTTP(w, req)
		})
	})
	var (
		approveErr error
		approved   rollout.Result
	)
	done := make(chan struct{})

	sweep, proxy := r.countedSweep()
	var resolveOnce, sendOnce sync.Once
	proxy.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			switch req.Header.Get("X-Amz-Target") {
			case "AmazonSSM.DescribeInstanceInformation": // the sweep read the name: approve now
				resolveOnce.Do(func() {
					go func() {
						defer close(done)
						approved, approveErr = approver.Rollouts.Approve(r.ctx, "shop-web", rollout.Caller{ARN: "arn:aws:iam::123456789012:user/ops"})
					}()
					<-atClaim
				})
			case "AmazonSSM.SendCommand":
				next.ServeHTTP(w, req)
				sendOnce.Do(func() { close(sweepSent) })
				return
			}
			next.ServeHTTP(w, req)
		})
	})
	nr := r.sweepOnce(sweep, "shop-web")
	sendOnce.Do(func() { close(sweepSent) })
	<-done
	ro := r.rollout("shop-web")
	var old []inventory.Deployment
	for _, d := range r.deployments("shop-web") {
		if d.Trigger == inventory.TriggerSweep && d.Serial == meta.Serial {
			old = append(old, d)
		}
	}
	t.Logf("approval: %+v, %v", approved, approveErr)
	// The approval is an approval even when the sweep's short send held
	// the name: its wave retries a lost claim race, or is left to the
	// repair step and the approver is told when (never an error that a
	// second approve would answer with "not awaiting approval").
	if approveErr != nil || approved.Phase != inventory.PhaseRolling {
		t.Fatalf("approve while a sweep held the name: %+v, %v; want the rollout rolling and no error", approved, approveErr)
	}
	if ro.Phase != inventory.PhaseRolling || len(old) != 0 || len(nr.Resent) != 0 || nr.Serial != renewed {
		t.Fatalf("rollout %s; the sweep (%+v) sent %s the old serial %s after the rollout went rolling: %+v", ro.Phase, nr, added, meta.Serial, old)
	}
}
