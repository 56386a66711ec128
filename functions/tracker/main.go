// Command tracker handles SSM command and invocation status-change events
// of certferry's document: node states, deployment outcomes, failure alerts.
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/config"
)

func main() {
	app.Start("tracker", os.LookupEnv, app.TrackerRequired, func(a aws.Config, c config.Config) any { return app.Tracker(a, c).Handle })
}
