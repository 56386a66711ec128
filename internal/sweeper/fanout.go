package sweeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/certferry/certferry/internal/backoff"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/notify"
)

// The sweep fans out: the scheduled invocation (Fanout.Start) lists the
// names and enqueues one SQS message per name; the worker (Worker.Handle,
// an SQS event source mapping) sweeps one name per message with the
// per-name unit sweepName. No invocation visits every name. Each worker
// records its name's result under the run (Runs); the run's one risk alert
// is sent by the worker that records the last name, or, when some name
// never got a result (its message dead-lettered without one), by the next
// scheduled run before it fans out. A conditional claim on the run makes
// the alert exactly-once whichever sends it.

// Message is the body of one name's SQS message.
type Message struct {
	Name  string `json:"name"`
	RunID string `json:"runId"`
}

// SendMessageBatch takes at most 10 entries (Amazon SQS API Reference,
// "SendMessageBatch": "You can send up to 10 messages in a single call").
const maxBatchEntries = 10

// Dependencies of the fan-out, each the narrowest surface it calls.
type (
	certLister interface {
		ListCerts(ctx context.Context) ([]inventory.Cert, error)
	}
	certGetter interface {
		GetCert(ctx context.Context, name string) (*inventory.Cert, error)
	}
	sender interface {
		SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	}
	runStore interface {
		Begin(ctx context.Context, id string, total int, now time.Time) (Run, bool, error)
		Latest(ctx context.Context) (string, error)
		Get(ctx context.Context, id string) (*Run, error)
		Result(ctx context.Context, id, name string) (*NameResult, error)
		Record(ctx context.Context, id string, res NameResult, now time.Time) (*Run, error)
		Results(ctx context.Context, id string) ([]NameResult, error)
		ClaimAlert(ctx context.Context, id string, complete bool, now time.Time, lease time.Duration) error
		SettleAlert(ctx context.Context, id, alertID string, now time.Time) error
		ReleaseAlert(ctx context.Context, id string) error
		MarkEnqueued(ctx context.Context, id string, now time.Time) error
	}
)

var (
	_ certLister = (*inventory.Store)(nil)
	_ certGetter = (*inventory.Store)(nil)
	_ sender     = (*sqs.Client)(nil)
	_ runStore   = (*Runs)(nil)
)

// AlertLease is how long a claim on a run's alert holds before another
// invocation may take it (the claimant crashed between claim and publish).
const AlertLease = 5 * time.Minute

// sweepable tells whether the sweep looks at a name at all.
func sweepable(c *inventory.Cert) bool {
	return c != nil && c.CertificateARN != "" && c.Status != inventory.StatusDeleting
}

// FanoutConfig is the scheduled invocation's configuration.
type FanoutConfig struct {
	QueueURL string
	// SendAttempts bounds the tries of an entry SendMessageBatch failed
	// (default 4); Backoff is the first wait between them, doubled each
	// time (default 200ms).
	SendAttempts int
	Backoff      time.Duration
	MaxAttempts  int // the sweep's node attempts, for the alert's wording (default 3)
	Now          func() time.Time
	Sleep        func(ctx context.Context, d time.Duration) error
}

// Fanout is the scheduled side of the sweep.
type Fanout struct {
	certs   certLister
	runs    runStore
	q       sender
	alert   alerter
	metrics *metrics.Emitter
	cfg     FanoutConfig
}

// NewFanout wires the scheduled side.
func NewFanout(certs certLister, runs runStore, q sender, alerts publisher, m *metrics.Emitter, cfg FanoutConfig) *Fanout {
	if cfg.SendAttempts == 0 {
		cfg.SendAttempts = 4
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 200 * time.Millisecond
	}
	sharedDefaults(&cfg.MaxAttempts, &cfg.Now, &cfg.Sleep)
	return &Fanout{certs: certs, runs: runs, q: q, metrics: m, cfg: cfg,
		alert: alerter{runs: runs, alerts: alerts, maxAttempts: cfg.MaxAttempts, now: cfg.Now}}
}

// sharedDefaults fills the settings FanoutConfig and WorkerConfig share,
// in one place: the sweep's node attempts (3, for the alert's wording),
// the clock and the sleep.
func sharedDefaults(maxAttempts *int, now *func() time.Time, sleep *func(context.Context, time.Duration) error) {
	if *maxAttempts == 0 {
		*maxAttempts = 3
	}
	if *now == nil {
		*now = time.Now
	}
	if *sleep == nil {
		*sleep = backoff.Sleep
	}
}

// RunReport is what one scheduled invocation did.
type RunReport struct {
	RunID    string `json:"runId"`
	Names    int    `json:"names"`             // sweepable names listed
	Enqueued int    `json:"enqueued"`          // messages SQS accepted
	Skipped  int    `json:"skipped,omitempty"` // names of a retried run that have a result already
	Failed   int    `json:"failed,omitempty"`  // names SQS refused after every attempt
	Resumed  bool   `json:"resumed,omitempty"` // the run existed already (a retry of the same schedule event)
	Previous string `json:"previousRunId,omitempty"`
	// PreviousAlertID is the alert this invocation sent for the previous
	// run, which never completed (some name has no result).
	PreviousAlertID string `json:"previousAlertMessageId,omitempty"`
	AlertID         string `json:"alertMessageId,omitempty"` // a run of no names settles at once
}

// Start runs one scheduled invocation: the previous run's alert if no
// worker sent it, then one message per sweepable name. runID identifies
// the schedule event, so that the scheduler's retry of the same event
// resumes the run instead of starting another (names with a result are
// not enqueued again). It fails when a name could not be enqueued, so that
// the retry sends it.
func (f *Fanout) Start(ctx context.Context, runID string) (RunReport, error) {
	rep := RunReport{RunID: runID}
	prev, err := f.runs.Latest(ctx)
	if err != nil {
		return rep, err
	}
	if prev != "" && prev != runID {
		rep.Previous = prev
		id, err := f.alert.settle(ctx, prev, false)
		if err != nil {
			// The alert is the previous run's: log it and fan out anyway
			// (the claim was released; the next run tries again).
			slog.ErrorContext(ctx, "alert for the previous sweep run failed", "runId", prev, "error", err)
		}
		rep.PreviousAlertID = id
	}
	list, err := f.certs.ListCerts(ctx)
	if err != nil {
		return rep, err
	}
	var names []string
	for i := range list {
		if sweepable(&list[i]) {
			names = append(names, list[i].Name)
		}
	}
	rep.Names = len(names)
	run, created, err := f.runs.Begin(ctx, runID, len(names), f.cfg.Now())
	if err != nil {
		return rep, err
	}
	if !created && !run.EnqueuedAt.IsZero() {
		// A duplicate invocation for an event whose run is under way.
		rep.Resumed = true
		slog.InfoContext(ctx, "sweep run enqueued already", "runId", runID)
		return rep, nil
	}
	if !created {
		rep.Resumed = true
		results, err := f.runs.Results(ctx, runID)
		if err != nil {
			return rep, err
		}
		have := map[string]bool{}
		for _, r := range results {
			have[r.Report.Name] = true
		}
		kept := names[:0]
		for _, n := range names {
			if !have[n] {
				kept = append(kept, n)
			}
		}
		rep.Skipped = len(names) - len(kept)
		names = kept
	}
	if run.Total == 0 || (run.Complete() && len(names) == 0) {
		rep.AlertID, err = f.alert.settle(ctx, runID, true)
		return rep, err
	}
	enqueued, failed := f.enqueue(ctx, runID, names)
	rep.Enqueued, rep.Failed = enqueued, len(failed)
	f.metrics.Emit(nil, metrics.Values{"SweepNamesEnqueued": float64(enqueued), "SweepEnqueueFailures": float64(len(failed))})
	slog.InfoContext(ctx, "sweep run enqueued", "runId", runID, "names", rep.Names, "enqueued", enqueued, "failed", len(failed), "resumed", rep.Resumed)
	if len(failed) == 0 {
		if err := f.runs.MarkEnqueued(ctx, runID, f.cfg.Now()); err != nil {
			return rep, err
		}
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("enqueue sweep run %s: %d of %d names refused by SQS (%v)", runID, len(failed), len(names), failed[0])
	}
	return rep, nil
}

// enqueue sends one message per name in batches of 10, retrying the
// entries SQS refused (a batch answers per entry: Successful and Failed,
// Amazon SQS API Reference "SendMessageBatch") with a doubling backoff;
// sender faults (SenderFault true: the entry itself is bad) are not
// retried. It returns how many SQS accepted and an error per name refused.
func (f *Fanout) enqueue(ctx context.Context, runID string, names []string) (int, []error) {
	var failed []error
	sent := 0
	for start := 0; start < len(names); start += maxBatchEntries {
		batch := names[start:min(start+maxBatchEntries, len(names))]
		pending := map[string]string{} // entry id -> name
		for i, name := range batch {
			pending[strconv.Itoa(i)] = name
		}
		wait := f.cfg.Backoff
		for attempt := 1; len(pending) > 0; attempt++ {
			entries := make([]sqstypes.SendMessageBatchRequestEntry, 0, len(pending))
			for i := range batch { // entry order = name order
				id := strconv.Itoa(i)
				if name, ok := pending[id]; ok {
					body, _ := json.Marshal(Message{Name: name, RunID: runID})
					entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(string(body))})
				}
			}
			out, err := f.q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(f.cfg.QueueURL), Entries: entries})
			retry := map[string]string{}
			if err != nil {
				if attempt >= f.cfg.SendAttempts || ctx.Err() != nil {
					for _, name := range pending {
						failed = append(failed, fmt.Errorf("send sweep message for %s: %w", name, err))
					}
					break
				}
				retry = pending
			} else {
				last := attempt >= f.cfg.SendAttempts
				answered := map[string]bool{}
				for _, s := range out.Successful {
					if _, known := pending[aws.ToString(s.Id)]; known {
						sent++
						answered[aws.ToString(s.Id)] = true
					}
				}
				for _, e := range out.Failed {
					id := aws.ToString(e.Id)
					name, known := pending[id]
					if !known {
						continue
					}
					answered[id] = true
					if e.SenderFault || last {
						failed = append(failed, fmt.Errorf("send sweep message for %s: %s: %s", name, aws.ToString(e.Code), aws.ToString(e.Message)))
						continue
					}
					retry[id] = name
				}
				for id, name := range pending { // neither successful nor failed: an incomplete answer
					switch {
					case answered[id]:
					case last:
						failed = append(failed, fmt.Errorf("send sweep message for %s: SQS did not answer for the entry", name))
					default:
						retry[id] = name
					}
				}
			}
			pending = retry
			if len(pending) == 0 {
				break
			}
			if err := f.cfg.Sleep(ctx, wait); err != nil {
				for _, name := range pending {
					failed = append(failed, fmt.Errorf("send sweep message for %s: %w", name, err))
				}
				break
			}
			wait *= 2
		}
	}
	return sent, failed
}

// WorkerConfig is the worker's configuration.
type WorkerConfig struct {
	// MaxReceiveCount is the queue's redrive maxReceiveCount: on that
	// receive the worker records the name as failed (the run completes and
	// its alert names it) before the message goes to the dead-letter queue.
	MaxReceiveCount int
	// NameInterval spaces the names one worker sweeps (its share of
	// ExportCertificate's rate: docs/performance.md); 0 does not wait.
	NameInterval time.Duration
	MaxAttempts  int // the sweep's node attempts, for the alert's wording (default 3)
	Now          func() time.Time
	Sleep        func(ctx context.Context, d time.Duration) error
}

// Worker sweeps the names of an SQS batch.
type Worker struct {
	sweep   *Sweeper
	certs   certGetter
	runs    runStore
	alert   alerter
	metrics *metrics.Emitter
	cfg     WorkerConfig

	mu   sync.Mutex
	last time.Time // when the previous name started (pacing)
}

// NewWorker wires the worker around the per-name sweep.
func NewWorker(sw *Sweeper, certs certGetter, runs runStore, alerts publisher, m *metrics.Emitter, cfg WorkerConfig) *Worker {
	if cfg.MaxReceiveCount == 0 {
		cfg.MaxReceiveCount = 3
	}
	sharedDefaults(&cfg.MaxAttempts, &cfg.Now, &cfg.Sleep)
	return &Worker{sweep: sw, certs: certs, runs: runs, metrics: m, cfg: cfg,
		alert: alerter{runs: runs, alerts: alerts, maxAttempts: cfg.MaxAttempts, now: cfg.Now}}
}

// Handle sweeps each message's name and answers the messages that failed
// (a partial batch response: the event source mapping's
// FunctionResponseTypes holds ReportBatchItemFailures, AWS Lambda
// Developer Guide "Handling errors for an SQS event source in Lambda"), so
// one failing name never makes the others run again.
func (w *Worker) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	resp, _ := w.handle(ctx, ev.Records)
	return resp, nil
}

// handle also returns the reports of the names it swept (the local drain
// prints them).
func (w *Worker) handle(ctx context.Context, msgs []events.SQSMessage) (events.SQSEventResponse, []NameReport) {
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	var reports []NameReport
	for _, m := range msgs {
		nr, err := w.one(ctx, m)
		if nr != nil {
			reports = append(reports, *nr)
		}
		if err != nil {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp, reports
}

// one handles one message; an error leaves it to SQS's next delivery (or
// its dead-letter queue). The report is nil when nothing was swept.
func (w *Worker) one(ctx context.Context, m events.SQSMessage) (*NameReport, error) {
	var msg Message
	if err := json.Unmarshal([]byte(m.Body), &msg); err != nil || msg.Name == "" || msg.RunID == "" {
		// Never sweepable: it goes to the dead-letter queue after
		// maxReceiveCount deliveries, where the alarm shows it.
		slog.ErrorContext(ctx, "sweep message is not a name of a run", "messageId", m.MessageId)
		return nil, fmt.Errorf("sweep message %s: want {\"name\", \"runId\"}", m.MessageId)
	}
	prior, err := w.runs.Result(ctx, msg.RunID, msg.Name)
	if err != nil {
		slog.ErrorContext(ctx, "sweep of a name failed", "name", msg.Name, "runId", msg.RunID, "error", err)
		return nil, err
	}
	if prior != nil && !prior.Failed() {
		slog.InfoContext(ctx, "sweep message delivered again; the name has its result", "name", msg.Name, "runId", msg.RunID)
		return nil, nil
	}
	attempts, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
	nr, err := w.sweepOne(ctx, msg.Name)
	if err != nil {
		w.metrics.Emit(nil, metrics.Values{"SweepNameFailures": 1})
		slog.ErrorContext(ctx, "sweep of a name failed", "name", msg.Name, "runId", msg.RunID, "error", err, "attempt", attempts)
		nr.Error = err.Error()
		if attempts < w.cfg.MaxReceiveCount {
			return &nr, err
		}
		// The last delivery: record the failure so that the run completes
		// and its alert names the name; the message still fails, and SQS
		// moves it to the dead-letter queue.
		if rerr := w.finish(ctx, msg.RunID, NameResult{Report: nr, SweptAt: w.cfg.Now().UTC(), Attempts: attempts}); rerr != nil {
			slog.ErrorContext(ctx, "recording a failed sweep failed", "name", msg.Name, "runId", msg.RunID, "error", rerr)
		}
		return &nr, err
	}
	w.metrics.Emit(nil, metrics.Values{"SweepNamesSwept": 1})
	if err := w.finish(ctx, msg.RunID, NameResult{Report: nr, SweptAt: w.cfg.Now().UTC(), Attempts: attempts}); err != nil {
		// Swept, not recorded: the redelivery sweeps again, which the
		// per-name unit tolerates (its deploys go through the pipeline's claims).
		slog.ErrorContext(ctx, "sweep of a name failed", "name", msg.Name, "runId", msg.RunID, "error", err)
		return &nr, err
	}
	return &nr, nil
}

// sweepOne reads the name's META item and sweeps it; a name deleted (or
// being deleted) since the run listed it is reported as skipped.
func (w *Worker) sweepOne(ctx context.Context, name string) (NameReport, error) {
	c, err := w.certs.GetCert(ctx, name)
	if err != nil {
		return NameReport{Name: name}, err
	}
	if !sweepable(c) {
		return NameReport{Name: name, Skipped: "gone"}, nil
	}
	if err := w.pace(ctx); err != nil {
		return NameReport{Name: name}, err
	}
	return w.sweep.sweepName(ctx, *c)
}

// pace keeps NameInterval between the starts of this worker's names.
func (w *Worker) pace(ctx context.Context) error {
	if w.cfg.NameInterval <= 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.last.IsZero() {
		if wait := w.last.Add(w.cfg.NameInterval).Sub(w.cfg.Now()); wait > 0 {
			if err := w.cfg.Sleep(ctx, wait); err != nil {
				return err
			}
		}
	}
	w.last = w.cfg.Now()
	return nil
}

// finish records the result and, when it completed the run, sends the
// run's alert.
func (w *Worker) finish(ctx context.Context, runID string, res NameResult) error {
	run, err := w.runs.Record(ctx, runID, res, w.cfg.Now())
	if err != nil {
		return err
	}
	if run == nil || !run.Complete() {
		return nil
	}
	if _, err := w.alert.settle(ctx, runID, true); err != nil {
		// The name is recorded; the next scheduled run sends the alert.
		slog.ErrorContext(ctx, "alert for the sweep run failed", "runId", runID, "error", err)
	}
	return nil
}

// alerter sends a run's one alert.
type alerter struct {
	runs        runStore
	alerts      publisher
	maxAttempts int
	now         func() time.Time
}

// settle claims the run's alert (complete: only once every name has a
// result), composes it from the recorded results and publishes it. It
// returns "" without error when another invocation has it or there is
// nothing to say.
func (a alerter) settle(ctx context.Context, runID string, complete bool) (string, error) {
	err := a.runs.ClaimAlert(ctx, runID, complete, a.now(), AlertLease)
	if errors.Is(err, ErrClaimed) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	run, err := a.runs.Get(ctx, runID)
	if err == nil && run == nil {
		err = fmt.Errorf("sweep run %s vanished", runID)
	}
	var results []NameResult
	if err == nil {
		results, err = a.runs.Results(ctx, runID)
	}
	id := ""
	if err == nil {
		if alert, ok := RunAlert(*run, results, a.maxAttempts); ok {
			id, err = a.alerts.Publish(ctx, alert)
		}
	}
	if err != nil {
		if rerr := a.runs.ReleaseAlert(ctx, runID); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return "", err
	}
	if err := a.runs.SettleAlert(ctx, runID, id, a.now()); err != nil {
		// Published; a retry after the lease would send it again (the one
		// window where it is at least once, not exactly once).
		return id, err
	}
	slog.InfoContext(ctx, "sweep run settled", "runId", runID, "names", run.Total, "results", len(results), "alertMessageId", id)
	return id, nil
}

// RunAlert composes a run's alert: the names at risk (notify words them),
// the names the sweep gave up on, and, for a run that never completed, how
// many names have no result. False when there is nothing to say.
func RunAlert(run Run, results []NameResult, maxAttempts int) (notify.Alert, bool) {
	names := make([]notify.SweepName, 0, len(results))
	for _, r := range results {
		n := r.Report
		risks := n.Risks
		if r.Failed() {
			risks = append(append([]string(nil), risks...), fmt.Sprintf("the sweep failed on each of %d deliveries (last: %s); its message is in the sweep dead-letter queue", r.Attempts, n.Error))
		}
		names = append(names, notify.SweepName{Name: n.Name, DaysToExpiry: n.DaysToExpiry, Risks: risks, Exhausted: n.Exhausted})
	}
	a, ok := notify.SweepRisks(names, maxAttempts)
	if missing := run.Total - len(results); missing > 0 {
		if !ok {
			a = notify.Alert{Kind: "sweep-risks", Title: fmt.Sprintf("sweep: run %s did not complete", run.ID)}
		}
		a.Facts = append(a.Facts, fmt.Sprintf("%d of the run's %d names have no result: their messages are still queued or were dead-lettered unrecorded (see the sweep dead-letter queue)", missing, run.Total))
		ok = true
	}
	return a, ok
}
