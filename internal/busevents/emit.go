package busevents

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/certferry/certferry/internal/backoff"
	"github.com/certferry/certferry/internal/metrics"
)

// putter is what the emitter asks EventBridge.
type putter interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

var _ putter = (*eventbridge.Client)(nil)

// PutEvents limits ("PutEvents", Amazon EventBridge API Reference; botocore
// model: PutEventsRequestEntryList max 10): at most 10 entries per call,
// and "the total entry size must be less than 256KB", sizes counted as
// "Calculating Amazon EventBridge PutEvents event entry size" says (Time 14
// bytes; Source, DetailType, Detail and each Resources entry their UTF-8
// bytes).
const (
	MaxEntries   = 10
	MaxEntrySize = 256 * 1024
)

// MetricNotSent is the metric (namespace certferry) counting events that
// could not be sent; the dashboard graphs it.
const MetricNotSent = "EventsNotSent"

// retryable are the per-entry error codes PutEvents documents as
// retryable (PutEventsResultEntry.ErrorCode); any other is permanent.
var retryable = map[string]bool{"InternalFailure": true, "ThrottlingException": true}

// Emitter sends certferry's events. A nil *Emitter sends nothing, so code
// that emits needs no check.
type Emitter struct {
	api     putter
	bus     string
	metrics *metrics.Emitter
	// Attempts bounds the calls for entries that failed with a retryable
	// code (default 3); Backoff is the first wait between them, doubled
	// each time (default 100 ms).
	Attempts int
	Backoff  time.Duration
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
}

// New returns an Emitter on bus: an event bus name or ARN, or "" for the
// account's default bus in the client's region (CERTFERRY_EVENT_BUS).
func New(api putter, bus string, m *metrics.Emitter) *Emitter {
	return &Emitter{api: api, bus: bus, metrics: m, Attempts: 3, Backoff: 100 * time.Millisecond, now: time.Now, sleep: backoff.Sleep}
}

// Result is what one Emit did.
type Result struct {
	Sent    int
	NotSent int
}

// Emit sends details as events and never fails the caller: an event that
// cannot be built or sent is logged (its detail-type and name, never more)
// and counted in the EventsNotSent metric. Entries failed with a
// retryable code are sent again up to Attempts calls in all.
func (e *Emitter) Emit(ctx context.Context, details ...Detail) Result {
	var res Result
	if e == nil || len(details) == 0 {
		return res
	}
	var entries []ebtypes.PutEventsRequestEntry
	for _, d := range details {
		entry, err := e.entry(d)
		if err != nil {
			res.NotSent++
			slog.ErrorContext(ctx, "certferry event not sent", "detailType", d.DetailType(), "error", err)
			continue
		}
		entries = append(entries, entry)
	}
	for _, batch := range batches(entries) {
		sent, failed := e.put(ctx, batch)
		res.Sent += sent
		res.NotSent += failed
	}
	if res.NotSent > 0 {
		e.metrics.Emit(nil, metrics.Values{MetricNotSent: float64(res.NotSent)})
	}
	return res
}

// entry builds one PutEvents entry and checks its size.
func (e *Emitter) entry(d Detail) (ebtypes.PutEventsRequestEntry, error) {
	d = clean(d)
	body, err := json.Marshal(d)
	if err != nil {
		return ebtypes.PutEventsRequestEntry{}, fmt.Errorf("encode %s: %w", d.DetailType(), err)
	}
	entry := ebtypes.PutEventsRequestEntry{
		Source:     aws.String(Source),
		DetailType: aws.String(d.DetailType()),
		Detail:     aws.String(string(body)),
		Time:       aws.Time(e.now().UTC()),
	}
	if e.bus != "" {
		entry.EventBusName = aws.String(e.bus)
	}
	if arn := resourceOf(d); arn != "" {
		entry.Resources = []string{arn}
	}
	if n := EntrySize(entry); n > MaxEntrySize {
		return entry, fmt.Errorf("encode %s: entry of %d bytes exceeds PutEvents' %d", d.DetailType(), n, MaxEntrySize)
	}
	return entry, nil
}

// resourceOf is the ARN an event concerns, when it has one.
func resourceOf(d Detail) string {
	if x, ok := d.(DeploymentFinished); ok {
		return x.CertificateARN
	}
	return ""
}

// EntrySize is an entry's size as EventBridge counts it ("Calculating
// Amazon EventBridge PutEvents event entry size").
func EntrySize(e ebtypes.PutEventsRequestEntry) int {
	n := 0
	if e.Time != nil {
		n += 14
	}
	n += len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail))
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// batches splits entries into PutEvents calls: at most MaxEntries each,
// and a total under MaxEntrySize.
func batches(entries []ebtypes.PutEventsRequestEntry) [][]ebtypes.PutEventsRequestEntry {
	var out [][]ebtypes.PutEventsRequestEntry
	var cur []ebtypes.PutEventsRequestEntry
	size := 0
	for _, en := range entries {
		n := EntrySize(en)
		if len(cur) == MaxEntries || (len(cur) > 0 && size+n >= MaxEntrySize) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, en)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// put sends one batch, then again the entries that failed with a
// retryable code, up to Attempts calls. The response's Entries answer the
// request's in order ("Sending events with PutEvents": "Each entry in the
// response array corresponds to an entry in the request array").
func (e *Emitter) put(ctx context.Context, batch []ebtypes.PutEventsRequestEntry) (sent, failed int) {
	attempts := max(e.Attempts, 1)
	wait := e.Backoff
	for attempt := 1; ; attempt++ {
		out, err := e.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: batch})
		if err != nil {
			// The SDK's own retries are spent: the whole batch is lost.
			slog.ErrorContext(ctx, "certferry events not sent", "events", len(batch), "error", err)
			return sent, failed + len(batch)
		}
		var again []ebtypes.PutEventsRequestEntry
		for i, en := range batch {
			if i >= len(out.Entries) {
				// A short answer: the entries it does not mention are
				// not known to be sent.
				again = append(again, en)
				continue
			}
			r := out.Entries[i]
			code := aws.ToString(r.ErrorCode)
			switch {
			case code == "" && aws.ToString(r.EventId) != "":
				sent++
			case retryable[code] || code == "":
				again = append(again, en)
			default:
				failed++
				slog.ErrorContext(ctx, "certferry event refused", "detailType", aws.ToString(en.DetailType),
					"errorCode", code, "errorMessage", aws.ToString(r.ErrorMessage))
			}
		}
		if len(again) == 0 {
			return sent, failed
		}
		if attempt >= attempts || e.sleep(ctx, wait) != nil {
			slog.ErrorContext(ctx, "certferry events not sent after retries", "events", len(again), "attempts", attempt)
			return sent, failed + len(again)
		}
		batch, wait = again, wait*2
	}
}

// Convenience senders, one per detail-type (the engine wires RenewalWaiting).

// DeploymentFinished sends one Deployment Finished event.
func (e *Emitter) DeploymentFinished(ctx context.Context, d DeploymentFinished) Result {
	return e.Emit(ctx, d)
}

// NodeFailed sends one Node Failed event.
func (e *Emitter) NodeFailed(ctx context.Context, d NodeFailed) Result { return e.Emit(ctx, d) }

// RenewalWaiting sends one Renewal Waiting event.
func (e *Emitter) RenewalWaiting(ctx context.Context, d RenewalWaiting) Result { return e.Emit(ctx, d) }

// CertificateAtRisk sends Certificate At Risk events.
func (e *Emitter) CertificateAtRisk(ctx context.Context, ds ...CertificateAtRisk) Result {
	all := make([]Detail, len(ds))
	for i, d := range ds {
		all[i] = d
	}
	return e.Emit(ctx, all...)
}
