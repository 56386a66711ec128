package app

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/probe"
	"github.com/certferry/certferry/internal/tracker"
)

// ProbeRequired lists the settings the probe function needs: none (it
// only dials out).
var ProbeRequired []string

// Prober runs one outside-probe check: the probe function in production
// (probe.Invoker, when CERTFERRY_PROBE_FUNCTION is set), the same code
// in-process otherwise (probe.Handler: the CLI, the demo, tests).
type Prober interface {
	Probe(ctx context.Context, req probe.Request) (probe.Response, error)
}

var (
	_ Prober = (*probe.Invoker)(nil)
	_ Prober = (*probe.Handler)(nil)
)

// Probe returns the probe function's handler. It takes no option (see
// Onboard).
func Probe(_ aws.Config, _ config.Config, _ Options) *probe.Handler {
	return probe.NewHandler(probe.New(probe.Config{}))
}

// prober is Options.Prober, else the probe function named by the
// configuration, else the probes in-process.
func (o Options) prober(awsCfg aws.Config, cfg config.Config) Prober {
	switch {
	case o.Prober != nil:
		return o.Prober
	case cfg.ProbeFunction != "":
		return probe.NewInvoker(lambda.NewFromConfig(awsCfg), cfg.ProbeFunction)
	}
	return probe.NewHandler(probe.New(probe.Config{}))
}

// newProbes is the tracker's probe checks (also what the rollout engine
// calls when a waved rollout is done: (*tracker.Probes).Check).
func newProbes(awsCfg aws.Config, cfg config.Config, opts Options, inv *inventory.Store, pub *notify.Publisher) *tracker.Probes {
	return tracker.NewProbes(inv, opts.prober(awsCfg, cfg), pub)
}
