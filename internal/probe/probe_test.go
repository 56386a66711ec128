package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
)

// testCert is a leaf signed by a test CA, for the names given.
type testCert struct {
	tls  tls.Certificate
	leaf *x509.Certificate
}

func (c testCert) fingerprint() string { return certs.Fingerprint(c.leaf.Raw) }

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certferry probe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, serial int64, names ...string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return testCert{tls: tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, leaf: leaf}
}

// tlsServer serves certificates by SNI (byName; "" for a hello without
// SNI) on a loopback address of the given network, until the test ends.
func tlsServer(t *testing.T, network string, byName map[string]testCert) *net.TCPAddr {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	ln, err := tls.Listen(network, addr, &tls.Config{
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, ok := byName[h.ServerName]
			if !ok {
				return nil, errors.New("no certificate for this name") // the client gets an alert
			}
			return &c.tls, nil
		},
	})
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	go acceptLoop(ln, func(c net.Conn) {
		_ = c.(*tls.Conn).Handshake()
		c.Close()
	})
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr)
}

// rawServer hands every connection to serve (not TLS).
func rawServer(t *testing.T, serve func(net.Conn)) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go acceptLoop(ln, serve)
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr)
}

func acceptLoop(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go serve(c)
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

func target(host string, a *net.TCPAddr, sni string) Target {
	return Target{Host: host, Port: a.Port, SNI: sni}
}

// Match, mismatch, SNI-dependent certificates over IPv4 and IPv6, and
// the errors that are not mismatches.
func TestProbe(t *testing.T) {
	ca := newCA(t)
	shop := ca.issue(t, 0x1001, "shop.example.com")
	other := ca.issue(t, 0x1002, "other.example.com")
	bare := ca.issue(t, 0x1003, "127.0.0.1", "::1")
	// wrong.example.com: a certificate served for a name it does not carry.
	names := map[string]testCert{"shop.example.com": shop, "other.example.com": other, "": bare, "wrong.example.com": shop}
	v4 := tlsServer(t, "tcp4", names)
	v6 := tlsServer(t, "tcp6", names)
	silent := rawServer(t, func(c net.Conn) { // accepts, never answers, until the client leaves
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	})
	http := rawServer(t, func(c net.Conn) {
		defer c.Close()
		_, _ = c.Read(make([]byte, 512))
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	})
	hangup := rawServer(t, func(c net.Conn) { c.Close() })

	p := New(Config{Timeout: 2 * time.Second, Roots: ca.pool})
	tests := []struct {
		name      string
		target    Target
		expected  string
		status    Status
		kind      ErrorKind
		served    testCert
		verified  bool
		sniOnWire string
	}{
		{name: "IPv4, SNI: the deployed certificate", target: target("127.0.0.1", v4, "shop.example.com"), expected: shop.fingerprint(),
			status: StatusMatch, served: shop, verified: true, sniOnWire: "shop.example.com"},
		{name: "IPv4, another SNI: another certificate", target: target("127.0.0.1", v4, "other.example.com"), expected: shop.fingerprint(),
			status: StatusMismatch, served: other, verified: true, sniOnWire: "other.example.com"},
		{name: "IPv6 in brackets, SNI", target: target("::1", v6, "shop.example.com"), expected: shop.fingerprint(),
			status: StatusMatch, served: shop, verified: true, sniOnWire: "shop.example.com"},
		{name: "IPv6 without SNI: the default certificate, no SNI sent", target: target("::1", v6, ""), expected: shop.fingerprint(),
			status: StatusMismatch, served: bare, verified: true},
		{name: "a DNS name: resolved, sent as SNI", target: target("localhost", v4, "localhost"), expected: shop.fingerprint(),
			status: StatusError, kind: ErrTLSAlert, sniOnWire: "localhost"},
		{name: "nothing expected: what is served", target: target("127.0.0.1", v4, "other.example.com"),
			status: StatusServed, served: other, verified: true, sniOnWire: "other.example.com"},
		{name: "unknown SNI: the server's alert, not a mismatch", target: target("127.0.0.1", v4, "nope.example.com"), expected: shop.fingerprint(),
			status: StatusError, kind: ErrTLSAlert, sniOnWire: "nope.example.com"},
		{name: "refused", target: Target{Host: "127.0.0.1", Port: closedPort(t)}, expected: shop.fingerprint(),
			status: StatusError, kind: ErrRefused},
		{name: "not TLS", target: target("127.0.0.1", http, "shop.example.com"), expected: shop.fingerprint(),
			status: StatusError, kind: ErrNotTLS, sniOnWire: "shop.example.com"},
		{name: "closed during the handshake", target: target("127.0.0.1", hangup, "shop.example.com"), expected: shop.fingerprint(),
			status: StatusError, kind: ErrClosed, sniOnWire: "shop.example.com"},
		{name: "a DNS name that does not resolve", target: Target{Host: "nonexistent.invalid", Port: 443, SNI: "nonexistent.invalid"}, expected: shop.fingerprint(),
			status: StatusError, kind: ErrDNS, sniOnWire: "nonexistent.invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := p.Probe(context.Background(), tc.target, tc.expected)
			if r.Status != tc.status || r.ErrorKind != tc.kind {
				t.Fatalf("status %s kind %q (%s), want %s %q", r.Status, r.ErrorKind, r.Error, tc.status, tc.kind)
			}
			if r.ServerName != tc.sniOnWire {
				t.Errorf("server name %q, want %q", r.ServerName, tc.sniOnWire)
			}
			if r.Target != tc.target.String() {
				t.Errorf("target %q, want %q", r.Target, tc.target.String())
			}
			if tc.status == StatusError {
				if r.Served != nil || r.Error == "" {
					t.Errorf("an error result with served %v and error %q", r.Served, r.Error)
				}
				return
			}
			s := r.Served
			if s == nil {
				t.Fatal("nothing served")
			}
			if s.Fingerprint != tc.served.fingerprint() || s.Serial != certs.SerialHex(tc.served.leaf.SerialNumber) ||
				!s.NotAfter.Equal(tc.served.leaf.NotAfter) || s.Subject != tc.served.leaf.Subject.String() ||
				s.Issuer != "CN=certferry probe test CA" || s.ChainLength != 2 {
				t.Errorf("served %+v, want the leaf %s", s, tc.served.leaf.Subject)
			}
			if s.Verified != tc.verified {
				t.Errorf("verified %v (%s), want %v", s.Verified, s.VerifyError, tc.verified)
			}
			if host, _, _ := net.SplitHostPort(r.Address); host != tc.target.Host {
				t.Errorf("connected to %s, want host %s", r.Address, tc.target.Host)
			}
		})
	}

	// A probe that times out: the silent server never answers the hello.
	t.Run("timeout", func(t *testing.T) {
		short := New(Config{Timeout: 50 * time.Millisecond})
		r := short.Probe(context.Background(), target("127.0.0.1", silent, "shop.example.com"), shop.fingerprint())
		if r.Status != StatusError || r.ErrorKind != ErrTimeout {
			t.Fatalf("status %s kind %s (%s), want a timeout error", r.Status, r.ErrorKind, r.Error)
		}
	})

	// Verification is a side fact: a chain the trust store does not know
	// still matches when the leaf is the deployed one.
	t.Run("untrusted chain still matches", func(t *testing.T) {
		untrusting := New(Config{Roots: x509.NewCertPool()})
		r := untrusting.Probe(context.Background(), target("127.0.0.1", v4, "shop.example.com"), shop.fingerprint())
		if r.Status != StatusMatch || r.Served.Verified || r.Served.VerifyError == "" {
			t.Fatalf("status %s verified %v (%q), want a match that does not verify", r.Status, r.Served.Verified, r.Served.VerifyError)
		}
	})
	// A name the certificate does not carry: served, compared, not verified.
	t.Run("verification is for the SNI name", func(t *testing.T) {
		r := p.Probe(context.Background(), target("127.0.0.1", v4, "other.example.com"), other.fingerprint())
		if r.Status != StatusMatch || !r.Served.Verified {
			t.Fatalf("status %s verified %v (%s)", r.Status, r.Served.Verified, r.Served.VerifyError)
		}
		r = p.Probe(context.Background(), target("127.0.0.1", v4, "wrong.example.com"), shop.fingerprint())
		if r.Status != StatusMatch || r.Served.Verified {
			t.Fatalf("status %s verified %v, want a match that does not verify for wrong.example.com", r.Status, r.Served.Verified)
		}
	})
}

// The fingerprint comparison ignores case (openssl prints upper case,
// some tools lower case).
func TestProbeFingerprintCase(t *testing.T) {
	ca := newCA(t)
	shop := ca.issue(t, 7, "shop.example.com")
	a := tlsServer(t, "tcp4", map[string]testCert{"shop.example.com": shop})
	lower := []byte(shop.fingerprint())
	for i, c := range lower {
		if c >= 'A' && c <= 'F' {
			lower[i] = c + 'a' - 'A'
		}
	}
	r := New(Config{}).Probe(context.Background(), target("127.0.0.1", a, "shop.example.com"), string(lower))
	if r.Status != StatusMatch {
		t.Fatalf("status %s (%s)", r.Status, r.Error)
	}
}

// gatedDialer counts the dials in flight and holds each until released.
type gatedDialer struct {
	inner    net.Dialer
	started  chan struct{}
	release  chan struct{}
	inFlight atomic.Int32
	mu       sync.Mutex
	max      int32
}

func (d *gatedDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	n := d.inFlight.Add(1)
	d.mu.Lock()
	d.max = max(d.max, n)
	d.mu.Unlock()
	d.started <- struct{}{}
	<-d.release
	defer d.inFlight.Add(-1)
	return d.inner.DialContext(ctx, network, addr)
}

// At most Concurrency targets are probed at once, and every target gets
// its result, in order.
func TestCheckConcurrencyCap(t *testing.T) {
	ca := newCA(t)
	shop := ca.issue(t, 9, "shop.example.com")
	a := tlsServer(t, "tcp4", map[string]testCert{"shop.example.com": shop})
	const n, limit = 7, 2
	d := &gatedDialer{started: make(chan struct{}, n), release: make(chan struct{})}
	p := New(Config{Concurrency: limit, Dialer: d, Timeout: time.Minute})
	targets := make([]Target, n)
	for i := range targets {
		targets[i] = target("127.0.0.1", a, "shop.example.com")
	}
	targets[3].SNI = "other.example.com" // an alert, in place
	done := make(chan []Result)
	go func() { done <- p.Check(context.Background(), targets, shop.fingerprint()) }()
	// Hold the first `limit` dials; release one each time another starts.
	for range limit {
		<-d.started
	}
	for range n - limit {
		d.release <- struct{}{}
		<-d.started
	}
	for range limit {
		d.release <- struct{}{}
	}
	res := <-done
	if d.max != limit {
		t.Errorf("%d probes ran at once, want exactly %d", d.max, limit)
	}
	for i, r := range res {
		want := StatusMatch
		if i == 3 {
			want = StatusError
		}
		if r.Status != want {
			t.Errorf("result %d: %s (%s), want %s", i, r.Status, r.Error, want)
		}
	}
}

// The caller's deadline bounds the whole check: targets not yet started
// are errors at once, a probe under way ends with it.
func TestCheckDeadline(t *testing.T) {
	silent := rawServer(t, func(c net.Conn) {
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	})
	d := &gatedDialer{started: make(chan struct{}, 8), release: make(chan struct{})}
	p := New(Config{Concurrency: 1, Dialer: d, Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	targets := []Target{target("127.0.0.1", silent, "a.example.com"), target("127.0.0.1", silent, "b.example.com"), target("127.0.0.1", silent, "c.example.com")}
	done := make(chan []Result)
	go func() { done <- p.Check(ctx, targets, "") }()
	<-d.started // the first probe dials; the others wait for its slot
	cancel()
	close(d.release)
	res := <-done
	for i, r := range res {
		if r.Status != StatusError || r.ErrorKind != ErrCanceled {
			t.Errorf("target %d: %s %s (%s), want canceled", i, r.Status, r.ErrorKind, r.Error)
		}
	}

	// An expired deadline: nothing is dialed, each target says timeout.
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	dials := &gatedDialer{started: make(chan struct{}, 8), release: make(chan struct{})}
	close(dials.release)
	res = New(Config{Dialer: dials}).Check(expired, targets, "")
	for i, r := range res {
		if r.ErrorKind != ErrTimeout {
			t.Errorf("target %d: kind %s, want timeout", i, r.ErrorKind)
		}
	}
	if got := len(dials.started); got != 0 {
		t.Errorf("%d dials after the deadline", got)
	}
}

// Requests take the probes grammar (spec.ParseProbe): a DNS name is also
// the SNI, an address sends none unless /sni= says, IPv6 in brackets.
func TestRequestTargets(t *testing.T) {
	tests := []struct {
		in      string
		want    Target
		wantErr bool
	}{
		{in: "shop.example.com:443", want: Target{Host: "shop.example.com", Port: 443, SNI: "shop.example.com"}},
		{in: "[2001:db8::1]:8443/sni=shop.example.com", want: Target{Host: "2001:db8::1", Port: 8443, SNI: "shop.example.com"}},
		{in: "[2001:db8::1]:8443", want: Target{Host: "2001:db8::1", Port: 8443}},
		{in: "10.0.0.5:443/sni=x", want: Target{Host: "10.0.0.5", Port: 443, SNI: "x"}},
		{in: "shop.example.com", wantErr: true},
		{in: "shop.example.com:0", wantErr: true},
		{in: "2001:db8::1:443", wantErr: true},
		{in: "[fe80::1%eth0]:443", wantErr: true},
		{in: "a.example.com:443/path", wantErr: true},
		{in: "a.example.com:443/sni=10.0.0.1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Request{Targets: []string{tc.in}}.Parse()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("err %v is not ErrBadRequest", err)
				}
				return
			}
			if got[0] != tc.want {
				t.Fatalf("%+v, want %+v", got[0], tc.want)
			}
		})
	}
}

// The handler refuses malformed requests before probing anything.
func TestHandlerRefuses(t *testing.T) {
	d := &gatedDialer{started: make(chan struct{}, 8), release: make(chan struct{})}
	close(d.release)
	h := NewHandler(New(Config{Dialer: d}))
	fp := "AB:" + "CD:" + "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00"
	many := make([]string, MaxTargets+1)
	for i := range many {
		many[i] = "h" + strconv.Itoa(i) + ".example.com:443"
	}
	for name, req := range map[string]Request{
		"no targets":      {ExpectedFingerprint: fp},
		"bad target":      {Targets: []string{"a.example.com:443", "nope"}, ExpectedFingerprint: fp},
		"bad fingerprint": {Targets: []string{"a.example.com:443"}, ExpectedFingerprint: "AB:CD"},
		"too many":        {Targets: many, ExpectedFingerprint: fp},
		"negative budget": {Targets: []string{"a.example.com:443"}, BudgetMillis: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := h.Handle(context.Background(), req); !errors.Is(err, ErrBadRequest) {
				t.Fatalf("err %v, want ErrBadRequest", err)
			}
		})
	}
	if len(d.started) != 0 {
		t.Fatalf("%d dials for refused requests", len(d.started))
	}
}
