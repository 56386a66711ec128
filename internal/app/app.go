// Package app builds each function's handler from an aws.Config and a
// config.Config, so the Lambda mains and `certferry invoke` run the same code.
package app

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/renewal"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/schedule"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/sweeper"
	"github.com/certferry/certferry/internal/tracker"
)

// OnboardRequired lists the settings the onboard function needs.
var OnboardRequired = []string{config.EnvTable, config.EnvDocument}

// RenewalRequired and TrackerRequired list the settings of the
// event-driven functions: both deploy or alert (the sweep's: sweep.go).
var (
	RenewalRequired = []string{config.EnvTable, config.EnvDocument, config.EnvTopicARN}
	TrackerRequired = RenewalRequired
)

// Parts are the shared services, built once per cold start.
type Parts struct {
	Inventory *inventory.Store
	Bundles   *bundle.Store
	ACM       *certs.Client
	Fleet     *fleet.Fleet
	Pipeline  *pipeline.Pipeline
	// Rollouts runs waved and gated deployments over the pipeline
	// (WithRollouts).
	Rollouts *rollout.Engine
}

// WithRollouts builds the rollout engine on the parts: nodes resolved by
// opts.Nodes (else SSM DescribeInstanceInformation), timed steps through
// opts.Scheduler (else EventBridge Scheduler when configured, else none:
// the sweep steps overdue rollouts), alerts on the configured topic,
// opts.Now as its clock.
func (p *Parts) WithRollouts(awsCfg aws.Config, cfg config.Config, opts Options) *Parts {
	var sched rolloutScheduler = opts.Scheduler
	if sched == nil {
		if s := NewScheduler(awsCfg, cfg); s != nil {
			sched = s // a nil *Scheduler must not become a non-nil interface
		}
	}
	pub := alerts(awsCfg, cfg)
	p.Rollouts = rollout.New(p.Pipeline, p.Inventory, p.ACM, opts.nodes(awsCfg), sched, pub, rollout.Config{
		Now: opts.Now, NotifySuccess: cfg.NotifySuccess,
	}).WithEvents(busEvents(awsCfg, cfg, opts.metrics())).
		WithProbes(newProbes(awsCfg, cfg, opts, p.Inventory, pub))
	return p
}

// rolloutScheduler is what the engine asks of EventBridge Scheduler.
type rolloutScheduler interface {
	At(ctx context.Context, st schedule.Step) error
	Cancel(ctx context.Context, st schedule.Step) error
}

// NewParts builds the services from SDK clients.
func NewParts(awsCfg aws.Config, cfg config.Config) *Parts {
	p := &Parts{
		Inventory: newStore(awsCfg, cfg),
		Bundles:   bundle.NewStore(secretsmanager.NewFromConfig(awsCfg), cfg.SecretPrefix, cfg.KMSKeyID),
		ACM:       certs.NewClient(acm.NewFromConfig(awsCfg)),
		Fleet: fleet.New(ssm.NewFromConfig(awsCfg), fleet.Options{
			Document: cfg.Document, MaxConcurrency: cfg.MaxConcurrency, MaxErrors: cfg.MaxErrors,
			Installer: fleet.Installer(cfg.Installer),
		}),
	}
	p.Pipeline = pipeline.New(p.ACM, p.Bundles, p.Inventory, p.Fleet, pipeline.Config{Region: awsCfg.Region, AllowedPrefixes: cfg.AllowedPrefixes}).
		WithUnmanaged(fleet.NewResolver(ssm.NewFromConfig(awsCfg)))
	return p
}

// Options are what tests, the demo, the benchmarks and the CLI override.
// The zero value is production: every field left zero takes the value
// below, so the Lambda mains pass Options{}.
type Options struct {
	// SSM answers the tracker's reads (which step ran on a node, that
	// step's output, the command's target count). Nil: the SSM client of
	// the aws.Config. The demo, tests and benchmarks supply node output
	// the emulator cannot.
	SSM TrackerSSM
	// Nodes resolves a name's targets to the nodes they match now, for
	// the sweep. Nil: SSM DescribeInstanceInformation (fleet.Resolver).
	Nodes NodeResolver
	// Metrics receives the CloudWatch embedded-metric lines. Nil:
	// os.Stdout, which Lambda ships to CloudWatch Logs.
	Metrics io.Writer
	// Sweep tunes the sweep. A zero RenewBeforeDays takes the
	// configuration's (CERTFERRY_RENEW_BEFORE_DAYS); other zero fields take
	// the sweeper's defaults.
	Sweep sweeper.Config
	// Prober runs the outside probes of the tracker and the sweep. Nil:
	// the probe function CERTFERRY_PROBE_FUNCTION names, else in-process
	// (probe.go).
	Prober Prober
	// Scheduler creates the rollouts' one-time steps (window, pause,
	// deadline, reminder). Nil: EventBridge Scheduler when the
	// configuration has the schedule settings (NewScheduler), else none
	// (the sweep steps overdue rollouts).
	Scheduler RolloutScheduler
	// Now is the clock of the pipeline and the rollout engine; nil is
	// time.Now. Integration tests move it on instead of sleeping.
	Now func() time.Time
	// SweepPacing is the time a sweep worker keeps between the starts of
	// its names. Zero: its share of ExportCertificate's rate
	// (SweepNameInterval); negative: no wait (tests and benchmarks, which
	// count calls instead of pacing them).
	SweepPacing time.Duration
}

// RolloutScheduler creates and deletes one-time rollout steps.
type RolloutScheduler = rolloutScheduler

// nodes is opts.Nodes, else SSM DescribeInstanceInformation.
func (o Options) nodes(awsCfg aws.Config) NodeResolver {
	if o.Nodes != nil {
		return o.Nodes
	}
	return fleet.NewResolver(ssm.NewFromConfig(awsCfg))
}

func (o Options) ssm(awsCfg aws.Config) TrackerSSM {
	if o.SSM != nil {
		return o.SSM
	}
	return ssm.NewFromConfig(awsCfg)
}

func (o Options) metrics() *metrics.Emitter {
	if o.Metrics != nil {
		return metrics.New(o.Metrics)
	}
	return metrics.New(os.Stdout)
}

// Onboard returns the API handler (options: Nodes, Scheduler, Now):
// onboarding and redeploys of waved names go through the rollout engine.
func Onboard(awsCfg aws.Config, cfg config.Config, opts Options) *api.Handler {
	p := newParts(awsCfg, cfg, opts)
	// API Gateway gives up after 29 s: keep export retries inside that.
	p.ACM.ExportAttempts = 4
	return api.NewHandler(p.Rollouts, p.Inventory).
		WithSecrets(pipeline.NewSecretRemover(secretsmanager.NewFromConfig(awsCfg), cfg.SecretPrefix)).
		WithLifecycle(Lifecycle(awsCfg, cfg, p)).
		WithAlarms(api.NewAlarmChecker(NewCloudWatch(awsCfg), awsCfg.Region))
}

// NewCloudWatch is the CloudWatch client of the stop-alarm check, on AWS
// JSON 1.0: one of the three protocols CloudWatch serves (botocore
// cloudwatch 2010-08-01 model: protocols smithy-rpc-v2-cbor, json, query;
// jsonVersion 1.0, awsQueryCompatible). The SDK's default since v1.53 is
// CBOR; JSON is the one the rig's model check reads and moto 5.2 serves
// (it has no route for RPC v2 CBOR), so the exact request is tested.
func NewCloudWatch(awsCfg aws.Config) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) {
		o.Protocol = awsjson.New10(cwschemas.GraniteServiceVersion20100801)
	})
}

// alerts is the publisher on the configured SNS topic.
func alerts(awsCfg aws.Config, cfg config.Config) *notify.Publisher {
	return notify.NewPublisher(sns.NewFromConfig(awsCfg), cfg.TopicARN)
}

// Renewal returns the ACM / AWS Health event and rollout step handler
// (options: Nodes, Scheduler, Now, and Metrics, where the EventsNotSent
// metric of its Certificate At Risk events goes).
func Renewal(awsCfg aws.Config, cfg config.Config, opts Options) *renewal.Handler {
	p := newParts(awsCfg, cfg, opts)
	return renewal.NewHandler(p.Inventory, p.Inventory, p.Rollouts, p.ACM, alerts(awsCfg, cfg)).
		WithAtRisk(Lifecycle(awsCfg, cfg, p)).
		WithEvents(busEvents(awsCfg, cfg, opts.metrics()))
}

// newParts is NewParts with the pipeline on opts.Now and the rollout
// engine.
func newParts(awsCfg aws.Config, cfg config.Config, opts Options) *Parts {
	p := NewParts(awsCfg, cfg)
	if opts.Now != nil {
		p.Pipeline = pipeline.New(p.ACM, p.Bundles, p.Inventory, p.Fleet,
			pipeline.Config{Region: awsCfg.Region, AllowedPrefixes: cfg.AllowedPrefixes, Now: opts.Now}).
			WithUnmanaged(fleet.NewResolver(ssm.NewFromConfig(awsCfg)))
	}
	return p.WithRollouts(awsCfg, cfg, opts)
}

// TrackerSSM is what the tracker asks SSM: which step ran on the node
// (ListCommandInvocations with Details), that step's output and the
// command's target count.
type TrackerSSM interface {
	GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, optFns ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
	ListCommandInvocations(ctx context.Context, in *ssm.ListCommandInvocationsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error)
	ListCommands(ctx context.Context, in *ssm.ListCommandsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
}

var _ TrackerSSM = (*ssm.Client)(nil)

// Tracker returns the SSM status-change handler (options: SSM, Metrics;
// Nodes, Scheduler, Now for the rollouts it moves on).
func Tracker(awsCfg aws.Config, cfg config.Config, opts Options) *tracker.Tracker {
	p := newParts(awsCfg, cfg, opts)
	m := opts.metrics()
	inv, pub := p.Inventory, alerts(awsCfg, cfg)
	return newTracker(inv, opts.ssm(awsCfg), pub, m, cfg).WithEvents(busEvents(awsCfg, cfg, m)).
		WithProbes(newProbes(awsCfg, cfg, opts, inv, pub)).WithRollouts(p.Rollouts)
}

// newStore is the inventory with the configured retention of finished
// deployments (unset: the store's default).
func newStore(awsCfg aws.Config, cfg config.Config) *inventory.Store {
	s := inventory.NewStore(dynamodb.NewFromConfig(awsCfg), cfg.Table)
	if cfg.DeployRetentionDays > 0 {
		s.DeployRetention = time.Duration(cfg.DeployRetentionDays) * 24 * time.Hour
	}
	return s
}

// newTracker wires a tracker on an inventory the caller already holds
// (the sweeper concludes deployments through the tracker it shares its
// inventory with).
func newTracker(inv *inventory.Store, api TrackerSSM, alerts *notify.Publisher, m *metrics.Emitter, cfg config.Config) *tracker.Tracker {
	return tracker.New(inv, api, alerts, m, tracker.Config{Document: cfg.Document, NotifySuccess: cfg.NotifySuccess})
}

// NodeResolver finds the nodes a spec's targets match now.
type NodeResolver interface {
	Resolve(ctx context.Context, targets []spec.Target) ([]string, error)
}

var _ NodeResolver = (*fleet.Resolver)(nil)
