package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/cli"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/regions"
)

// caller sends one API request: to the deployed API (SigV4-signed) or,
// with no URL, to the API handler in this process against the table and
// AWS account of the environment (the same code the Lambda runs).
type caller = cli.Caller

func newCaller(ctx context.Context, apiURL string) (caller, error) {
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		return nil, err
	}
	if apiURL == "" {
		cfg, err := config.Load(os.LookupEnv, app.OnboardRequired...)
		if err != nil {
			return nil, fmt.Errorf("configuration (run `certferry local up` and eval its output, or pass -api URL): %w", err)
		}
		// Against an emulator, as invoke does: nothing listening or no
		// table says what to do now, instead of the handler's retryable
		// 502 after the SDK's retries.
		if os.Getenv("AWS_ENDPOINT_URL") != "" {
			if err := LocalPreflight(ctx, awsCfg, cfg.Table); err != nil {
				return nil, err
			}
		}
		return handlerCaller(app.Onboard(awsCfg, cfg, app.Options{})), nil
	}
	return cli.HTTPCaller(apiURL, awsCfg.Credentials, awsCfg.Region, http.DefaultClient)
}

// handlerCaller calls the API handler in this process.
func handlerCaller(h *api.Handler) caller { return cli.HandlerCaller(h) }

// status prints the status table of every name (or one name's nodes); the
// demo uses it too.
func status(ctx context.Context, call caller, name string, w io.Writer, now time.Time) error {
	env := cli.Env{Stdout: w, Connect: func(context.Context, string) (cli.Caller, error) { return call, nil }, Now: func() time.Time { return now }}
	var args []string
	if name != "" {
		args = []string{name}
	}
	return cli.RunStatus(ctx, env, args)
}

// statusRegions is `certferry status --regions …`: every account and
// region's inventory in one table (internal/regions).
func statusRegions(ctx context.Context, args []string, stdout io.Writer) error {
	env := cli.RegionsEnv{
		Stdout: stdout,
		Connect: func(ctx context.Context) (regions.Clients, error) {
			cfg, err := loadAWS(ctx)
			if err != nil {
				return nil, err
			}
			return regions.SDK{Config: cfg}, nil
		},
		LocalTable: os.Getenv(config.EnvTable),
		Now:        time.Now,
	}
	return cli.RunStatusRegions(ctx, env, args)
}
