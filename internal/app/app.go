// Package app builds each function's handler from an aws.Config and a
// config.Config, so the Lambda mains and `certferry invoke` run the same code.
package app

import (
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
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/renewal"
)

// OnboardRequired lists the settings the onboard function needs.
var OnboardRequired = []string{config.EnvTable, config.EnvDocument}

// RenewalRequired lists the settings the renewal function needs.
var RenewalRequired = []string{config.EnvTable, config.EnvDocument, config.EnvTopicARN}

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
		Inventory: inventory.NewStore(dynamodb.NewFromConfig(awsCfg), cfg.Table),
		Bundles:   bundle.NewStore(secretsmanager.NewFromConfig(awsCfg), cfg.SecretPrefix, cfg.KMSKeyID),
		ACM:       certs.NewClient(acm.NewFromConfig(awsCfg)),
		Fleet: fleet.New(ssm.NewFromConfig(awsCfg), fleet.Options{
			Document: cfg.Document, MaxConcurrency: cfg.MaxConcurrency, MaxErrors: cfg.MaxErrors,
		}),
	}
	p.Pipeline = pipeline.New(p.ACM, p.Bundles, p.Inventory, p.Fleet, pipeline.Config{Region: awsCfg.Region})
	return p
}

// Onboard returns the API handler.
func Onboard(awsCfg aws.Config, cfg config.Config) *api.Handler {
	p := NewParts(awsCfg, cfg)
	// API Gateway gives up after 29 s: keep export retries inside that.
	p.ACM.ExportAttempts = 4
	return api.NewHandler(p.Pipeline, p.Inventory)
}

// Renewal returns the ACM / AWS Health event handler.
func Renewal(awsCfg aws.Config, cfg config.Config) *renewal.Handler {
	p := NewParts(awsCfg, cfg)
	alerts := notify.NewPublisher(sns.NewFromConfig(awsCfg), cfg.TopicARN)
	return renewal.NewHandler(p.Inventory, p.Inventory, p.Pipeline, p.ACM, alerts)
}
