//go:build unix

package nodeinstall

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/testkit"
)

// fixture is one export made the way ACM makes it, and its bundle.
type fixture struct {
	exp    testkit.Export
	b      bundle.Bundle
	fp     string
	serial string
}

func newFixture(t testing.TB, kt testkit.KeyType) fixture {
	t.Helper()
	pass := "Passphrase" + randHex(8)
	exp := testkit.NewExport(t, kt, "shop.example.com", pass)
	chain, err := certificates(exp.CertificateChain)
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := pkcs12.Modern.Encode(exp.Key, exp.Leaf, chain, pass)
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{exp: exp, fp: Fingerprint(exp.Leaf.Raw), serial: exp.Leaf.SerialNumber.Text(16)}
	f.b = bundle.Bundle{
		CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/test", Serial: f.serial,
		NotAfter: exp.Leaf.NotAfter.Format(time.RFC3339), Fingerprint: f.fp,
		Certificate: exp.Certificate, CertificateChain: exp.CertificateChain, PrivateKey: exp.PrivateKey,
		PKCS12: base64.StdEncoding.EncodeToString(pfx), Passphrase: pass, ExportedAt: time.Now().Format(time.RFC3339),
	}
	return f
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// secrets the fixture must never leak into output.
func (f fixture) secrets() []string {
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(f)})
	lines := strings.Split(strings.TrimSpace(string(keyPEM)), "\n")
	return []string{f.b.Passphrase, f.b.PKCS12[:40], lines[1], strings.Split(f.b.PrivateKey, "\n")[1]}
}

func mustPKCS8(f fixture) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(f.exp.Key)
	if err != nil {
		panic(err)
	}
	return der
}

// fakeSecrets answers GetSecretValue like Secrets Manager (ResourceNotFound
// for an unknown id).
type fakeSecrets struct {
	mu     sync.Mutex
	values map[string]string
	calls  []string
	onGet  func(id string)
}

func (s *fakeSecrets) put(id string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]string{}
	}
	b, _ := json.Marshal(v)
	s.values[id] = string(b)
}

func (s *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	id := aws.ToString(in.SecretId)
	if s.onGet != nil {
		s.onGet(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, id)
	v, ok := s.values[id]
	if !ok {
		return nil, &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v), Name: aws.String(id)}, nil
}

// fakeServer is a TLS server and its service manager: Reload loads the
// certificate file (the first certificate in it), as nginx would.
type fakeServer struct {
	mu          sync.Mutex
	active      bool
	certFile    string
	served      *x509.Certificate
	configErr   error
	reloadErr   error
	dieOnReload bool
	ignoreFiles bool // reload keeps serving the old certificate
	reloadGate  chan struct{}
	reloading   chan struct{}
	calls       []string
}

func (s *fakeServer) record(c string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func (s *fakeServer) callList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func (s *fakeServer) ConfigTest(_ context.Context, name string) error {
	s.record("test " + name)
	return s.configErr
}

func (s *fakeServer) Active(_ context.Context, name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active, nil
}

func (s *fakeServer) Reload(ctx context.Context, name string) error {
	s.record("reload " + name)
	if s.reloading != nil {
		s.reloading <- struct{}{}
	}
	if s.reloadGate != nil {
		select {
		case <-s.reloadGate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return errors.New("not running")
	}
	if s.reloadErr != nil {
		return s.reloadErr
	}
	if s.dieOnReload {
		s.active = false
		return nil
	}
	s.load()
	return nil
}

func (s *fakeServer) Start(_ context.Context, name string) error {
	s.record("start " + name)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active, s.dieOnReload = true, false
	s.load()
	return nil
}

func (s *fakeServer) load() {
	if s.ignoreFiles || s.certFile == "" {
		return
	}
	b, err := os.ReadFile(s.certFile)
	if err != nil {
		s.served = nil
		return
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		s.served = nil
		return
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err == nil {
		s.served = c
	}
}

func (s *fakeServer) probe(ctx context.Context, t VerifyTarget) (*x509.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active || s.served == nil {
		return nil, syscall.ECONNREFUSED
	}
	return s.served, nil
}

// rig is a node in a temp directory: prefix <root>/etc, state <root>/state.
type rig struct {
	t       *testing.T
	root    string
	etc     string
	state   string
	secrets *fakeSecrets
	server  *fakeServer
	out     bytes.Buffer
	hook    func(string)
}

func newRig(t *testing.T) *rig {
	t.Helper()
	root := t.TempDir()
	r := &rig{t: t, root: root, etc: filepath.Join(root, "etc"), state: filepath.Join(root, "state"),
		secrets: &fakeSecrets{}, server: &fakeServer{active: true}}
	if err := os.MkdirAll(filepath.Join(r.etc, "ssl"), 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) engine() *Engine {
	return &Engine{Secrets: r.secrets, Services: r.server, Probe: r.server.probe, StateDir: r.state, Out: &r.out,
		VerifyInterval: time.Millisecond, VerifyBudget: 2 * time.Second, FirstLook: 200 * time.Millisecond, hook: r.hook}
}

const secretID = "certferry/shop-web"

// params for f: pem into <etc>/ssl/site.pem and site.key, reload nginx,
// verify 443; the bundle is stored as the current secret value.
func (r *rig) params(f fixture, mods ...func(*Params)) Params {
	r.secrets.put(secretID, f.b)
	r.secrets.put(secretID+KeystoreSecretSuffix, map[string]string{"password": "keystore-pass-123"})
	p := Params{SecretID: secretID, CertName: "shop-web", ExpectedFingerprint: f.fp, Region: "us-east-1",
		Format: FormatPEM, CertPath: filepath.Join(r.etc, "ssl", "site.pem"), KeyPath: filepath.Join(r.etc, "ssl", "site.key"),
		ReloadService: "nginx", VerifyPort: 443, AllowedPrefixes: []string{r.etc}}
	for _, m := range mods {
		m(&p)
	}
	if r.server.certFile == "" {
		r.server.certFile = p.CertPath
	}
	return p
}

func (r *rig) run(p Params) Result {
	r.t.Helper()
	res := r.engine().Run(context.Background(), p)
	r.t.Logf("result: %s", res.Line())
	return res
}

// fileState is a file's content, owner and mode, or absence.
type fileState struct {
	exists   bool
	content  string
	uid, gid int
	mode     os.FileMode
}

func stateOf(t testing.TB, path string) fileState {
	t.Helper()
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fileState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fileState{exists: true, content: string(b), uid: int(st.Uid), gid: int(st.Gid), mode: fi.Mode()}
}

func writeFile(t testing.TB, path, content string, uid, gid int, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// leftovers lists temp files the installer left in dir and below.
func leftovers(t testing.TB, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		_ = filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err == nil && strings.HasPrefix(fi.Name(), ".certferry-") {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// assertClean: no journal, no temp file, at most one backup generation.
func (r *rig) assertClean(name string) {
	r.t.Helper()
	if l := leftovers(r.t, r.etc); len(l) > 0 {
		r.t.Errorf("temp files left: %v", l)
	}
	if _, err := os.Stat(stateDir(r.state).journalPath(name)); !errors.Is(err, os.ErrNotExist) {
		r.t.Errorf("journal left: %v", err)
	}
	if gens, _ := os.ReadDir(stateDir(r.state).backupDir(name)); len(gens) > 1 {
		r.t.Errorf("%d backup generations kept, want at most 1", len(gens))
	}
}

func assertNoSecrets(t testing.TB, text string, f fixture) {
	t.Helper()
	testkit.AssertNoSecrets(t, "output", text, f.secrets()...)
}
