// Package probe handshakes TLS endpoints from the outside and tells which
// certificate they serve: the leaf's SHA-256 fingerprint (certferry's
// format, certs.Fingerprint), serial, subject, names, issuer and end date,
// compared with the fingerprint certferry deployed.
//
// A probe checks the identity of what is served, not trust: the comparison
// is of fingerprints only, and the chain is never verified for it (a
// private-CA certificate or a server that omits its intermediates still
// matches when it serves the deployed leaf). Whether the chain verifies for
// the name probed is reported beside it, as a fact for the reader.
//
// An endpoint that cannot be probed (refused, timed out, not TLS, no
// certificate) is an error of that target, never a mismatch.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/spec"
)

// Target is one endpoint, as spec.ParseProbe reads a name's probes: a
// DNS name or an IP literal (IPv6 without brackets), a port, and the SNI
// to send (ParseProbe sets it to the host for a DNS name; empty: none, as
// for an address without /sni=, RFC 6066 §3: "Literal IPv4 and IPv6
// addresses are not permitted in HostName").
type Target = spec.ProbeTarget

// Status is a probe's verdict.
type Status string

// Statuses of a Result.
const (
	StatusMatch    Status = "match"    // the endpoint serves the expected leaf
	StatusMismatch Status = "mismatch" // it serves another certificate (Served says which)
	StatusServed   Status = "served"   // it served a leaf, and nothing was expected
	StatusError    Status = "error"    // no certificate was seen: ErrorKind says why
)

// ErrorKind classifies why a probe saw no certificate.
type ErrorKind string

// Error kinds of a Result.
const (
	ErrDNS           ErrorKind = "dns"            // the name did not resolve
	ErrRefused       ErrorKind = "refused"        // connection refused (nothing listens)
	ErrUnreachable   ErrorKind = "unreachable"    // no route to the host or network
	ErrTimeout       ErrorKind = "timeout"        // the probe's time (or the caller's deadline) ran out
	ErrNotTLS        ErrorKind = "not_tls"        // the peer answered, but not with TLS
	ErrTLSAlert      ErrorKind = "tls_alert"      // the peer refused the handshake with an alert (unknown SNI, no common cipher …)
	ErrClosed        ErrorKind = "closed"         // the peer closed the connection during the handshake
	ErrNoCertificate ErrorKind = "no_certificate" // the handshake completed without a certificate
	ErrHandshake     ErrorKind = "handshake"      // any other handshake failure
	ErrCanceled      ErrorKind = "canceled"       // the caller gave up
)

// Served is what an endpoint presented.
type Served struct {
	Fingerprint string    `json:"fingerprintSha256"` // SHA-256 of the leaf's DER, "AB:CD:…"
	Serial      string    `json:"serial"`            // lower-case hex (certs.SerialHex)
	Subject     string    `json:"subject"`
	DNSNames    []string  `json:"dnsNames,omitempty"`
	IPAddresses []string  `json:"ipAddresses,omitempty"`
	Issuer      string    `json:"issuer"`
	NotAfter    time.Time `json:"notAfter"`
	// ChainLength counts the certificates sent, leaf included.
	ChainLength int `json:"chainLength"`
	// Verified: the chain sent verifies to the trust store for the server
	// name probed (the address when no name was sent). A side fact: the
	// comparison never depends on it.
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verifyError,omitempty"`
	TLSVersion  string `json:"tlsVersion"`
}

// Result is one target's probe.
type Result struct {
	Target     string    `json:"target"`               // as asked
	ServerName string    `json:"serverName,omitempty"` // the SNI sent
	Address    string    `json:"address,omitempty"`    // the address the TCP connection reached
	Status     Status    `json:"status"`
	ErrorKind  ErrorKind `json:"errorKind,omitempty"`
	Error      string    `json:"error,omitempty"`
	Served     *Served   `json:"served,omitempty"`
}

// Mismatch reports a target that served another certificate.
func (r Result) Mismatch() bool { return r.Status == StatusMismatch }

// Failed reports a target that could not be probed.
func (r Result) Failed() bool { return r.Status == StatusError }

// Dialer opens TCP connections (net.Dialer; tests count and gate dials).
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Config tunes a Prober. Zero fields take the defaults.
type Config struct {
	Timeout     time.Duration  // per target: connect + handshake (default 5 s)
	Concurrency int            // targets probed at once (default 4)
	Roots       *x509.CertPool // trust store for the Verified fact; nil: the system's
	Dialer      Dialer         // nil: a net.Dialer
}

// Default limits.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultConcurrency = 4
	// MaxTargets bounds one check (a name's probes plus the two addresses
	// the sweep adds for an EMAIL-validated certificate).
	MaxTargets = 64
)

// Prober runs handshakes.
type Prober struct{ cfg Config }

// New returns a Prober with cfg's zero fields at their defaults.
func New(cfg Config) *Prober {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &net.Dialer{}
	}
	return &Prober{cfg: cfg}
}

// Check probes every target, at most Concurrency at a time, each within
// Timeout and all within ctx's deadline, and compares what each served
// with expected (a fingerprint in certs.Fingerprint's format; "" compares
// nothing). Results are in the order of targets; targets not started when
// ctx ends are errors of kind timeout (or canceled).
func (p *Prober) Check(ctx context.Context, targets []Target, expected string) []Result {
	out := make([]Result, len(targets))
	sem := make(chan struct{}, p.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			out[i] = ctxResult(t, ctx.Err())
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = p.Probe(ctx, t, expected)
		}()
	}
	wg.Wait()
	return out
}

func ctxResult(t Target, err error) Result {
	r := Result{Target: t.String(), ServerName: t.SNI, Status: StatusError, ErrorKind: ErrTimeout,
		Error: "not probed: the check's deadline passed"}
	if errors.Is(err, context.Canceled) {
		r.ErrorKind, r.Error = ErrCanceled, "not probed: the check was canceled"
	}
	return r
}

// Probe handshakes one target and compares its leaf with expected.
func (p *Prober) Probe(ctx context.Context, t Target, expected string) Result {
	r := Result{Target: t.String(), ServerName: t.SNI}
	if err := ctx.Err(); err != nil {
		return ctxResult(t, err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	served, addr, err := p.handshake(ctx, t)
	r.Address = addr
	if err != nil {
		r.Status, r.ErrorKind, r.Error = StatusError, classify(ctx, err), clean(err.Error())
		return r
	}
	r.Served = served
	switch {
	case expected == "":
		r.Status = StatusServed
	case strings.EqualFold(served.Fingerprint, expected):
		r.Status = StatusMatch
	default:
		r.Status = StatusMismatch
	}
	return r
}

// errNoCertificate: the handshake ended without a peer certificate.
var errNoCertificate = errors.New("the server presented no certificate")

// handshake connects and completes a TLS handshake with the target's SNI.
// InsecureSkipVerify: the handshake must succeed whatever the chain is, so
// that the served leaf can be compared; verification is done after it, as
// a side fact.
func (p *Prober) handshake(ctx context.Context, t Target) (*Served, string, error) {
	raw, err := p.cfg.Dialer.DialContext(ctx, "tcp", t.Addr())
	if err != nil {
		return nil, "", fmt.Errorf("connect to %s: %w", t.Addr(), err)
	}
	addr := raw.RemoteAddr().String()
	defer raw.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	conn := tls.Client(raw, &tls.Config{
		ServerName:         t.SNI,
		InsecureSkipVerify: true, // identity by fingerprint, not trust (package doc)
		MinVersion:         tls.VersionTLS10,
	})
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, addr, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return nil, addr, errNoCertificate
	}
	leaf := st.PeerCertificates[0]
	s := &Served{
		Fingerprint: certs.Fingerprint(leaf.Raw),
		Serial:      certs.SerialHex(leaf.SerialNumber),
		Subject:     leaf.Subject.String(),
		DNSNames:    leaf.DNSNames,
		Issuer:      leaf.Issuer.String(),
		NotAfter:    leaf.NotAfter.UTC(),
		ChainLength: len(st.PeerCertificates),
		TLSVersion:  tls.VersionName(st.Version),
	}
	for _, ip := range leaf.IPAddresses {
		s.IPAddresses = append(s.IPAddresses, ip.String())
	}
	s.Verified, s.VerifyError = p.verify(st.PeerCertificates, t)
	return s, addr, nil
}

// verify reports whether the chain sent verifies for the name probed (or
// the address). Never used for the comparison.
func (p *Prober) verify(chain []*x509.Certificate, t Target) (bool, string) {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	name := t.SNI
	if name == "" {
		name = t.Host
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: p.cfg.Roots, Intermediates: inter, DNSName: name})
	if err != nil {
		return false, clean(err.Error())
	}
	return true, ""
}

// classify names why a probe saw no certificate.
func classify(ctx context.Context, err error) ErrorKind {
	var (
		dnsErr    *net.DNSError
		recordErr tls.RecordHeaderError
		alert     tls.AlertError
		netErr    net.Error
	)
	switch {
	case errors.Is(err, errNoCertificate):
		return ErrNoCertificate
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return ErrTimeout
		}
		return ErrDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ErrUnreachable
	case errors.As(err, &recordErr):
		return ErrNotTLS
	case errors.As(err, &alert):
		return ErrTLSAlert
	case strings.Contains(err.Error(), "remote error: tls:"):
		// The alert a server sent, as crypto/tls reports it (a
		// *net.OpError wrapping tls.alert, which is not exported).
		return ErrTLSAlert
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return ErrTimeout
	case errors.Is(err, context.Canceled):
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ErrTimeout
		}
		return ErrCanceled
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return ErrClosed
	}
	return ErrHandshake
}

// clean makes an error text safe to store and show: one line, printable,
// at most 300 bytes.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}
