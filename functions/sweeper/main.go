// Command sweeper runs certferry's scheduled reconcile: missed renewals,
// failed and new nodes, stuck deployments, renewal risks, metrics.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/config"
)

func main() {
	slog.SetDefault(lambdacontext.NewLogger())
	cfg, err := config.Load(os.LookupEnv, app.SweeperRequired...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "certferry sweeper: configuration:", err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRetryMaxAttempts(5))
	if err != nil {
		fmt.Fprintln(os.Stderr, "certferry sweeper: AWS configuration:", err)
		os.Exit(1)
	}
	lambda.Start(app.Sweeper(awsCfg, cfg, nil).Handle)
}
