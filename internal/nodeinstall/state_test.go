//go:build unix

package nodeinstall

import (
	"context"
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
