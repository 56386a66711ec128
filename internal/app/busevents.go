package app

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/metrics"
)

// busEvents is the emitter of certferry's own events: PutEvents to
// CERTFERRY_EVENT_BUS, or the account's default bus in the function's
// region (template.yaml allows events:PutEvents there only).
func busEvents(awsCfg aws.Config, cfg config.Config, m *metrics.Emitter) *busevents.Emitter {
	return busevents.New(eventbridge.NewFromConfig(awsCfg), cfg.EventBus, m)
}
