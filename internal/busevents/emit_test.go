package busevents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/certferry/certferry/internal/metrics"
)

// fakeBus answers PutEvents as the API Reference describes: one result
// entry per request entry, in order; fail decides an entry's error code
// per call (1-based) and position.
type fakeBus struct {
	calls [][]ebtypes.PutEventsRequestEntry
	fail  func(call, i int, e ebtypes.PutEventsRequestEntry) string
	err   error
}

func (f *fakeBus) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.calls = append(f.calls, in.Entries)
	if f.err != nil {
		return nil, f.err
	}
	if len(in.Entries) < 1 || len(in.Entries) > MaxEntries {
		return nil, fmt.Errorf("ValidationException: %d entries", len(in.Entries))
	}
	out := &eventbridge.PutEventsOutput{}
	for i, e := range in.Entries {
		code := ""
		if f.fail != nil {
			code = f.fail(len(f.calls), i, e)
		}
		if code == "" {
			out.Entries = append(out.Entries, ebtypes.PutEventsResultEntry{EventId: aws.String(fmt.Sprintf("ev-%d-%d", len(f.calls), i))})
			continue
		}
		out.FailedEntryCount++
		out.Entries = append(out.Entries, ebtypes.PutEventsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("no")})
	}
	return out, nil
}

func newTest(api putter, bus string) (*Emitter, *bytes.Buffer) {
	var m bytes.Buffer
	e := New(api, bus, metrics.New(&m))
	e.sleep = func(context.Context, time.Duration) error { return nil }
	e.now = func() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }
	return e, &m
}

func atRisk(n int) []Detail {
	out := make([]Detail, n)
	for i := range out {
		out[i] = CertificateAtRisk{Name: fmt.Sprintf("n-%d", i), Reason: RiskExpiring, Detail: "x"}
	}
	return out
}

func TestEmit(t *testing.T) {
	for _, tc := range []struct {
		name          string
		details       []Detail
		fail          func(call, i int, e ebtypes.PutEventsRequestEntry) string
		callErr       error
		calls         []int // entries per call
		sent, notSent int
	}{
		{name: "one event", details: atRisk(1), calls: []int{1}, sent: 1},
		{name: "ten per call", details: atRisk(23), calls: []int{10, 10, 3}, sent: 23},
		{name: "retryable failures sent again",
			details: atRisk(4),
			fail: func(call, i int, _ ebtypes.PutEventsRequestEntry) string {
				if call == 1 && i%2 == 0 {
					return "ThrottlingException"
				}
				return ""
			},
			calls: []int{4, 2}, sent: 4},
		{name: "retries are bounded",
			details: atRisk(2),
			fail: func(_ int, i int, _ ebtypes.PutEventsRequestEntry) string {
				if i == 0 {
					return "InternalFailure"
				}
				return ""
			},
			calls: []int{2, 1, 1}, sent: 1, notSent: 1},
		{name: "permanent failures are not retried",
			details: atRisk(3),
			fail: func(_ int, i int, _ ebtypes.PutEventsRequestEntry) string {
				if i == 1 {
					return "NotAuthorizedForSourceException"
				}
				return ""
			},
			calls: []int{3}, sent: 2, notSent: 1},
		{name: "a failed call loses its batch, not the caller's work", details: atRisk(12), callErr: errors.New("AccessDeniedException"),
			calls: []int{10, 2}, notSent: 12},
		{name: "nothing to send", calls: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeBus{fail: tc.fail, err: tc.callErr}
			e, m := newTest(f, "")
			res := e.Emit(context.Background(), tc.details...)
			if res.Sent != tc.sent || res.NotSent != tc.notSent {
				t.Errorf("result %+v, want sent %d not sent %d", res, tc.sent, tc.notSent)
			}
			var got []int
			for _, c := range f.calls {
				got = append(got, len(c))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.calls) {
				t.Errorf("calls of %v entries, want %v", got, tc.calls)
			}
			metric := strings.Contains(m.String(), `"`+MetricNotSent+`":`+fmt.Sprint(tc.notSent))
			if (tc.notSent > 0) != metric {
				t.Errorf("metric line %q for %d not sent", m.String(), tc.notSent)
			}
		})
	}
}

func TestEntryShape(t *testing.T) {
	f := &fakeBus{}
	e, _ := newTest(f, "arn:aws:events:eu-west-1:111122223333:event-bus/custom")
	arn := "arn:aws:acm:eu-west-1:111122223333:certificate/9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b"
	e.DeploymentFinished(context.Background(), DeploymentFinished{Name: "shop-web", DeploymentID: "d", Outcome: "succeeded",
		Serial: "0a", CertificateARN: arn, Trigger: "api"})
	e.NodeFailed(context.Background(), NodeFailed{Name: "shop-web", InstanceID: "i-0123456789abcdef0", State: "failed",
		Error: "line one\nline two\x00" + strings.Repeat("é", 300), DeploymentID: "d", Serial: "0a"})
	if len(f.calls) != 2 {
		t.Fatalf("%d calls", len(f.calls))
	}
	en := f.calls[0][0]
	if aws.ToString(en.Source) != Source || aws.ToString(en.DetailType) != TypeDeploymentFinished ||
		aws.ToString(en.EventBusName) != "arn:aws:events:eu-west-1:111122223333:event-bus/custom" ||
		len(en.Resources) != 1 || en.Resources[0] != arn || en.Time == nil {
		t.Errorf("entry %+v", en)
	}
	var nf NodeFailed
	if err := json.Unmarshal([]byte(aws.ToString(f.calls[1][0].Detail)), &nf); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(nf.Error, "\n\x00") || len(nf.Error) > maxError || !strings.HasPrefix(nf.Error, "line one line two") {
		t.Errorf("error summary not cleaned: %q (%d bytes)", nf.Error, len(nf.Error))
	}
	if f.calls[1][0].Resources != nil {
		t.Errorf("node failed resources %v", f.calls[1][0].Resources)
	}
	// The default bus: no EventBusName at all.
	f2 := &fakeBus{}
	e2, _ := newTest(f2, "")
	e2.Emit(context.Background(), atRisk(1)...)
	if f2.calls[0][0].EventBusName != nil {
		t.Errorf("EventBusName %q for the default bus", aws.ToString(f2.calls[0][0].EventBusName))
	}
}

// An entry over PutEvents' 256 KB is refused before any call; batches keep
// their total under it.
func TestSizes(t *testing.T) {
	f := &fakeBus{}
	e, _ := newTest(f, "")
	huge := hugeDetail{strings.Repeat("x", MaxEntrySize)}
	res := e.Emit(context.Background(), huge, atRisk(1)[0])
	if res.Sent != 1 || res.NotSent != 1 || len(f.calls) != 1 || len(f.calls[0]) != 1 {
		t.Fatalf("result %+v, calls %d", res, len(f.calls))
	}
	big := make([]Detail, 4)
	for i := range big {
		big[i] = hugeDetail{strings.Repeat("y", 100*1024)}
	}
	f.calls = nil
	res = e.Emit(context.Background(), big...)
	if res.Sent != 4 {
		t.Fatalf("result %+v", res)
	}
	for _, c := range f.calls {
		total := 0
		for _, en := range c {
			total += EntrySize(en)
		}
		if total >= MaxEntrySize {
			t.Errorf("a call of %d bytes", total)
		}
	}
	if len(f.calls) != 2 {
		t.Errorf("%d calls for four 100 KB entries, want 2", len(f.calls))
	}
	// The documented arithmetic: 14 for Time, UTF-8 bytes of the rest.
	en := ebtypes.PutEventsRequestEntry{Time: aws.Time(time.Now()), Source: aws.String("certferry"), DetailType: aws.String("é"),
		Detail: aws.String(`{}`), Resources: []string{"ab"}}
	if n := EntrySize(en); n != 14+9+2+2+2 {
		t.Errorf("EntrySize %d", n)
	}
}

type hugeDetail struct {
	X string `json:"x"`
}

func (hugeDetail) DetailType() string { return "certferry Test" }

func TestNilEmitter(t *testing.T) {
	var e *Emitter
	if r := e.Emit(context.Background(), atRisk(3)...); r != (Result{}) {
		t.Fatalf("nil emitter %+v", r)
	}
}

// What the emitter builds, in the envelope EventBridge adds, validates
// against the schemas.
func TestEmittedDetailsValidate(t *testing.T) {
	since := time.Date(2026, 11, 24, 14, 3, 9, 0, time.UTC)
	days := 3
	details := []Detail{
		DeploymentFinished{Name: "a", DeploymentID: "2026-11-23T08:10:00.123Z#c", Outcome: "failed", Counts: Counts{Failed: 2},
			Serial: "0a", Trigger: "sweep", TimedOut: true},
		NodeFailed{Name: "a", InstanceID: "mi-0123456789abcdef0", State: "failed", Error: "SSM reports TimedOut", DeploymentID: "d", Serial: "0a"},
		RenewalWaiting{Name: "a", Reason: WaitingApproval, Since: since, Serial: "0a"},
		CertificateAtRisk{Name: "a", Reason: RiskRevoked, NotAfter: &since, DaysLeft: &days, Detail: "revoked"},
	}
	f := &fakeBus{}
	e, _ := newTest(f, "")
	e.Emit(context.Background(), details...)
	for i, en := range f.calls[0] {
		k := kinds[i]
		if aws.ToString(en.DetailType) != k.detailType {
			t.Fatalf("entry %d is %s", i, aws.ToString(en.DetailType))
		}
		ev := map[string]any{"version": "0", "id": "x", "detail-type": aws.ToString(en.DetailType), "source": aws.ToString(en.Source),
			"account": "111122223333", "time": en.Time.Format(time.RFC3339), "region": "eu-west-1", "resources": en.Resources,
			"detail": json.RawMessage(aws.ToString(en.Detail))}
		if en.Resources == nil {
			ev["resources"] = []string{}
		}
		b, _ := json.Marshal(ev)
		if err := validate(compile(t, k.file), b); err != nil {
			t.Errorf("%s: %v\n%s", k.detailType, err, b)
		}
	}
}

func TestWaitingReason(t *testing.T) {
	for phase, want := range map[string]string{"waiting_window": WaitingWindow, "awaiting_approval": WaitingApproval, "halted": WaitingHalted,
		"rolling": "", "paused": "", "done": "", "superseded": "", "": ""} {
		got, ok := WaitingReason(phase)
		if got != want || ok != (want != "") {
			t.Errorf("WaitingReason(%q) = %q, %v; want %q", phase, got, ok, want)
		}
	}
}
