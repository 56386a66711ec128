// Package testkit holds helpers shared by certferry's tests: certificate
// fixtures made the way ACM exports them, and log capture for leak checks.
package testkit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/youmark/pkcs8"
)

// T is the part of testing.TB the fixture helpers call. Taking it rather
// than testing.TB keeps package testing out of the binaries that use the
// rig (cmd/certferry-bench); *testing.T and *testing.B satisfy it.
type T interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Export is a certificate as ACM's ExportCertificate returns it.
type Export struct {
	Certificate      string
	CertificateChain string
	PrivateKey       string // encrypted PKCS#8, AES-256-CBC
	Passphrase       string
	Leaf             *x509.Certificate
	Key              crypto.Signer
}

// KeyType selects the fixture's key algorithm.
type KeyType string

// Key types ACM issues.
const (
	RSA2048 KeyType = "RSA_2048"
	ECP256  KeyType = "EC_prime256v1"
)

// NewExport makes a CA, a leaf for domain signed by it, and the leaf's key
// encrypted with passphrase, like ExportCertificate.
func NewExport(t T, kt KeyType, domain, passphrase string) Export {
	t.Helper()
	caKey := newKey(t, RSA2048)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certferry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key := newKey(t, kt)
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	leafTmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatalf("create leaf: %v", err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return Export{
		Certificate:      PEM("CERTIFICATE", leafDER),
		CertificateChain: PEM("CERTIFICATE", caDER),
		PrivateKey:       EncryptKey(t, key, passphrase),
		Passphrase:       passphrase,
		Leaf:             leaf,
		Key:              key,
	}
}

func newKey(t T, kt KeyType) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	switch kt {
	case ECP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatalf("generate %s key: %v", kt, err)
	}
	return k
}

// EncryptKey returns key as an "ENCRYPTED PRIVATE KEY" PEM (PBES2,
// PBKDF2-SHA256, AES-256-CBC), the format ACM exports.
func EncryptKey(t T, key crypto.Signer, passphrase string) string {
	t.Helper()
	der, err := pkcs8.MarshalPrivateKey(key, []byte(passphrase), &pkcs8.Opts{
		Cipher: pkcs8.AES256CBC,
		KDFOpts: pkcs8.PBKDF2Opts{
			SaltSize: 16, IterationCount: 2048, HMACHash: crypto.SHA256,
		},
	})
	if err != nil {
		t.Fatalf("encrypt key: %v", err)
	}
	return PEM("ENCRYPTED PRIVATE KEY", der)
}

// PEM encodes one block.
func PEM(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// LogBuffer collects every log line written through slog's default logger.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// CaptureLogs sends slog's default logger (JSON, debug level) to a buffer
// for the rest of the process and returns it.
func CaptureLogs() *LogBuffer {
	l := &LogBuffer{}
	slog.SetDefault(slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return l
}

// AssertNoSecrets fails when text holds a private key PEM header or any of
// the given secret values.
func AssertNoSecrets(t T, what, text string, secrets ...string) {
	t.Helper()
	for _, marker := range []string{"PRIVATE KEY", "passphrase\":\""} {
		if strings.Contains(text, marker) {
			t.Errorf("%s contains %q", what, marker)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains a secret value (%d characters)", what, len(s))
		}
	}
}
