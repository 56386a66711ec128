package readme

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// valueFlags are the CLI flags the README passes that take a value.
var valueFlags = []string{"api", "node", "instance", "name", "arn", "target", "reload", "verify-port", "server-name", "o", "reason", "limit"}

// route is the API request a README command must make, from the command
// itself (verb, NAME, --node, --instance, --delete-secret) and the API
// routes the README documents.
func route(verb string, args []string) (method, path string, ok bool) {
	var name, node string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			name = a
			continue
		}
		f := strings.TrimLeft(a, "-")
		if slices.Contains(valueFlags, f) && i+1 < len(args) {
			if f == "node" {
				node = args[i+1]
			}
			i++
		}
	}
	switch {
	case verb == "onboard":
		return http.MethodPost, "/v1/certificates", true
	case verb == "get" && name != "", verb == "status" && name != "":
		return http.MethodGet, "/v1/certificates/" + name, true
	case verb == "status" && node != "":
		return http.MethodGet, "/v1/nodes/" + node, true
	case verb == "status":
		return http.MethodGet, "/v1/certificates", true
	case verb == "delete" && name != "":
		return http.MethodDelete, "/v1/certificates/" + name, true
	case verb == "redeploy" && name != "":
		return http.MethodPost, "/v1/certificates/" + name + "/deployments", true
	case verb == "rotate" && name != "":
		return http.MethodPost, "/v1/certificates/" + name + "/renewals", true
	case verb == "approve" && name != "":
		return http.MethodPost, "/v1/certificates/" + name + "/approvals", true
	case verb == "rebind" && name != "":
		return http.MethodPost, "/v1/certificates/" + name + "/rebind", true
	case verb == "revoke" && name != "":
		return http.MethodPost, "/v1/certificates/" + name + "/revocations", true
	case verb == "audit" && name != "":
		return http.MethodGet, "/v1/certificates/" + name + "/audit", true
	}
	return "", "", false
}

// Every `certferry … -api "$API" …` command of the README, run as written
// against a local endpoint, sends the request its verb stands for, signed
// with SigV4 for execute-api: the route (method and path), ?deleteSecret=true
// for --delete-secret, {"instanceIds": [...]} for --instance, and the
// onboarding body for onboard. Fails until the CLI has the verbs.
func TestDeployedCommandsCallTheAPI(t *testing.T) {
	type call struct {
		method, path, query, auth string
		body                      []byte
	}
	var mu sync.Mutex
	var calls []call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls = append(calls, call{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), body})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error": {"code": "NotFound", "message": "test endpoint"}}`))
	}))
	defer srv.Close()

	bin := buildCLI(t)
	ran := 0
	for _, c := range allCommands(t, readme(t)) {
		verb, _, ok := c.certferryCall()
		if !ok || !slices.Contains(c, "$API") {
			continue
		}
		_, words := c.program()
		if words[0] == "run" { // go run ./cmd/certferry
			words = words[2:]
		}
		args := make([]string, 0, len(words))
		for _, w := range words {
			w = strings.ReplaceAll(w, "$API", srv.URL+"/v1")
			w = strings.ReplaceAll(w, "$CERT_ARN", "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555")
			w = strings.ReplaceAll(w, "$NEW_CERT_ARN", "arn:aws:acm:us-east-1:123456789012:certificate/22222222-2222-3333-4444-555555555555")
			args = append(args, w)
		}
		name := strings.Join(c, " ")
		t.Run(name, func(t *testing.T) {
			for _, a := range args {
				if strings.Contains(a, "$") {
					t.Fatalf("uses a variable this test does not set (teach it): %s", a)
				}
			}
			method, path, ok := route(verb, args[1:])
			if !ok {
				t.Fatalf("no API route known for %q", name)
			}
			mu.Lock()
			calls = nil
			mu.Unlock()
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Dir = dir
			cmd.Env = []string{"HOME=" + dir, "PATH=" + dir, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
				"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AWS_CONFIG_FILE=" + filepath.Join(dir, "none"),
				"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"), "AWS_EC2_METADATA_DISABLED=true"}
			out, err := cmd.CombinedOutput() // the endpoint answers 404: a non-zero exit is expected
			mu.Lock()
			got := slices.Clone(calls)
			mu.Unlock()
			if verb == "revoke" && !slices.Contains(args, "--yes") {
				// Here stdin is no terminal: revoke refuses (exit 2) before any request.
				var ee *exec.ExitError
				if len(got) != 0 || !errors.As(err, &ee) || ee.ExitCode() != 2 {
					t.Fatalf("revoke without a terminal and without --yes: %d requests, %v; output:\n%s", len(got), err, out)
				}
				return
			}
			if len(got) == 0 {
				t.Fatalf("sent no request; output:\n%s", out)
			}
			first := got[0]
			if first.method != method || first.path != path {
				t.Errorf("sent %s %s, want %s %s", first.method, first.path, method, path)
			}
			if !strings.Contains(first.auth, "/us-east-1/execute-api/aws4_request") {
				t.Errorf("not SigV4-signed for execute-api: Authorization %q", first.auth)
			}
			switch {
			case verb == "delete" && slices.Contains(args, "--delete-secret"):
				if first.query != "deleteSecret=true" {
					t.Errorf("--delete-secret sent query %q, want deleteSecret=true", first.query)
				}
			case verb == "redeploy" && slices.Contains(args, "--instance"):
				var b struct {
					InstanceIDs []string `json:"instanceIds"`
				}
				if err := json.Unmarshal(first.body, &b); err != nil || len(b.InstanceIDs) != 1 {
					t.Errorf("--instance sent body %s", first.body)
				}
			case verb == "onboard":
				var b struct {
					CertificateARN string `json:"certificateArn"`
					Name           string `json:"name"`
					Targets        []any  `json:"targets"`
				}
				if err := json.Unmarshal(first.body, &b); err != nil || b.Name == "" || !strings.HasPrefix(b.CertificateARN, "arn:aws:acm:") || len(b.Targets) == 0 {
					t.Errorf("onboard sent body %s", first.body)
				}
			}
		})
		ran++
	}
	if ran < 5 {
		t.Fatalf("only %d README commands call the API with -api \"$API\"", ran)
	}
}
