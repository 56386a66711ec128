// Command sweep-worker sweeps one certificate name per message of the
// sweep queue (an SQS event source mapping with ReportBatchItemFailures):
// missed renewals, failed and new nodes, stuck deployments, risks, metrics.
package main

import (
	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/app"
)

func main() {
	app.Start[events.SQSEvent, events.SQSEventResponse]("sweep-worker", app.SweepWorkerRequired, app.SweepWorker)
}
