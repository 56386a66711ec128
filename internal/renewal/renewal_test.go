package renewal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/schedule"
)

const arn = localenv.SampleARN // the ARN the events/ samples carry

// fake implements every dependency with function fields and records calls.
type fake struct {
	mu        sync.Mutex
	names     map[string][]string
	marks     map[string]inventory.EventState // id → state
	markErr   error
	syncFn    func(name string) (pipeline.Result, error)
	steps     int
	halted    []string
	synced    []string
	triggers  []inventory.Trigger
	info      certs.Info
	infoErr   error
	published []notify.Alert
	pubErr    error
	leases    []time.Time
	detail    map[string]*inventory.Detail
}

func newFake() *fake {
	return &fake{
		names: map[string][]string{arn: {"shop-web", "shop-admin"}},
		marks: map[string]inventory.EventState{},
		info: certs.Info{ARN: arn, DomainName: "shop.example.com", Status: "ISSUED", Type: "AMAZON_ISSUED", Serial: "0b",
			NotAfter: time.Date(2026, 12, 23, 0, 0, 0, 0, time.UTC), ValidationMethods: []string{"EMAIL"}, RenewalEligibility: "ELIGIBLE"},
		detail: map[string]*inventory.Detail{
			"shop-web": {Cert: &inventory.Cert{Serial: "0b"}, Nodes: []inventory.Node{
				{InstanceID: "i-0aaa", State: "installed", Serial: "0b"}, {InstanceID: "mi-0bbb", State: "failed", Error: "handshake served another certificate"}}},
			"shop-admin": {Cert: &inventory.Cert{Serial: "0b"}, Nodes: []inventory.Node{{InstanceID: "i-0ccc", State: "installed", Serial: "0b"}}},
		},
	}
}

func (f *fake) MarkEvent(_ context.Context, id, _ string, until time.Time, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leases = append(f.leases, until)
	if f.markErr != nil {
		return f.markErr
	}
	if _, ok := f.marks[id]; ok {
		return inventory.ErrConflict
	}
	f.marks[id] = inventory.EventProcessing
	return nil
}
func (f *fake) GetEvent(_ context.Context, id string) (*inventory.EventMark, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.marks[id]
	if !ok {
		return nil, nil
	}
	return &inventory.EventMark{EventID: id, State: st}, nil
}
func (f *fake) FinishEvent(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.marks[id] = inventory.EventDone
	return nil
}
func (f *fake) ReleaseEvent(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.marks[id] == inventory.EventProcessing {
		delete(f.marks, id)
	}
	return nil
}
func (f *fake) NamesByARN(_ context.Context, a string) ([]string, error) { return f.names[a], nil }
func (f *fake) Describe(_ context.Context, name string) (*inventory.Detail, error) {
	if d, ok := f.detail[name]; ok {
		return d, nil
	}
	return &inventory.Detail{}, nil
}
func (f *fake) Sync(_ context.Context, name string, trigger inventory.Trigger) (pipeline.Result, error) {
	f.mu.Lock()
	f.synced = append(f.synced, name)
	f.triggers = append(f.triggers, trigger)
	f.mu.Unlock()
	if f.syncFn != nil {
		return f.syncFn(name)
	}
	return pipeline.Result{Name: name, Serial: "0c", CommandID: "cmd-" + name, DeploymentID: "d-" + name}, nil
}
func (f *fake) Renew(ctx context.Context, name string, trigger inventory.Trigger) (rollout.Result, error) {
	res, err := f.Sync(ctx, name, trigger)
	return rollout.Result{Result: res}, err
}
func (f *fake) Step(context.Context, schedule.Step) (rollout.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.steps++
	return rollout.Result{RolloutID: "r1", Phase: inventory.PhaseRolling, Wave: 1, Waves: 3}, nil
}
func (f *fake) Halt(_ context.Context, name, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.halted = append(f.halted, name)
	return nil
}
func (f *fake) Publish(_ context.Context, a notify.Alert) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pubErr != nil {
		return "", f.pubErr
	}
	f.published = append(f.published, a)
	return fmt.Sprintf("msg-%d", len(f.published)), nil
}

type acmFake struct{ f *fake }

func (a acmFake) Describe(context.Context, string) (certs.Info, error) { return a.f.info, a.f.infoErr }

func (f *fake) handler() *Handler {
	h := NewHandler(f, f, f, acmFake{f}, f)
	h.now = func() time.Time { return time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) }
	return h
}

func sample(t *testing.T, name string) json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestDeployEvents(t *testing.T) {
	for _, tc := range []struct {
		file    string
		trigger inventory.Trigger
	}{
		{"renewal-available-renewal.json", "acm-event"},
		{"renewal-available-issuance.json", "acm-event"},
		{"renewal-available-string-types.json", "acm-event"},
		{"renewal-health-completed.json", "health-event"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := newFake()
			out, err := f.handler().Handle(context.Background(), sample(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if out.Status != StatusDone || len(out.Deployed) != 2 || len(f.published) != 0 {
				t.Fatalf("outcome %+v, %d alerts", out, len(f.published))
			}
			if !slices.Equal(f.synced, []string{"shop-web", "shop-admin"}) || f.triggers[0] != tc.trigger || f.triggers[1] != tc.trigger {
				t.Fatalf("synced %v with %v", f.synced, f.triggers)
			}
			if len(f.marks) != 1 || f.marks[out.EventID] != inventory.EventDone {
				t.Fatalf("marks %v", f.marks)
			}
			// The same event again does nothing.
			again, err := f.handler().Handle(context.Background(), sample(t, tc.file))
			if err != nil || again.Status != StatusDuplicate || len(f.synced) != 2 {
				t.Fatalf("redelivery: %+v, %v, synced %v", again, err, f.synced)
			}
		})
	}
}

func TestAlertEvents(t *testing.T) {
	for _, tc := range []struct {
		file, kind, title string
		advice            []string
	}{
		{"renewal-action-required.json", "renewal-action-required", "ACM cannot renew shop.example.com without you (30 days left)", []string{notify.AdviceEmail, notify.AdviceToDNS, notify.AdviceAuto}},
		{"renewal-approaching-expiration.json", "approaching-expiration", "shop.example.com is approaching expiry (30 days left)", []string{notify.AdviceEmail, notify.AdviceToDNS, notify.AdviceAuto}},
		{"renewal-expired.json", "expired", "shop.example.com has expired", []string{notify.AdviceEmail, notify.AdviceToDNS}},
		{"renewal-health-failed.json", "health-renewal-problem", "ACM reports a renewal problem for shop.example.com (30 days left)", []string{notify.AdviceEmail, notify.AdviceToDNS, notify.AdviceAuto}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f := newFake()
			out, err := f.handler().Handle(context.Background(), sample(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if out.Status != StatusDone || len(f.synced) != 0 || len(f.published) != 1 || len(out.Alerts) != 1 {
				t.Fatalf("outcome %+v, synced %v, %d alerts", out, f.synced, len(f.published))
			}
			a := f.published[0]
			if a.Kind != tc.kind || a.Title != tc.title || a.CertificateARN != arn || a.Domain != "shop.example.com" || *a.DaysToExpiry != 30 {
				t.Fatalf("alert %+v", a)
			}
			for _, adv := range tc.advice {
				if !slices.Contains(a.Advice, adv) {
					t.Errorf("advice lacks %q: %q", adv, a.Advice)
				}
			}
			text := a.Text()
			for _, want := range []string{"shop-web", "shop-admin", "i-0aaa", "mi-0bbb", "i-0ccc", "handshake served another certificate", arn, "Days to expiry: 30"} {
				if !strings.Contains(text, want) {
					t.Errorf("message lacks %q:\n%s", want, text)
				}
			}
			if again, _ := f.handler().Handle(context.Background(), sample(t, tc.file)); again.Status != StatusDuplicate || len(f.published) != 1 {
				t.Fatalf("redelivery published again: %+v", again)
			}
		})
	}
}

func TestNothingToDo(t *testing.T) {
	tests := []struct {
		name   string
		raw    json.RawMessage
		setup  func(*fake)
		status Status
	}{
		{name: "unknown kind", raw: sample(t, "renewal-unknown-kind.json"), status: StatusIgnored},
		{name: "certificate not bound", raw: sample(t, "renewal-available-renewal.json"), setup: func(f *fake) { f.names = nil }, status: StatusIgnored},
		{name: "alert for an unbound certificate", raw: sample(t, "renewal-expired.json"), setup: func(f *fake) { f.names = nil }, status: StatusIgnored},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			if tc.setup != nil {
				tc.setup(f)
			}
			out, err := f.handler().Handle(context.Background(), tc.raw)
			if err != nil || out.Status != tc.status {
				t.Fatalf("%+v, %v", out, err)
			}
			if len(f.marks) != 0 || len(f.synced) != 0 || len(f.published) != 0 {
				t.Fatalf("acted: marks %v synced %v alerts %d", f.marks, f.synced, len(f.published))
			}
		})
	}
}

func TestMalformedIsAnError(t *testing.T) {
	for _, raw := range []string{string(sample(t, "renewal-malformed-no-resources.json")), `not json`, `{}`, `{"id":"x"}`} {
		f := newFake()
		out, err := f.handler().Handle(context.Background(), json.RawMessage(raw))
		if !errors.Is(err, events.ErrMalformed) || out.Status != StatusRejected {
			t.Errorf("%.40q: %+v, %v", raw, out, err)
		}
		if len(f.marks) != 0 || len(f.synced) != 0 || len(f.published) != 0 {
			t.Errorf("%.40q acted", raw)
		}
	}
}

func TestFailuresReleaseTheMark(t *testing.T) {
	boom := errors.New("ThrottlingException: rate exceeded")
	tests := []struct {
		name  string
		file  string
		setup func(*fake)
	}{
		{name: "deployment fails", file: "renewal-available-renewal.json", setup: func(f *fake) {
			f.syncFn = func(name string) (pipeline.Result, error) {
				if name == "shop-admin" {
					return pipeline.Result{}, boom
				}
				return pipeline.Result{Name: name, Serial: "0c"}, nil
			}
		}},
		{name: "another run holds the name for an older serial", file: "renewal-health-completed.json", setup: func(f *fake) {
			f.syncFn = func(string) (pipeline.Result, error) { return pipeline.Result{}, pipeline.ErrBusy }
		}},
		{name: "publish fails", file: "renewal-action-required.json", setup: func(f *fake) { f.pubErr = boom }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			tc.setup(f)
			if _, err := f.handler().Handle(context.Background(), sample(t, tc.file)); err == nil {
				t.Fatal("no error: Lambda would not retry")
			}
			if len(f.marks) != 0 {
				t.Fatalf("mark kept after a failure: %v (the retry would be dropped)", f.marks)
			}
			// The retry acts.
			f.syncFn, f.pubErr = nil, nil
			out, err := f.handler().Handle(context.Background(), sample(t, tc.file))
			if err != nil || out.Status != StatusDone {
				t.Fatalf("retry: %+v, %v", out, err)
			}
		})
	}
}

func TestBlockedDeploymentAlertsOnce(t *testing.T) {
	f := newFake()
	f.syncFn = func(name string) (pipeline.Result, error) {
		if name == "shop-admin" {
			return pipeline.Result{}, fmt.Errorf("%w: %s has status EXPIRED", certs.ErrNotIssued, arn)
		}
		return pipeline.Result{Name: name, Unchanged: true}, nil
	}
	out, err := f.handler().Handle(context.Background(), sample(t, "renewal-available-renewal.json"))
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != StatusDone || !slices.Equal(out.Blocked, []string{"shop-admin"}) || !slices.Equal(out.Unchanged, []string{"shop-web"}) || len(f.published) != 1 {
		t.Fatalf("%+v, %d alerts", out, len(f.published))
	}
	if a := f.published[0]; a.Kind != "deployment-blocked" || !strings.Contains(a.Text(), "has status EXPIRED") {
		t.Fatalf("alert %+v", a)
	}
}

func TestLeaseFollowsTheInvocationDeadline(t *testing.T) {
	f := newFake()
	deadline := time.Now().Add(3 * time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if _, err := f.handler().Handle(ctx, sample(t, "renewal-available-renewal.json")); err != nil {
		t.Fatal(err)
	}
	if got := f.leases[0].Sub(deadline); got != 30*time.Second {
		t.Fatalf("lease ends %v after the deadline", got)
	}
}

func TestCertsDaysLeft(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		notAfter time.Time
		want     int
	}{
		{now.Add(30*24*time.Hour + time.Hour), 30},
		{now.Add(30 * 24 * time.Hour), 30},
		{now.Add(23 * time.Hour), 0},
		{now.Add(-time.Hour), -1},
		{now.Add(-24 * time.Hour), -1},
		{now.Add(-25 * time.Hour), -2},
	} {
		if got := certs.DaysLeft(tc.notAfter, now); got != tc.want {
			t.Errorf("DaysLeft(%v) = %d, want %d", tc.notAfter.Sub(now), got, tc.want)
		}
	}
}

// The handler's answer is the Lambda's JSON: each typed status marshals as
// the string it always was.
func TestStatusJSON(t *testing.T) {
	for _, tc := range []struct {
		status Status
		want   string
	}{
		{StatusDone, "done"}, {StatusDuplicate, "duplicate"}, {StatusIgnored, "ignored"},
		{StatusBusy, "busy"}, {StatusRejected, "rejected"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			b, err := json.Marshal(Outcome{Status: tc.status})
			if err != nil || string(b) != `{"status":"`+tc.want+`"}` {
				t.Errorf("marshal %q: %s, %v", tc.status, b, err)
			}
		})
	}
}

// A fired rollout schedule is stepped once: a redelivery finds the mark
// done and changes nothing.
func TestHandleStepOnce(t *testing.T) {
	f := newFake()
	h := f.handler()
	st := schedule.Step{Name: "shop-web", RolloutID: "r1", Kind: "window", At: time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)}
	out, err := h.HandleStep(context.Background(), "certferry-shop-web-r1-window", st)
	if err != nil || out.Status != StatusDone || len(out.Deployed) != 1 || out.Deployed[0].Phase != "rolling" || out.Deployed[0].Wave != 1 {
		t.Fatalf("first delivery: %+v %v", out, err)
	}
	out, err = h.HandleStep(context.Background(), "certferry-shop-web-r1-window", st)
	if err != nil || out.Status != StatusDuplicate || f.steps != 1 {
		t.Fatalf("redelivery: %+v %v, steps %d", out, err, f.steps)
	}
}

// A revocation halts the names' rollouts before anything else is deployed.
func TestRevokedHaltsRollouts(t *testing.T) {
	f := newFake()
	if _, err := f.handler().Handle(context.Background(), sample(t, "renewal-revoked.json")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.halted, []string{"shop-web", "shop-admin"}) || len(f.synced) != 2 {
		t.Fatalf("halted %v, renewed %v", f.halted, f.synced)
	}
}

// A fired rollout schedule (events/renewal-rollout-step.json) goes to the
// engine's Step once, under the event's dedupe mark.
func TestHandleDispatchesRolloutSteps(t *testing.T) {
	f := newFake()
	h := f.handler()
	for i, want := range []Status{StatusDone, StatusDuplicate} {
		out, err := h.Handle(context.Background(), sample(t, "renewal-rollout-step.json"))
		if err != nil || out.Status != want || out.Kind != "rollout-step" {
			t.Fatalf("delivery %d: %+v %v, want %s", i, out, err, want)
		}
	}
	if f.steps != 1 || len(f.synced) != 0 {
		t.Fatalf("steps %d, renewals %v", f.steps, f.synced)
	}
}
