// Command renewal handles ACM certificate events and AWS Health ACM renewal
// events from EventBridge: renewed certificates are deployed, renewals that
// need a person are alerted on.
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/config"
)

func main() {
	app.Start("renewal", os.LookupEnv, app.RenewalRequired, func(a aws.Config, c config.Config) any { return app.Renewal(a, c).Handle })
}
