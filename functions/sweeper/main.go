// Command sweeper runs certferry's scheduled reconcile: missed renewals,
// failed and new nodes, stuck deployments, renewal risks, metrics.
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/config"
)

func main() {
	app.Start("sweeper", os.LookupEnv, app.SweeperRequired, func(a aws.Config, c config.Config) any { return app.Sweeper(a, c, nil).Handle })
}
