//go:build unix

package nodeinstall

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/testkit"
)

// The kill-at-every-step test runs the installer in a child process (this
// test binary re-executed) and SIGKILLs it at each step, as SSM Agent does
// at the step timeout. The crash points are not in production code: the
// engine's in-process hook (an unexported field only tests set) makes the
// child print the step it reached and block, and the parent kills it there.
// The next run must finish or roll back the whole set first.

const killChildEnv = "CERTFERRY_NODEINSTALL_TEST_KILL_CHILD" // read by this test binary only

type killChild struct {
	Params   Params        `json:"params"`
	StateDir string        `json:"stateDir"`
	Bundle   bundle.Bundle `json:"bundle"`
	StopAt   string        `json:"stopAt"`
	Nth      int           `json:"nth"`
	Mismatch bool          `json:"mismatch"` // the server never serves the new certificate: roll back
}

func TestMain(m *testing.M) {
	if path := os.Getenv(killChildEnv); path != "" {
		os.Exit(runKillChild(path))
	}
	os.Exit(m.Run())
}

func runKillChild(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Println("child:", err)
		return 3
	}
	var c killChild
	if err := json.Unmarshal(b, &c); err != nil {
		fmt.Println("child:", err)
		return 3
	}
	secrets := &fakeSecrets{}
	secrets.put(c.Params.SecretID, c.Bundle)
	server := &fakeServer{active: true, certFile: c.Params.CertPath, ignoreFiles: c.Mismatch}
	seen := 0
	e := &Engine{Secrets: secrets, Services: server, Probe: server.probe, StateDir: c.StateDir,
		VerifyInterval: time.Millisecond, VerifyBudget: 300 * time.Millisecond,
		hook: func(step string) {
			if step != c.StopAt {
				return
			}
			if seen++; seen == c.Nth {
				fmt.Println("STOPPED " + step)
				_ = os.Stdout.Sync()
				select {} // wait for SIGKILL
			}
		}}
	res := e.Run(context.Background(), c.Params)
	fmt.Println(res.Line())
	return res.ExitCode()
}

func TestKilledAtEveryStep(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	other := newFixture(t, testkit.ECP256)
	steps := []struct {
		at       string
		nth      int
		mismatch bool
		keyAlone bool // before the run only the certificate file existed
		newState bool // the killed run had verified: recovery finishes it
		reloaded bool // the service may hold the new files: recovery reloads it
	}{
		{at: "prepared", nth: 1},
		{at: "backup", nth: 1},
		{at: "backup", nth: 2},
		{at: "temp", nth: 1},
		{at: "temp", nth: 2},
		{at: "committing", nth: 1},
		{at: "renamed", nth: 1},
		{at: "renamed", nth: 1, keyAlone: true},
		{at: "renamed", nth: 2},
		{at: "installed", nth: 1},
		{at: "reloading", nth: 1, reloaded: true},
		{at: "reloaded", nth: 1, reloaded: true},
		{at: "verifying", nth: 1, reloaded: true},
		{at: "verifying", nth: 1, reloaded: true, keyAlone: true},
		{at: "verified", nth: 1, newState: true},
		{at: "rolling_back", nth: 1, mismatch: true, reloaded: true},
		{at: "restored", nth: 1, mismatch: true, reloaded: true},
		{at: "restored", nth: 2, mismatch: true, reloaded: true},
		{at: "restored", nth: 1, mismatch: true, reloaded: true, keyAlone: true},
	}
	for _, s := range steps {
		name := fmt.Sprintf("%s-%d", s.at, s.nth)
		if s.mismatch {
			name += "/rolling-back"
		}
		if s.keyAlone {
			name += "/only-cert-existed"
		}
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			p := r.params(f)
			writeFile(t, p.CertPath, "old certificate\n", 1234, 2345, 0o640)
			if !s.keyAlone {
				writeFile(t, p.KeyPath, "old key\n", 1234, 2345, 0o600)
			}
			oldCert, oldKey := stateOf(t, p.CertPath), stateOf(t, p.KeyPath)

			cfg := killChild{Params: p, StateDir: r.state, Bundle: f.b, StopAt: s.at, Nth: s.nth, Mismatch: s.mismatch}
			cfgPath := filepath.Join(r.root, "child.json")
			b, _ := json.Marshal(cfg)
			if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), killChildEnv+"="+cfgPath)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(out)
			var seen []string
			stopped := false
			for sc.Scan() {
				seen = append(seen, sc.Text())
				if sc.Text() == "STOPPED "+s.at {
					stopped = true
					break
				}
			}
			if stopped {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			_ = cmd.Wait()
			if !stopped {
				t.Fatalf("child finished without reaching %s: %v", name, seen)
			}

			// The next command, already superseded, recovers and then does
			// nothing else: what it leaves is the recovered state.
			r.server.certFile = p.CertPath
			next := p
			next.ExpectedFingerprint = other.fp
			res := r.run(next)
			if res.Status != StatusSuperseded || res.ExitCode() != 0 || !strings.HasPrefix(res.Detail, "recovered:") || !strings.Contains(res.Detail, "; superseded: ") {
				t.Fatalf("next run %+v, want recovery then superseded", res)
			}
			cert, key := stateOf(t, p.CertPath), stateOf(t, p.KeyPath)
			if s.newState {
				if !strings.Contains(cert.content, "BEGIN CERTIFICATE") || !strings.Contains(key.content, "BEGIN PRIVATE KEY") {
					t.Fatalf("finished run left cert %q key %q, want the new set", cert.content, key.content)
				}
			} else if cert != oldCert || key != oldKey {
				t.Fatalf("recovered to cert %+v key %+v, want the old set %+v %+v", cert, key, oldCert, oldKey)
			}
			if got, want := slices.Contains(r.server.callList(), "reload nginx"), s.reloaded; got != want {
				t.Errorf("recovery reloaded nginx = %v, want %v (calls %v)", got, want, r.server.callList())
			}
			r.assertClean("shop-web")
			if gens, _ := os.ReadDir(stateDir(r.state).backupDir("shop-web")); !s.newState && len(gens) != 0 {
				t.Errorf("%d backup generations after a rollback", len(gens))
			}
			// And the command after it installs normally.
			if res := r.run(p); res.Status != StatusInstalled {
				t.Fatalf("install after recovery: %+v", res)
			}
		})
	}
}
