// Command renewal handles ACM certificate events and AWS Health ACM renewal
// events from EventBridge: renewed certificates are deployed, renewals that
// need a person are alerted on.
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
	cfg, err := config.Load(os.LookupEnv, app.RenewalRequired...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "certferry renewal: configuration:", err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRetryMaxAttempts(5))
	if err != nil {
		fmt.Fprintln(os.Stderr, "certferry renewal: AWS configuration:", err)
		os.Exit(1)
	}
	lambda.Start(app.Renewal(awsCfg, cfg).Handle)
}
