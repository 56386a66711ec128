// Package probetest serves TLS on loopback with certificates chosen by
// SNI, for the tests of the packages that probe (tracker, sweeper, app).
// Only tests import it.
package probetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
)

// Cert is a self-signed leaf for a set of names.
type Cert struct {
	TLS  tls.Certificate
	Leaf *x509.Certificate
}

// Fingerprint is the leaf's SHA-256 in certferry's format.
func (c Cert) Fingerprint() string { return certs.Fingerprint(c.Leaf.Raw) }

// Serial is the leaf's serial as certferry writes it.
func (c Cert) Serial() string { return certs.SerialHex(c.Leaf.SerialNumber) }

// Issue makes a self-signed ECDSA leaf for names, valid for a day.
func Issue(t testing.TB, serial int64, names ...string) Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return Cert{TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, Leaf: leaf}
}

// Serve listens on 127.0.0.1 (a free port) until the test ends, serving
// byName[SNI] (a hello for another name gets an alert); it returns the
// port.
func Serve(t testing.TB, byName map[string]Cert) int {
	t.Helper()
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", &tls.Config{
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, ok := byName[h.ServerName]
			if !ok {
				return nil, errors.New("no certificate for this name")
			}
			return &c.TLS, nil
		},
	})
	if err != nil {
		t.Fatalf("listen on 127.0.0.1: %v", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// Target is "127.0.0.1:<port>/sni=<sni>" in the probes grammar.
func Target(port int, sni string) string {
	return "127.0.0.1:" + strconv.Itoa(port) + "/sni=" + sni
}
