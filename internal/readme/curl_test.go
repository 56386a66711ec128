package readme

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The README's signed curl request (curl --aws-sigv4) is one API Gateway
// accepts: run as written against a local server with temporary
// credentials in the environment, its Authorization header is the SigV4
// signature the AWS SDK computes for execute-api in us-east-1 over the same
// request, the session token is sent (and signed), and the body is the
// onboarding request the API takes. Needs curl 7.76.0 or later (fails
// without it).
func TestCurlExampleSignsForExecuteAPI(t *testing.T) {
	var curl string
	for _, b := range shellBlocks(readme(t)) {
		if strings.Contains(b, "--aws-sigv4") {
			curl = b
		}
	}
	if curl == "" {
		t.Fatal("README shows no curl --aws-sigv4 request")
	}
	type seen struct {
		method, path string
		header       http.Header
		body         []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Clone(), body}
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()

	creds := aws.Credentials{AccessKeyID: "ASIAEXAMPLEEXAMPLE00", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", SessionToken: "FwoGZXIvYXdzEXAMPLEtoken"}
	dir := t.TempDir()
	script := filepath.Join(dir, "request.sh")
	if err := os.WriteFile(script, []byte("set -e\n"+curl+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"AWS_ACCESS_KEY_ID=" + creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + creds.SecretAccessKey, "AWS_SESSION_TOKEN=" + creds.SessionToken,
		"API=" + srv.URL + "/v1", "CERT_ARN=arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's curl request (curl 7.76.0 or later needed): %v\n%s", err, out)
	}
	req := <-got

	if req.method != http.MethodPost || req.path != "/v1/certificates" {
		t.Errorf("sent %s %s, want POST /v1/certificates", req.method, req.path)
	}
	var body struct {
		CertificateARN string `json:"certificateArn"`
		Name           string `json:"name"`
		Targets        []struct {
			Key    string   `json:"key"`
			Values []string `json:"values"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(req.body, &body); err != nil || !strings.HasPrefix(body.CertificateARN, "arn:aws:acm:") || body.Name == "" || len(body.Targets) == 0 {
		t.Errorf("body %s: %v", req.body, err)
	}
	if req.header.Get("X-Amz-Security-Token") != creds.SessionToken {
		t.Errorf("session token header %q", req.header.Get("X-Amz-Security-Token"))
	}

	// The same request signed by the SDK, with the headers curl signed
	// (SigV4 signs the headers it lists in SignedHeaders).
	auth := req.header.Get("Authorization")
	signedList := ""
	if _, after, ok := strings.Cut(auth, "SignedHeaders="); ok {
		signedList, _, _ = strings.Cut(after, ",")
	}
	if signedList != "content-type;host;x-amz-date;x-amz-security-token" {
		t.Fatalf("curl signed %q, want content-type, host, x-amz-date and the session token", signedList)
	}
	when, err := time.Parse("20060102T150405Z", req.header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date: %v", err)
	}
	sdkReq, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/certificates", nil)
	if err != nil {
		t.Fatal(err)
	}
	sdkReq.Header.Set("Content-Type", req.header.Get("Content-Type"))
	sum := sha256.Sum256(req.body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, sdkReq, hex.EncodeToString(sum[:]), "execute-api", "us-east-1", when); err != nil {
		t.Fatal(err)
	}
	if want := sdkReq.Header.Get("Authorization"); auth != want {
		t.Errorf("curl's Authorization\n %s\nthe SDK's for execute-api in us-east-1\n %s", auth, want)
	}
}
