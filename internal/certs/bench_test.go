package certs_test

import (
	"testing"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/testkit"
)

// BenchmarkVerify measures the export check: decrypt the PKCS#8 key
// (PBKDF2 + AES-256-CBC), compare public keys, fingerprint.
func BenchmarkVerify(b *testing.B) {
	for _, kt := range []testkit.KeyType{testkit.RSA2048, testkit.ECP256} {
		exp := testkit.NewExport(b, kt, "bench.example.com", "BenchPassphrase0123456789abcdef")
		b.Run(string(kt), func(b *testing.B) {
			for b.Loop() {
				if _, err := certs.Verify(exp.Certificate, exp.CertificateChain, exp.PrivateKey, []byte(exp.Passphrase)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPKCS12 measures building the PFX for Windows/IIS and Java.
func BenchmarkPKCS12(b *testing.B) {
	for _, kt := range []testkit.KeyType{testkit.RSA2048, testkit.ECP256} {
		exp := testkit.NewExport(b, kt, "bench.example.com", "BenchPassphrase0123456789abcdef")
		m, err := certs.Verify(exp.Certificate, exp.CertificateChain, exp.PrivateKey, []byte(exp.Passphrase))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(kt), func(b *testing.B) {
			for b.Loop() {
				if _, err := m.PKCS12(exp.Passphrase); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
