package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// request is one call the fake API saw.
type request struct{ method, path, body string }

// fakeAPI answers from routes ("METHOD path" → status and body); anything
// else is the API's 404.
func fakeAPI(routes map[string]string, seen *[]request) Caller {
	return func(_ context.Context, method, path string, body []byte) (int, []byte, error) {
		if seen != nil {
			*seen = append(*seen, request{method, path, string(body)})
		}
		ans, ok := routes[method+" "+path]
		if !ok {
			return 404, []byte(`{"error":{"code":"NotFound","message":"unknown certificate name: x","field":"name"}}`), nil
		}
		status := 200
		if method == "POST" {
			status = 202
		}
		if s, b, ok := strings.Cut(ans, "|"); ok && len(s) == 3 {
			status, ans = atoi(s), b
		}
		return status, []byte(ans), nil
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

var now = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func env(call Caller, out io.Writer) Env {
	return Env{Stdout: out, Connect: func(context.Context, string) (Caller, error) { return call, nil }, Now: func() time.Time { return now }}
}

const shopWeb = `{"name":"shop-web","certificateArn":"arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
 "status":"active","serial":"0c","notAfter":"2026-12-23T00:00:00Z","fingerprintSha256":"AB:CD","domainName":"shop.example.com",
 "targets":[{"key":"tag:env","values":["prod"]}],
 "linux":{"certPath":"/etc/ssl/certs/shop-web.pem","keyPath":"/etc/ssl/private/shop-web.key","reloadService":"nginx","verifyPort":443,"serverName":"shop.example.com","owner":"root","keyMode":"0600"},
 "windows":{"store":"","iisSite":""},"secretArn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:certferry/shop-web-AbCdEf","updatedAt":"2026-11-20T00:00:05Z",
 "nodes":[{"instanceId":"i-0000000000000001a","state":"installed","serial":"0c","lastCommandId":"c-2","updatedAt":"2026-11-20T00:01:00Z"},
          {"instanceId":"i-0000000000000002a","state":"installed","serial":"0b","lastCommandId":"c-1","updatedAt":"2026-11-01T00:01:00Z"},
          {"instanceId":"i-0000000000000003a","state":"pending","lastCommandId":"c-2","updatedAt":"2026-11-20T00:00:05Z"},
          {"instanceId":"i-0000000000000004a","state":"rolled_back","serial":"0b","lastCommandId":"c-2","error":"handshake mismatch","updatedAt":"2026-11-20T00:02:00Z"},
          {"instanceId":"i-0000000000000005a","state":"installed","serial":"0c","unverified":true,"lastCommandId":"c-2","updatedAt":"2026-11-20T00:03:00Z"}],
 "deployments":[{"deploymentId":"d1","commandId":"c-1","createdAt":"2026-11-01T00:00:00Z","outcome":"succeeded","trigger":"api","serial":"0b","counts":{"installed":2}},
                {"deploymentId":"d2","commandId":"c-2","createdAt":"2026-11-20T00:00:00Z","outcome":"in_progress","trigger":"acm-event","serial":"0c","counts":{"installed":2,"rolled_back":1}}]}`

// wavedName is a name whose renewal waits for its maintenance window,
// after a halted-free first rollout of three waves.
const wavedName = `{"name":"waved","certificateArn":"arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
"status":"active","serial":"0c","notAfter":"2026-12-23T00:00:00Z","targets":[{"key":"tag:env","values":["prod"]}],"linux":{},"windows":{},
"nodes":[{"instanceId":"i-0000000000000001a","state":"installed","serial":"0c","lastCommandId":"c-1","updatedAt":"2026-11-20T00:01:00Z"}],
"deployments":[{"deploymentId":"d1","commandId":"c-1","trigger":"api","serial":"0c","counts":{"installed":1},"outcome":"succeeded",
"createdAt":"2026-11-20T00:00:00Z","rolloutId":"r0","wave":1,"waves":3}],
"currentRollout":{"rolloutId":"4f2a9c1d5e6b7a80","serial":"0d","trigger":"acm-event","phase":"waiting_window","wave":0,"nodes":0,
"notBefore":"2026-11-28T01:00:00Z","goBy":"2026-12-14T00:00:00Z","reason":"waiting for the maintenance window opening at 2026-11-28T01:00:00Z",
"updatedAt":"2026-11-23T00:00:00Z"}}`

const emptyName = `{"name":"empty","status":"onboarding","targets":[{"key":"InstanceIds","values":["i-0000000000000009a"]}],"linux":{},"windows":{},"nodes":[],"deployments":[]}`

func routes() map[string]string {
	return map[string]string{
		"GET /certificates":          `{"certificates":[{"name":"shop-web"},{"name":"empty"}]}`,
		"GET /certificates/shop-web": shopWeb,
		"GET /certificates/empty":    emptyName,
		"GET /certificates/waved":    wavedName,
		"GET /nodes/i-0000000000000001a": `{"instanceId":"i-0000000000000001a","certificates":[
			{"name":"api","state":"failed","serial":"0a","lastCommandId":"c-9","error":"reload failed: nginx -t","updatedAt":"2026-11-21T00:00:00Z"},
			{"name":"shop-web","state":"installed","serial":"0c","lastCommandId":"c-2","updatedAt":"2026-11-20T00:01:00Z"}]}`,
		"GET /nodes/i-0000000000000007a": `{"instanceId":"i-0000000000000007a","certificates":[]}`,
	}
}

func TestReadVerbsGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		run    func(context.Context, Env, []string) error
		args   []string
	}{
		{"status.txt", RunStatus, nil},
		{"status-name.txt", RunStatus, []string{"shop-web"}},
		{"status-name-empty.txt", RunStatus, []string{"empty"}},
		{"status-node.txt", RunStatus, []string{"--node", "i-0000000000000001a"}},
		{"status-node-none.txt", RunStatus, []string{"--node", "i-0000000000000007a"}},
		{"get.txt", RunGet, []string{"shop-web"}},
		{"status-rollout.txt", RunStatus, []string{"waved"}},
		{"get-rollout.txt", RunGet, []string{"waved"}},
		{"get-empty.txt", RunGet, []string{"empty", "-o", "table"}},
		{"get.json", RunGet, []string{"shop-web", "-o", "json"}},
		{"status-node.json", RunStatus, []string{"-o", "json", "--node", "i-0000000000000001a"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.run(context.Background(), env(fakeAPI(routes(), nil), &b), tc.args); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, b.String())
		})
	}
}

// -o json is the API's answer (all pages), indented: it decodes back.
func TestJSONIsTheAnswer(t *testing.T) {
	var b bytes.Buffer
	if err := RunStatus(context.Background(), env(fakeAPI(routes(), nil), &b), []string{"-o", "json"}); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Certificates []struct {
			Name  string
			Nodes []json.RawMessage
		}
	}
	if err := json.Unmarshal(b.Bytes(), &out); err != nil || len(out.Certificates) != 2 || len(out.Certificates[0].Nodes) != 5 {
		t.Fatalf("%v %s", err, b.String())
	}
	if !strings.Contains(b.String(), "\n  \"certificates\": [") {
		t.Fatalf("not indented: %s", b.String())
	}
}

// Every page of GET /certificates/{name} (?next=) and GET /nodes/{id} is
// read and merged.
func TestPaging(t *testing.T) {
	call := fakeAPI(map[string]string{
		"GET /certificates/big": `{"name":"big","serial":"0c","nodes":[{"instanceId":"i-1","state":"installed","serial":"0c"}],
			"deployments":[{"deploymentId":"d1","createdAt":"2026-11-01T00:00:00Z","outcome":"succeeded","trigger":"api"}],"next":"p2"}`,
		"GET /certificates/big?next=p2":          `{"name":"big","serial":"0c","nodes":[{"instanceId":"i-2","state":"pending"}],"deployments":[],"next":"p+3/="}`,
		"GET /certificates/big?next=p%2B3%2F%3D": `{"name":"big","serial":"0c","nodes":[{"instanceId":"i-3","state":"failed","error":"boom"}],"deployments":[]}`,
		"GET /nodes/i-0000000000000001a":         `{"instanceId":"i-0000000000000001a","certificates":[{"name":"a"}],"next":"n2"}`,
		"GET /nodes/i-0000000000000001a?next=n2": `{"instanceId":"i-0000000000000001a","certificates":[{"name":"b"}]}`,
	}, nil)
	c := Client{Call: call}
	p, err := c.Get(context.Background(), "big")
	if err != nil || len(p.Nodes) != 3 || len(p.Deployments) != 1 || p.Next != "" {
		t.Fatalf("%v %+v", err, p)
	}
	in, pend, fail := NodeCounts(p)
	if in != 1 || pend != 1 || fail != 1 {
		t.Fatalf("counts %d %d %d", in, pend, fail)
	}
	n, err := c.Node(context.Background(), "i-0000000000000001a")
	if err != nil || len(n.Certificates) != 2 || n.Certificates[1].Name != "b" {
		t.Fatalf("%v %+v", err, n)
	}
}

func TestWriteVerbsSendTheAPIsBodies(t *testing.T) {
	var seen []request
	call := fakeAPI(map[string]string{
		"POST /certificates":                              `{"name":"shop-web","commandId":"c-1"}`,
		"POST /certificates/shop-web/deployments":         `{"name":"shop-web","commandId":"c-2"}`,
		"DELETE /certificates/shop-web":                   `{"name":"shop-web","deleted":true,"secretKept":true}`,
		"DELETE /certificates/shop-web?deleteSecret=true": `{"name":"shop-web","deleted":true,"secretDeletion":{"recoveryWindowDays":30,"secrets":[]}}`,
	}, &seen)
	arn := "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	for _, tc := range []struct {
		run     func(context.Context, Env, []string) error
		args    []string
		method  string
		path    string
		body    string
		printed string
	}{
		{RunOnboard, []string{"--name", "shop-web", "--arn", arn, "--target", "tag:env=prod,staging", "--target", "tag-key=web", "--reload", "nginx", "--verify-port", "8443",
			"--server-name", "shop.example.com", "--format", "split", "--chain-path", "/etc/ssl/certs/c.pem", "--owner", "root", "--group", "ssl-cert", "--cert-mode", "0644", "--key-mode", "0640",
			"--verify-address", "::1", "--starttls", "smtp", "--cert-path", "/etc/ssl/certs/s.pem", "--key-path", "/etc/ssl/private/s.key"},
			"POST", "/certificates",
			`{"certificateArn":"` + arn + `","linux":{"certMode":"0644","certPath":"/etc/ssl/certs/s.pem","chainPath":"/etc/ssl/certs/c.pem","format":"split","group":"ssl-cert","keyMode":"0640","keyPath":"/etc/ssl/private/s.key","owner":"root","reloadService":"nginx","serverName":"shop.example.com","starttls":"smtp","verifyAddress":"::1","verifyPort":8443},"name":"shop-web","targets":[{"key":"tag:env","values":["prod","staging"]},{"key":"tag-key","values":["web"]}]}`,
			`"commandId": "c-1"`},
		{RunOnboard, []string{"--name", "shop-web", "--arn", arn, "--instance", "i-0000000000000001a,i-0000000000000002a", "--instance", "mi-0000000000000003a", "--verify-port", "0"},
			"POST", "/certificates",
			`{"certificateArn":"` + arn + `","linux":{"verifyPort":0},"name":"shop-web","targets":[{"key":"InstanceIds","values":["i-0000000000000001a","i-0000000000000002a","mi-0000000000000003a"]}]}`, ""},
		{RunRedeploy, []string{"shop-web"}, "POST", "/certificates/shop-web/deployments", "", `"commandId": "c-2"`},
		{RunRedeploy, []string{"--instance", "i-0000000000000001a", "shop-web", "--instance", "i-0000000000000002a"}, "POST", "/certificates/shop-web/deployments",
			`{"instanceIds":["i-0000000000000001a","i-0000000000000002a"]}`, ""},
		{RunDelete, []string{"shop-web"}, "DELETE", "/certificates/shop-web", "", `"secretKept": true`},
		{RunDelete, []string{"shop-web", "--delete-secret"}, "DELETE", "/certificates/shop-web?deleteSecret=true", "", `"recoveryWindowDays": 30`},
	} {
		seen = nil
		var b bytes.Buffer
		if err := tc.run(context.Background(), env(call, &b), tc.args); err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if len(seen) != 1 || seen[0].method != tc.method || seen[0].path != tc.path || seen[0].body != tc.body {
			t.Errorf("%v sent %+v, want %s %s %s", tc.args, seen, tc.method, tc.path, tc.body)
		}
		if !strings.Contains(b.String(), tc.printed) {
			t.Errorf("%v printed %s, want %s", tc.args, b.String(), tc.printed)
		}
	}
}

// An API error is the command's error: its message and code, and the exit
// code of its class.
func TestAPIErrorsExit(t *testing.T) {
	call := fakeAPI(map[string]string{
		"POST /certificates/shop-web/deployments": `409|{"error":{"code":"DeploymentInProgress","message":"a deployment of this name is in progress; retry shortly"}}`,
		"DELETE /certificates/shop-web":           `502|{"error":{"code":"DependencyFailure","message":"an AWS dependency failed; retry the request"}}`,
		"GET /certificates/odd":                   `403|{"message":"Missing Authentication Token"}`,
	}, nil)
	for _, tc := range []struct {
		run  func(context.Context, Env, []string) error
		args []string
		exit int
		msg  string
	}{
		{RunGet, []string{"nope"}, ExitClient, "GET /certificates/nope: 404 NotFound: unknown certificate name: x (field name)"},
		{RunRedeploy, []string{"shop-web"}, ExitClient, "409 DeploymentInProgress: a deployment of this name is in progress; retry shortly"},
		{RunDelete, []string{"shop-web"}, ExitServer, "502 DependencyFailure: an AWS dependency failed"},
		{RunStatus, []string{"odd"}, ExitClient, "403: Missing Authentication Token"},
	} {
		var b bytes.Buffer
		err := tc.run(context.Background(), env(call, &b), tc.args)
		if ExitCode(err) != tc.exit || err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: %v (exit %d), want exit %d with %q", tc.args, err, ExitCode(err), tc.exit, tc.msg)
		}
		if b.Len() != 0 {
			t.Errorf("%v printed %q on failure", tc.args, b.String())
		}
	}
	if ExitCode(&HandlerError{Err: errors.New("x")}) != ExitServer || ExitCode(errors.New("dial tcp: refused")) != ExitFailed || ExitCode(nil) != ExitOK {
		t.Fatal("exit codes of handler and local errors")
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"onboard", "get", "status", "redeploy", "delete", "local", "invoke", "agent-run", "demo", "sync-template", "version"}
	for typed, want := range map[string]string{
		"stauts": "status", "statsu": "status", "gte": "get", "delte": "delete", "redploy": "redeploy", "agentrun": "agent-run",
		"synctemplate": "sync-template", "invok": "invoke", "x": "", "kubectl": "", "deploy": "redeploy", "up": "",
	} {
		if got := Suggest(typed, cands); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", typed, got, want)
		}
	}
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"é", "e", 1}, {"status", "status", 0}} {
		if got := Levenshtein(tc.a, tc.b); got != tc.d {
			t.Errorf("Levenshtein(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

// Against the deployed API, requests are SigV4-signed for execute-api,
// the body's hash included; the in-process caller builds API Gateway's
// proxy event.
func TestCallers(t *testing.T) {
	var auth, path, hash, body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, path, hash = r.Header.Get("Authorization"), r.URL.RequestURI(), r.Header.Get("X-Amz-Content-Sha256")
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.WriteHeader(202)
		_, _ = w.Write([]byte(`{"name":"shop-web"}`))
	}))
	defer srv.Close()
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}, nil
	})
	call, err := HTTPCaller(srv.URL+"/v1/", creds, "eu-west-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Client{Call: call}).Redeploy(context.Background(), "shop-web", []string{"i-0000000000000001a"}); err != nil {
		t.Fatal(err)
	}
	if path != "/v1/certificates/shop-web/deployments" || !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") ||
		!strings.Contains(auth, "/eu-west-1/execute-api/aws4_request") || body != `{"instanceIds":["i-0000000000000001a"]}` {
		t.Fatalf("path %q auth %q body %q hash %q", path, auth, body, hash)
	}
	for _, bad := range []string{"", "ftp://x", "shop-web", "https://"} {
		if _, err := HTTPCaller(bad, creds, "eu-west-1", nil); ExitCode(err) != ExitUsage {
			t.Errorf("-api %q: %v", bad, err)
		}
	}
	for _, tc := range []struct {
		method, path, resource, param, value string
		query                                map[string]string
	}{
		{"GET", "/certificates/big?next=p%2B3&limit=5", "/certificates/{name}", "name", "big", map[string]string{"next": "p+3", "limit": "5"}},
		{"POST", "/certificates/big/deployments", "/certificates/{name}/deployments", "name", "big", nil},
		{"GET", "/nodes/i-0000000000000001a", "/nodes/{instanceId}", "instanceId", "i-0000000000000001a", nil},
		{"DELETE", "/certificates/x?deleteSecret=true", "/certificates/{name}", "name", "x", map[string]string{"deleteSecret": "true"}},
		{"GET", "/certificates", "/certificates", "", "", nil},
	} {
		req := ProxyRequest(tc.method, tc.path, nil)
		if req.Resource != tc.resource || tc.param != "" && req.PathParameters[tc.param] != tc.value || len(req.QueryStringParameters) != len(tc.query) {
			t.Errorf("%s: %+v", tc.path, req)
		}
		for k, v := range tc.query {
			if req.QueryStringParameters[k] != v {
				t.Errorf("%s: query %s = %q", tc.path, k, req.QueryStringParameters[k])
			}
		}
	}
}
