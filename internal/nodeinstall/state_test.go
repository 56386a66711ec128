//go:build unix

package nodeinstall

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/testkit"
)

// The lock is exclusive per name and its wait is bounded by the context.
func TestLockBounded(t *testing.T) {
	sd := stateDir(t.TempDir())
	if err := sd.ensure(); err != nil {
		t.Fatal(err)
	}
	held, err := lock(t.Context(), sd.lockPath("shop-web"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := lock(ctx, sd.lockPath("shop-web")); err == nil || !strings.Contains(err.Error(), "another run holds it") {
		t.Fatalf("second lock: %v, want refused while held", err)
	}
	other, err := lock(ctx, sd.lockPath("other-name"))
	if err != nil {
		t.Fatalf("another name: %v", err)
	}
	other.unlock()
	held.unlock()
	again, err := lock(ctx, sd.lockPath("shop-web"))
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again.unlock()
}

func TestStateDirRefused(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	cases := []struct {
		name  string
		setup func(r *rig)
	}{
		{"a symlink", func(r *rig) {
			real := filepath.Join(r.root, "real-state")
			_ = os.Mkdir(real, 0o700)
			_ = os.Symlink(real, r.state)
		}},
		{"owned by someone else", func(r *rig) {
			_ = os.Mkdir(r.state, 0o700)
			_ = os.Chown(r.state, 4242, 4242)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if os.Geteuid() != 0 && tc.name == "owned by someone else" {
				t.Fatal("this test needs root to chown (the CI runs as root)")
			}
			r := newRig(t)
			tc.setup(r)
			p := r.params(f)
			res := r.run(p)
			if res.Status != StatusFailed || !strings.Contains(res.Detail, "state directory") {
				t.Fatalf("%+v", res)
			}
			if stateOf(t, p.CertPath).exists {
				t.Fatal("wrote a file")
			}
		})
	}
	t.Run("group or world access is removed", func(t *testing.T) {
		r := newRig(t)
		_ = os.Mkdir(r.state, 0o755)
		if res := r.run(r.params(f)); res.Status != StatusInstalled {
			t.Fatalf("%+v", res)
		}
		for _, d := range []string{r.state, filepath.Join(r.state, "backup"), filepath.Join(r.state, "journal")} {
			if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("%s: %v %v", d, fi.Mode(), err)
			}
		}
	})
}

// A panic after writing still ends with a result and the old files back.
func TestPanicRollsBack(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	r := newRig(t)
	p := r.params(f)
	writeFile(t, p.CertPath, "old cert\n", 0, 0, 0o644)
	before := stateOf(t, p.CertPath)
	r.hook = func(step string) {
		if step == "reloaded" {
			panic("boom")
		}
	}
	res := r.run(p)
	if res.Status != StatusRolledBack || res.ExitCode() != 2 || !strings.Contains(res.Detail, "internal error: boom; rolled back") {
		t.Fatalf("%+v", res)
	}
	if stateOf(t, p.CertPath) != before || stateOf(t, p.KeyPath).exists {
		t.Fatal("files not restored")
	}
	r.assertClean("shop-web")
}

// A rollback acts as root on what the journal names, so a journal or backup
// someone else could have planted is refused, never acted on: here a state
// directory left writable by others (chmod -R 777) and a journal that would
// write an attacker's file, setuid, over a path outside the prefixes.
func TestPlantedJournalRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root to chown (the CI runs as root)")
	}
	f := newFixture(t, testkit.ECP256)
	plant := func(r *rig, j journal, owner int) {
		t.Helper()
		sd := stateDir(r.state)
		gen := filepath.Join(sd.backupDir("shop-web"), j.Generation)
		if err := os.MkdirAll(gen, 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(gen, "0"), "planted content\n", owner, owner, 0o6755)
		b, _ := json.Marshal(j)
		writeFile(t, sd.journalPath("shop-web"), string(b), owner, owner, 0o644)
	}
	cases := []struct {
		name   string
		owner  int
		mode   os.FileMode // of the state tree
		edit   func(r *rig, j *journal)
		detail string
	}{
		{"a state tree writable by others", 0, 0o777, nil, "writable by group or others"},
		{"a journal of another user", 4242, 0o700, nil, "owned by uid 4242"},
		{"a temp away from its target", 0, 0o700, func(r *rig, j *journal) { j.Files[0].Temp = filepath.Join(r.etc, "x.tmp") }, "not an installer temp"},
		{"a backup outside the name's backup directory", 0, 0o700, func(r *rig, j *journal) { j.Files[0].Backup = "/etc/passwd" }, "not in the backup directory"},
		{"a backup of another owner than the journal says", 0, 0o700, func(r *rig, j *journal) { j.Files[0].UID = 0; j.Files[0].GID = 0 }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			p := r.params(f)
			if res := r.run(p); res.Status != StatusInstalled {
				t.Fatalf("first install: %+v", res)
			}
			victim := filepath.Join(r.root, "victim")
			writeFile(t, victim, "victim\n", 0, 0, 0o600)
			before := stateOf(t, victim)
			sd := stateDir(r.state)
			gen := "20260101T000000Z-0123456789abcdef"
			j := journal{Name: "shop-web", Fingerprint: "X", Generation: gen, Phase: phaseCommitting, Restore: true,
				Files: []journalFile{{Path: victim, Temp: filepath.Join(r.root, ".certferry-shop-web.0123456789abcdef.tmp"), Existed: true,
					Backup: filepath.Join(sd.backupDir("shop-web"), gen, "0"), UID: 4242, GID: 4242, Mode: 0o6755}}}
			if tc.edit != nil {
				tc.edit(r, &j)
			}
			plant(r, j, 4242)
			if tc.owner == 0 {
				_ = os.Chown(sd.journalPath("shop-web"), 0, 0)
			}
			if tc.mode != 0o700 {
				_ = filepath.Walk(r.state, func(p string, fi os.FileInfo, err error) error {
					if err == nil && fi.IsDir() {
						_ = os.Chmod(p, tc.mode)
					}
					return nil
				})
			}
			res := r.run(p)
			if after := stateOf(t, victim); after != before {
				t.Fatalf("the planted journal was acted on: victim is now %+v (result %+v)", after, res)
			}
			if res.Status != StatusFailed || !strings.Contains(res.Detail, tc.detail) {
				t.Fatalf("result %+v, want failed mentioning %q", res, tc.detail)
			}
		})
	}
}

// A state filesystem that fills up mid-run: a journal save that fails
// never stops the rollback, never leaves temps holding the new key beside
// the targets, and a run whose targets were never touched says failed.
func TestJournalSaveFails(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	full := errors.New("no space left on device")
	cases := []struct {
		name     string
		failAt   map[string]bool
		mismatch bool
		status   string
	}{
		{"committing", map[string]bool{phaseCommitting: true, phaseRollingBack: true}, false, StatusFailed},
		{"rolling back after a mismatch", map[string]bool{phaseRollingBack: true}, true, StatusRolledBack},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			p := r.params(f)
			writeFile(t, p.CertPath, "old certificate\n", 1234, 2345, 0o640)
			writeFile(t, p.KeyPath, "old key\n", 0, 0, 0o600)
			before := []fileState{stateOf(t, p.CertPath), stateOf(t, p.KeyPath)}
			if tc.mismatch {
				r.server.ignoreFiles = true
				r.server.served = newFixture(t, testkit.ECP256).exp.Leaf
			}
			e := r.engine()
			e.saveFault = func(phase string) error {
				if tc.failAt[phase] {
					return full
				}
				return nil
			}
			res := e.Run(context.Background(), p)
			t.Logf("result: %s", res.Line())
			if res.Status != tc.status || strings.Contains(res.Detail, "ROLLBACK FAILED") {
				t.Fatalf("result %+v, want %s", res, tc.status)
			}
			if after := []fileState{stateOf(t, p.CertPath), stateOf(t, p.KeyPath)}; after[0] != before[0] || after[1] != before[1] {
				t.Fatalf("files %+v, want %+v", after, before)
			}
			r.assertClean("shop-web")
		})
	}
}

// CERTFERRY_STATE_DIR given as a relative path is refused before anything
// happens (a target inside it would pass the prefix check).
func TestRelativeStateDirRefused(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	r := newRig(t)
	t.Chdir(r.etc)
	p := r.params(f, func(p *Params) { p.CertPath = filepath.Join(r.etc, "state", "journal", "shop-web.json") })
	e := r.engine()
	e.StateDir = "state"
	res := e.Run(context.Background(), p)
	if res.Status != StatusFailed || !strings.Contains(res.Detail, "not an absolute path") {
		t.Fatalf("%+v", res)
	}
	if _, err := os.Lstat(filepath.Join(r.etc, "state")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("made the state directory: %v", err)
	}
}
