package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// buildBinary builds certferry-node once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "certferry-node-test-*")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "certferry-node")
		buildOut, buildErr = exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9", "-o", binPath, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// The built binary (the release flags are the Makefile's): a bad command prints only the result line and exits 1;
// version prints the version.
func TestBinary(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "v9.9.9" {
		t.Fatalf("version: %q %v", out, err)
	}
	cmd := exec.Command(bin, "install")
	cmd.Env = []string{"SSM_CertName=shop-web", "SSM_SecretId=certferry/shop-web", "SSM_ExpectedFingerprint=nope",
		"SSM_CertPath=/etc/ssl/../shadow", "AWS_SSM_REGION_NAME=us-east-1", "CERTFERRY_STATE_DIR=" + t.TempDir()}
	out, err = cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "CERTFERRY_RESULT ") || len(out) > 2000 {
		t.Fatalf("output %q", out)
	}
	var r struct{ Status, Detail string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(last, "CERTFERRY_RESULT ")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != "failed" || !strings.Contains(r.Detail, "bad ExpectedFingerprint") || !strings.Contains(r.Detail, "bad CertPath") {
		t.Fatalf("%+v", r)
	}
	if out, err := exec.Command(bin, "bogus").CombinedOutput(); err == nil || !strings.Contains(string(out), "usage") {
		t.Fatalf("bogus: %q %v", out, err)
	}
}
