//go:build integration

package readme

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/testkit"
)

// The README's moto_server start and the address it listens on. The test
// cannot run that line as written (port 5000 may be taken, and its requests
// would escape the AWS model check): moto_server runs behind the rig
// instead (testkit.StartRig: moto_server with MOTO_ACM_VALIDATION_WAIT=0,
// behind the model check, on a free port), and the rig's address stands
// where the README says 127.0.0.1:5000.
const (
	readmeMotoStart = "MOTO_ACM_VALIDATION_WAIT=0 moto_server -p 5000"
	readmeEndpoint  = "127.0.0.1:5000"
	blockMark       = "::local-path block "
)

// expect is what a block's output must show, found by a command the block
// runs: a README change that drops the command fails the test instead of
// dropping the check.
var expect = []struct {
	command string
	want    []string
}{
	// make demo: the same run cmd/certferry TestDemo checks in detail, here
	// through make (make deps, the stamped build) as the README runs it.
	{"make demo", []string{"nginx serves the renewed certificate", "== Summary", "renewed    shop-web under the same ARN"}},
	{"certferry local up --seed", []string{"arn:aws:acm:us-east-1:", " i-"}},
	{"certferry onboard", []string{`"commandId": "`, "shop-web  shop.example.com", "internal-api  api.internal.example",
		"is running on the nodes of tag:env=prod", "internal-api  pending", "Targets:      tag:env=prod"}},
	{"certferry agent-run", []string{`CERTFERRY_RESULT {"status":"installed"`, "installLinux: Success", "shop-web.key"}},
	{"aws acm renew-certificate", []string{"in_progress (acm-event)", `"unchanged"`, `"statusCode": 200`,
		`"deferredForLiveDeployment": true`, `"name": "internal-api",` + "\n" + `  "certificateArn"`, `"recoveryWindowDays": 30`,
		`"secretKept": true`, "no certificate onboarded yet"}},
}

// TestLocalPath runs every command of the README's local path ("Try it
// locally": the shell blocks marked <!-- local-path -->) in order, in one
// bash -euo pipefail session, from the repository's root, on a fresh
// moto_server behind the AWS model check. Every line runs as written but
// the moto_server start (above); `go install ./cmd/certferry` builds the
// CLI into a temporary GOBIN that is first on PATH. `make test` is not on
// the local path (it runs this test).
func TestLocalPath(t *testing.T) {
	blocks, err := localPathBlocks(readme(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 {
		t.Fatal("README marks no local-path block")
	}
	rig := testkit.StartRigT(t)
	endpoint, err := url.Parse(rig.URL)
	if err != nil {
		t.Fatal(err)
	}

	var script strings.Builder
	script.WriteString("exec 2>&1\n")
	starts, endpoints := 0, 0
	for i, b := range blocks {
		fmt.Fprintf(&script, "echo \"%s%d $(date +%%s.%%N)\"\n", blockMark, i+1)
		for _, line := range strings.Split(b, "\n") {
			if strings.Contains(line, "moto_server -p") {
				cmd, _, _ := strings.Cut(line, "#")
				if !strings.HasPrefix(cmd, readmeMotoStart+" ") || !strings.HasSuffix(strings.TrimSpace(cmd), "&") {
					t.Fatalf("the README starts moto_server as %q; the test stands in for %q … &", line, readmeMotoStart)
				}
				fmt.Fprintf(&script, "true # the README starts moto_server here; the test's rig (%s) stands for it\n", rig.URL)
				starts++
				continue
			}
			if strings.Contains(line, readmeEndpoint) {
				line = strings.ReplaceAll(line, readmeEndpoint, endpoint.Host)
				endpoints++
			}
			script.WriteString(line + "\n")
		}
	}
	fmt.Fprintf(&script, "echo \"%send $(date +%%s.%%N)\"\n", blockMark)
	if starts != 1 || endpoints == 0 {
		t.Fatalf("the README's local path starts moto_server %d time(s) and names %s %d time(s); want once and at least once", starts, readmeEndpoint, endpoints)
	}

	tmp := t.TempDir()
	scriptFile := filepath.Join(tmp, "local-path.sh")
	if err := os.WriteFile(scriptFile, []byte(script.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	gobin := filepath.Join(tmp, "bin")
	env := []string{"GOBIN=" + gobin, "PATH=" + gobin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"TMPDIR=" + tmp, "AWS_CONFIG_FILE=" + filepath.Join(tmp, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(tmp, "no-aws-credentials"), "AWS_EC2_METADATA_DISABLED=true"}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "AWS_") || strings.HasPrefix(name, "CERTFERRY_") ||
			name == "GOBIN" || name == "PATH" || name == "TMPDIR" {
			continue
		}
		env = append(env, kv)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", scriptFile)
	cmd.Dir = root
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A file, not a pipe: a background process the blocks left running
	// (the proxy, when a block failed before the README's kill) would hold
	// a pipe open and Run would wait for it.
	logFile := filepath.Join(tmp, "local-path.log")
	log, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	t.Logf("running the README's %d local-path blocks; output in %s", len(blocks), logFile)
	runErr := cmd.Run()
	// Whatever the blocks left running goes with the session's process group.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.NewBuffer(raw)

	outputs, times := splitBlocks(out.String(), len(blocks))
	for i := range blocks {
		if outputs[i] == nil {
			continue
		}
		t.Logf("local-path block %d: %.1f s", i+1, times[i])
	}
	if runErr != nil || outputs[len(blocks)] == nil {
		t.Fatalf("the README's local path failed (%v); its output:\n%s", runErr, out.String())
	}
	for _, e := range expect {
		found := false
		for i, b := range blocks {
			if !strings.Contains(b, e.command) {
				continue
			}
			found = true
			for _, w := range e.want {
				if !strings.Contains(*outputs[i], w) {
					t.Errorf("local-path block %d (%s) does not print %q; it printed:\n%s", i+1, e.command, w, *outputs[i])
				}
			}
		}
		if !found {
			t.Errorf("no local-path block runs %q", e.command)
		}
	}
}

// splitBlocks cuts the session's output at the block marks: outputs[i] is
// block i+1's output (nil if it never started), outputs[n] the end mark's
// (non-nil when the session reached its end), times[i] block i+1's
// duration in seconds.
func splitBlocks(out string, n int) ([]*string, []float64) {
	outputs := make([]*string, n+1)
	times := make([]float64, n)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(blockMark) + `(\d+|end) ([0-9.]+)\n`)
	marks := re.FindAllStringSubmatchIndex(out, -1)
	starts := make([]float64, n+1)
	for k, m := range marks {
		id := out[m[2]:m[3]]
		idx := n
		if id != "end" {
			v, _ := strconv.Atoi(id)
			idx = v - 1
		}
		if idx < 0 || idx > n {
			continue
		}
		end := len(out)
		if k+1 < len(marks) {
			end = marks[k+1][0]
		}
		s := out[m[1]:end]
		outputs[idx] = &s
		starts[idx], _ = strconv.ParseFloat(out[m[4]:m[5]], 64)
		if idx > 0 && outputs[idx-1] != nil {
			times[idx-1] = starts[idx] - starts[idx-1]
		}
	}
	return outputs, times
}
