package sweeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/spec"
)

// manyStore holds several converged names (one installed node each).
type manyStore struct {
	certs map[string]inventory.Cert
	order []string
}

func newManyStore(names ...string) *manyStore {
	m := &manyStore{certs: map[string]inventory.Cert{}}
	for _, n := range names {
		m.certs[n] = inventory.Cert{Spec: spec.Spec{Name: n, CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/" + n},
			Serial: "0c", Status: inventory.StatusActive, ExportedAt: fanNow.Add(-time.Hour)}
		m.order = append(m.order, n)
	}
	return m
}

func (m *manyStore) ListCerts(context.Context) ([]inventory.Cert, error) {
	var out []inventory.Cert
	for _, n := range m.order {
		out = append(out, m.certs[n])
	}
	return out, nil
}
func (m *manyStore) GetCert(_ context.Context, name string) (*inventory.Cert, error) {
	c, ok := m.certs[name]
	if !ok {
		return nil, nil
	}
	return &c, nil
}
func (m *manyStore) Describe(_ context.Context, name string) (*inventory.Detail, error) {
	c := m.certs[name]
	return &inventory.Detail{Cert: &c, Nodes: []inventory.Node{{InstanceID: "i-0aaa", State: inventory.NodeInstalled, Serial: "0c"}}}, nil
}
func (m *manyStore) GetNode(context.Context, string, string) (*inventory.Node, error) {
	return nil, nil
}
func (m *manyStore) RecordReport(context.Context, inventory.CommandRef, *inventory.Node, inventory.Report) error {
	return errors.New("unexpected RecordReport")
}
func (m *manyStore) GetDeployment(context.Context, string, string) (*inventory.Deployment, error) {
	return nil, errors.New("unexpected GetDeployment")
}

// manyACM answers DescribeCertificate per ARN; fail names the ARNs whose
// call fails, expiring the ones close to expiry.
type manyACM struct {
	fail     map[string]bool
	expiring map[string]bool
	calls    map[string]int
}

func (a *manyACM) Describe(_ context.Context, arn string) (certs.Info, error) {
	if a.calls == nil {
		a.calls = map[string]int{}
	}
	a.calls[arn]++
	if a.fail[arn] {
		return certs.Info{}, fmt.Errorf("describe certificate %s: ThrottlingException: rate exceeded", arn)
	}
	notAfter := fanNow.Add(150 * 24 * time.Hour)
	if a.expiring[arn] {
		notAfter = fanNow.Add(5 * 24 * time.Hour)
	}
	return certs.Info{ARN: arn, Serial: "0c", Type: "AMAZON_ISSUED", Status: "ISSUED", ValidationMethods: []string{"DNS"},
		NotBefore: fanNow.Add(-40 * 24 * time.Hour), NotAfter: notAfter, RenewalEligibility: "ELIGIBLE"}, nil
}

var fanNow = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

func arnOf(name string) string { return "arn:aws:acm:us-east-1:123456789012:certificate/" + name }

func names(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("name-%03d", i))
	}
	return out
}

func newFanSweeper(st *manyStore, acm *manyACM, pub publisher) *Sweeper {
	dep := &fakeDeployer{}
	s := New(st, acm, dep, dep, fakeNodes{ids: []string{"i-0aaa"}}, fakeTracker{}, pub, metrics.New(io.Discard), Config{})
	s.now = func() time.Time { return fanNow }
	return s
}

// The scheduled side enqueues one message per name, at most 10 per
// SendMessageBatch call, every name once, each carrying the run.
func TestEnqueuePagesByTen(t *testing.T) {
	for _, n := range []int{0, 1, 10, 23} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			st := newManyStore(names(n)...)
			q := &fakeSQS{}
			f := NewFanout(st, newFakeRuns(), q, &fakePublisher{}, metrics.New(io.Discard), FanoutConfig{QueueURL: "q", Now: func() time.Time { return fanNow }})
			rep, err := f.Start(context.Background(), "run-1")
			if err != nil {
				t.Fatal(err)
			}
			if rep.Names != n || rep.Enqueued != n || rep.Failed != 0 {
				t.Fatalf("report %+v", rep)
			}
			var sizes []int
			var got []string
			for _, b := range q.batches {
				sizes = append(sizes, len(b))
				for _, body := range b {
					var m Message
					if err := json.Unmarshal([]byte(body), &m); err != nil || m.RunID != "run-1" {
						t.Fatalf("body %s: %v", body, err)
					}
					got = append(got, m.Name)
				}
			}
			want := map[int][]int{0: nil, 1: {1}, 10: {10}, 23: {10, 10, 3}}[n]
			if !slices.Equal(sizes, want) || !slices.Equal(got, names(n)) {
				t.Fatalf("batches of %v with %v, want %v of %v", sizes, got, want, names(n))
			}
		})
	}
}

// Entries SQS refuses are sent again, a bounded number of times; sender
// faults are not retried; a whole call failing is retried too.
func TestEnqueueRetriesRefusedEntries(t *testing.T) {
	tests := []struct {
		name        string
		q           *fakeSQS
		wantErr     string
		wantQueued  int
		wantSleeps  int
		wantBatches int
	}{
		{name: "refused twice, then accepted", q: &fakeSQS{refuse: map[string]int{"name-003": 2}}, wantQueued: 12, wantSleeps: 2, wantBatches: 4},
		{name: "refused every time", q: &fakeSQS{refuse: map[string]int{"name-003": 99}}, wantQueued: 11,
			wantErr: "1 of 12 names refused by SQS (send sweep message for name-003: InternalError: try again)", wantSleeps: 3, wantBatches: 5},
		{name: "sender fault", q: &fakeSQS{senderFault: map[string]bool{"name-011": true}}, wantQueued: 11,
			wantErr: "send sweep message for name-011: InvalidMessageContents", wantBatches: 2},
		{name: "the call fails once", q: &fakeSQS{callErr: 1}, wantQueued: 12, wantSleeps: 1, wantBatches: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sleeps := 0
			f := NewFanout(newManyStore(names(12)...), newFakeRuns(), tc.q, &fakePublisher{}, metrics.New(io.Discard), FanoutConfig{QueueURL: "q",
				Now: func() time.Time { return fanNow }, Sleep: func(context.Context, time.Duration) error { sleeps++; return nil }})
			rep, err := f.Start(context.Background(), "run-1")
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if rep.Enqueued != tc.wantQueued || len(tc.q.msgs) != tc.wantQueued || sleeps != tc.wantSleeps || len(tc.q.batches) != tc.wantBatches {
				t.Fatalf("enqueued %d (queue %d), slept %d, %d batches; want %d, %d, %d", rep.Enqueued, len(tc.q.msgs), sleeps, len(tc.q.batches), tc.wantQueued, tc.wantSleeps, tc.wantBatches)
			}
		})
	}
}

// One failing name does not block the others: its message fails in the
// partial batch response on every delivery and ends in the dead-letter
// queue after maxReceiveCount; the others are swept once; the run's one
// alert names the failed name.
func TestFailingNameDoesNotBlockTheOthers(t *testing.T) {
	all := names(7)
	st := newManyStore(all...)
	acm := &manyACM{fail: map[string]bool{arnOf("name-003"): true}, expiring: map[string]bool{arnOf("name-005"): true}}
	pub := &fakePublisher{}
	q := &fakeSQS{maxReceive: 3}
	runs := newFakeRuns()
	rep, err := localSweep(newFanSweeper(st, acm, pub), st, pub, runs, q, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(q.dlq) != 1 || !strings.Contains(q.dlq[0].body, `"name-003"`) || q.dlq[0].received != 3 || len(q.msgs) != 0 {
		t.Fatalf("dead-letter queue %+v, queue %d left", q.dlq, len(q.msgs))
	}
	if !slices.Equal(rep.DeadLettered, []string{"name-003"}) {
		t.Fatalf("dead-lettered %v", rep.DeadLettered)
	}
	for _, n := range all {
		want := 1
		if n == "name-003" {
			want = 3
		}
		if acm.calls[arnOf(n)] != want {
			t.Errorf("%s described %d times, want %d", n, acm.calls[arnOf(n)], want)
		}
	}
	run, _ := runs.Get(context.Background(), "run-1")
	if run.Done != 7 || run.Total != 7 || !run.Alerted() || run.AlertID == "" || rep.AlertID != run.AlertID {
		t.Fatalf("run %+v, report alert %q", run, rep.AlertID)
	}
	if len(pub.published) != 1 {
		t.Fatalf("%d alerts, want 1", len(pub.published))
	}
	text := pub.published[0].Text()
	for _, want := range []string{"name-003", "failed on each of 3 deliveries", "ThrottlingException", "name-005", "days left"} {
		if !strings.Contains(text, want) {
			t.Errorf("alert lacks %q:\n%s", want, text)
		}
	}
}

// A duplicate delivery of a name's message (SQS standard queues deliver
// at least once) changes nothing twice: no second sweep, no second count,
// no second alert.
func TestDuplicateDeliveryChangesNothingTwice(t *testing.T) {
	st := newManyStore("a", "b")
	acm := &manyACM{expiring: map[string]bool{arnOf("a"): true}}
	pub := &fakePublisher{}
	runs := newFakeRuns()
	s := newFanSweeper(st, acm, pub)
	w := NewWorker(s, st, runs, pub, metrics.New(io.Discard), WorkerConfig{Now: func() time.Time { return fanNow }})
	if _, _, err := runs.Begin(context.Background(), "run-1", 2, fanNow); err != nil {
		t.Fatal(err)
	}
	msg := func(id, name string) events.SQSMessage {
		b, _ := json.Marshal(Message{Name: name, RunID: "run-1"})
		return events.SQSMessage{MessageId: id, Body: string(b), Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
	}
	batches := [][]events.SQSMessage{{msg("1", "a")}, {msg("1", "a"), msg("2", "b")}, {msg("2", "b"), msg("1", "a")}}
	for i, b := range batches {
		resp, err := w.Handle(context.Background(), events.SQSEvent{Records: b})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("batch %d: %+v, %v", i, resp, err)
		}
	}
	run, _ := runs.Get(context.Background(), "run-1")
	if acm.calls[arnOf("a")] != 1 || acm.calls[arnOf("b")] != 1 || run.Done != 2 || len(pub.published) != 1 {
		t.Fatalf("described %v, run %+v, %d alerts", acm.calls, run, len(pub.published))
	}
}

// A run that never completed (a name without a result) gets its alert
// from the next scheduled run, once, even when that run is retried.
func TestNextRunAlertsForAnIncompletePrevious(t *testing.T) {
	st := newManyStore("a", "b", "c")
	acm := &manyACM{expiring: map[string]bool{arnOf("a"): true}}
	pub := &fakePublisher{}
	runs := newFakeRuns()
	q := &fakeSQS{maxReceive: 3}
	s := newFanSweeper(st, acm, pub)
	f := NewFanout(st, runs, q, pub, metrics.New(io.Discard), FanoutConfig{QueueURL: "q", Now: func() time.Time { return fanNow }})
	w := NewWorker(s, st, runs, pub, metrics.New(io.Discard), WorkerConfig{Now: func() time.Time { return fanNow }})
	if _, err := f.Start(context.Background(), "run-1"); err != nil {
		t.Fatal(err)
	}
	// Two of three messages are handled; the third is lost (say, its
	// worker timed out on the last delivery).
	out, _ := q.ReceiveMessage(context.Background(), receiveAll())
	var evs []events.SQSMessage
	for _, m := range out.Messages[:2] {
		evs = append(evs, events.SQSMessage{MessageId: *m.MessageId, Body: *m.Body, Attributes: m.Attributes})
	}
	if _, err := w.Handle(context.Background(), events.SQSEvent{Records: evs}); err != nil {
		t.Fatal(err)
	}
	if len(pub.published) != 0 {
		t.Fatalf("alert before the run completed: %+v", pub.published)
	}
	q.msgs = nil
	for i := range 2 { // the next run, then a duplicate invocation for its event
		rep, err := f.Start(context.Background(), "run-2")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (rep.Previous != "run-1" || rep.PreviousAlertID == "") || i == 1 && (!rep.Resumed || rep.Enqueued != 0) {
			t.Fatalf("invocation %d: report %+v", i, rep)
		}
	}
	if len(pub.published) != 1 {
		t.Fatalf("%d alerts, want 1", len(pub.published))
	}
	text := pub.published[0].Text()
	if !strings.Contains(text, "1 of the run's 3 names have no result") || !strings.Contains(text, "a (5 days left)") {
		t.Fatalf("alert:\n%s", text)
	}
	if len(q.batches) != 2 || len(q.batches[1]) != 3 { // run-1's and run-2's, once
		t.Fatalf("the retried run-2 enqueued again: batches %v", q.batches)
	}
}

// The sam local invoke fixture of the worker is an SQS event the worker
// handles: its one message is swept, nothing fails.
func TestWorkerHandlesTheFixture(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "sweep-worker-message.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	st := newManyStore("shop-web")
	acm := &manyACM{}
	pub := &fakePublisher{}
	runs := newFakeRuns()
	var m Message
	if err := json.Unmarshal([]byte(ev.Records[0].Body), &m); err != nil || m.Name != "shop-web" {
		t.Fatalf("fixture body %q: %v", ev.Records[0].Body, err)
	}
	if _, _, err := runs.Begin(context.Background(), m.RunID, 1, fanNow); err != nil {
		t.Fatal(err)
	}
	w := NewWorker(newFanSweeper(st, acm, pub), st, runs, pub, metrics.New(io.Discard), WorkerConfig{Now: func() time.Time { return fanNow }})
	resp, err := w.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 || acm.calls[arnOf("shop-web")] != 1 {
		t.Fatalf("response %+v, %v, described %v", resp, err, acm.calls)
	}
	if run, _ := runs.Get(context.Background(), m.RunID); run.Done != 1 || !run.Alerted() {
		t.Fatalf("run %+v", run)
	}
}
