// Package app builds each function's handler from an aws.Config and a
// config.Config, so the Lambda mains and `certferry invoke` run the same code.
package app

import (
	"context"
	"encoding/json"
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
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/sweeper"
	"github.com/certferry/certferry/internal/tracker"
)

// OnboardRequired lists the settings the onboard function needs.
var OnboardRequired = []string{config.EnvTable, config.EnvDocument}

// RenewalRequired, TrackerRequired and SweeperRequired list the settings
// of the event-driven functions: all three deploy or alert.
var (
	RenewalRequired = []string{config.EnvTable, config.EnvDocument, config.EnvTopicARN}
	TrackerRequired = RenewalRequired
	SweeperRequired = RenewalRequired
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

// Onboard returns the API handler.
func Onboard(awsCfg aws.Config, cfg config.Config) *api.Handler {
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

// Renewal returns the ACM / AWS Health event handler.
func Renewal(awsCfg aws.Config, cfg config.Config) *renewal.Handler {
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

// Tracker returns the SSM status-change handler.
func Tracker(awsCfg aws.Config, cfg config.Config) *tracker.Tracker {
	return NewTracker(awsCfg, cfg, ssm.NewFromConfig(awsCfg), os.Stdout)
}

// NewTracker is Tracker with SSM and the metrics output spelled out (the
// demo, tests and benchmarks supply node output moto cannot).
func NewTracker(awsCfg aws.Config, cfg config.Config, api TrackerSSM, metricsOut io.Writer) *tracker.Tracker {
	return newTracker(newStore(awsCfg, cfg), api, alerts(awsCfg, cfg), metrics.New(metricsOut), cfg)
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

func newTracker(inv *inventory.Store, api TrackerSSM, alerts *notify.Publisher, m *metrics.Emitter, cfg config.Config) *tracker.Tracker {
	return tracker.New(inv, api, alerts, m, tracker.Config{Document: cfg.Document, NotifySuccess: cfg.NotifySuccess})
}

// SweepHandler runs one sweep per scheduled event.
type SweepHandler struct{ Sweeper *sweeper.Sweeper }

// Handle ignores the schedule event's content: every invocation sweeps.
func (h SweepHandler) Handle(ctx context.Context, _ json.RawMessage) (sweeper.Report, error) {
	return h.Sweeper.Sweep(ctx)
}

// Sweeper returns the scheduled reconcile handler; nodes resolves the
// current target nodes (nil: SSM DescribeInstanceInformation).
func Sweeper(awsCfg aws.Config, cfg config.Config, nodes NodeResolver) SweepHandler {
	return NewSweeper(awsCfg, cfg, nodes, sweeper.Config{RenewBeforeDays: cfg.RenewBeforeDays})
}

// NodeResolver finds the nodes a spec's targets match now.
type NodeResolver interface {
	Resolve(ctx context.Context, targets []spec.Target) ([]string, error)
}

// NewSweeper is Sweeper with the sweep's configuration spelled out.
func NewSweeper(awsCfg aws.Config, cfg config.Config, nodes NodeResolver, scfg sweeper.Config) SweepHandler {
	p := NewParts(awsCfg, cfg)
	if nodes == nil {
		nodes = fleet.NewResolver(ssm.NewFromConfig(awsCfg))
	}
	pub := alerts(awsCfg, cfg)
	m := metrics.New(os.Stdout)
	track := newTracker(p.Inventory, ssm.NewFromConfig(awsCfg), pub, m, cfg)
	return SweepHandler{sweeper.New(p.Inventory, p.ACM, p.Pipeline, nodes, track, pub, m, scfg)}
}
