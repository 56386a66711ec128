package probe

// Every probe here is a real handshake against an in-process Go TLS server
// on a loopback port; the STARTTLS servers speak just enough SMTP, IMAP and
// POP3 (written below) to upgrade the connection.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/testkit"
)

func cert(t *testing.T, domain string) tls.Certificate {
	t.Helper()
	e := testkit.NewExport(t, testkit.ECP256, domain, "unused-passphrase-0123456789")
	return tls.Certificate{Certificate: [][]byte{e.Leaf.Raw}, PrivateKey: e.Key, Leaf: e.Leaf}
}

// server accepts connections on network/addr and hands each to serve.
func server(t *testing.T, network, addr string, serve func(net.Conn)) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				serve(c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr)
}

// tlsServe answers the handshake with the certificate picked by SNI.
func tlsServe(bySNI map[string]tls.Certificate, fallback tls.Certificate) func(net.Conn) {
	cfg := &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if c, ok := bySNI[h.ServerName]; ok {
			return &c, nil
		}
		return &fallback, nil
	}}
	return func(c net.Conn) {
		tc := tls.Server(c, cfg)
		_ = tc.Handshake()
		tc.Close()
	}
}

// dialogue plays a plain-text exchange: for each step, write say (if any),
// then read one line when expect is set and check its prefix.
type step struct{ say, expect string }

func starttlsServe(steps []step, then func(net.Conn)) func(net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for _, s := range steps {
			if s.say != "" {
				if _, err := c.Write([]byte(s.say)); err != nil {
					return
				}
			}
			if s.expect != "" {
				l, err := br.ReadString('\n')
				if err != nil || !strings.HasPrefix(l, s.expect) {
					fmt.Fprintf(c, "500 unexpected %q\r\n", l)
					return
				}
			}
		}
		if then != nil {
			then(c)
		}
	}
}

var (
	smtpSteps = []step{
		{say: "220 mx.example.com ESMTP\r\n", expect: "EHLO "},
		{say: "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n", expect: "STARTTLS\r\n"},
		{say: "220 2.0.0 Ready to start TLS\r\n"},
	}
	imapSteps = []step{
		{say: "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n", expect: "a1 STARTTLS\r\n"},
		{say: "* CAPABILITY IMAP4rev1 STARTTLS\r\na1 OK Begin TLS negotiation now\r\n"},
	}
	pop3Steps = []step{
		{say: "+OK POP3 ready\r\n", expect: "STLS\r\n"},
		{say: "+OK Begin TLS negotiation\r\n"},
	}
)

func probe(t *testing.T, tgt Target) (string, error) {
	return probeWithin(t, tgt, 10*time.Second)
}

func probeWithin(t *testing.T, tgt Target, d time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	leaf, err := Served(ctx, tgt)
	if err != nil {
		return "", err
	}
	return leaf.Subject.CommonName, nil
}

func TestServed(t *testing.T) {
	a, b, mail := cert(t, "a.example.com"), cert(t, "b.example.com"), cert(t, "mail.example.com")
	sni := map[string]tls.Certificate{"a.example.com": a, "b.example.com": b}
	v4 := server(t, "tcp4", "127.0.0.1:0", tlsServe(sni, mail))
	v6 := server(t, "tcp6", "[::1]:0", tlsServe(sni, mail))
	smtpAddr := server(t, "tcp4", "127.0.0.1:0", starttlsServe(smtpSteps, tlsServe(nil, mail)))
	imapAddr := server(t, "tcp4", "127.0.0.1:0", starttlsServe(imapSteps, tlsServe(nil, mail)))
	pop3Addr := server(t, "tcp6", "[::1]:0", starttlsServe(pop3Steps, tlsServe(nil, mail)))

	cases := []struct {
		name string
		tgt  Target
		want string
	}{
		{"SNI picks a", Target{Address: "127.0.0.1", Port: v4.Port, ServerName: "a.example.com"}, "a.example.com"},
		{"SNI picks b", Target{Address: "127.0.0.1", Port: v4.Port, ServerName: "b.example.com"}, "b.example.com"},
		{"no SNI: the default certificate", Target{Address: "127.0.0.1", Port: v4.Port}, "mail.example.com"},
		{"IPv6 literal", Target{Address: "::1", Port: v6.Port, ServerName: "b.example.com"}, "b.example.com"},
		{"IPv6 literal in brackets", Target{Address: "[::1]", Port: v6.Port, ServerName: "a.example.com"}, "a.example.com"},
		{"host name", Target{Address: "localhost", Port: v4.Port, ServerName: "a.example.com"}, "a.example.com"},
		{"SMTP STARTTLS", Target{Address: "127.0.0.1", Port: smtpAddr.Port, ServerName: "mail.example.com", StartTLS: "smtp"}, "mail.example.com"},
		{"IMAP STARTTLS", Target{Address: "127.0.0.1", Port: imapAddr.Port, StartTLS: "imap"}, "mail.example.com"},
		{"POP3 STLS over IPv6", Target{Address: "::1", Port: pop3Addr.Port, StartTLS: "pop3"}, "mail.example.com"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := probe(t, c.tgt)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("served %s, want %s", got, c.want)
			}
		})
	}
}

func TestServedFails(t *testing.T) {
	mail := cert(t, "mail.example.com")
	plain := server(t, "tcp4", "127.0.0.1:0", func(c net.Conn) {
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
	})
	smtpNoTLS := server(t, "tcp4", "127.0.0.1:0", starttlsServe([]step{
		{say: "220 mx ESMTP\r\n", expect: "EHLO "}, {say: "250-mx\r\n250 8BITMIME\r\n"},
	}, nil))
	smtpRefuses := server(t, "tcp4", "127.0.0.1:0", starttlsServe([]step{
		{say: "220 mx ESMTP\r\n", expect: "EHLO "}, {say: "250-mx\r\n250 STARTTLS\r\n", expect: "STARTTLS"}, {say: "454 4.7.0 TLS not available\r\n"},
	}, nil))
	injected := server(t, "tcp4", "127.0.0.1:0", starttlsServe([]step{
		{say: "220 mx ESMTP\r\n", expect: "EHLO "}, {say: "250-mx\r\n250 STARTTLS\r\n", expect: "STARTTLS"}, {say: "220 go ahead\r\n250 injected\r\n"},
	}, func(c net.Conn) { time.Sleep(time.Second) }))
	longLine := server(t, "tcp4", "127.0.0.1:0", func(c net.Conn) {
		_, _ = c.Write([]byte("220 " + strings.Repeat("x", 100000)))
		time.Sleep(time.Second)
	})
	endless := server(t, "tcp4", "127.0.0.1:0", func(c net.Conn) {
		_, _ = c.Write([]byte("220 mx\r\n"))
		br := bufio.NewReader(c)
		_, _ = br.ReadString('\n')
		for i := 0; i < 1000; i++ {
			if _, err := c.Write([]byte("250-x\r\n")); err != nil {
				return
			}
		}
	})
	imapNo := server(t, "tcp4", "127.0.0.1:0", starttlsServe([]step{{say: "* OK ready\r\n", expect: "a1 STARTTLS"}, {say: "a1 BAD no\r\n"}}, nil))
	pop3Err := server(t, "tcp4", "127.0.0.1:0", starttlsServe([]step{{say: "-ERR go away\r\n"}}, nil))
	silent := server(t, "tcp4", "127.0.0.1:0", func(c net.Conn) { time.Sleep(3 * time.Second) })
	tlsOnly := server(t, "tcp4", "127.0.0.1:0", tlsServe(nil, mail))
	closed := func() int {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()

	cases := []struct {
		name string
		tgt  Target
		want string
	}{
		{"a port without TLS says so", Target{Address: "127.0.0.1", Port: plain.Port}, `no TLS on this port (the server answered "HTTP/": plain text, or STARTTLS needed)`},
		{"SMTP without STARTTLS", Target{Address: "127.0.0.1", Port: smtpNoTLS.Port, StartTLS: "smtp"}, "smtp: the server does not offer STARTTLS"},
		{"SMTP STARTTLS refused", Target{Address: "127.0.0.1", Port: smtpRefuses.Port, StartTLS: "smtp"}, "smtp STARTTLS refused: 454 4.7.0 TLS not available"},
		{"data after the STARTTLS go-ahead", Target{Address: "127.0.0.1", Port: injected.Port, StartTLS: "smtp"}, "server sent data after accepting STARTTLS"},
		{"overlong line", Target{Address: "127.0.0.1", Port: longLine.Port, StartTLS: "smtp"}, "reply line longer than 2048 bytes"},
		{"endless reply", Target{Address: "127.0.0.1", Port: endless.Port, StartTLS: "smtp"}, "reply longer than 64 lines"},
		{"IMAP refuses", Target{Address: "127.0.0.1", Port: imapNo.Port, StartTLS: "imap"}, `imap STARTTLS refused: "a1 BAD no"`},
		{"POP3 greeting", Target{Address: "127.0.0.1", Port: pop3Err.Port, StartTLS: "pop3"}, `pop3 greeting: "-ERR go away"`},
		{"connection refused", Target{Address: "127.0.0.1", Port: closed}, "connect:"},
		{"port 0", Target{Address: "127.0.0.1", Port: 0}, "port 0 out of range"},
		{"no address", Target{Port: 443}, "no address"},
		{"unknown protocol", Target{Address: "127.0.0.1", Port: 25, StartTLS: "ftp"}, `STARTTLS protocol "ftp": want smtp, imap or pop3`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := probe(t, c.tgt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Served = %v, want an error containing %q", err, c.want)
			}
		})
	}
	t.Run("STARTTLS against a TLS port waits for a greeting that never comes", func(t *testing.T) {
		_, err := probeWithin(t, Target{Address: "127.0.0.1", Port: tlsOnly.Port, StartTLS: "smtp"}, 300*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "smtp greeting") {
			t.Fatalf("Served = %v", err)
		}
	})
	t.Run("a silent server is cut at the context's deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := Served(ctx, Target{Address: "127.0.0.1", Port: silent.Port, StartTLS: "smtp"})
		var ne net.Error
		if err == nil || !(errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("Served = %v, want a timeout", err)
		}
	})
	t.Run("a cancelled context interrupts the handshake", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := Served(ctx, Target{Address: "127.0.0.1", Port: silent.Port})
		if err == nil {
			t.Fatal("Served returned no error")
		}
	})
}
