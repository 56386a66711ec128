// Command tracker handles SSM command and invocation status-change events
// of certferry's document: node states, deployment outcomes, failure alerts.
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
	cfg, err := config.Load(os.LookupEnv, app.TrackerRequired...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "certferry tracker: configuration:", err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRetryMaxAttempts(5))
	if err != nil {
		fmt.Fprintln(os.Stderr, "certferry tracker: AWS configuration:", err)
		os.Exit(1)
	}
	lambda.Start(app.Tracker(awsCfg, cfg).Handle)
}
