package document_test

// The Linux step executed for real: bash runs the script extracted from the
// YAML with the parameters as SSM_<Name> variables, the aws CLI reads the
// bundle from moto_server, and a real nginx serves what was installed; every
// check is a TLS handshake. moto_server and nginx are required: these tests
// fail, never skip, without them (.ci/run installs both).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/document"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/testkit"
)

// node is one simulated managed node (LocalNode) with the aws CLI aimed at
// moto and a Secrets Manager client to publish bundles.
type node struct {
	*document.LocalNode
	t       *testing.T
	env     []string
	doc     *document.Document
	sm      *secretsmanager.Client
	secrets []string
}

func newNode(t *testing.T, moto *motoserver.Server) *node {
	t.Helper()
	ln, err := document.StartLocalNode(t.TempDir(), "shop.example.com")
	if err != nil {
		t.Fatalf("nginx is required (.ci/run installs it): %v", err)
	}
	t.Cleanup(ln.Stop)
	doc, err := document.Load("../../ssm-documents/certferry-install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(moto.URL),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	return &node{
		LocalNode: ln, t: t, doc: doc, sm: secretsmanager.NewFromConfig(awsCfg),
		env: ln.EmulatorEnv(moto.URL, "us-east-1"),
	}
}

func fingerprintOf(t *testing.T, certPEM string) string {
	t.Helper()
	cs, err := certs.ParsePEMCertificates(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certs.Fingerprint(cs[0].Raw)
}

// served returns what nginx serves once it serves want (or gives up).
func (n *node) served(want string) string {
	n.t.Helper()
	got, err := n.Served(want, 10*time.Second)
	if err != nil {
		n.t.Fatal(err)
	}
	return got
}

// publish stores a bundle version the way the pipeline does and returns it.
func (n *node) publish(b bundle.Bundle) bundle.Bundle {
	n.t.Helper()
	raw, _ := json.Marshal(b)
	n.secrets = append(n.secrets, b.Passphrase)
	_, err := n.sm.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String("certferry/shop-web"), SecretString: aws.String(string(raw))})
	if err != nil {
		_, err = n.sm.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String("certferry/shop-web"), SecretString: aws.String(string(raw))})
	}
	if err != nil {
		n.t.Fatal(err)
	}
	return b
}

// makeBundle exports a fresh certificate like ACM and builds the bundle.
func makeBundle(t *testing.T, kt testkit.KeyType) bundle.Bundle {
	t.Helper()
	pass := "Pass" + strconv.FormatInt(time.Now().UnixNano(), 36) + "xyzXYZ0123456789"
	e := testkit.NewExport(t, kt, "shop.example.com", pass)
	m, err := certs.Verify(e.Certificate, e.CertificateChain, e.PrivateKey, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := m.PKCS12(pass)
	if err != nil {
		t.Fatal(err)
	}
	return bundle.Bundle{
		CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
		Serial:         m.Serial, NotAfter: m.NotAfter.Format(time.RFC3339), Fingerprint: m.Fingerprint,
		Certificate: e.Certificate, CertificateChain: e.CertificateChain, PrivateKey: e.PrivateKey,
		PKCS12: base64.StdEncoding.EncodeToString(pfx), Passphrase: pass, ExportedAt: time.Now().UTC().Format(time.RFC3339),
	}
}

func (n *node) install(b bundle.Bundle, overrides map[string]string) *document.Run {
	n.t.Helper()
	params := map[string]string{
		"SecretId": "certferry/shop-web", "CertName": "shop-web", "CertPath": n.CertPath, "KeyPath": n.KeyPath,
		"ReloadService": "nginx", "VerifyPort": strconv.Itoa(n.Port), "ServerName": "shop.example.com",
		"ExpectedFingerprint": b.Fingerprint, "Region": "us-east-1",
	}
	for k, v := range overrides {
		params[k] = v
	}
	run, err := n.doc.RunLinux(context.Background(), params, n.env)
	if err != nil {
		n.t.Fatal(err)
	}
	out := run.Stdout + run.Stderr
	testkit.AssertNoSecrets(n.t, "Linux step output", out, n.secrets...)
	if run.Result == nil {
		n.t.Fatalf("no CERTFERRY_RESULT line (exit %d)\nstdout: %s\nstderr: %s", run.ExitCode, run.Stdout, run.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(run.Stdout), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], document.ResultPrefix) {
		n.t.Fatalf("last output line is not the result: %q", lines[len(lines)-1])
	}
	return run
}

func mtime(t *testing.T, p string) time.Time {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.ModTime()
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// startMoto starts moto behind the AWS model check for one test: the
// node's own requests (the bundle, the installer) are checked too, and
// one AWS would refuse fails the test.
func startMoto(t *testing.T) *motoserver.Server {
	t.Helper()
	return testkit.StartRigT(t).Moto
}

func TestLinuxStepOnRealNginx(t *testing.T) {
	n := newNode(t, startMoto(t))

	// 1. First install: nginx serves the new certificate, key 0600.
	a := n.publish(makeBundle(t, testkit.RSA2048))
	run := n.install(a, nil)
	if run.ExitCode != 0 || run.Result.Status != "installed" || run.Result.Fingerprint != a.Fingerprint ||
		run.Result.Serial != a.Serial || run.Result.Reload != "done" || run.Result.Verify != "ok" {
		t.Fatalf("first install: exit %d %+v\n%s", run.ExitCode, run.Result, run.Stderr)
	}
	if got := n.served(a.Fingerprint); got != a.Fingerprint {
		t.Fatalf("nginx serves %s, want %s", got, a.Fingerprint)
	}
	if m := mode(t, n.KeyPath); m != 0o600 {
		t.Errorf("key mode %o, want 600", m)
	}
	if m := mode(t, n.CertPath); m != 0o644 {
		t.Errorf("cert mode %o, want 644", m)
	}
	if full, _ := os.ReadFile(n.CertPath); strings.Count(string(full), "BEGIN CERTIFICATE") != 2 {
		t.Errorf("installed file is not the full chain")
	}

	// 2. Same bundle again: unchanged, files untouched, no reload.
	certM, keyM, reloads := mtime(t, n.CertPath), mtime(t, n.KeyPath), n.Reloads()
	time.Sleep(20 * time.Millisecond)
	run = n.install(a, nil)
	if run.ExitCode != 0 || run.Result.Status != "unchanged" {
		t.Fatalf("same bundle: exit %d %+v", run.ExitCode, run.Result)
	}
	if !mtime(t, n.CertPath).Equal(certM) || !mtime(t, n.KeyPath).Equal(keyM) || n.Reloads() != reloads {
		t.Fatal("unchanged run touched files or reloaded")
	}

	// 3. Renewal: a new secret version is installed and served; the previous
	//    files are kept.
	b := n.publish(makeBundle(t, testkit.RSA2048))
	run = n.install(b, nil)
	if run.ExitCode != 0 || run.Result.Status != "installed" || n.served(b.Fingerprint) != b.Fingerprint {
		t.Fatalf("renewal: exit %d %+v", run.ExitCode, run.Result)
	}
	if prev, _ := os.ReadFile(n.CertPath + ".certferry-prev"); fingerprintOf(t, string(prev)) != a.Fingerprint {
		t.Fatal("previous certificate not kept")
	}

	// 4a. A bundle whose key does not match its certificate: rolled back.
	bad := makeBundle(t, testkit.RSA2048)
	bad.PrivateKey, bad.Passphrase = b.PrivateKey, b.Passphrase
	n.publish(bad)
	run = n.install(bad, nil)
	if run.ExitCode == 0 || run.Result.Status != "rolled_back" || !strings.Contains(run.Result.Detail, "does not match") {
		t.Fatalf("mismatched key: exit %d %+v", run.ExitCode, run.Result)
	}
	if n.served(b.Fingerprint) != b.Fingerprint || fingerprintOf(t, readFile(t, n.CertPath)) != b.Fingerprint {
		t.Fatal("mismatched key: previous certificate not restored")
	}

	// 4b. A bundle nginx rejects (corrupt chain): config test fails, rolled back.
	broken := makeBundle(t, testkit.RSA2048)
	broken.CertificateChain = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
	n.publish(broken)
	run = n.install(broken, nil)
	if run.ExitCode == 0 || run.Result.Status != "rolled_back" || !strings.Contains(run.Result.Detail, "configuration test failed") {
		t.Fatalf("config test failure: exit %d %+v\n%s", run.ExitCode, run.Result, run.Stderr)
	}
	if n.served(b.Fingerprint) != b.Fingerprint {
		t.Fatal("config test failure: nginx no longer serves the previous certificate")
	}

	// 5. EC key.
	ec := n.publish(makeBundle(t, testkit.ECP256))
	run = n.install(ec, nil)
	if run.ExitCode != 0 || run.Result.Status != "installed" || n.served(ec.Fingerprint) != ec.Fingerprint {
		t.Fatalf("EC bundle: exit %d %+v", run.ExitCode, run.Result)
	}

	// 6. A command superseded by a newer bundle version touches nothing.
	run = n.install(ec, map[string]string{"ExpectedFingerprint": a.Fingerprint})
	if run.ExitCode == 0 || run.Result.Status != "failed" || !strings.Contains(run.Result.Detail, "supersedes") {
		t.Fatalf("superseded command: exit %d %+v", run.ExitCode, run.Result)
	}

	// Temp files never stay behind in the target directories.
	for _, d := range []string{filepath.Dir(n.CertPath), filepath.Dir(n.KeyPath)} {
		matches, _ := filepath.Glob(filepath.Join(d, ".certferry.*"))
		if len(matches) > 0 {
			t.Errorf("temp files left: %v", matches)
		}
	}
}

// Consumers that only read files: no reload, no handshake, both reported.
func TestLinuxStepFilesOnly(t *testing.T) {
	n := newNode(t, startMoto(t))
	b := n.publish(makeBundle(t, testkit.ECP256))
	dir := t.TempDir()
	run := n.install(b, map[string]string{
		"ReloadService": "", "VerifyPort": "0",
		"CertPath": filepath.Join(dir, "app/tls.crt"), "KeyPath": filepath.Join(dir, "app/tls.key"),
	})
	if run.ExitCode != 0 || run.Result.Status != "installed" || run.Result.Reload != "skipped" || run.Result.Verify != "skipped" {
		t.Fatalf("files only: exit %d %+v\n%s", run.ExitCode, run.Result, run.Stderr)
	}
	if got := fingerprintOf(t, readFile(t, filepath.Join(dir, "app/tls.crt"))); got != b.Fingerprint {
		t.Fatalf("installed %s", got)
	}
	if n.Reloads() != 0 {
		t.Fatal("reloaded although ReloadService is empty")
	}
}

func TestLinuxStepFailures(t *testing.T) {
	n := newNode(t, startMoto(t))
	b := makeBundle(t, testkit.RSA2048)
	tests := []struct {
		name      string
		overrides map[string]string
		detail    string
	}{
		{"missing secret", map[string]string{"SecretId": "certferry/nope"}, "cannot read secret"},
		{"hostile path reaching the script", map[string]string{"CertPath": "/etc/ssl/../x"}, "bad CertPath"},
		{"hostile service reaching the script", map[string]string{"ReloadService": "nginx;id"}, "bad ReloadService"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n.t = t
			run := n.install(b, tc.overrides)
			if run.ExitCode == 0 || run.Result.Status != "failed" || !strings.Contains(run.Result.Detail, tc.detail) {
				t.Fatalf("exit %d %+v, want failed with %q", run.ExitCode, run.Result, tc.detail)
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
