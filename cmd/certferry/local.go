package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	schedtypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/cli"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/probe"
	"github.com/certferry/certferry/internal/renewal"
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

// LocalUsage is `certferry local`'s usage text.
const LocalUsage = `usage: certferry local up [--seed] [--real]
       certferry local proxy
       certferry local schedules

Creates what certferry's handlers need at AWS_ENDPOINT_URL (moto_server
locally): the inventory table, the SSM document, the SNS topic, the KMS key
and the installer bucket with certferry-node's builds; idempotent. Prints
the settings as export lines: eval "$(certferry local up)".

  --seed   also create something to try it with: an exportable public
           certificate, a private CA and a certificate from it, and two EC2
           instances tagged env=prod (emulator only; each run makes new ones)
  --real   allow running without AWS_ENDPOINT_URL, against the AWS account
           and region your credentials reach (it says which first)

local proxy serves, in front of the emulator at AWS_ENDPOINT_URL, the ACM
stand-ins moto lacks (RenewCertificate, chains that issue their certificate)
and prints the endpoint to use instead; with CERTFERRY_TABLE,
CERTFERRY_DOCUMENT and CERTFERRY_TOPIC_ARN set it delivers each renewal's
"ACM Certificate Available" event to the renewal handler, as EventBridge
would. It also serves EventBridge Scheduler (CERTFERRY_SCHEDULE_GROUP, which
local up exports, is created there) and, every second, delivers each due
timed rollout step (window, pause, deadline, remind) to the renewal handler,
as Scheduler and Lambda would: once, then the schedule is deleted; a failed
delivery is retried on the next second, 3 attempts in all. It logs each
schedule when it appears and each delivery. Runs until Ctrl-C.

local schedules lists the schedule group's pending steps, soonest first:
due time (UTC), time left, what each delivers (with AWS_ENDPOINT_URL at the
local proxy; without it, the stack's group in your AWS account).
`

// localFlags parses `local`'s arguments.
func localFlags(args []string, stderr io.Writer) (seed, real bool, err error) {
	if len(args) == 0 || args[0] != "up" {
		return false, false, cli.Usagef("local: the subcommands are up, proxy and schedules\n%s", LocalUsage)
	}
	fs := flag.NewFlagSet("local up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, LocalUsage) }
	s := fs.Bool("seed", false, "also create certificates and tagged instances to try with")
	r := fs.Bool("real", false, "run against the real AWS account when AWS_ENDPOINT_URL is unset")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, false, err
		}
		return false, false, cli.Usagef("%v\n%s", err, LocalUsage)
	}
	if fs.NArg() > 0 {
		return false, false, cli.Usagef("local up takes no arguments (got %q)\n%s", fs.Args(), LocalUsage)
	}
	return *s, *r, nil
}

// local runs `certferry local up [--seed] [--real]` and `local proxy`.
func local(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "proxy" {
		if len(args) > 1 {
			if args[1] == "-h" || args[1] == "--help" || args[1] == "-help" {
				fmt.Fprint(stderr, LocalUsage)
				return nil
			}
			return cli.Usagef("local proxy takes no arguments\n%s", LocalUsage)
		}
		return localProxy(ctx, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "schedules" {
		if len(args) > 1 {
			if args[1] == "-h" || args[1] == "--help" || args[1] == "-help" {
				fmt.Fprint(stderr, LocalUsage)
				return nil
			}
			return cli.Usagef("local schedules takes no arguments\n%s", LocalUsage)
		}
		return localSchedules(ctx, stdout)
	}
	seed, real, err := localFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the usage is printed
	}
	if err != nil {
		return err
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" && !real {
		return errors.New("AWS_ENDPOINT_URL is not set, so `local up` would create resources in the AWS account your credentials reach.\n" +
			"Point it at an emulator (MOTO_ACM_VALIDATION_WAIT=0 moto_server -p 5000 & export AWS_ENDPOINT_URL=http://127.0.0.1:5000), " +
			"or pass --real to use that account")
	}
	if endpoint == "" && seed {
		return errors.New("--seed runs only against an emulator: in a real account it would request charged exportable certificates and start EC2 instances")
	}
	cfg, err := loadAWS(ctx)
	if err != nil {
		return err
	}
	if endpoint != "" {
		if err := CheckLocalEndpoint(ctx, endpoint); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stderr, "certferry: local up --real:", realTarget(ctx, cfg))
	}
	env, err := localenv.Up(ctx, cfg, localenv.DocumentFile)
	if err != nil {
		return ActionableError(err, endpoint)
	}
	dir, err := os.MkdirTemp("", "certferry-installer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Like the stack: every platform (the first build of each takes a while).
	fmt.Fprintln(stderr, "certferry: building and publishing certferry-node for linux/amd64, linux/arm64, windows/amd64")
	in, err := localenv.PublishInstaller(ctx, cfg, dir, localenv.StackPlatforms...)
	if err != nil {
		return ActionableError(err, endpoint)
	}
	lines := append(env.Exports(), localenv.InstallerExports(in)...)
	if seed {
		s, err := localenv.Seed(ctx, cfg)
		if err != nil {
			return ActionableError(err, endpoint)
		}
		lines = append(lines, s.Exports()...)
	}
	fmt.Fprintln(stdout, strings.Join(lines, "\n"))
	return nil
}

// localProxy serves the ACM stand-ins in front of AWS_ENDPOINT_URL until
// ctx ends, delivering renewal events to the renewal handler when the
// handlers' settings are in the environment.
func localProxy(ctx context.Context, stdout, stderr io.Writer) error {
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint == "" {
		return errors.New("local proxy goes in front of an emulator: set AWS_ENDPOINT_URL to moto_server's address")
	}
	if err := CheckLocalEndpoint(ctx, endpoint); err != nil {
		return err
	}
	proxy, err := localenv.StartProxy(endpoint)
	if err != nil {
		return err
	}
	defer proxy.Close()
	fmt.Fprintf(stdout, "export AWS_ENDPOINT_URL=%s\n", proxy.URL)
	fmt.Fprintf(stderr, "certferry: ACM stand-ins in front of %s on %s until Ctrl-C (RenewCertificate counts only exports made through it)\n", endpoint, proxy.URL)
	var (
		handler *renewal.Handler
		steps   <-chan time.Time // nil: timed steps are not fired
		firer   *localenv.StepFirer
	)
	if cfg, err := config.Load(os.LookupEnv, app.RenewalRequired...); err == nil {
		awsCfg, err := loadAWS(ctx)
		if err != nil {
			return err
		}
		awsCfg.BaseEndpoint = aws.String(proxy.URL)
		handler = app.Renewal(awsCfg, cfg, app.Options{})
		if sc := cfg.Schedule; sc.Configured() {
			var stop func()
			firer, steps, stop = fireSteps(proxy, sc, func(ctx context.Context, ev json.RawMessage) (any, error) { return handler.Handle(ctx, ev) }, stderr)
			defer stop()
			fmt.Fprintf(stderr, "certferry: EventBridge Scheduler stand-in on %s: timed rollout steps of group %s go to the renewal handler when due (`certferry local schedules` lists them)\n", proxy.URL, sc.Group)
		} else {
			fmt.Fprintf(stderr, "certferry: timed rollout steps are not fired (%s is not set: run `certferry local up` and eval its output)\n", config.EnvScheduleGroup)
		}
	} else {
		fmt.Fprintf(stderr, "certferry: renewal events are printed, not delivered, and timed rollout steps are not fired (%v)\n", err)
	}
	deliver := func(kind, short string, ev []byte) {
		if handler == nil {
			fmt.Fprintf(stdout, "# %s: %s\n", kind, ev)
			return
		}
		out, err := handler.Handle(ctx, ev)
		if err != nil {
			fmt.Fprintf(stderr, "certferry: renewal handler: %v\n", err)
			return
		}
		b, _ := json.Marshal(out)
		fmt.Fprintf(stderr, "certferry: %s event delivered: %s\n", short, b)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-steps:
			firer.Tick(ctx, now)
		case ev := <-proxy.Renewals.Events():
			deliver("ACM Certificate Available (RENEWAL)", "renewal", ev)
		case ev := <-proxy.Revocations.Events():
			deliver("ACM Certificate Revoked", "revocation", ev)
		}
	}
}

// fireSteps plays EventBridge Scheduler for the proxy's stand-in on the
// real clock, as `local proxy` and `demo --keep` both do: the stand-in
// gets sc's group (the stack's AWS::Scheduler::ScheduleGroup), and on each
// tick of the returned channel (every second) the firer hands the
// schedules due by then to handle, as Scheduler invokes the renewal
// function (its Tick: call it with each tick). stop ends the ticks; sc
// must be Configured.
func fireSteps(proxy *localenv.Proxy, sc config.Schedule, handle func(context.Context, json.RawMessage) (any, error), log io.Writer) (firer *localenv.StepFirer, ticks <-chan time.Time, stop func()) {
	proxy.Scheduler.CreateGroup(sc.Group)
	ticker := time.NewTicker(time.Second)
	return &localenv.StepFirer{Schedules: proxy.Scheduler, Target: sc.TargetARN, Log: log, Handle: handle}, ticker.C, ticker.Stop
}

// localSchedules prints the pending timed rollout steps of
// CERTFERRY_SCHEDULE_GROUP's schedule group, soonest first.
func localSchedules(ctx context.Context, stdout io.Writer) error {
	group := os.Getenv(config.EnvScheduleGroup)
	if group == "" {
		return fmt.Errorf("%s is not set: run `certferry local up` and eval its output", config.EnvScheduleGroup)
	}
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return err
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint != "" {
		if err := CheckLocalEndpoint(ctx, endpoint); err != nil {
			return err
		}
	}
	pending, err := localenv.PendingSchedules(ctx, scheduler.NewFromConfig(awsCfg), group)
	var missing *schedtypes.ResourceNotFoundException
	if errors.As(err, &missing) && endpoint != "" {
		return fmt.Errorf("%w\nno schedule group %s at %s: point AWS_ENDPOINT_URL at `certferry local proxy` (its schedules live in that process), started with local up's settings", err, group, endpoint)
	}
	if err != nil {
		return ActionableError(err, endpoint)
	}
	if len(pending) == 0 {
		fmt.Fprintf(stdout, "no pending steps in schedule group %s\n", group)
		return nil
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DUE (UTC)\tIN\tSTEP\tSTATE\tSCHEDULE")
	for _, p := range pending {
		due, in := "-", "-"
		if !p.Due.IsZero() {
			due, in = p.Due.Format(time.RFC3339), p.Due.Sub(now).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", due, in, p.What, p.State, p.Name)
	}
	return tw.Flush()
}

// realTarget says which account and region `local up --real` is about to
// change: STS GetCallerIdentity when it answers, else the region only.
func realTarget(ctx context.Context, cfg aws.Config) string {
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Sprintf("creating certferry's resources in region %s (account unknown: sts get-caller-identity failed: %v)", cfg.Region, err)
	}
	return fmt.Sprintf("creating certferry's resources in account %s, region %s, as %s", aws.ToString(id.Account), cfg.Region, aws.ToString(id.Arn))
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
	// The whole fan-out in process: the scheduled side enqueues one
	// message per name (on CERTFERRY_SWEEP_QUEUE_URL, or a queue named
	// after the table), then the queue is drained through the worker.
	"sweeper": {app.LocalSweepRequired, func(ctx context.Context, awsCfg aws.Config, cfg config.Config, event []byte) (any, error) {
		var nodes app.NodeResolver
		if os.Getenv("AWS_ENDPOINT_URL") != "" {
			// The emulator lacks DescribeInstanceInformation: resolve EC2
			// instances by tag instead (hybrid nodes are not seen).
			fmt.Fprintln(os.Stderr, "certferry: AWS_ENDPOINT_URL is set: the sweep resolves nodes with EC2 DescribeInstances")
			nodes = localenv.EC2Nodes{API: ec2.NewFromConfig(awsCfg)}
		}
		h, err := app.LocalSweep(ctx, awsCfg, cfg, app.Options{Nodes: nodes})
		if err != nil {
			return nil, err
		}
		return h.Handle(ctx, event)
	}},
	// One SQS batch of the sweep queue through the worker, as the event
	// source mapping delivers it (events/sweep-worker-message.json); a
	// message of a run that does not exist is swept and not recorded.
	"sweep-worker": {app.SweepWorkerRequired, func(ctx context.Context, awsCfg aws.Config, cfg config.Config, event []byte) (any, error) {
		var ev events.SQSEvent
		if err := json.Unmarshal(event, &ev); err != nil {
			return nil, fmt.Errorf("event is not an SQS event: %w", err)
		}
		var nodes app.NodeResolver
		if os.Getenv("AWS_ENDPOINT_URL") != "" {
			fmt.Fprintln(os.Stderr, "certferry: AWS_ENDPOINT_URL is set: the sweep resolves nodes with EC2 DescribeInstances")
			nodes = localenv.EC2Nodes{API: ec2.NewFromConfig(awsCfg)}
		}
		return app.SweepWorker(awsCfg, cfg, app.Options{Nodes: nodes}).Handle(ctx, ev)
	}},
	"renewal": {app.RenewalRequired, func(ctx context.Context, awsCfg aws.Config, cfg config.Config, event []byte) (any, error) {
		return app.Renewal(awsCfg, cfg, app.Options{}).Handle(ctx, event)
	}},
	"probe": {app.ProbeRequired, func(ctx context.Context, awsCfg aws.Config, cfg config.Config, event []byte) (any, error) {
		var req probe.Request
		if err := json.Unmarshal(event, &req); err != nil {
			return nil, fmt.Errorf("event is not a probe request: %w", err)
		}
		return app.Probe(awsCfg, cfg, app.Options{}).Handle(ctx, req)
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
	if err := LocalPreflight(ctx, awsCfg, cfg.Table); err != nil {
		return err
	}
	out, err := fn.run(ctx, awsCfg, cfg, raw)
	if err != nil {
		return ActionableError(fmt.Errorf("%s handler: %w", function, err), os.Getenv("AWS_ENDPOINT_URL"))
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// ActionableError turns the errors of certferry's local paths (local up,
// invoke, the API verbs run against AWS_ENDPOINT_URL) into what to do about
// them, keeping the original error wrapped: a resource `local up` creates is
// missing → run it; nothing answers at the endpoint → start moto_server
// there. Other errors come back unchanged. endpoint is AWS_ENDPOINT_URL
// (empty: the real AWS, where only the missing-resource advice applies).
func ActionableError(err error, endpoint string) error {
	if err == nil {
		return nil
	}
	var (
		noTable *ddbtypes.ResourceNotFoundException
		noDoc   *ssmtypes.InvalidDocument
		noTopic *snstypes.NotFoundException
	)
	switch {
	case endpoint != "" && errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w\nnothing answers at %s: start moto_server there (MOTO_ACM_VALIDATION_WAIT=0 moto_server -p %s) or run `make demo`", err, endpoint, endpointPort(endpoint))
	case errors.As(err, &noTable):
		return fmt.Errorf("%w\nthe inventory table does not exist at this endpoint: run `certferry local up` and eval its output (CERTFERRY_TABLE=%s)", err, os.Getenv(config.EnvTable))
	case errors.As(err, &noDoc):
		return fmt.Errorf("%w\nthe SSM document does not exist at this endpoint: run `certferry local up` and eval its output", err)
	case errors.As(err, &noTopic):
		return fmt.Errorf("%w\nthe SNS topic does not exist at this endpoint: run `certferry local up` and eval its output", err)
	}
	return err
}

// CheckLocalEndpoint fails at once, with what to do, when nothing listens
// at endpoint (instead of the SDK's retries ending in "retry").
func CheckLocalEndpoint(ctx context.Context, endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return fmt.Errorf("AWS_ENDPOINT_URL %q is not a URL (want e.g. http://127.0.0.1:5000)", endpoint)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"https": "443"}[u.Scheme]+map[string]string{"http": "80"}[u.Scheme])
	}
	conn, err := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", host)
	if err != nil {
		return ActionableError(fmt.Errorf("connect to %s: %w", endpoint, err), endpoint)
	}
	conn.Close()
	return nil
}

func endpointPort(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.Port() != "" {
		return u.Port()
	}
	return "5000"
}

// LocalPreflight checks, before a local path runs a handler (whose answer
// to a missing resource is a retryable 502), that the endpoint answers and
// the inventory table exists, and says what to do when not. With
// AWS_ENDPOINT_URL unset it only checks the table.
func LocalPreflight(ctx context.Context, awsCfg aws.Config, table string) error {
	endpoint := os.Getenv("AWS_ENDPOINT_URL")
	if endpoint != "" {
		if err := CheckLocalEndpoint(ctx, endpoint); err != nil {
			return err
		}
	}
	if table == "" {
		return nil
	}
	if _, err := dynamodb.NewFromConfig(awsCfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}); err != nil {
		return ActionableError(fmt.Errorf("describe table %s: %w", table, err), endpoint)
	}
	return nil
}
