// Command sweeper runs certferry's scheduled reconcile: it enqueues one
// message per certificate name on the sweep queue (the sweep-worker
// function sweeps them) and sends the previous run's risk alert when no
// worker could.
package main

import (
	"encoding/json"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/sweeper"
)

func main() {
	app.Start[json.RawMessage, sweeper.RunReport]("sweeper", app.SweeperRequired, app.Sweeper)
}
