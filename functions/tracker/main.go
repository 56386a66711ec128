// Command tracker handles SSM command and invocation status-change events
// of certferry's document: node states, deployment outcomes, failure alerts.
package main

import (
	"encoding/json"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/tracker"
)

func main() {
	app.Start[json.RawMessage, tracker.Outcome]("tracker", app.TrackerRequired, app.Tracker)
}
