// Command probe handshakes outside endpoints for the tracker and the
// sweeper and answers which certificate each serves ({targets,
// expectedFingerprint} in, one result per target out). It runs in a VPC
// when the stack's ProbeSubnetIds and ProbeSecurityGroupIds are set.
package main

import (
	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/probe"
)

func main() {
	app.Start[probe.Request, probe.Response]("probe", app.ProbeRequired, app.Probe)
}
