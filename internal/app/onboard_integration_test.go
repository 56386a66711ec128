//go:build integration

package app

// Integration tests: the real onboard handler and SDK clients against
// moto_server, started by TestMain. They fail (never skip) without moto.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/testkit"
)

var (
	moto *motoserver.Server
	logs *testkit.LogBuffer
	// seen collects every passphrase, encrypted key and PFX the suite
	// produced, and artifacts everything the suite's handlers produced that
	// is not a secret (API answers, handler outcomes, alerts, SSM command
	// parameters, DynamoDB items), for the leak check in TestMain.
	seenMu    sync.Mutex
	seen      []string
	artifacts strings.Builder
	collected = map[string]int{}
)

// keep records an artifact of kind for the leak check.
func keep(kind, text string) {
	seenMu.Lock()
	defer seenMu.Unlock()
	collected[kind]++
	artifacts.WriteString(text)
	artifacts.WriteString("\n")
}

// remember records a bundle's secret parts for the leak check.
func remember(b bundle.Bundle) {
	seenMu.Lock()
	defer seenMu.Unlock()
	seen = append(seen, b.Passphrase)
	if len(b.PKCS12) >= 64 {
		seen = append(seen, b.PKCS12[:64], b.PKCS12[len(b.PKCS12)-64:])
	}
	if lines := strings.Split(b.PrivateKey, "\n"); len(lines) > 2 {
		seen = append(seen, lines[1], lines[len(lines)/2])
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	// Every test is parallel, but all except those on a moto of their own
	// wait in newRig for the shared moto (sharedMoto), and
	// TestAPIAnswersWithinItsDeadline's cases wait for deadlines: none of
	// that is CPU, so let them all start (a waiting test must not keep a
	// case from its slot) unless -parallel says otherwise.
	if !flagSet("test.parallel") {
		_ = flag.Set("test.parallel", strconv.Itoa(max(runtime.GOMAXPROCS(0), 64)))
	}
	logs = testkit.CaptureLogs()
	// moto behind the AWS model check: every request of the suite is
	// checked against AWS's API models, and one AWS would refuse fails the
	// run even if the code under test swallowed the 400.
	rig, err := testkit.StartRig(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration tests need moto_server and botocore:", err)
		os.Exit(1)
	}
	moto = rig.Moto
	code := rig.Finish(m.Run())
	if code == 0 {
		code = checkLogs()
	}
	os.Exit(code)
}

func flagSet(name string) (set bool) {
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// checkLogs asserts that no log line of the whole suite, and no API answer,
// handler outcome, alert, SSM command parameter or DynamoDB item it left
// behind, holds a passphrase, a private key (encrypted or not) or a PFX.
func checkLogs() int {
	text := logs.String()
	// A run of some tests (-run) may not produce every kind; the whole
	// suite must, or the check would prove nothing.
	whole := flag.Lookup("test.run") == nil || flag.Lookup("test.run").Value.String() == ""
	if whole && !strings.Contains(text, "certificate exported and stored") {
		fmt.Fprintln(os.Stderr, "leak check: the suite logged no export; the check would prove nothing")
		return 1
	}
	seenMu.Lock()
	defer seenMu.Unlock()
	for _, kind := range []string{"api answer", "ssm parameters", "dynamodb item", "alert", "handler outcome"} {
		if whole && collected[kind] == 0 {
			fmt.Fprintf(os.Stderr, "leak check: no %s collected; the check would prove nothing\n", kind)
			return 1
		}
	}
	if whole && len(seen) < 10 {
		fmt.Fprintf(os.Stderr, "leak check: only %d secret values known; the check would prove nothing\n", len(seen))
		return 1
	}
	code := 0
	for what, body := range map[string]string{"the logs": text, "the suite's artifacts": artifacts.String()} {
		var leaks []string
		for _, marker := range []string{"PRIVATE KEY", "ENCRYPTED"} {
			if strings.Contains(body, marker) {
				leaks = append(leaks, "a PEM "+marker)
			}
		}
		for _, s := range seen {
			if strings.Contains(body, s) {
				leaks = append(leaks, fmt.Sprintf("a secret value of %d characters", len(s)))
			}
		}
		if len(leaks) > 0 {
			fmt.Fprintln(os.Stderr, "leak check:", what, "contain", strings.Join(leaks, ", "))
			code = 1
		}
	}
	if code == 0 {
		fmt.Fprintf(os.Stderr, "leak check: %d secret values against %d log bytes and artifacts %v: clean\n", len(seen), len(text), collected)
	}
	return code
}

// collect reads what a test left in moto: every secret version (its secret
// parts join seen), every SSM command's parameters and every DynamoDB item
// (they join artifacts).
func (r *rig) collect() {
	ls, err := r.sm.ListSecrets(r.ctx, &secretsmanager.ListSecretsInput{})
	if err != nil {
		r.t.Errorf("leak check: list secrets: %v", err)
		return
	}
	for _, sec := range ls.SecretList {
		vs, err := r.sm.ListSecretVersionIds(r.ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: sec.ARN, IncludeDeprecated: aws.Bool(true)})
		if err != nil {
			r.t.Errorf("leak check: versions: %v", err)
			return
		}
		for _, v := range vs.Versions {
			out, err := r.sm.GetSecretValue(r.ctx, &secretsmanager.GetSecretValueInput{SecretId: sec.ARN, VersionId: v.VersionId})
			if err != nil {
				r.t.Errorf("leak check: read version: %v", err)
				return
			}
			var b bundle.Bundle
			if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &b); err == nil && b.Passphrase != "" {
				remember(b)
			}
			// A keystore password secret (pkcs12/jks names): {"password": ...}.
			var ks struct {
				Password string `json:"password"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &ks); err == nil && ks.Password != "" {
				seenMu.Lock()
				seen = append(seen, ks.Password)
				seenMu.Unlock()
			}
		}
	}
	cmds, err := r.ssm.ListCommands(r.ctx, &ssm.ListCommandsInput{})
	if err != nil {
		r.t.Errorf("leak check: list commands: %v", err)
		return
	}
	for _, c := range cmds.Commands {
		p, _ := json.Marshal(c.Parameters)
		keep("ssm parameters", string(p)+" "+aws.ToString(c.Comment))
	}
	sc, err := r.ddb.Scan(r.ctx, &dynamodb.ScanInput{TableName: aws.String(r.cfg.Table)})
	if err != nil {
		r.t.Errorf("leak check: scan: %v", err)
		return
	}
	for _, it := range sc.Items {
		keep("dynamodb item", fmt.Sprintf("%v", it))
	}
}

// apiHandler is the onboarding API as the tests call it.
type apiHandler interface {
	Handle(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)
}

type rig struct {
	t       testing.TB
	server  *motoserver.Server
	ctx     context.Context
	aws     aws.Config
	cfg     config.Config
	handler apiHandler
	sm      *secretsmanager.Client
	ddb     *dynamodb.Client
	ssm     *ssm.Client
}

// sharedMoto is held by the test using the package's moto, from newRig
// until the test's cleanup: the tests run in parallel (so that one on a
// moto of its own runs beside the rest), one at a time on the shared moto.
var sharedMoto sync.Mutex

// newRig resets moto and creates the stack's resources in it. On the
// package's moto it first waits for the test before it to finish.
func newRig(t testing.TB, server *motoserver.Server) *rig {
	t.Helper()
	ctx := context.Background()
	if server == moto {
		sharedMoto.Lock()
		t.Cleanup(sharedMoto.Unlock) // last: after the rig's own cleanups
	}
	if err := server.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion("us-east-1"),
		awsconfig.WithBaseEndpoint(server.URL),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})),
	)
	if err != nil {
		t.Fatal(err)
	}
	env, err := localenv.Up(ctx, awsCfg, filepath.Join("..", "..", localenv.DocumentFile))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{
		t: t, server: server, ctx: ctx, aws: awsCfg, cfg: env.Config, handler: Onboard(awsCfg, env.Config, Options{}),
		sm: secretsmanager.NewFromConfig(awsCfg), ddb: dynamodb.NewFromConfig(awsCfg), ssm: ssm.NewFromConfig(awsCfg),
	}
	t.Cleanup(r.collect)
	return r
}

// launch starts n instances with tags (none when nil).
func (r *rig) launch(n int, tags map[string]string) []string {
	r.t.Helper()
	ids, err := localenv.LaunchInstances(r.ctx, r.aws, n, tags)
	if err != nil {
		r.t.Fatal(err)
	}
	return ids
}

// exportable requests an issued public certificate with export enabled.
func (r *rig) exportable(domain string) string {
	r.t.Helper()
	arn, err := localenv.RequestExportable(r.ctx, r.aws, domain)
	if err != nil {
		r.t.Fatal(err)
	}
	return arn
}

func (r *rig) post(body string) (int, map[string]any) {
	r.t.Helper()
	return r.call("POST", "/certificates", "", body)
}

func (r *rig) call(method, path, name, body string) (int, map[string]any) {
	r.t.Helper()
	return r.callOn(r.handler, method, path, name, body)
}

// callOn sends one API request to h and returns the status and the decoded
// answer, which joins the leak check's artifacts.
func (r *rig) callOn(h apiHandler, method, path, name, body string) (int, map[string]any) {
	r.t.Helper()
	req := events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Resource: path, Body: body}
	if name != "" {
		req.Resource = strings.Replace(path, "/"+name, "/{name}", 1)
		req.PathParameters = map[string]string{"name": name}
	}
	resp, err := h.Handle(r.ctx, req)
	if err != nil {
		r.t.Fatalf("handler error: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		r.t.Fatalf("answer is not JSON: %q", resp.Body)
	}
	testkit.AssertNoSecrets(r.t, "API answer", resp.Body, r.secretValues()...)
	keep("api answer", resp.Body)
	return resp.StatusCode, out
}

// counts is what the stack holds: secrets, secret versions, items (but
// audit entries), audit entries (AUDIT#, kept after a DELETE on purpose),
// commands.
type counts struct{ secrets, versions, items, audits, commands int }

func (r *rig) counts() counts {
	r.t.Helper()
	var c counts
	ls, err := r.sm.ListSecrets(r.ctx, &secretsmanager.ListSecretsInput{})
	if err != nil {
		r.t.Fatal(err)
	}
	c.secrets = len(ls.SecretList)
	for _, s := range ls.SecretList {
		v, err := r.sm.ListSecretVersionIds(r.ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: s.ARN, IncludeDeprecated: aws.Bool(true)})
		if err != nil {
			r.t.Fatal(err)
		}
		c.versions += len(v.Versions)
	}
	sc, err := r.ddb.Scan(r.ctx, &dynamodb.ScanInput{TableName: aws.String(r.cfg.Table)})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, it := range sc.Items {
		if sk, ok := it["SK"].(*ddbtypes.AttributeValueMemberS); ok && strings.HasPrefix(sk.Value, "AUDIT#") {
			c.audits++
			continue
		}
		c.items++
	}
	cmds, err := r.ssm.ListCommands(r.ctx, &ssm.ListCommandsInput{})
	if err != nil {
		r.t.Fatal(err)
	}
	c.commands = len(cmds.Commands)
	return c
}

func (r *rig) commands() []ssmCommand {
	r.t.Helper()
	out, err := r.ssm.ListCommands(r.ctx, &ssm.ListCommandsInput{})
	if err != nil {
		r.t.Fatal(err)
	}
	var cmds []ssmCommand
	for _, c := range out.Commands {
		cmds = append(cmds, ssmCommand{ID: aws.ToString(c.CommandId), Document: aws.ToString(c.DocumentName), Instances: c.InstanceIds, Parameters: c.Parameters})
	}
	return cmds
}

type ssmCommand struct {
	ID, Document string
	Instances    []string
	Parameters   map[string][]string
}

// bundleOf reads the current secret value of name and remembers its
// secret parts for the log check.
func (r *rig) bundleOf(name string) bundle.Bundle {
	r.t.Helper()
	out, err := r.sm.GetSecretValue(r.ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(r.cfg.SecretPrefix + name)})
	if err != nil {
		r.t.Fatal(err)
	}
	var b bundle.Bundle
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &b); err != nil {
		r.t.Fatal(err)
	}
	remember(b)
	return b
}

func (r *rig) secretValues() []string {
	seenMu.Lock()
	defer seenMu.Unlock()
	return slices.Clone(seen)
}

func onboardBody(arn, name string) string {
	return fmt.Sprintf(`{"certificateArn": %q, "name": %q, "targets": [{"key": "tag:env", "values": ["prod"]}],
		"linux": {"reloadService": "nginx", "serverName": "shop.example.com"}}`, arn, name)
}

func TestOnboardExportableCertificates(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	tagged := r.launch(2, map[string]string{"env": "prod"})
	r.launch(1, map[string]string{"env": "dev"})
	r.launch(1, nil)
	publicARN := r.exportable("shop.example.com")
	ca, err := localenv.CreatePrivateCA(r.ctx, r.aws)
	if err != nil {
		t.Fatal(err)
	}
	privateARN, err := localenv.RequestPrivate(r.ctx, r.aws, ca, "api.internal.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, arn string }{{"shop-web", publicARN}, {"internal-api", privateARN}} {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			before := r.counts()
			status, ans := r.post(onboardBody(tc.arn, tc.name))
			if status != 202 {
				t.Fatalf("status %d: %v", status, ans)
			}
			for _, k := range []string{"name", "certificateArn", "deploymentId", "commandId", "serial", "notAfter", "fingerprintSha256"} {
				if s, _ := ans[k].(string); s == "" {
					t.Errorf("answer lacks %s: %v", k, ans)
				}
			}
			after := r.counts()
			if after.secrets != before.secrets+1 || after.versions != before.versions+1 || after.commands != before.commands+1 {
				t.Fatalf("counts %+v -> %+v: want one new secret, version and command", before, after)
			}

			// The stored key decrypts with the stored passphrase (Go and
			// openssl) and belongs to the certificate.
			b := r.bundleOf(tc.name)
			if b.Serial != ans["serial"] || b.Fingerprint != ans["fingerprintSha256"] || b.CertificateARN != tc.arn {
				t.Fatalf("bundle %v does not match the answer %v", b, ans)
			}
			m, err := certs.Verify(b.Certificate, b.CertificateChain, b.PrivateKey, []byte(b.Passphrase))
			if err != nil {
				t.Fatalf("stored bundle fails verification: %v", err)
			}
			if m.Fingerprint != b.Fingerprint {
				t.Fatalf("fingerprint %s, bundle says %s", m.Fingerprint, b.Fingerprint)
			}
			opensslMatches(t, b)
			pfx, _ := base64.StdEncoding.DecodeString(b.PKCS12)
			if _, leaf, _, err := pkcs12.DecodeChain(pfx, b.Passphrase); err != nil || certs.Fingerprint(leaf.Raw) != b.Fingerprint {
				t.Fatalf("PFX does not open with the passphrase or holds another certificate: %v", err)
			}

			// The inventory holds the certificate.
			inv := inventory.NewStore(r.ddb, r.cfg.Table)
			c, err := inv.GetCert(r.ctx, tc.name)
			if err != nil || c == nil {
				t.Fatalf("inventory: %v, %v", c, err)
			}
			if c.CertificateARN != tc.arn || c.Serial != b.Serial || c.Status != inventory.StatusActive || c.Claim != nil || c.SecretARN == "" {
				t.Fatalf("inventory item %+v", c)
			}

			// One command, exactly the tagged instances, no material in parameters.
			var cmd *ssmCommand
			for _, x := range r.commands() {
				if x.ID == ans["commandId"] {
					cmd = &x
				}
			}
			if cmd == nil || cmd.Document != r.cfg.Document {
				t.Fatalf("command %v not found with document %s", ans["commandId"], r.cfg.Document)
			}
			if got, want := slices.Sorted(slices.Values(cmd.Instances)), slices.Sorted(slices.Values(tagged)); !slices.Equal(got, want) {
				t.Fatalf("command targets %v, want exactly the tagged %v", got, want)
			}
			params, _ := json.Marshal(cmd.Parameters)
			testkit.AssertNoSecrets(t, "command parameters", string(params), b.Passphrase, b.PKCS12[:64])
			if strings.Contains(string(params), "BEGIN CERTIFICATE") || strings.Contains(string(params), strings.Split(b.Certificate, "\n")[1]) {
				t.Fatal("command parameters carry certificate text")
			}
			if cmd.Parameters["SecretId"][0] != r.cfg.SecretPrefix+tc.name || cmd.Parameters["ExpectedFingerprint"][0] != b.Fingerprint {
				t.Fatalf("parameters %v", cmd.Parameters)
			}
			itemsDump, _ := r.ddb.Scan(r.ctx, &dynamodb.ScanInput{TableName: aws.String(r.cfg.Table)})
			raw, _ := json.Marshal(itemsDump.Items)
			testkit.AssertNoSecrets(t, "DynamoDB items", string(raw), b.Passphrase, b.PKCS12[:64])
		})
	}
}

// opensslMatches decrypts the bundle's key with openssl, passphrase on a
// file descriptor, and compares its public key with the certificate's.
func opensslMatches(t *testing.T, b bundle.Bundle) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, cert, pass := write("key.enc", b.PrivateKey), write("cert.pem", b.Certificate), write("pass", b.Passphrase)
	cmd := exec.Command("openssl", "pkey", "-in", key, "-passin", "file:"+pass, "-pubout")
	pubKey, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl cannot decrypt the key with the passphrase: %v", err)
	}
	pubCert, err := exec.Command("openssl", "x509", "-in", cert, "-noout", "-pubkey").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(pubKey) != string(pubCert) {
		t.Fatal("openssl: key does not match certificate")
	}
}

func TestOnboardIsIdempotent(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	r.launch(1, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	status, first := r.post(onboardBody(arn, "shop-web"))
	if status != 202 {
		t.Fatalf("first onboarding: %d %v", status, first)
	}
	base := r.counts()

	status, again := r.post(onboardBody(arn, "shop-web"))
	if status != 202 || again["commandId"] != first["commandId"] || again["deploymentId"] != first["deploymentId"] {
		t.Fatalf("re-onboarding answered %d %v, want the same deployment %v", status, again, first["deploymentId"])
	}
	if got := r.counts(); got != base {
		t.Fatalf("re-onboarding changed the stack: %+v -> %+v", base, got)
	}

	// A changed install option sends a new command but exports nothing.
	changed := strings.Replace(onboardBody(arn, "shop-web"), `"nginx"`, `"apache2"`, 1)
	status, upd := r.post(changed)
	if status != 202 || upd["commandId"] == first["commandId"] {
		t.Fatalf("changed spec: %d %v", status, upd)
	}
	got := r.counts()
	if got.versions != base.versions || got.commands != base.commands+1 {
		t.Fatalf("changed spec: %+v -> %+v, want one more command and no new secret version", base, got)
	}

	// An explicit redeploy sends again, still without a new export.
	status, red := r.call("POST", "/certificates/shop-web/deployments", "shop-web", "")
	if status != 202 || red["commandId"] == upd["commandId"] {
		t.Fatalf("redeploy: %d %v", status, red)
	}
	if g := r.counts(); g.versions != base.versions || g.commands != base.commands+2 {
		t.Fatalf("redeploy: %+v -> %+v", base, g)
	}

	// GET shows the certificate and its deployments (its nodes appear as
	// they report; the tracker tests cover them).
	status, detail := r.call("GET", "/certificates/shop-web", "shop-web", "")
	if status != 200 || len(detail["deployments"].([]any)) != 3 {
		t.Fatalf("GET: %d %v", status, detail)
	}

	// DELETE stops distribution and leaves the secret for the nodes.
	if status, _ := r.call("DELETE", "/certificates/shop-web", "shop-web", ""); status != 200 {
		t.Fatalf("DELETE: %d", status)
	}
	if status, _ := r.call("GET", "/certificates/shop-web", "shop-web", ""); status != 404 {
		t.Fatalf("GET after DELETE: %d", status)
	}
	if g := r.counts(); g.items != 0 || g.secrets != 1 || g.audits != 1 {
		t.Fatalf("after DELETE: %+v, want no items but the DELETE's audit entry, and the secret kept", g)
	}
	if status, _ := r.call("DELETE", "/certificates/shop-web", "shop-web", ""); status != 404 {
		t.Fatalf("second DELETE: %d", status)
	}
}

func TestOnboardRefusalsWriteNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	r.launch(1, map[string]string{"env": "prod"})
	good := r.exportable("shop.example.com")
	other := r.exportable("other.example.com")
	notExportable, err := localenv.RequestNotExportable(r.ctx, r.aws, "plain.example.com")
	if err != nil {
		t.Fatal(err)
	}
	// A name bound to `good` first; refusals below must leave it as it is.
	if status, ans := r.post(onboardBody(good, "taken")); status != 202 {
		t.Fatalf("setup: %d %v", status, ans)
	}
	unknownARN := "arn:aws:acm:us-east-1:123456789012:certificate/99999999-9999-9999-9999-999999999999"
	target := `"targets": [{"key": "tag:env", "values": ["prod"]}]`
	tests := []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"malformed JSON", `{"certificateArn": "arn:aws:acm:`, 400, "ValidationError", "body"},
		{"empty body", ``, 400, "ValidationError", "body"},
		{"missing name", fmt.Sprintf(`{"certificateArn": %q, %s}`, good, target), 400, "ValidationError", "name"},
		{"missing arn", fmt.Sprintf(`{"name": "web", %s}`, target), 400, "ValidationError", "certificateArn"},
		{"missing targets", fmt.Sprintf(`{"certificateArn": %q, "name": "web"}`, good), 400, "ValidationError", "targets"},
		{"name traversal", fmt.Sprintf(`{"certificateArn": %q, "name": "../x", %s}`, good, target), 400, "ValidationError", "name"},
		{"name semicolon", fmt.Sprintf(`{"certificateArn": %q, "name": "a;b", %s}`, good, target), 400, "ValidationError", "name"},
		{"name substitution", fmt.Sprintf(`{"certificateArn": %q, "name": "$(id)", %s}`, good, target), 400, "ValidationError", "name"},
		{"name 200 chars", fmt.Sprintf(`{"certificateArn": %q, "name": %q, %s}`, good, strings.Repeat("a", 200), target), 400, "ValidationError", "name"},
		{"path traversal", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"certPath": "/etc/ssl/../../root/x"}}`, good, target), 400, "ValidationError", "linux.certPath"},
		{"path substitution", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"keyPath": "/tmp/$(id)"}}`, good, target), 400, "ValidationError", "linux.keyPath"},
		{"relative path", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"keyPath": "key.pem"}}`, good, target), 400, "ValidationError", "linux.keyPath"},
		{"hostile service", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"reloadService": "nginx;reboot"}}`, good, target), 400, "ValidationError", "linux.reloadService"},
		{"hostile tag value", fmt.Sprintf(`{"certificateArn": %q, "name": "web", "targets": [{"key": "tag:env", "values": ["prod$(id)"]}]}`, good), 400, "ValidationError", "targets[0].values[0]"},
		{"hostile tag key", fmt.Sprintf(`{"certificateArn": %q, "name": "web", "targets": [{"key": "tag:env;x", "values": ["prod"]}]}`, good), 400, "ValidationError", "targets[0].key"},
		{"hostile sample tag", fmt.Sprintf(`{"CertificateArn": %q, "CertName": "web", "TargetTagKey": "env", "TargetTagValue": "a\nb"}`, good), 400, "ValidationError", "targets[0].values[0]"},
		{"path outside the allowed prefixes", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"certPath": "/etc/passwd"}}`, good, target), 400, "ValidationError", "linux.certPath"},
		{"path in the installer's state dir", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"keyPath": "/var/lib/certferry/web.key"}}`, good, target), 400, "ValidationError", "linux.keyPath"},
		{"unknown format", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"format": "der"}}`, good, target), 400, "ValidationError", "linux.format"},
		{"split without chainPath", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"format": "split"}}`, good, target), 400, "ValidationError", "linux.chainPath"},
		{"jks without keystorePath", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"format": "jks"}}`, good, target), 400, "ValidationError", "linux.keystorePath"},
		{"jks keystore outside the prefixes", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"format": "jks", "keystorePath": "/home/app/web.jks"}}`, good, target), 400, "ValidationError", "linux.keystorePath"},
		{"hostile owner", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"owner": "root;id"}}`, good, target), 400, "ValidationError", "linux.owner"},
		{"mode as a number", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"keyMode": 600}}`, good, target), 400, "ValidationError", "linux.keyMode"},
		{"key readable by all", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"keyMode": "0644"}}`, good, target), 400, "ValidationError", "linux.keyMode"},
		{"hostile verify address", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"verifyAddress": "127.0.0.1 -x"}}`, good, target), 400, "ValidationError", "linux.verifyAddress"},
		{"unknown starttls", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s, "linux": {"starttls": "ldap"}}`, good, target), 400, "ValidationError", "linux.starttls"},
		{"arn of another service", fmt.Sprintf(`{"certificateArn": "arn:aws:iam::123456789012:role/admin", "name": "web", %s}`, target), 400, "ValidationError", "certificateArn"},
		{"arn in another region", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s}`, strings.Replace(good, "us-east-1", "eu-west-1", 1), target), 400, "ValidationError", "certificateArn"},
		{"unknown arn", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s}`, unknownARN, target), 404, "CertificateNotFound", "certificateArn"},
		{"not exportable", fmt.Sprintf(`{"certificateArn": %q, "name": "web", %s}`, notExportable, target), 422, "CertificateNotExportable", "certificateArn"},
		{"name bound to another certificate", fmt.Sprintf(`{"certificateArn": %q, "name": "taken", %s}`, other, target), 409, "NameTaken", "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			before := r.counts()
			status, ans := r.post(tc.body)
			e, _ := ans["error"].(map[string]any)
			if status != tc.status || e["code"] != tc.code || e["field"] != tc.field {
				t.Fatalf("got %d %v, want %d %s on %s", status, ans, tc.status, tc.code, tc.field)
			}
			if msg, _ := e["message"].(string); msg == "" {
				t.Fatal("error without message")
			}
			if after := r.counts(); after != before {
				t.Fatalf("a refused request wrote: %+v -> %+v", before, after)
			}
		})
	}
}

// A certificate still PENDING_VALIDATION needs a moto that does not issue
// at once, so this test runs its own.
func TestOnboardPendingValidation(t *testing.T) {
	t.Parallel() // its moto starts while TestAPIAnswersWithinItsDeadline waits
	// Stopped, and its model violations reported, after the rig's own
	// cleanup (cleanups run last-in, first-out).
	slow := testkit.StartRigT(t, "MOTO_ACM_VALIDATION_WAIT=3600")
	r := newRig(t, slow.Moto)
	arn, err := requestPending(r)
	if err != nil {
		t.Fatal(err)
	}
	before := r.counts()
	status, ans := r.post(onboardBody(arn, "web"))
	e, _ := ans["error"].(map[string]any)
	if status != 422 || e["code"] != "CertificateNotIssued" || !strings.Contains(e["message"].(string), "PENDING_VALIDATION") {
		t.Fatalf("got %d %v, want 422 CertificateNotIssued naming PENDING_VALIDATION", status, ans)
	}
	if after := r.counts(); after != before {
		t.Fatalf("refused request wrote: %+v -> %+v", before, after)
	}
}

// A run that dies after SendCommand (here: the inventory commit fails) is
// completed by the retry with no second secret version and no second command.
func TestOnboardResumesWithoutDuplicates(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	r.launch(2, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	parts := NewParts(r.aws, r.cfg)
	flaky := &failingCommit{Store: parts.Inventory, failures: 1}
	p := pipeline.New(parts.ACM, parts.Bundles, flaky, parts.Fleet, pipeline.Config{Region: "us-east-1"})
	sp := specOf(t, onboardBody(arn, "shop-web"))

	if _, err := p.Onboard(r.ctx, sp); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("first run: %v, want the injected failure", err)
	}
	mid := r.counts()
	if mid.versions != 1 || mid.commands != 1 {
		t.Fatalf("after the failed run: %+v, want 1 version and 1 command", mid)
	}
	res, err := p.Onboard(r.ctx, sp)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	end := r.counts()
	if end.versions != 1 || end.commands != 1 {
		t.Fatalf("after the retry: %+v, want still 1 version and 1 command", end)
	}
	if res.CommandID != r.commands()[0].ID {
		t.Fatalf("retry recorded command %s, not the one sent", res.CommandID)
	}
}

type failingCommit struct {
	*inventory.Store
	failures int
}

func (f *failingCommit) Commit(ctx context.Context, c *inventory.Cert, d *inventory.Deployment, failures map[string]int) (*inventory.Cert, error) {
	if f.failures > 0 {
		f.failures--
		return nil, errors.New("injected: DynamoDB unavailable")
	}
	return f.Store.Commit(ctx, c, d, failures)
}

func requestPending(r *rig) (string, error) {
	out, err := acm.NewFromConfig(r.aws).RequestCertificate(r.ctx, &acm.RequestCertificateInput{
		DomainName: aws.String("pending.example.com"), ValidationMethod: acmtypes.ValidationMethodDns,
		Options: &acmtypes.CertificateOptions{Export: acmtypes.CertificateExportEnabled},
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.CertificateArn), nil
}

func specOf(t *testing.T, body string) spec.Spec {
	t.Helper()
	sp, err := api.ParseOnboard(body, false)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// Concurrent onboardings of one name and certificate: one export, one secret
// version, one command; every other request is told to retry (409) or gets
// the same deployment.
func TestOnboardConcurrentRequests(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	r.launch(2, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	onboardConcurrently(t, r, r.handler, arn, 8)
}

// onboardConcurrently sends n identical onboardings through h at once and
// asserts exactly-once: at least one 202, every other answer 202 with the
// same command or 409 DeploymentInProgress (a conflict must be retried,
// never answered), one secret version and one command.
func onboardConcurrently(t *testing.T, r *rig, h apiHandler, arn string, n int) {
	t.Helper()
	type answer struct {
		status int
		body   map[string]any
	}
	answers := make(chan answer, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := h.Handle(r.ctx, events.APIGatewayProxyRequest{
				HTTPMethod: "POST", Path: "/certificates", Resource: "/certificates", Body: onboardBody(arn, "shop-web"),
			})
			if err != nil {
				t.Error(err)
				return
			}
			keep("api answer", resp.Body)
			var body map[string]any
			_ = json.Unmarshal([]byte(resp.Body), &body)
			answers <- answer{resp.StatusCode, body}
		}()
	}
	wg.Wait()
	close(answers)
	commandIDs := map[any]bool{}
	accepted := 0
	for a := range answers {
		switch a.status {
		case 202:
			accepted++
			commandIDs[a.body["commandId"]] = true
		case 409:
			if e, _ := a.body["error"].(map[string]any); e["code"] != "DeploymentInProgress" {
				t.Errorf("409 with %v", a.body)
			}
		default:
			t.Errorf("unexpected answer %d %v (a conflict must be retried, not answered)", a.status, a.body)
		}
	}
	got := r.counts()
	if accepted == 0 || len(commandIDs) != 1 || got.versions != 1 || got.commands != 1 {
		t.Fatalf("%d accepted with commands %v; stack %+v: want one version and one command", accepted, commandIDs, got)
	}
}
