// Package probe asks a server which certificate it serves: one TLS
// handshake with SNI, optionally after a STARTTLS exchange (SMTP, IMAP,
// POP3). It does not judge trust: the installer compares the served leaf's
// fingerprint with the one it installed.
package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Target is where to look and what to ask for.
type Target struct {
	Address    string // IPv4 or IPv6 literal (brackets optional) or host name
	Port       int
	ServerName string // SNI; empty sends none
	StartTLS   string // "", "smtp", "imap" or "pop3"
}

func (t Target) String() string {
	s := net.JoinHostPort(strings.Trim(t.Address, "[]"), strconv.Itoa(t.Port))
	if t.ServerName != "" {
		s += " (SNI " + t.ServerName + ")"
	}
	if t.StartTLS != "" {
		s += " over " + t.StartTLS + " STARTTLS"
	}
	return s
}

// DefaultTimeout bounds a probe whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// Limits on what a server may send before the handshake.
const (
	maxLine  = 2048 // longer than any legitimate reply line (RFC 5321 allows 512)
	maxLines = 64
)

// ErrNotTLS: something answered on the port, but not TLS.
var ErrNotTLS = errors.New("no TLS on this port")

// Served connects to t, performs one TLS handshake (after STARTTLS when
// asked) and returns the leaf certificate the server presented. Every read
// and write is bounded by ctx's deadline (DefaultTimeout without one).
func Served(ctx context.Context, t Target) (*x509.Certificate, error) {
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("probe %s: %w", t, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	leaf, err := served(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", t, err)
	}
	return leaf, nil
}

func (t Target) check() error {
	host := strings.Trim(t.Address, "[]")
	switch {
	case host == "":
		return errors.New("no address")
	case len(host) > 253 || strings.ContainsAny(host, " /\\\x00"):
		return errors.New("invalid address")
	case t.Port < 1 || t.Port > 65535:
		return fmt.Errorf("port %d out of range", t.Port)
	case len(t.ServerName) > 253:
		return errors.New("server name too long")
	}
	switch t.StartTLS {
	case "", "smtp", "imap", "pop3":
		return nil
	}
	return fmt.Errorf("STARTTLS protocol %q: want smtp, imap or pop3", t.StartTLS)
}

func served(ctx context.Context, t Target) (*x509.Certificate, error) {
	var d net.Dialer
	addr := net.JoinHostPort(strings.Trim(t.Address, "[]"), strconv.Itoa(t.Port))
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// A cancelled context interrupts a blocked read or write at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if t.StartTLS != "" {
		if err := startTLS(conn, t.StartTLS); err != nil {
			return nil, err
		}
	}
	tc := tls.Client(conn, &tls.Config{
		ServerName: strings.Trim(t.ServerName, "[]"),
		// Trust is not the question; the caller compares fingerprints.
		InsecureSkipVerify: true, //nolint:gosec
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) {
			return nil, fmt.Errorf("TLS handshake: %w (the server answered %q: plain text, or STARTTLS needed)", ErrNotTLS, printable(rh.RecordHeader[:]))
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("TLS handshake: %w", ctx.Err())
		}
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	defer tc.Close()
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, errors.New("TLS handshake: server sent no certificate")
	}
	return certs[0], nil
}

// startTLS runs the plain-text exchange that precedes the handshake.
func startTLS(conn net.Conn, proto string) error {
	r := &lineReader{br: bufio.NewReaderSize(conn, maxLine)}
	send := func(cmd string) error {
		if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
			return fmt.Errorf("%s: send %q: %w", proto, cmd, err)
		}
		return nil
	}
	var err error
	switch proto {
	case "smtp":
		err = smtp(r, send)
	case "imap":
		err = imap(r, send)
	case "pop3":
		err = pop3(r, send)
	}
	if err != nil {
		return err
	}
	// Anything already sent after the go-ahead would be read as part of the
	// TLS session: refuse it (the STARTTLS injection of CVE-2011-0411).
	if r.br.Buffered() > 0 {
		return fmt.Errorf("%s: server sent data after accepting STARTTLS", proto)
	}
	return nil
}

// smtp: greeting 220, EHLO, STARTTLS offered, STARTTLS → 220 (RFC 3207).
func smtp(r *lineReader, send func(string) error) error {
	code, _, err := r.smtpReply()
	if err != nil {
		return fmt.Errorf("smtp greeting: %w", err)
	}
	if code != 220 {
		return fmt.Errorf("smtp greeting: code %d", code)
	}
	if err := send("EHLO certferry.invalid"); err != nil {
		return err
	}
	code, lines, err := r.smtpReply()
	if err != nil {
		return fmt.Errorf("smtp EHLO: %w", err)
	}
	if code != 250 {
		return fmt.Errorf("smtp EHLO: code %d", code)
	}
	offered := false
	for _, l := range lines[1:] {
		if strings.EqualFold(strings.TrimSpace(l), "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		return errors.New("smtp: the server does not offer STARTTLS")
	}
	if err := send("STARTTLS"); err != nil {
		return err
	}
	code, lines, err = r.smtpReply()
	if err != nil {
		return fmt.Errorf("smtp STARTTLS: %w", err)
	}
	if code != 220 {
		return fmt.Errorf("smtp STARTTLS refused: %d %s", code, printable([]byte(lines[0])))
	}
	return nil
}

// imap: untagged greeting, "a1 STARTTLS", tagged OK (RFC 3501 6.2.1).
func imap(r *lineReader, send func(string) error) error {
	greet, err := r.line()
	if err != nil {
		return fmt.Errorf("imap greeting: %w", err)
	}
	if !strings.HasPrefix(greet, "* OK") {
		return fmt.Errorf("imap greeting: %q", printable([]byte(greet)))
	}
	if err := send("a1 STARTTLS"); err != nil {
		return err
	}
	for i := 0; i < maxLines; i++ {
		l, err := r.line()
		if err != nil {
			return fmt.Errorf("imap STARTTLS: %w", err)
		}
		if strings.HasPrefix(l, "* ") {
			continue // untagged data (e.g. CAPABILITY)
		}
		if strings.HasPrefix(l, "a1 OK") {
			return nil
		}
		return fmt.Errorf("imap STARTTLS refused: %q", printable([]byte(l)))
	}
	return errors.New("imap STARTTLS: no tagged reply")
}

// pop3: +OK greeting, STLS, +OK (RFC 2595 4).
func pop3(r *lineReader, send func(string) error) error {
	greet, err := r.line()
	if err != nil {
		return fmt.Errorf("pop3 greeting: %w", err)
	}
	if !strings.HasPrefix(greet, "+OK") {
		return fmt.Errorf("pop3 greeting: %q", printable([]byte(greet)))
	}
	if err := send("STLS"); err != nil {
		return err
	}
	l, err := r.line()
	if err != nil {
		return fmt.Errorf("pop3 STLS: %w", err)
	}
	if !strings.HasPrefix(l, "+OK") {
		return fmt.Errorf("pop3 STLS refused: %q", printable([]byte(l)))
	}
	return nil
}

// lineReader reads CRLF (or LF) lines of at most maxLine bytes.
type lineReader struct{ br *bufio.Reader }

func (r *lineReader) line() (string, error) {
	b, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("reply line longer than %d bytes", maxLine)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// smtpReply reads one (multi-line) SMTP reply: its code and its lines'
// text after the code.
func (r *lineReader) smtpReply() (int, []string, error) {
	var lines []string
	for i := 0; i < maxLines; i++ {
		l, err := r.line()
		if err != nil {
			return 0, nil, err
		}
		if len(l) < 3 {
			return 0, nil, fmt.Errorf("malformed reply %q", printable([]byte(l)))
		}
		code, err := strconv.Atoi(l[:3])
		if err != nil {
			return 0, nil, fmt.Errorf("malformed reply %q", printable([]byte(l)))
		}
		text := ""
		if len(l) > 4 {
			text = l[4:]
		}
		lines = append(lines, text)
		if len(l) == 3 || l[3] == ' ' {
			return code, lines, nil
		}
		if l[3] != '-' {
			return 0, nil, fmt.Errorf("malformed reply %q", printable([]byte(l)))
		}
	}
	return 0, nil, fmt.Errorf("reply longer than %d lines", maxLines)
}

// printable keeps at most 80 printable ASCII characters of b.
func printable(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if s.Len() >= 80 {
			break
		}
		if c >= 0x20 && c < 0x7f {
			s.WriteByte(c)
		} else {
			s.WriteByte('.')
		}
	}
	return s.String()
}
