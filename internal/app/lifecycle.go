package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"

	"github.com/certferry/certferry/internal/caller"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/lifecycle"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/rollout"
)

// Lifecycle builds the operator's actions (rotate, revoke, rebind,
// approve, delete's record) on p: through p's rollout engine (waves,
// gates, halts, approvals); parts without one deploy through the pipeline
// (Redeploy at once, Sync otherwise), nothing halts and approvals answer
// 501. Without a topic (CERTFERRY_TOPIC_ARN unset, e.g.
// a bare local run) the actions are recorded but not announced.
func Lifecycle(awsCfg aws.Config, cfg config.Config, p *Parts) *lifecycle.Service {
	lc := lifecycle.Config{
		Store: p.Inventory, ACM: p.ACM, Actions: certs.NewActions(acm.NewFromConfig(awsCfg)), Region: awsCfg.Region,
		Deployer: lifecycle.DeployFunc(p.Pipeline.Redeploy), Renewer: lifecycle.RenewFunc(p.Pipeline.Sync),
	}
	if e := p.Rollouts; e != nil {
		// The rollout engine: a rebind deploys in waves (never gated) or
		// as a renewal (gated), a revocation halts, approvals release.
		lc.Deployer = lifecycle.DeployFunc(e.Redeploy)
		lc.Renewer = lifecycle.RenewFunc(func(ctx context.Context, name string, t inventory.Trigger) (pipeline.Result, error) {
			res, err := e.Renew(ctx, name, t)
			return res.Result, err
		})
		lc.Halter = e
		lc.Approver = lifecycle.ApproveFunc(func(ctx context.Context, name string, by caller.Caller) (lifecycle.ApprovalResult, error) {
			res, err := e.Approve(ctx, name, rollout.Caller{ARN: by.ARN, At: by.At})
			if errors.Is(err, rollout.ErrNotAwaitingApproval) {
				return lifecycle.ApprovalResult{}, fmt.Errorf("%w: %w", lifecycle.ErrNothingToApprove, err)
			}
			if err != nil {
				return lifecycle.ApprovalResult{}, err
			}
			what := fmt.Sprintf("rollout %s is %s", res.RolloutID, res.Phase)
			switch {
			case res.Phase == inventory.PhaseWaitingWindow:
				what += ", going at " + res.NotBefore.UTC().Format(time.RFC3339) + " (maintenance window)"
			case res.Waves > 0:
				what += fmt.Sprintf(": wave %d of %d sent", res.Wave, res.Waves)
			case res.CommandID != "":
				what += ": command " + res.CommandID + " sent"
			}
			return lifecycle.ApprovalResult{Name: name, RolloutID: res.RolloutID, Phase: string(res.Phase), What: what}, nil
		})
	}
	if cfg.TopicARN != "" {
		lc.Alerts = alerts(awsCfg, cfg)
	}
	return lifecycle.New(lc)
}
