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

// Start is every function's main: JSON logs, configuration read through
// lookup (the main's os.LookupEnv) with every missing setting named at
// once, the SDK configuration (5 attempts per call), then the Lambda loop
// on the handler build returns. It never returns.
func Start(name string, lookup func(string) (string, bool), required []string, build func(aws.Config, config.Config) any) {
	slog.SetDefault(lambdacontext.NewLogger())
	cfg, err := config.Load(lookup, required...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "certferry %s: configuration: %v\n", name, err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRetryMaxAttempts(5))
	if err != nil {
		fmt.Fprintf(os.Stderr, "certferry %s: AWS configuration: %v\n", name, err)
		os.Exit(1)
	}
	lambda.Start(build(awsCfg, cfg))
}
