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
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

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
	p.Pipeline = pipeline.New(p.ACM, p.Bundles, p.Inventory, p.Fleet, pipeline.Config{Region: awsCfg.Region, AllowedPrefixes: cfg.AllowedPrefixes})
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
	// SweepPacing is the time a sweep worker keeps between the starts of
	// its names. Zero: its share of ExportCertificate's rate
	// (SweepNameInterval); negative: no wait (tests and benchmarks, which
	// count calls instead of pacing them).
	SweepPacing time.Duration
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

// Onboard returns the API handler. It takes no option today; the
// parameter keeps every function's constructor one shape for Start.
func Onboard(awsCfg aws.Config, cfg config.Config, _ Options) *api.Handler {
	p := NewParts(awsCfg, cfg)
	// API Gateway gives up after 29 s: keep export retries inside that.
	p.ACM.ExportAttempts = 4
	return api.NewHandler(p.Pipeline, p.Inventory).
		WithSecrets(pipeline.NewSecretRemover(secretsmanager.NewFromConfig(awsCfg), cfg.SecretPrefix))
}

// alerts is the publisher on the configured SNS topic.
func alerts(awsCfg aws.Config, cfg config.Config) *notify.Publisher {
	return notify.NewPublisher(sns.NewFromConfig(awsCfg), cfg.TopicARN)
}

// Renewal returns the ACM / AWS Health event handler. It takes no option
// today (see Onboard).
func Renewal(awsCfg aws.Config, cfg config.Config, _ Options) *renewal.Handler {
	p := NewParts(awsCfg, cfg)
	return renewal.NewHandler(p.Inventory, p.Inventory, p.Pipeline, p.ACM, alerts(awsCfg, cfg))
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

// Tracker returns the SSM status-change handler (options: SSM, Metrics).
func Tracker(awsCfg aws.Config, cfg config.Config, opts Options) *tracker.Tracker {
	return newTracker(newStore(awsCfg, cfg), opts.ssm(awsCfg), alerts(awsCfg, cfg), opts.metrics(), cfg)
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
