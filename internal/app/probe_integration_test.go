//go:build integration

package app

// Outside probes through the functions as wired for production, on moto:
// the tracker built by Tracker (no CERTFERRY_PROBE_FUNCTION: the probe
// code runs in-process, as locally) and the sweep built by Sweeper, with a
// Go TLS server on loopback that serves another certificate for the
// name's SNI.

import (
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/probe/probetest"
	"github.com/certferry/certferry/internal/sweeper"
	"github.com/certferry/certferry/internal/tracker"
)

// A probe that sees another certificate alerts: after the deployment
// succeeds (one SNS message with what was served and what was deployed),
// and in the sweep (a risk in its one alert).
func TestProbeSeesAnotherCertificate(t *testing.T) {
	t.Parallel()
	r := newTrackRig(t)
	nodes := r.launch(1, map[string]string{"env": "prod"})
	// What clients reach: a server still on another certificate.
	stray := probetest.Issue(t, 0x5eed, "shop.example.com")
	target := probetest.Target(probetest.Serve(t, map[string]probetest.Cert{"shop.example.com": stray}), "shop.example.com")
	body := strings.Replace(onboardBody(r.exportable("shop.example.com"), "shop-web"), `"targets":`, `"probes": [`+strconv.Quote(target)+`], "targets":`, 1)
	if status, ans := r.post(body); status != 202 {
		t.Fatalf("onboard: %d %v", status, ans)
	}
	c := r.cert("shop-web")
	if len(c.Probes) != 1 || c.Probes[0] != target {
		t.Fatalf("stored probes %v, want [%s]", c.Probes, target)
	}

	h := Tracker(r.aws, r.cfg, Options{Metrics: io.Discard})
	r.out.Out[nodes[0]] = resultLine("installed", c.Fingerprint, c.Serial, "installed shop-web")
	r.settle(c.LastCommandID)
	for _, file := range []string{"tracker-command-success.json", "tracker-invocation-success.json"} {
		out, err := h.Handle(r.ctx, r.status(file, c.LastCommandID, nodes[0]))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if file == "tracker-invocation-success.json" && (out.Status != tracker.StatusFinished || out.Deployment != inventory.OutcomeSucceeded) {
			t.Fatalf("deployment %+v, want finished succeeded", out)
		}
	}
	msgs := r.alerts()
	if len(msgs) != 1 {
		t.Fatalf("%d alerts, want the probe's one: %+v", len(msgs), msgs)
	}
	for _, want := range []string{"probe: shop-web serves another certificate at 1 of 1 endpoint(s)",
		"Deployed: serial " + c.Serial + ", SHA-256 " + c.Fingerprint,
		target + " (connected to 127.0.0.1:", "serves serial 5eed, SHA-256 " + stray.Fingerprint()} {
		if !strings.Contains(msgs[0].Subject+"\n"+msgs[0].Message, want) {
			t.Errorf("alert lacks %q:\n%s\n%s", want, msgs[0].Subject, msgs[0].Message)
		}
	}

	// The sweep: the same finding is a risk of the name in its one alert.
	rep, sent := r.sweepSent(sweeper.Config{})
	if len(sent) != 0 {
		t.Fatalf("the sweep sent %+v", sent)
	}
	risks := strings.Join(rep.Names[0].Risks, "\n")
	if !strings.Contains(risks, "probe sees another certificate than the deployed serial "+c.Serial+": "+target) ||
		!strings.Contains(risks, "serves serial 5eed") || rep.AlertID == "" {
		t.Fatalf("sweep report %+v, want the probe's mismatch as a risk in its alert", rep)
	}
}
