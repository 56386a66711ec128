package app

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/lifecycle"
)

// Lifecycle builds the operator's actions (rotate, revoke, rebind,
// approve, delete's record) on p. Until the rollout engine is wired, a
// rebind deploys through the pipeline (Redeploy at once, Sync otherwise),
// nothing halts (the pipeline never deploys a REVOKED certificate) and
// approvals answer 501. Without a topic (CERTFERRY_TOPIC_ARN unset, e.g.
// a bare local run) the actions are recorded but not announced.
func Lifecycle(awsCfg aws.Config, cfg config.Config, p *Parts) *lifecycle.Service {
	lc := lifecycle.Config{
		Store: p.Inventory, ACM: p.ACM, Actions: certs.NewActions(acm.NewFromConfig(awsCfg)), Region: awsCfg.Region,
		Deployer: lifecycle.DeployFunc(p.Pipeline.Redeploy), Renewer: lifecycle.RenewFunc(p.Pipeline.Sync),
	}
	if cfg.TopicARN != "" {
		lc.Alerts = alerts(awsCfg, cfg)
	}
	return lifecycle.New(lc)
}
