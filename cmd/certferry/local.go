package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/localenv"
)

func loadAWS(ctx context.Context) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRetryMaxAttempts(5)}
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, awsconfig.WithRegion("us-east-1"))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

func localUp(ctx context.Context, stdout io.Writer) error {
	cfg, err := loadAWS(ctx)
	if err != nil {
		return err
	}
	env, err := localenv.Up(ctx, cfg, localenv.DocumentFile)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "certferry-installer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Like the stack: every platform (the first build of each takes a while).
	fmt.Fprintln(os.Stderr, "certferry: building and publishing certferry-node for linux/amd64, linux/arm64, windows/amd64")
	in, err := localenv.PublishInstaller(ctx, cfg, dir, localenv.StackPlatforms...)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, strings.Join(append(env.Exports(), localenv.InstallerExports(in)...), "\n"))
	return nil
}

// functions maps each Lambda to a runner taking the raw event.
var functions = map[string]struct {
	required []string
	run      func(ctx context.Context, awsCfg aws.Config, cfg config.Config, event []byte) (any, error)
}{
	"onboard": {app.OnboardRequired, func(ctx context.Context, awsCfg aws.Config, cfg config.Config, event []byte) (any, error) {
		var req events.APIGatewayProxyRequest
		if err := json.Unmarshal(event, &req); err != nil {
			return nil, fmt.Errorf("event is not an API Gateway proxy request: %w", err)
		}
		return app.Onboard(awsCfg, cfg, app.Options{}).Handle(ctx, req)
	}},
	"tracker": {app.TrackerRequired, func(ctx context.Context, awsCfg aws.Config, cfg config.Config, event []byte) (any, error) {
		return app.Tracker(awsCfg, cfg, app.Options{}).Handle(ctx, event)
	}},
	"sweeper": {app.SweeperRequired, func(ctx context.Context, awsCfg aws.Config, cfg config.Config, event []byte) (any, error) {
		var nodes app.NodeResolver
		if os.Getenv("AWS_ENDPOINT_URL") != "" {
			// The emulator lacks DescribeInstanceInformation: resolve EC2
			// instances by tag instead (hybrid nodes are not seen).
			fmt.Fprintln(os.Stderr, "certferry: AWS_ENDPOINT_URL is set: the sweep resolves nodes with EC2 DescribeInstances")
			nodes = localenv.EC2Nodes{API: ec2.NewFromConfig(awsCfg)}
		}
		return app.Sweeper(awsCfg, cfg, app.Options{Nodes: nodes}).Handle(ctx, event)
	}},
	"renewal": {app.RenewalRequired, func(ctx context.Context, awsCfg aws.Config, cfg config.Config, event []byte) (any, error) {
		return app.Renewal(awsCfg, cfg, app.Options{}).Handle(ctx, event)
	}},
}

func functionNames() string {
	var names []string
	for n := range functions {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func invoke(ctx context.Context, function, eventFile, arn string, stdout io.Writer) error {
	fn, ok := functions[function]
	if !ok {
		return fmt.Errorf("unknown function %q (functions: %s)", function, functionNames())
	}
	raw, err := os.ReadFile(eventFile)
	if err != nil {
		return fmt.Errorf("read event: %w", err)
	}
	if arn != "" {
		raw = []byte(strings.ReplaceAll(string(raw), localenv.SampleARN, arn))
	}
	cfg, err := config.Load(os.LookupEnv, fn.required...)
	if err != nil {
		return fmt.Errorf("configuration (run `certferry local up` and eval its output): %w", err)
	}
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return err
	}
	out, err := fn.run(ctx, awsCfg, cfg, raw)
	if err != nil {
		return fmt.Errorf("%s handler: %w", function, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
