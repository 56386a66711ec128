//go:build integration

package app

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// BenchmarkOnboard measures a whole onboarding through the real handler
// against moto_server (describe, passphrase, export, verify, PFX, secret,
// ListCommands, SendCommand, inventory transaction), each iteration a new
// name for the same certificate. Reports p50 and p99 latency. moto's own
// speed dominates; compare runs, not absolute numbers with AWS.
func BenchmarkOnboard(b *testing.B) {
	r := newRig(b, moto)
	r.launch(10, map[string]string{"env": "prod"})
	arn := r.exportable("bench.example.com")
	var lat []time.Duration
	i := 0
	for b.Loop() {
		i++
		start := time.Now()
		resp, err := r.handler.Handle(r.ctx, events.APIGatewayProxyRequest{
			HTTPMethod: "POST", Path: "/certificates", Resource: "/certificates", Body: onboardBody(arn, fmt.Sprintf("bench-%d", i)),
		})
		lat = append(lat, time.Since(start))
		if err != nil || resp.StatusCode != 202 {
			b.Fatalf("onboard: %v %d %s", err, resp.StatusCode, resp.Body)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
