package localenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/certferry/certferry/internal/acmstandin"
	"github.com/certferry/certferry/internal/schedulerstandin"
)

// Proxy is the local rig's endpoint: an HTTP proxy on a free loopback port
// in front of the emulator, with the stand-ins moto lacks as layers: the
// EventBridge Scheduler stand-in outermost (it answers every request signed
// for "scheduler", holding ScheduleGroup), then the ACM ones (Revocations
// outside Chain outside Renewals). Every process pointed at URL (the demo,
// the CLI in another shell, certferry-node's SDK) sees one ACM — renewed
// certificates under their ARN, chains that issue their leaf, revocations —
// and one Scheduler, whose due schedules the process that started the proxy
// fires (StepFirer).
type Proxy struct {
	URL         string
	Target      string
	Renewals    *acmstandin.Renewals
	Chain       *acmstandin.Chain
	Revocations *acmstandin.Revocations
	Scheduler   *schedulerstandin.StandIn
	srv         *http.Server
}

// StartProxy starts the proxy in front of target (the emulator's URL).
func StartProxy(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("emulator endpoint %q is not a URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the rig's proxy: %w", err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), Target: target, Renewals: acmstandin.NewRenewals(), Chain: acmstandin.NewChain(),
		Revocations: acmstandin.NewRevocations(), Scheduler: schedulerstandin.New(ScheduleGroup)}
	var h http.Handler = httputil.NewSingleHostReverseProxy(u)
	h = p.Renewals.Layer(h)
	h = p.Chain.Layer(h)
	h = p.Revocations.Layer(h)
	h = p.Scheduler.Layer(h)
	p.srv = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Printf("certferry: the rig's proxy stopped: %v\n", err)
		}
	}()
	return p, nil
}

// Close stops the proxy.
func (p *Proxy) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}
