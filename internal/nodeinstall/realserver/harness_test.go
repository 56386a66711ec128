//go:build integration && linux

package realserver

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/nodeinstall"
	"github.com/certferry/certferry/internal/nodeinstall/probe"
	"github.com/certferry/certferry/internal/nodeinstall/service"
	"github.com/certferry/certferry/internal/testkit"
)

// The package's shared rig: one moto_server and one installer binary.
var (
	moto      *motoserver.Server
	installer string // path of the built certferry-node
	sm        *secretsmanager.Client
)

func TestMain(m *testing.M) {
	flag.Parse()
	// The tests wait on servers and handshakes far more than they compute,
	// and two wait out the verification budget: run them wider than
	// GOMAXPROCS unless -parallel says otherwise.
	if !flagSet("test.parallel") {
		_ = flag.Set("test.parallel", strconv.Itoa(max(runtime.GOMAXPROCS(0), minParallel)))
	}
	os.Exit(run(m))
}

// minParallel lets both budget-waiting tests and three others run at once.
const minParallel = 5

func flagSet(name string) (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "realserver: these tests run as root (the installer sets owners; the servers drop privileges as on a node)")
		return 1
	}
	bin, err := os.MkdirTemp("", "certferry-node-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(bin)
	installer = filepath.Join(bin, "certferry-node")
	if err := build(installer); err != nil {
		fmt.Fprintln(os.Stderr, "realserver: build certferry-node:", err)
		return 1
	}
	// moto behind the AWS model check: the installer's own requests
	// (GetSecretValue) are held to what AWS accepts.
	rig, err := testkit.StartRig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "realserver: moto_server and botocore's models are required (.ci/run installs them):", err)
		return 1
	}
	moto = rig.Moto
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(moto.URL),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sm = secretsmanager.NewFromConfig(cfg)
	return rig.Finish(m.Run())
}

// build compiles cmd/certferry-node the way the release does.
func build(out string) error {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/certferry-node")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, b)
	}
	return nil
}

// ---- certificates made the way ACM exports them ----

// issuer is a private CA; a name's renewals come from the same one.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  string
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "certferry realserver CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &issuer{cert: c, key: key, pem: testkit.PEM("CERTIFICATE", der)}
}

// keyKind selects a leaf key.
type keyKind int

const (
	ecP256 keyKind = iota
	rsa2048
	rsa1024 // loads in Go, refused by OpenSSL 3 at Debian's security level 2 ("ee key too small")
)

func newKey(t *testing.T, k keyKind) crypto.Signer {
	t.Helper()
	var s crypto.Signer
	var err error
	switch k {
	case rsa2048:
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case rsa1024:
		s, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// issued is one exported certificate: its bundle and its parts.
type issued struct {
	b    bundle.Bundle
	leaf *x509.Certificate
	key  crypto.Signer
}

func (is *issuer) issue(t *testing.T, domain string, k keyKind) issued {
	t.Helper()
	key := newKey(t, k)
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.cert, key.Public(), is.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pass := "Pass" + strconv.FormatInt(time.Now().UnixNano(), 36) + "xyzXYZ0123456789"
	certPEM, keyPEM := testkit.PEM("CERTIFICATE", der), testkit.EncryptKey(t, key, pass)
	m, err := certs.Verify(certPEM, is.pem, keyPEM, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := m.PKCS12(pass)
	if err != nil {
		t.Fatal(err)
	}
	return issued{leaf: leaf, key: key, b: bundle.Bundle{
		CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
		Serial:         m.Serial, NotAfter: m.NotAfter.Format(time.RFC3339), Fingerprint: m.Fingerprint,
		Certificate: certPEM, CertificateChain: is.pem, PrivateKey: keyPEM,
		PKCS12: base64.StdEncoding.EncodeToString(pfx), Passphrase: pass, ExportedAt: time.Now().UTC().Format(time.RFC3339),
	}}
}

// selfSigned is a placeholder certificate and unencrypted key (PEM), as a
// server has before certferry's first install.
func selfSigned(t *testing.T, domain string) (certPEM, keyPEM, fp string) {
	t.Helper()
	key := newKey(t, ecP256)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testkit.PEM("CERTIFICATE", der), testkit.PEM("PRIVATE KEY", kder), certs.Fingerprint(der)
}

// ---- a node: its directories, services file, secrets and installer runs ----

var names atomic.Int64

type node struct {
	t        *testing.T
	dir      string // world-traversable; target files live under dir/etc
	state    string
	name     string
	secretID string
	path     string // the installer's PATH: server binaries and a few coreutils only
	mu       sync.Mutex
	services map[string]service.Entry
	secrets  []string
}

// Binaries the services' commands need. No aws CLI, jq, python3 or openssl.
var pathTools = []string{"nginx", "apache2", "haproxy", "postfix", "postconf", "setpriv", "sh", "cat", "sleep", "touch", "rm"}

func newNode(t *testing.T) *node {
	t.Helper()
	dir, err := os.MkdirTemp("", "certferry-rs-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Servers running as their own users must reach their files.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, dir: dir, state: filepath.Join(dir, "state"), path: filepath.Join(dir, "path"),
		name: fmt.Sprintf("rs-%d-%d", os.Getpid()%100000, names.Add(1)), services: map[string]service.Entry{}}
	n.secretID = "certferry/" + n.name
	mkdirs(t, n.path, filepath.Join(dir, "etc"))
	for _, tool := range pathTools {
		p, err := lookSbin(tool)
		if err != nil {
			t.Fatalf("%s is required (.ci/run installs it): %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(n.path, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for _, banned := range []string{"aws", "jq", "python3", "python", "openssl", "bash"} {
		if _, err := os.Stat(filepath.Join(n.path, banned)); err == nil {
			t.Fatalf("the installer's PATH holds %s", banned)
		}
	}
	return n
}

func lookSbin(name string) (string, error) {
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if p := filepath.Join(d, name); isExec(p) {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	mkdirs(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// etc is a path under the node's allowed prefix.
func (n *node) etc(rel string) string { return filepath.Join(n.dir, "etc", rel) }

// addService registers a services file entry (what the installer's
// service manager uses for this name).
func (n *node) addService(name string, e service.Entry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.services[name] = e
}

// publish stores b as the name's AWSCURRENT bundle, as the pipeline does.
func (n *node) publish(b bundle.Bundle) {
	n.t.Helper()
	raw, _ := json.Marshal(b)
	n.mu.Lock()
	n.secrets = append(n.secrets, b.Passphrase, b.PrivateKey, b.PKCS12)
	n.mu.Unlock()
	ctx := context.Background()
	_, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(n.secretID), SecretString: aws.String(string(raw))})
	if err != nil {
		_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(n.secretID), SecretString: aws.String(string(raw))})
	}
	if err != nil {
		n.t.Fatal(err)
	}
}

// result is one installer run.
type result struct {
	nodeinstall.Result
	exit           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, status %s, reload %s, verify %s, detail %q\nstdout:\n%s\nstderr:\n%s", r.exit, r.Status, r.Reload, r.Verify, r.Detail, r.stdout, r.stderr)
}

// command prepares an installer run for b with params over the defaults.
func (n *node) command(b bundle.Bundle, params map[string]string) *exec.Cmd {
	n.t.Helper()
	n.mu.Lock()
	raw, _ := json.Marshal(n.services)
	n.mu.Unlock()
	servicesFile := filepath.Join(n.dir, "services.json")
	writeFile(n.t, servicesFile, string(raw), 0o600)
	p := map[string]string{
		"SecretId": n.secretID, "CertName": n.name, "ExpectedFingerprint": b.Fingerprint, "Region": "us-east-1",
		"AllowedPrefixes": filepath.Join(n.dir, "etc"), "VerifyAddress": "127.0.0.1",
	}
	for k, v := range params {
		p[k] = v
	}
	env := []string{
		"PATH=" + n.path,
		"AWS_ENDPOINT_URL=" + moto.URL, "AWS_ACCESS_KEY_ID=emulator", "AWS_SECRET_ACCESS_KEY=emulator",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_SSM_INSTANCE_ID=mi-0123456789abcdef0", "AWS_SSM_REGION_NAME=us-east-1",
		"CERTFERRY_STATE_DIR=" + n.state, "CERTFERRY_SERVICES=" + servicesFile,
	}
	for k, v := range p {
		env = append(env, "SSM_"+k+"="+v)
	}
	cmd := exec.Command(installer, "install")
	cmd.Env = env
	cmd.Dir = "/"
	// Its own process group, as SSM Agent runs a step: a kill takes the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// install runs the installer to its end.
func (n *node) install(b bundle.Bundle, params map[string]string) result {
	n.t.Helper()
	cmd := n.command(b, params)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	default:
		n.t.Fatalf("run certferry-node: %v", err)
	}
	return n.checkOutput(r)
}

// checkOutput holds the output contract: no secret, at most 2,000
// characters, the last line CERTFERRY_RESULT, the exit code its status's.
func (n *node) checkOutput(r result) result {
	n.t.Helper()
	n.mu.Lock()
	secrets := append([]string(nil), n.secrets...)
	n.mu.Unlock()
	testkit.AssertNoSecrets(n.t, "installer output", r.stdout+r.stderr, secrets...)
	if len(r.stdout) > 2000 {
		n.t.Errorf("stdout is %d characters, over 2,000", len(r.stdout))
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	last := lines[len(lines)-1]
	raw, ok := strings.CutPrefix(last, nodeinstall.ResultPrefix)
	if !ok {
		n.t.Fatalf("last line is not the result line: %s", result(r))
	}
	if err := json.Unmarshal([]byte(raw), &r.Result); err != nil {
		n.t.Fatalf("result line: %v: %s", err, last)
	}
	return r
}

// run is install, checking the exit code against the status.
func (n *node) run(b bundle.Bundle, params map[string]string) result {
	n.t.Helper()
	r := n.install(b, params)
	if want := r.Result.ExitCode(); r.exit != want {
		n.t.Errorf("exit code %d for status %s, want %d", r.exit, r.Status, want)
	}
	return r
}

// ---- what the node serves ----

// served is the fingerprint a real handshake gets (or the error).
func served(tgt probe.Target) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leaf, err := probe.Served(ctx, tgt)
	if err != nil {
		return "error: " + err.Error()
	}
	return certs.Fingerprint(leaf.Raw)
}

// servesEventually shakes hands until tgt serves want (old workers drain
// for a moment after a reload) or 20 s pass, and returns what it saw last.
func servesEventually(tgt probe.Target, want string) string {
	var got string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if got = served(tgt); got == want || time.Now().After(deadline) {
			return got
		}
	}
}

// waitServing shakes hands until tgt answers with any certificate or 20 s
// pass (a server just started), and returns what it saw last.
func waitServing(tgt probe.Target) string {
	var got string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got = served(tgt); !strings.HasPrefix(got, "error") || time.Now().After(deadline) {
			return got
		}
	}
}

func (n *node) expectServed(tgt probe.Target, want, what string) {
	n.t.Helper()
	if got := servesEventually(tgt, want); got != want {
		n.t.Fatalf("%s: %s serves %s, want %s", what, tgt, got, want)
	}
}

// freePort is a loopback port nothing listens on (network "tcp4"/"tcp6").
func freePort(t *testing.T, network string) int {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "tcp6" {
		addr = "[::1]:0"
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitGone waits until pid has exited (or is a zombie) for up to 15 s.
func waitGone(pid int) bool {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !processAlive(pid) {
			return true
		}
	}
	return false
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

func readPid(path string) int {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.Split(string(raw), "\n")[0]))
	return pid
}

// ---- files ----

type fileState struct {
	exists   bool
	content  string
	mode     os.FileMode
	uid, gid uint32
}

func stat(t *testing.T, path string) fileState {
	t.Helper()
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fileState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fileState{exists: true, content: string(raw), mode: fi.Mode(), uid: st.Uid, gid: st.Gid}
}

func (f fileState) String() string {
	if !f.exists {
		return "absent"
	}
	return fmt.Sprintf("%v %d:%d %d bytes", f.mode, f.uid, f.gid, len(f.content))
}

// leafOf returns the fingerprint of the first certificate in a PEM file.
func leafOf(t *testing.T, content string) string {
	t.Helper()
	for rest := []byte(content); ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			t.Fatalf("no certificate in %d bytes", len(content))
		}
		if blk.Type == "CERTIFICATE" {
			return certs.Fingerprint(blk.Bytes)
		}
	}
}

// parseKey reads an unencrypted private key PEM (PKCS#8, SEC 1 or PKCS#1).
func parseKey(text string) (crypto.Signer, error) {
	for rest := []byte(text); ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, errors.New("no private key")
		}
		var k any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, errors.New("not a signing key")
		}
		return s, nil
	}
}

// listDir names the entries of dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// tail returns the last lines of a log file, for failure messages.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
