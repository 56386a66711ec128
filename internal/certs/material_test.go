package certs_test

import (
	"crypto"
	"errors"
	"math/big"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/testkit"
)

func TestVerify(t *testing.T) {
	const pass = "Correct7Horse8Battery9Staple0abc"
	rsaExp := testkit.NewExport(t, testkit.RSA2048, "shop.example.com", pass)
	ecExp := testkit.NewExport(t, testkit.ECP256, "ec.example.com", pass)
	other := testkit.NewExport(t, testkit.RSA2048, "other.example.com", pass)

	tests := []struct {
		name    string
		exp     testkit.Export
		key     string
		pass    string
		wantErr string
	}{
		{name: "rsa", exp: rsaExp, key: rsaExp.PrivateKey, pass: pass},
		{name: "ec", exp: ecExp, key: ecExp.PrivateKey, pass: pass},
		{name: "wrong passphrase", exp: rsaExp, key: rsaExp.PrivateKey, pass: "wrong", wantErr: "does not decrypt"},
		{name: "key of another certificate", exp: rsaExp, key: other.PrivateKey, pass: pass, wantErr: "does not match the certificate"},
		{name: "unencrypted key refused", exp: rsaExp, key: testkit.PEM("PRIVATE KEY", []byte{1}), pass: pass, wantErr: "want ENCRYPTED PRIVATE KEY"},
		{name: "no key", exp: rsaExp, key: "", pass: pass, wantErr: "no PEM block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := certs.Verify(tc.exp.Certificate, tc.exp.CertificateChain, tc.key, []byte(tc.pass))
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, certs.ErrBadExport) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Verify() error = %v, want ErrBadExport containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), pass) {
					t.Fatal("error message contains the passphrase")
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify() error = %v", err)
			}
			if m.Serial != tc.exp.Leaf.SerialNumber.Text(16) {
				t.Errorf("serial = %s, want %s", m.Serial, tc.exp.Leaf.SerialNumber.Text(16))
			}
			if m.Fingerprint != certs.Fingerprint(tc.exp.Leaf.Raw) || len(m.Fingerprint) != 95 {
				t.Errorf("fingerprint = %s", m.Fingerprint)
			}
			if len(m.Chain) != 1 {
				t.Errorf("chain has %d certificates, want 1", len(m.Chain))
			}
		})
	}
}

func TestVerifyBadCertificate(t *testing.T) {
	exp := testkit.NewExport(t, testkit.RSA2048, "a.example.com", "pass1234pass1234")
	for name, cert := range map[string]string{
		"empty":     "",
		"garbage":   "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"two certs": exp.Certificate + exp.CertificateChain,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := certs.Verify(cert, exp.CertificateChain, exp.PrivateKey, []byte(exp.Passphrase)); !errors.Is(err, certs.ErrBadExport) {
				t.Fatalf("Verify() error = %v, want ErrBadExport", err)
			}
		})
	}
}

func TestPKCS12RoundTrip(t *testing.T) {
	for _, kt := range []testkit.KeyType{testkit.RSA2048, testkit.ECP256} {
		t.Run(string(kt), func(t *testing.T) {
			exp := testkit.NewExport(t, kt, "pfx.example.com", "pfxPass1234pfxPass1234")
			m, err := certs.Verify(exp.Certificate, exp.CertificateChain, exp.PrivateKey, []byte(exp.Passphrase))
			if err != nil {
				t.Fatal(err)
			}
			pfx, err := m.PKCS12(exp.Passphrase)
			if err != nil {
				t.Fatal(err)
			}
			key, leaf, chain, err := pkcs12.DecodeChain(pfx, exp.Passphrase)
			if err != nil {
				t.Fatalf("decode PFX: %v", err)
			}
			if !leaf.Equal(exp.Leaf) || len(chain) != 1 {
				t.Fatalf("PFX holds leaf %v and %d chain certificates", leaf.Subject, len(chain))
			}
			if err := certs.KeyMatches(leaf, key.(crypto.Signer)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := pkcs12.Decode(pfx, "wrong"); err == nil {
				t.Fatal("PFX opens with a wrong passphrase")
			}
		})
	}
}

func TestNormalizeSerial(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "0a:1b:ff", want: "a1bff"},
		{in: "0A:1B:FF", want: "a1bff"},
		{in: "48:cf:e7:2f:25:7c:c5:6c", want: "48cfe72f257cc56c"},
		{in: "255", want: "ff"}, // moto reports the decimal integer
		{in: "ab12", want: "ab12"},
		{in: "", wantErr: "empty serial"},
		{in: "zz:top", wantErr: "neither colon hex nor decimal"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := certs.NormalizeSerial(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NormalizeSerial(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeSerial(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	if got := certs.SerialHex(new(big.Int).SetBytes([]byte{0, 0x0f})); got != "f" {
		t.Fatalf("SerialHex = %q", got)
	}
}
