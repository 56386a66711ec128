//go:build integration

package agentrun_test

// The real document run by agentrun end to end: its download step fetches
// the real certferry-node (built here, published under its content address)
// from moto's S3, installLinux checks its SHA-256 and runs it, and the
// installer reads the bundle from moto's Secrets Manager and installs it into
// a real nginx (reloaded through its services file, verified by a TLS
// handshake). The node's PATH holds only the POSIX tools the step uses.
// moto_server and nginx are required: these tests fail, never skip, without
// them (.ci/run installs both). The real-server matrix (Apache, HAProxy,
// Postfix, formats, rollbacks) is internal/nodeinstall/realserver's.

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/certferry/certferry/internal/agentrun"
	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/document"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/testkit"
)

const docPath = "../../ssm-documents/certferry-install.yaml"

type e2e struct {
	t        *testing.T
	node     *localenv.LocalNode
	moto     *motoserver.Server
	awsCfg   aws.Config
	s3       *s3.Client
	sm       *secretsmanager.Client
	doc      *agentrun.Document
	sha      string // the published installer for this machine's arch
	binary   []byte
	secrets  []string
	secretID string // the command's SecretId; default certferry/shop-web
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	ctx := context.Background()
	// moto behind the AWS model check (stopped, and checked, when t ends):
	// the node's requests (S3 GetObject, GetSecretValue) are held to what
	// AWS accepts.
	moto := testkit.StartRigT(t).Moto
	node, err := localenv.StartLocalNode(t.TempDir(), "shop.example.com")
	if err != nil {
		t.Fatalf("nginx is required (.ci/run installs it): %v", err)
	}
	t.Cleanup(node.Stop)
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(moto.URL),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := agentrun.Load(docPath)
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{t: t, node: node, moto: moto, awsCfg: awsCfg, s3: localenv.NewS3(awsCfg), sm: secretsmanager.NewFromConfig(awsCfg), doc: doc}
	if _, err := e.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("stack-installerbucket-1a2b")}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "certferry-node")
	if err := agentrun.BuildInstaller(ctx, "linux", runtime.GOARCH, out); err != nil {
		t.Fatal(err)
	}
	if e.binary, err = os.ReadFile(out); err != nil {
		t.Fatal(err)
	}
	if e.sha, err = agentrun.PublishInstaller(ctx, e.s3, "stack-installerbucket-1a2b", "installer/", "linux", e.binary); err != nil {
		t.Fatal(err)
	}
	return e
}

// publish stores a bundle version the way the pipeline does.
func (e *e2e) publish(kt testkit.KeyType) bundle.Bundle {
	e.t.Helper()
	pass := "Pass" + strconv.FormatInt(time.Now().UnixNano(), 36) + "xyzXYZ0123456789"
	ex := testkit.NewExport(e.t, kt, "shop.example.com", pass)
	m, err := certs.Verify(ex.Certificate, ex.CertificateChain, ex.PrivateKey, []byte(pass))
	if err != nil {
		e.t.Fatal(err)
	}
	pfx, err := m.PKCS12(pass)
	if err != nil {
		e.t.Fatal(err)
	}
	b := bundle.Bundle{
		CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
		Serial:         m.Serial, NotAfter: m.NotAfter.Format(time.RFC3339), Fingerprint: m.Fingerprint,
		Certificate: ex.Certificate, CertificateChain: ex.CertificateChain, PrivateKey: ex.PrivateKey,
		PKCS12: base64.StdEncoding.EncodeToString(pfx), Passphrase: pass, ExportedAt: time.Now().UTC().Format(time.RFC3339),
	}
	raw, _ := json.Marshal(b)
	e.secrets = append(e.secrets, pass)
	ctx := context.Background()
	_, err = e.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("certferry/shop-web"), SecretString: aws.String(string(raw))})
	if err != nil {
		_, err = e.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("certferry/shop-web"), SecretString: aws.String(string(raw))})
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// command runs the document as SSM Agent would for a command carrying the
// node's parameters and the published installer's hash.
func (e *e2e) command(b bundle.Bundle) (*agentrun.Result, agentrun.StepResult, *document.Result) {
	e.t.Helper()
	params := e.node.Params()
	for k, v := range map[string]string{
		"SecretId": cmp.Or(e.secretID, "certferry/shop-web"), "CertName": "shop-web", "ExpectedFingerprint": b.Fingerprint, "Region": "us-east-1",
		"InstallerBucket": "stack-installerbucket-1a2b", "InstallerKeyPrefix": "installer/",
		"InstallerSha256Linux" + strings.ToUpper(runtime.GOARCH[:1]) + runtime.GOARCH[1:]: e.sha,
	} {
		params[k] = v
	}
	a := &agentrun.Agent{
		Root: filepath.Join(e.node.Dir, "agent"), Platform: "Linux", InstanceID: localenv.SampleInstanceID, Region: "us-east-1",
		Env: e.node.EmulatorEnv(e.moto.URL, "us-east-1"), S3: e.s3,
	}
	res, err := a.Run(context.Background(), e.doc, params)
	if err != nil {
		e.t.Fatal(err)
	}
	install, _ := res.Step(document.StepLinux)
	out := install.Stdout + install.Stderr
	testkit.AssertNoSecrets(e.t, "installLinux output", out, e.secrets...)
	if len(install.Stdout) >= 2000 {
		e.t.Errorf("installLinux stdout is %d characters, the contract says under 2,000", len(install.Stdout))
	}
	r, perr := document.ParseResult(install.Stdout)
	if perr != nil {
		e.t.Fatalf("no result (exit %d)\nstdout: %s\nstderr: %s", install.ExitCode, install.Stdout, install.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(install.Stdout), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], document.ResultPrefix) {
		e.t.Fatalf("last output line is not the result: %q", lines[len(lines)-1])
	}
	return res, install, r
}

func TestDocumentOnNginx(t *testing.T) {
	e := newE2E(t)

	// 1. The published installer installs the bundle; nginx serves it.
	a := e.publish(testkit.RSA2048)
	res, install, r := e.command(a)
	if install.Status != agentrun.StatusSuccess || r.Status != "installed" || r.Fingerprint != a.Fingerprint || r.Serial != a.Serial {
		t.Fatalf("install: %+v %+v\n%s", install, r, install.Stderr)
	}
	for _, s := range res.Steps {
		t.Logf("step %s: %s", s.Name, s.Status)
	}
	if got, err := e.node.Served(a.Fingerprint, 10*time.Second); err != nil || got != a.Fingerprint {
		t.Fatalf("nginx serves %s (%v), want %s", got, err, a.Fingerprint)
	}
	cached := filepath.Join(e.node.StateDir, "installer", e.sha, "certferry-node")
	if raw, err := os.ReadFile(cached); err != nil || string(raw) != string(e.binary) {
		t.Fatalf("installer not cached at %s: %v", cached, err)
	}

	// 2. The object under the command's hash was replaced: the step refuses
	//    it, runs nothing, and the node keeps serving what it served.
	b := e.publish(testkit.ECP256)
	if err := os.RemoveAll(filepath.Dir(cached)); err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), e.binary...)
	tampered[len(tampered)/2] ^= 0xff
	key := agentrun.InstallerKey("installer/", e.sha, "linux")
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("stack-installerbucket-1a2b"),
		Key: aws.String(key), Body: strings.NewReader(string(tampered))}); err != nil {
		t.Fatal(err)
	}
	reloads := e.node.Reloads()
	_, install, r = e.command(b)
	if install.ExitCode != 1 || r.Status != "failed" || !strings.Contains(r.Detail, "installer SHA-256 mismatch") {
		t.Fatalf("tampered installer: exit %d %+v", install.ExitCode, r)
	}
	if got, _ := e.node.Served("", time.Second); got != a.Fingerprint || e.node.Reloads() != reloads {
		t.Fatalf("after a refused installer nginx serves %s (reloads %d -> %d), want %s unchanged", got, reloads, e.node.Reloads(), a.Fingerprint)
	}
	if entries, _ := os.ReadDir(filepath.Dir(cached)); len(entries) != 0 {
		t.Fatalf("refused installer left in the cache: %v", entries)
	}

	// 3. The genuine object again, but a command for a secret the node
	//    cannot read: the installer reports failed and changes nothing.
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("stack-installerbucket-1a2b"),
		Key: aws.String(key), Body: strings.NewReader(string(e.binary))}); err != nil {
		t.Fatal(err)
	}
	e.secretID = "certferry/nope"
	_, install, r = e.command(b)
	if install.ExitCode != 1 || r.Status != "failed" || !strings.Contains(r.Detail, "secret") {
		t.Fatalf("unreadable secret: exit %d %+v", install.ExitCode, r)
	}
	if got, _ := e.node.Served("", time.Second); got != a.Fingerprint || e.node.Reloads() != reloads {
		t.Fatalf("after a failed run nginx serves %s, want %s unchanged", got, a.Fingerprint)
	}
}
