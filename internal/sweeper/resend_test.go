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

// resendDeployer records the META versions the sweep's Resend calls plan
// on; when store is set a send commits to its META as
// inventory.Store.Commit does (version and last deployment move on).
type resendDeployer struct {
	fakeDeployer
	versions []int64
	ids      [][]string
	store    *fakeStore
}

func (f *resendDeployer) Resend(_ context.Context, _ string, version int64, ids []string, _ map[string]int, _ inventory.Trigger) (pipeline.Result, error) {
	if cur := f.store.detail.Cert; cur.Version != version {
		return pipeline.Result{}, fmt.Errorf("%w: version %d, now %d", pipeline.ErrBusy, version, cur.Version)
	}
	f.versions = append(f.versions, version)
	f.ids = append(f.ids, slices.Clone(ids))
	c := *f.store.detail.Cert
	c.Version += 3 // claim, send, commit
	c.LastDeploymentID = fmt.Sprintf("dep-%d", len(f.versions))
	f.store.detail.Cert = &c
	return pipeline.Result{CommandID: "cmd", DeploymentID: c.LastDeploymentID}, nil
}

// With no rollout, the sweep's Resend plans on the META version it read
// (two sweeps of one read, a duplicate delivery, send once: the pipeline
// refuses the second), and each further chunk of 50 on META as the last
// send committed it; when something else wrote META between them, the
// rest waits for the next sweep.
func TestSweepResendPlansOnTheMETAItRead(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const arn = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	info := certs.Info{ARN: arn, Serial: "0b", Type: "AMAZON_ISSUED", Status: "ISSUED", ValidationMethods: []string{"DNS"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(395 * day), RenewalEligibility: "ELIGIBLE"}
	var ids []string
	for i := range 60 {
		ids = append(ids, fmt.Sprintf("i-%03d", i))
	}
	for _, tc := range []struct {
		name     string
		meddle   bool // another run writes META after the first send
		versions []int64
		resent   int
	}{
		{"each chunk on the META the last committed", false, []int64{7, 10}, 60},
		{"META written by another run between them", true, []int64{7}, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{detail: inventory.Detail{
				Cert: &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: arn}, Status: inventory.StatusActive, Serial: "0b",
					SecretVersionID: "v-0b", Version: 7, ExportedAt: now.Add(-30 * day), NotAfter: now.Add(395 * day)}}}
			dep := &resendDeployer{store: st}
			var s *Sweeper
			if tc.meddle {
				dep2 := &meddler{resendDeployer: dep}
				s = New(st, &fakeACM{info: info}, dep2, &fakeDeployer{}, fakeNodes{ids: ids}, fakeTracker{}, &fakePublisher{}, metrics.New(io.Discard), Config{})
			} else {
				s = New(st, &fakeACM{info: info}, dep, &fakeDeployer{}, fakeNodes{ids: ids}, fakeTracker{}, &fakePublisher{}, metrics.New(io.Discard), Config{})
			}
			s.now = func() time.Time { return now }
			rep, err := localSweep(s, st, &fakePublisher{}, newFakeRuns(), &fakeSQS{maxReceive: 3}, "run-1")
			if err != nil {
				t.Fatal(err)
			}
			if nr := rep.Names[0]; !slices.Equal(dep.versions, tc.versions) || !slices.Equal(nr.Resent, ids[:tc.resent]) {
				t.Fatalf("sends at META versions %v (want %v), report %+v", dep.versions, tc.versions, nr)
			}
		})
	}
}

// meddler is a resendDeployer after whose send another run writes META.
type meddler struct{ *resendDeployer }

func (m *meddler) Resend(ctx context.Context, name string, version int64, ids []string, failures map[string]int, trigger inventory.Trigger) (pipeline.Result, error) {
	res, err := m.resendDeployer.Resend(ctx, name, version, ids, failures, trigger)
	c := *m.store.detail.Cert
	c.Version++
	c.LastDeploymentID = "dep-other"
	m.store.detail.Cert = &c
	return res, err
}
