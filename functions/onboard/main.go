// Command onboard is the API Gateway handler: POST/GET/DELETE /certificates.
package main

import (
	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/app"
)

func main() {
	app.Start[events.APIGatewayProxyRequest, events.APIGatewayProxyResponse]("onboard", app.OnboardRequired, app.Onboard)
}
