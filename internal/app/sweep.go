package app

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/sweeper"
)

// The sweep runs as two functions (sweeper.Fanout, sweeper.Worker): the
// scheduled one (functions/sweeper) enqueues one message per name on the
// sweep queue, the worker (functions/sweep-worker, an SQS event source
// mapping) sweeps one name per message. `certferry invoke sweeper` runs
// both in one process (LocalSweep).

// SweeperRequired lists the scheduled function's settings (it alerts and
// enqueues); SweepWorkerRequired the worker's (it deploys and alerts).
var (
	SweeperRequired     = []string{config.EnvTable, config.EnvDocument, config.EnvTopicARN, config.EnvSweepQueueURL}
	SweepWorkerRequired = RenewalRequired
	// LocalSweepRequired: the local run creates a queue when none is set.
	LocalSweepRequired = RenewalRequired
)

// ExportRate is ACM's ExportCertificate quota, about 5 calls per second
// per account and region (design brief, "ACM facts"; ACM User Guide
// "Quotas", API rate quotas). The sweep keeps its share of it by pacing
// names (a name exports at most once per sweep): docs/performance.md.
const ExportRate = 5

// Defaults of the fan-out's settings (the template's parameters).
const (
	DefaultSweepConcurrency     = 2 // event source mapping MaximumConcurrency (its minimum)
	DefaultSweepMaxReceiveCount = 3 // the sweep queue's redrive maxReceiveCount
	SweepBatchSize              = 5 // the event source mapping's BatchSize
)

// SweepNameInterval is how long one worker keeps between the starts of
// its names so that concurrency workers together start at most ExportRate
// names (so at most ExportRate exports) per second.
func SweepNameInterval(concurrency int) time.Duration {
	return time.Duration(concurrency) * time.Second / ExportRate
}

// SweepHandler is the scheduled function: one run per schedule event.
type SweepHandler struct{ Fanout *sweeper.Fanout }

// Handle starts the run of the schedule event: its id names the run, so
// the scheduler's retry of the same event resumes it.
func (h SweepHandler) Handle(ctx context.Context, raw json.RawMessage) (sweeper.RunReport, error) {
	return h.Fanout.Start(ctx, RunID(raw, time.Now()))
}

// RunID names a sweep run after its schedule event (time and id, as
// EventBridge sends them: "Amazon EventBridge events" structure); an event
// without an id (a hand-made one) gets a fresh id from now.
func RunID(raw json.RawMessage, now time.Time) string {
	var ev struct {
		ID   string `json:"id"`
		Time string `json:"time"`
	}
	_ = json.Unmarshal(raw, &ev)
	if ev.ID == "" || !runIDPart.MatchString(ev.ID) || !runIDPart.MatchString(ev.Time) {
		return "local-" + now.UTC().Format("20060102T150405.000000000Z")
	}
	return ev.Time + "_" + ev.ID
}

var runIDPart = regexp.MustCompile(`^[A-Za-z0-9:._+-]{1,64}$`)

// Sweeper returns the scheduled fan-out handler (options: Metrics).
func Sweeper(awsCfg aws.Config, cfg config.Config, opts Options) SweepHandler {
	return SweepHandler{newFanout(awsCfg, cfg, opts, sqs.NewFromConfig(awsCfg), cfg.SweepQueueURL)}
}

func newFanout(awsCfg aws.Config, cfg config.Config, opts Options, q *sqs.Client, url string) *sweeper.Fanout {
	runs := sweeper.NewRuns(dynamodb.NewFromConfig(awsCfg), cfg.Table)
	return sweeper.NewFanout(newStore(awsCfg, cfg), runs, q, alerts(awsCfg, cfg), opts.metrics(),
		sweeper.FanoutConfig{QueueURL: url, MaxAttempts: opts.Sweep.MaxAttempts})
}

// SweepWorkerHandler is the worker function: an SQS batch in, a partial
// batch response out.
type SweepWorkerHandler struct{ Worker *sweeper.Worker }

// Handle sweeps the batch's names.
func (h SweepWorkerHandler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	return h.Worker.Handle(ctx, ev)
}

// SweepWorker returns the worker handler (options: Nodes, SSM, Metrics,
// Sweep, SweepPacing).
func SweepWorker(awsCfg aws.Config, cfg config.Config, opts Options) SweepWorkerHandler {
	concurrency := cfg.SweepConcurrency
	if concurrency == 0 {
		concurrency = DefaultSweepConcurrency
	}
	return SweepWorkerHandler{newWorker(awsCfg, cfg, opts, SweepNameInterval(concurrency))}
}

func newWorker(awsCfg aws.Config, cfg config.Config, opts Options, interval time.Duration) *sweeper.Worker {
	p := newParts(awsCfg, cfg, opts)
	nodes := opts.nodes(awsCfg)
	scfg := opts.Sweep
	if scfg.RenewBeforeDays == 0 {
		scfg.RenewBeforeDays = cfg.RenewBeforeDays
	}
	pub := alerts(awsCfg, cfg)
	m := opts.metrics()
	bus := busEvents(awsCfg, cfg, m)
	track := newTracker(p.Inventory, opts.ssm(awsCfg), pub, m, cfg).WithEvents(bus).
		WithProbes(newProbes(awsCfg, cfg, opts, p.Inventory, pub)).WithRollouts(p.Rollouts)
	sw := sweeper.New(p.Inventory, p.ACM, p.Pipeline, p.Rollouts, nodes, track, pub, m, scfg).WithEvents(bus).
		WithProber(opts.prober(awsCfg, cfg))
	switch {
	case opts.SweepPacing < 0:
		interval = 0
	case opts.SweepPacing > 0:
		interval = opts.SweepPacing
	}
	maxReceive := cfg.SweepMaxReceiveCount
	if maxReceive == 0 {
		maxReceive = DefaultSweepMaxReceiveCount
	}
	runs := sweeper.NewRuns(dynamodb.NewFromConfig(awsCfg), cfg.Table)
	return sweeper.NewWorker(sw, p.Inventory, runs, pub, m, sweeper.WorkerConfig{
		MaxReceiveCount: maxReceive, NameInterval: interval, MaxAttempts: scfg.MaxAttempts, Now: scfg.Now})
}

// LocalSweeper runs a whole sweep in one process: the fan-out on the
// sweep queue, then the queue drained through the worker.
type LocalSweeper struct{ Local *sweeper.Local }

// Run sweeps every name in a new run.
func (l LocalSweeper) Run(ctx context.Context) (sweeper.Report, error) {
	return l.Local.Run(ctx, RunID(nil, time.Now()))
}

// Handle is Run for `certferry invoke sweeper`: the event's content does
// not matter, every local invocation is a new run.
func (l LocalSweeper) Handle(ctx context.Context, _ json.RawMessage) (sweeper.Report, error) {
	return l.Run(ctx)
}

// LocalSweep returns the in-process sweep (options: those of Sweeper and
// SweepWorker). With CERTFERRY_SWEEP_QUEUE_URL unset it uses (creating
// them when missing) a queue named after the table and its dead-letter
// queue, with the stack's redrive policy. One worker drains the queue,
// so it keeps the whole of ExportCertificate's rate to itself.
func LocalSweep(ctx context.Context, awsCfg aws.Config, cfg config.Config, opts Options) (LocalSweeper, error) {
	q := sqs.NewFromConfig(awsCfg)
	maxReceive := cfg.SweepMaxReceiveCount
	if maxReceive == 0 {
		maxReceive = DefaultSweepMaxReceiveCount
		cfg.SweepMaxReceiveCount = maxReceive
	}
	url := cfg.SweepQueueURL
	if url == "" {
		var err error
		if url, err = EnsureSweepQueue(ctx, q, cfg.Table, maxReceive); err != nil {
			return LocalSweeper{}, err
		}
	}
	return LocalSweeper{&sweeper.Local{
		Fanout:    newFanout(awsCfg, cfg, opts, q, url),
		Worker:    newWorker(awsCfg, cfg, opts, SweepNameInterval(1)),
		Queue:     q,
		QueueURL:  url,
		Region:    awsCfg.Region,
		BatchSize: SweepBatchSize,
	}}, nil
}

// queueNameUnsafe is what SQS refuses in a queue name (alphanumerics,
// hyphens and underscores, up to 80 characters: Amazon SQS API Reference
// "CreateQueue").
var queueNameUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// SweepQueueNames are the local sweep queue and dead-letter queue of a
// table.
func SweepQueueNames(table string) (queue, dlq string) {
	base := queueNameUnsafe.ReplaceAllString(table, "-")
	if len(base) > 60 {
		base = base[:60]
	}
	return base + "-sweep", base + "-sweep-dlq"
}

// EnsureSweepQueue creates (or finds: CreateQueue with the same
// attributes answers the existing queue) the local sweep queue and its
// dead-letter queue, and returns the queue's URL.
func EnsureSweepQueue(ctx context.Context, q *sqs.Client, table string, maxReceive int) (string, error) {
	name, dlqName := SweepQueueNames(table)
	dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(dlqName),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNameMessageRetentionPeriod): "1209600"}})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", dlqName, err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", fmt.Errorf("read the ARN of queue %s: %w", dlqName, err)
	}
	redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)],
		"maxReceiveCount": strconv.Itoa(maxReceive)})
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		string(sqstypes.QueueAttributeNameRedrivePolicy):     string(redrive),
		string(sqstypes.QueueAttributeNameVisibilityTimeout): "720",
	}})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}
