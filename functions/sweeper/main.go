// Command sweeper runs certferry's scheduled reconcile: missed renewals,
// failed and new nodes, stuck deployments, renewal risks, metrics.
package main

import (
	"encoding/json"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/sweeper"
)

func main() {
	app.Start[json.RawMessage, sweeper.Report]("sweeper", app.SweeperRequired, app.Sweeper)
}
