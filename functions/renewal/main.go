// Command renewal handles ACM certificate events and AWS Health ACM renewal
// events from EventBridge: renewed certificates are deployed, renewals that
// need a person are alerted on.
package main

import (
	"encoding/json"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/renewal"
)

func main() {
	app.Start[json.RawMessage, renewal.Outcome]("renewal", app.RenewalRequired, app.Renewal)
}
