// Package certs talks to ACM (describe, export) and checks what an export
// returned: the encrypted PKCS#8 key decrypts with the passphrase, the key
// belongs to the certificate, and the chain parses. It also derives the
// identifiers the rest of certferry keys on (serial, SHA-256 fingerprint)
// and builds the PKCS#12 file Windows/IIS and Java consume.
package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"
)

// ErrBadExport reports that ACM's answer failed a check: unparsable PEM,
// a key that does not decrypt, or a key that does not belong to the
// certificate. Such an export is never stored.
var ErrBadExport = errors.New("exported certificate failed verification")

// Material is a verified export: certificate, chain and decrypted key.
// It holds a private key, so it redacts itself in logs.
type Material struct {
	Leaf        *x509.Certificate
	Chain       []*x509.Certificate
	Key         crypto.Signer
	Serial      string // lower-case hex, no leading zeros, no colons
	Fingerprint string // SHA-256 of the leaf DER, "AB:CD:…"
	NotAfter    time.Time
}

// LogValue keeps the key out of any log line that mentions a Material.
func (m *Material) LogValue() slog.Value {
	return slog.GroupValue(slog.String("serial", m.Serial), slog.String("fingerprint", m.Fingerprint))
}

// Verify parses what ExportCertificate returned and proves it usable: the
// encrypted PKCS#8 key decrypts with passphrase (RSA or EC), and its public
// half equals the leaf certificate's.
func Verify(certPEM, chainPEM, encryptedKeyPEM string, passphrase []byte) (*Material, error) {
	leafs, err := ParsePEMCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrBadExport, err)
	}
	if len(leafs) != 1 {
		return nil, fmt.Errorf("%w: certificate: want 1 PEM certificate, got %d", ErrBadExport, len(leafs))
	}
	var chain []*x509.Certificate
	if strings.TrimSpace(chainPEM) != "" {
		if chain, err = ParsePEMCertificates(chainPEM); err != nil {
			return nil, fmt.Errorf("%w: certificate chain: %v", ErrBadExport, err)
		}
	}
	key, err := DecryptKey(encryptedKeyPEM, passphrase)
	if err != nil {
		return nil, err
	}
	if err := KeyMatches(leafs[0], key); err != nil {
		return nil, err
	}
	leaf := leafs[0]
	return &Material{
		Leaf:        leaf,
		Chain:       chain,
		Key:         key,
		Serial:      SerialHex(leaf.SerialNumber),
		Fingerprint: Fingerprint(leaf.Raw),
		NotAfter:    leaf.NotAfter.UTC(),
	}, nil
}

// DecryptKey decrypts an "ENCRYPTED PRIVATE KEY" PEM block (PKCS#8, PBES2,
// as ACM returns it). The error never contains key material.
func DecryptKey(encryptedKeyPEM string, passphrase []byte) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(encryptedKeyPEM))
	if block == nil {
		return nil, fmt.Errorf("%w: private key: no PEM block", ErrBadExport)
	}
	if block.Type != "ENCRYPTED PRIVATE KEY" {
		return nil, fmt.Errorf("%w: private key: PEM type %q, want ENCRYPTED PRIVATE KEY", ErrBadExport, block.Type)
	}
	parsed, err := pkcs8.ParsePKCS8PrivateKey(block.Bytes, passphrase)
	if err != nil {
		// The library's message can name the cause (wrong passphrase, unknown
		// cipher); it never carries key bytes.
		return nil, fmt.Errorf("%w: private key does not decrypt with the export passphrase: %v", ErrBadExport, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: private key type %T is not a signing key", ErrBadExport, parsed)
	}
	return signer, nil
}

// KeyMatches reports whether key is the private half of cert's public key.
func KeyMatches(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("%w: private key does not match the certificate's public key", ErrBadExport)
	}
	return nil
}

// ParsePEMCertificates parses every CERTIFICATE block in s.
func ParsePEMCertificates(s string) ([]*x509.Certificate, error) {
	rest := []byte(s)
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// PKCS12 builds a PFX holding the key, the leaf and the chain, encrypted with
// passphrase (AES-256-CBC, PBKDF2-SHA256: Windows Server 2019+, Java 8u301+).
func (m *Material) PKCS12(passphrase string) ([]byte, error) {
	pfx, err := pkcs12.Modern.WithRand(rand.Reader).Encode(m.Key, m.Leaf, m.Chain, passphrase)
	if err != nil {
		return nil, fmt.Errorf("build PKCS#12 for serial %s: %w", m.Serial, err)
	}
	return pfx, nil
}

// Fingerprint is the SHA-256 of a certificate's DER encoding, formatted as
// openssl prints it: upper-case hex pairs joined by colons.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// SerialHex formats a serial number as lower-case hex without leading zeros.
func SerialHex(n *big.Int) string { return n.Text(16) }

// NormalizeSerial turns the serial DescribeCertificate reports into the form
// SerialHex produces. ACM reports colon-separated hex ("0a:1b:…"); moto
// reports the decimal integer, which is accepted when the value has no colon
// and no hex letter.
func NormalizeSerial(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty serial")
	}
	n := new(big.Int)
	base := 16
	clean := strings.ReplaceAll(s, ":", "")
	if !strings.Contains(s, ":") && strings.Trim(s, "0123456789") == "" {
		base = 10
	}
	if _, ok := n.SetString(clean, base); !ok {
		return "", fmt.Errorf("serial %q is neither colon hex nor decimal", s)
	}
	return SerialHex(n), nil
}
