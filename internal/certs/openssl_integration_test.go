//go:build integration

package certs_test

// Checks against the openssl binary: the integration tier.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/testkit"
)

// The fingerprint must be exactly what openssl prints, since nodes compare
// the served certificate's openssl fingerprint to it.
func TestFingerprintMatchesOpenSSL(t *testing.T) {
	exp := testkit.NewExport(t, testkit.ECP256, "fp.example.com", "pass1234pass1234")
	f := filepath.Join(t.TempDir(), "c.pem")
	if err := os.WriteFile(f, []byte(exp.Certificate), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("openssl", "x509", "-in", f, "-noout", "-fingerprint", "-sha256").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	got := strings.TrimSpace(string(out))
	want := "sha256 Fingerprint=" + certs.Fingerprint(exp.Leaf.Raw)
	if !strings.EqualFold(got, want) {
		t.Fatalf("openssl says %q, Fingerprint says %q", got, want)
	}
}
