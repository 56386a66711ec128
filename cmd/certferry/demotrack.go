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
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
)

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
	cmd, err := ssm.NewFromConfig(awsCfg).ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(dep.CommandID)})
	if err != nil || len(cmd.Commands) != 1 {
		return fmt.Errorf("read command %s: %v", dep.CommandID, err)
	}
	// moto runs nothing; both tagged instances are played by the one local
	// node above, whose output the tracker reads.
	node := localenv.NodeOutput{Client: ssm.NewFromConfig(awsCfg), Out: map[string]string{}}
	for _, id := range cmd.Commands[0].InstanceIds {
		node.Out[id] = stdout
	}
	tr := app.Tracker(awsCfg, cfg, app.Options{SSM: node, Metrics: io.Discard})
	say("\n== tracker: SSM reports each invocation of command %s, then the command", dep.CommandID)
	type report struct{ file, instance string }
	var reports []report
	for _, id := range cmd.Commands[0].InstanceIds {
		reports = append(reports, report{"events/tracker-invocation-success.json", id})
	}
	reports = append(reports, report{"events/tracker-command-success.json", cmd.Commands[0].InstanceIds[0]})
	for i, rep := range reports {
		raw, err := os.ReadFile(rep.file)
		if err != nil {
			return err
		}
		b, err := localenv.StatusEvent(raw, dep.CommandID, rep.instance, cfg.Document, fmt.Sprintf("demo-status-%d", i))
		if err != nil {
			return err
		}
		out, err := tr.Handle(ctx, b)
		if err != nil {
			return fmt.Errorf("tracker: %w", err)
		}
		line, _ := json.Marshal(out)
		say("  %s", line)
	}
	say("\n== certferry status")
	var sb strings.Builder
	if err := status(ctx, handlerCaller(app.Onboard(awsCfg, cfg, app.Options{})), "", &sb, time.Now()); err != nil {
		return err
	}
	say("%s", indent(sb.String(), "  "))
	say("\n== sweeper (nodes resolved with EC2 DescribeInstances: the emulator has no DescribeInstanceInformation)")
	rep, err := app.Sweeper(awsCfg, cfg, app.Options{Nodes: localenv.EC2Nodes{API: ec2.NewFromConfig(awsCfg)}}).Handle(ctx, nil)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	b, _ := json.MarshalIndent(rep, "  ", "  ")
	say("  %s", b)
	return nil
}
