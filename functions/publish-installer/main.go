// Command publish-installer is the InstallerPublication custom resource: it
// publishes the node installer builds its Lambda package carries (next to
// bootstrap, named certferry-node-<goos>-<goarch>[.exe]) to the stack's
// installer bucket and answers CloudFormation.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/certferry/certferry/internal/publish"
)

func main() {
	slog.SetDefault(lambdacontext.NewLogger())
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "certferry publish-installer: locate the package: %v\n", err)
		os.Exit(1)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRetryMaxAttempts(5))
	if err != nil {
		fmt.Fprintf(os.Stderr, "certferry publish-installer: AWS configuration: %v\n", err)
		os.Exit(1)
	}
	h := publish.NewHandler(publish.NewPublisher(s3.NewFromConfig(awsCfg)), filepath.Dir(exe))
	lambda.Start(h.Handle)
}
