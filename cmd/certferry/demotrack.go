package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/tracker"
)

// nodeOutput answers GetCommandInvocation with moto's status and the output
// the demo's node really printed (moto's own answer has no output).
type nodeOutput struct {
	*ssm.Client
	stdout string
}

func (n nodeOutput) GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, optFns ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	o, err := n.Client.GetCommandInvocation(ctx, in, optFns...)
	if err != nil {
		return nil, err
	}
	o.StandardOutputContent = aws.String(n.stdout)
	return o, nil
}

// demoTrack delivers SSM's "invocation Success" events for shop-web's
// command to the tracker (both tagged instances played by the one local
// node whose output it reads), prints `certferry status`, and runs a sweep.
func demoTrack(ctx context.Context, awsCfg aws.Config, cfg config.Config, stdout string, say func(string, ...any)) error {
	inv := inventory.NewStore(dynamodb.NewFromConfig(awsCfg), cfg.Table)
	c, err := inv.GetCert(ctx, "shop-web")
	if err != nil || c == nil {
		return fmt.Errorf("read shop-web: %v", err)
	}
	dep, err := inv.GetDeployment(ctx, "shop-web", c.LastDeploymentID)
	if err != nil || dep == nil {
		return fmt.Errorf("read shop-web's deployment: %v", err)
	}
	tr := tracker.New(inv, nodeOutput{Client: ssm.NewFromConfig(awsCfg), stdout: stdout},
		notify.NewPublisher(sns.NewFromConfig(awsCfg), cfg.TopicARN), metrics.New(io.Discard), tracker.Config{Document: cfg.Document})
	raw, err := os.ReadFile("events/tracker-invocation-success.json")
	if err != nil {
		return err
	}
	say("\n== tracker: SSM reports each invocation of command %s", dep.CommandID)
	for i, id := range dep.InstanceIDs {
		ev := strings.NewReplacer("00000000-1111-2222-3333-444444444444", dep.CommandID, "i-0123456789abcdef0", id,
			"3b2c1d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d", fmt.Sprintf("3b2c1d4e-5f60-4a7b-8c9d-%012d", i),
			`"certferry-install"`, fmt.Sprintf("%q", cfg.Document)).Replace(string(raw))
		out, err := tr.Handle(ctx, []byte(ev))
		if err != nil {
			return fmt.Errorf("tracker: %w", err)
		}
		b, _ := json.Marshal(out)
		say("  %s", b)
	}
	say("\n== certferry status")
	var sb strings.Builder
	if err := status(ctx, handlerCaller(app.Onboard(awsCfg, cfg)), "", &sb, time.Now()); err != nil {
		return err
	}
	say("%s", indent(sb.String(), "  "))
	say("\n== sweeper (nodes resolved with EC2 DescribeInstances: the emulator has no DescribeInstanceInformation)")
	rep, err := app.Sweeper(awsCfg, cfg, localenv.EC2Nodes{API: ec2.NewFromConfig(awsCfg)}).Handle(ctx, nil)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	b, _ := json.MarshalIndent(rep, "  ", "  ")
	say("  %s", b)
	return nil
}
