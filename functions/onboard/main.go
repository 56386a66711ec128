// Command onboard is the API Gateway handler: POST/GET/DELETE /certificates.
package main

import (
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/config"
)

func main() {
	app.Start("onboard", os.LookupEnv, app.OnboardRequired, func(a aws.Config, c config.Config) any { return app.Onboard(a, c).Handle })
}
