package sweeper

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
)

// goneDeployer answers the sweep's resends as the pipeline does for
// instance ids SSM no longer manages: a chunk whose ids are all gone is
// ErrTargetsGone (nothing sent); ids gone among others are left out of
// the command and reported in the result's Dropped.
type goneDeployer struct {
	waitDeployer
	gone map[string]bool
	sent [][]string
}

func (f *goneDeployer) Resend(_ context.Context, name string, _ int64, ids []string, _ map[string]int, _ inventory.Trigger) (pipeline.Result, error) {
	var rest, dropped []string
	for _, id := range ids {
		if f.gone[id] {
			dropped = append(dropped, id)
		} else {
			rest = append(rest, id)
		}
	}
	if len(rest) == 0 {
		return pipeline.Result{}, fmt.Errorf("%w: %s: every id gone", pipeline.ErrTargetsGone, name)
	}
	f.sent = append(f.sent, rest)
	return pipeline.Result{CommandID: fmt.Sprintf("cmd-%d", len(f.sent)), Dropped: dropped}, nil
}

// A chunk of the sweep's resends SSM refuses for nodes gone since the
// sweep resolved them: the chunk's other nodes get their command (the
// pipeline drops the gone ids), a chunk whose nodes all left sends
// nothing, and the next chunks still go in the same delivery; the report
// lists only the nodes sent to.
func TestSweepResendGoesOnPastNodesGone(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const arn = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	info := certs.Info{ARN: arn, Serial: "0c", Type: "AMAZON_ISSUED", Status: "ISSUED", ValidationMethods: []string{"DNS"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(395 * day), RenewalEligibility: "ELIGIBLE"}
	var ids []string
	for i := range 110 {
		ids = append(ids, fmt.Sprintf("i-%03d", i))
	}
	gone := map[string]bool{ids[60]: true}
	for _, id := range ids[:50] { // the whole first chunk left
		gone[id] = true
	}
	st := &fakeStore{detail: inventory.Detail{Cert: &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: arn},
		Status: inventory.StatusActive, Serial: "0c", SecretVersionID: "v-0c", Version: 7, ExportedAt: now.Add(-day), NotAfter: now.Add(395 * day)}}}
	dep := &goneDeployer{gone: gone}
	pub := &fakePublisher{}
	s := New(st, &fakeACM{info: info}, dep, dep, fakeNodes{ids: ids}, fakeTracker{}, pub, metrics.New(io.Discard), Config{})
	s.now = func() time.Time { return now }
	rep, err := localSweep(s, st, pub, newFakeRuns(), &fakeSQS{maxReceive: 3}, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	nr := rep.Names[0]
	want := slices.Concat(ids[50:60], ids[61:])
	if nr.Error != "" || len(dep.sent) != 2 || !slices.Equal(slices.Concat(dep.sent...), want) || !slices.Equal(nr.Resent, want) {
		t.Fatalf("sent %v, report %+v; want the second and third chunks without the gone ids", dep.sent, nr)
	}
}
