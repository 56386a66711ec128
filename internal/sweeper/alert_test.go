package sweeper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/tracker"
)

// Hand-written fakes holding one name's state, with the narrow surfaces
// the sweep calls.
type fakeStore struct{ detail inventory.Detail }

func (f *fakeStore) ListCerts(context.Context) ([]inventory.Cert, error) {
	return []inventory.Cert{*f.detail.Cert}, nil
}
func (f *fakeStore) Describe(context.Context, string) (*inventory.Detail, error) {
	d := f.detail
	return &d, nil
}
func (f *fakeStore) GetNode(context.Context, string, string) (*inventory.Node, error) {
	return nil, nil
}
func (f *fakeStore) RecordReport(context.Context, inventory.CommandRef, *inventory.Node, inventory.Report) error {
	return errors.New("unexpected RecordReport")
}
func (f *fakeStore) GetDeployment(context.Context, string, string) (*inventory.Deployment, error) {
	return nil, errors.New("unexpected GetDeployment")
}

type fakeACM struct{ info certs.Info }

func (f *fakeACM) Describe(context.Context, string) (certs.Info, error) { return f.info, nil }

type fakeDeployer struct {
	sync    func() (pipeline.Result, error)
	synced  int
	checked int
	check   rollout.Result
}

func (f *fakeDeployer) Renew(context.Context, string, inventory.Trigger) (rollout.Result, error) {
	f.synced++
	if f.sync == nil {
		return rollout.Result{}, errors.New("unexpected Renew")
	}
	res, err := f.sync()
	return rollout.Result{Result: res}, err
}
func (f *fakeDeployer) Check(context.Context, string) (rollout.Result, error) {
	f.checked++
	return f.check, nil
}
func (f *fakeDeployer) Resend(context.Context, string, int64, []string, map[string]int, inventory.Trigger) (pipeline.Result, error) {
	return pipeline.Result{}, errors.New("unexpected Resend")
}
func (f *fakeDeployer) ResendDeployed(context.Context, string, int64, pipeline.WaitingRollout, []string, map[string]int, inventory.Trigger) (pipeline.Result, error) {
	return pipeline.Result{}, errors.New("unexpected ResendDeployed")
}

type fakeNodes struct{ ids []string }

func (f fakeNodes) Resolve(context.Context, []spec.Target) ([]string, error) { return f.ids, nil }

type fakeTracker struct{}

func (fakeTracker) Conclude(context.Context, string, *inventory.Deployment, bool, tracker.Outcome) (tracker.Outcome, error) {
	return tracker.Outcome{}, errors.New("unexpected Conclude")
}

type fakePublisher struct{ published []notify.Alert }

func (f *fakePublisher) Publish(_ context.Context, a notify.Alert) (string, error) {
	f.published = append(f.published, a)
	return fmt.Sprintf("msg-%d", len(f.published)), nil
}

// The sweep's alert on ACM's INELIGIBLE, end to end through the fan-out: none
// right after certferry exported the current serial (onboarding, a renewal
// the sweep deploys itself, one a run is deploying), one when ACM still
// says INELIGIBLE a day after certferry's export, when a renewal cannot be
// exported, and for imported certificates.
func TestSweepIneligibleAlert(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const arn = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	deployed := func(serial string, exportedAgo time.Duration, depAgo time.Duration) inventory.Detail {
		c := &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: arn}, Status: inventory.StatusActive, Serial: serial}
		if exportedAgo > 0 {
			c.ExportedAt = now.Add(-exportedAgo)
		}
		return inventory.Detail{
			Cert: c,
			Deployments: []inventory.Deployment{{ID: "d1", Serial: serial, CreatedAt: now.Add(-depAgo),
				Outcome: inventory.OutcomeSucceeded}},
			Nodes: []inventory.Node{{InstanceID: "i-0aaa", State: inventory.NodeInstalled, Serial: serial}},
		}
	}
	acmInfo := func(serial, typ string) certs.Info {
		return certs.Info{ARN: arn, Serial: serial, Type: typ, Status: "ISSUED", ValidationMethods: []string{"DNS"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(197 * day), RenewalEligibility: "INELIGIBLE"}
	}
	tests := []struct {
		name       string
		detail     inventory.Detail
		info       certs.Info
		sync       func() (pipeline.Result, error)
		wantAlert  bool
		wantInText []string
	}{
		{name: "onboarded a minute ago", detail: deployed("0c", time.Minute, time.Minute), info: acmInfo("0c", "AMAZON_ISSUED")},
		{name: "exported 23 hours ago", detail: deployed("0c", 23*time.Hour, 23*time.Hour), info: acmInfo("0c", "AMAZON_ISSUED")},
		{name: "exported two days ago", detail: deployed("0c", 2*day, 2*day), info: acmInfo("0c", "AMAZON_ISSUED"),
			wantAlert: true, wantInText: []string{"shop-web", "ACM reports renewal INELIGIBLE"}},
		{name: "item without exportedAt, deployed a minute ago", detail: deployed("0c", 0, time.Minute), info: acmInfo("0c", "PRIVATE")},
		{name: "item without exportedAt, deployed two days ago", detail: deployed("0c", 0, 2*day), info: acmInfo("0c", "PRIVATE"),
			wantAlert: true, wantInText: []string{"ACM reports renewal INELIGIBLE"}},
		{name: "renewal the sweep deploys", detail: deployed("0b", 60*day, 60*day), info: acmInfo("0c", "AMAZON_ISSUED"),
			sync: func() (pipeline.Result, error) { return pipeline.Result{Serial: "0c", CommandID: "cmd-1"}, nil }},
		{name: "renewal another run is deploying", detail: deployed("0b", 60*day, 60*day), info: acmInfo("0c", "AMAZON_ISSUED"),
			sync: func() (pipeline.Result, error) {
				return pipeline.Result{}, fmt.Errorf("%w: shop-web", pipeline.ErrBusy)
			}},
		{name: "renewal that cannot be exported", detail: deployed("0b", 60*day, 60*day), info: acmInfo("0c", "AMAZON_ISSUED"),
			sync: func() (pipeline.Result, error) {
				return pipeline.Result{}, fmt.Errorf("%w: export disabled", certs.ErrNotExportable)
			},
			wantAlert: true, wantInText: []string{"ACM reports renewal INELIGIBLE", "ACM holds serial 0c but it cannot be deployed"}},
		{name: "renewal whose instance ids all left SSM", detail: deployed("0b", 60*day, 60*day), info: acmInfo("0c", "AMAZON_ISSUED"),
			sync: func() (pipeline.Result, error) {
				return pipeline.Result{}, fmt.Errorf("%w: shop-web: i-0aaa no longer managed by SSM", pipeline.ErrTargetsGone)
			},
			wantAlert: true, wantInText: []string{"ACM holds serial 0c but it cannot be deployed", "i-0aaa no longer managed by SSM"}},
		{name: "imported, just exported", detail: deployed("0c", time.Minute, time.Minute), info: acmInfo("0c", "IMPORTED"),
			wantAlert: true, wantInText: []string{"ACM does not renew imported certificates"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub := &fakePublisher{}
			dep := &fakeDeployer{sync: tc.sync}
			st := &fakeStore{detail: tc.detail}
			s := New(st, &fakeACM{info: tc.info}, dep, dep, fakeNodes{ids: []string{"i-0aaa"}},
				fakeTracker{}, pub, metrics.New(io.Discard), Config{})
			s.now = func() time.Time { return now }
			rep, err := localSweep(s, st, pub, newFakeRuns(), &fakeSQS{maxReceive: 3}, "run-1")
			if err != nil {
				t.Fatalf("Sweep: %v (%+v)", err, rep)
			}
			if tc.sync != nil && dep.synced != 1 {
				t.Fatalf("Sync called %d times, want once", dep.synced)
			}
			if got := len(pub.published) == 1; got != tc.wantAlert || len(pub.published) > 1 {
				t.Fatalf("published %d alerts (risks %q), want alert %v", len(pub.published), rep.Names[0].Risks, tc.wantAlert)
			}
			if !tc.wantAlert {
				if len(rep.Names[0].Risks) != 0 || rep.AlertID != "" {
					t.Fatalf("report %+v: want no risk", rep.Names[0])
				}
				return
			}
			text := pub.published[0].Text()
			for _, want := range tc.wantInText {
				if !strings.Contains(text, want) {
					t.Errorf("alert lacks %q:\n%s", want, text)
				}
			}
		})
	}
}

// A name whose rollout is not finished: the sweep never resends to its
// nodes (even ones on the old serial); it looks at the rollout again
// (Check), and a halted rollout within the safety margin of the old
// certificate's expiry is a risk, with no continuation.
func TestSweepLeavesRolloutNodesToTheRollout(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const arn = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	detail := func(r inventory.Rollout) inventory.Detail {
		return inventory.Detail{
			Cert: &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: arn}, Status: inventory.StatusActive, Serial: "0c",
				ExportedAt: now.Add(-time.Hour)},
			Nodes: []inventory.Node{{InstanceID: "i-0aaa", State: inventory.NodeFailed, Serial: "0b", DeploymentID: "d1"},
				{InstanceID: "i-0bbb", State: inventory.NodeInstalled, Serial: "0b"}},
			Rollout: &r,
		}
	}
	info := certs.Info{ARN: arn, Serial: "0c", Type: "PRIVATE", Status: "ISSUED", ValidationMethods: []string{"DNS"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * day), RenewalEligibility: "ELIGIBLE"}
	base := inventory.Rollout{ID: "r1", Name: "shop-web", Serial: "0c", Waves: []int{1, 2}, Nodes: []string{"i-0aaa", "i-0bbb"}, Wave: 1,
		OldNotAfter: now.Add(5 * day), GoBy: now.Add(-2 * day), HaltedAt: now.Add(-3 * day)}
	tests := []struct {
		name     string
		phase    inventory.RolloutPhase
		goBy     time.Time
		checks   int
		wantRisk bool
	}{
		{"rolling", inventory.PhaseRolling, base.GoBy, 1, false},
		{"paused", inventory.PhasePaused, base.GoBy, 1, false},
		{"waiting", inventory.PhaseWaitingWindow, base.GoBy, 1, false},
		{"halted within the margin", inventory.PhaseHalted, base.GoBy, 0, true},
		{"halted before the margin", inventory.PhaseHalted, now.Add(day), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := base
			r.Phase, r.GoBy = tc.phase, tc.goBy
			pub, dep := &fakePublisher{}, &fakeDeployer{check: rollout.Result{RolloutID: "r1", Phase: tc.phase, Wave: 1, Waves: 2}}
			st := &fakeStore{detail: detail(r)}
			s := New(st, &fakeACM{info: info}, dep, dep, fakeNodes{ids: []string{"i-0aaa", "i-0bbb"}},
				fakeTracker{}, pub, metrics.New(io.Discard), Config{})
			s.now = func() time.Time { return now }
			rep, err := localSweep(s, st, pub, newFakeRuns(), &fakeSQS{maxReceive: 3}, "run-1")
			if err != nil { // fakeDeployer.Resend fails: no resend happened
				t.Fatal(err)
			}
			nr := rep.Names[0]
			if dep.checked != tc.checks || len(nr.Resent) != 0 || !strings.HasPrefix(nr.Rollout, string(tc.phase)) {
				t.Fatalf("checks %d, report %+v", dep.checked, nr)
			}
			text := ""
			if len(pub.published) == 1 {
				text = pub.published[0].Text()
			}
			if got := strings.Contains(text, "halted at wave 1 of 2 since 2026-11-20T12:00:00Z; 2 node(s) still on the old certificate expiring 2026-11-28T12:00:00Z"); got != tc.wantRisk {
				t.Fatalf("risk in the alert %v, want %v:\n%s", got, tc.wantRisk, text)
			}
		})
	}
}
