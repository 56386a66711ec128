package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/certferry/certferry/internal/config"
)

// Handler is a function's handler: one event of type E in, one answer of
// type R out, the shape aws-lambda-go's StartHandlerFunc checks at compile
// time.
type Handler[E, R any] interface {
	Handle(ctx context.Context, event E) (R, error)
}

// Start is every function's main: JSON logs, the configuration read from
// the environment (os.LookupEnv) with every missing setting named at once,
// the SDK configuration (5 attempts per call), then the Lambda loop on the
// handler build returns, built with production Options (the zero value).
// It never returns. The event and answer types are named by the caller, so
// a handler of another shape fails to compile:
//
//	app.Start[json.RawMessage, tracker.Outcome]("tracker", app.TrackerRequired, app.Tracker)
func Start[E, R any, H Handler[E, R]](name string, required []string, build func(aws.Config, config.Config, Options) H) {
	slog.SetDefault(lambdacontext.NewLogger())
	cfg, err := config.Load(os.LookupEnv, required...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "certferry %s: configuration: %v\n", name, err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRetryMaxAttempts(5))
	if err != nil {
		fmt.Fprintf(os.Stderr, "certferry %s: AWS configuration: %v\n", name, err)
		os.Exit(1)
	}
	lambda.StartHandlerFunc(build(awsCfg, cfg, Options{}).Handle)
}
