package nodeinstall

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/certferry/certferry/internal/testkit"
)

// testACL is the access ACL `setfacl -m u:65534:r` gives a 0600 file:
// user::rw- user:65534:r-- group::--- mask::r-- other::---.
func testACL() []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint32(2))
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{1, 6, ^uint32(0)}, {2, 4, 65534}, {4, 0, ^uint32(0)}, {0x10, 4, ^uint32(0)}, {0x20, 0, ^uint32(0)}} {
		_ = binary.Write(&b, binary.LittleEndian, e)
	}
	return b.Bytes()
}

func aclOf(t *testing.T, path string) []byte {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(path, aclXattr, buf)
	if errors.Is(err, unix.ENODATA) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// A key readable by a service user through an ACL stays readable by it
// after an install and after a rollback; the group bits (the ACL's mask)
// never become the owning group's access. A KeyMode option replaces both.
func TestACLKept(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	for _, tc := range []struct {
		name     string
		mismatch bool
		keyMode  string
		status   string
		wantACL  bool
	}{
		{"installed", false, "", StatusInstalled, true},
		{"rolled back", true, "", StatusRolledBack, true},
		{"a KeyMode option replaces mode and ACL", false, "0600", StatusInstalled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			p := r.params(f, func(p *Params) { p.KeyMode = tc.keyMode })
			writeFile(t, p.KeyPath, "old key\n", 0, 0, 0o600)
			if err := unix.Setxattr(p.KeyPath, aclXattr, testACL(), 0); err != nil {
				t.Fatalf("this test needs a filesystem with POSIX ACLs: %v", err)
			}
			before := stateOf(t, p.KeyPath)
			if tc.mismatch {
				r.server.ignoreFiles = true
				r.server.served = newFixture(t, testkit.ECP256).exp.Leaf
			}
			res := r.run(p)
			if res.Status != tc.status {
				t.Fatalf("%+v", res)
			}
			after := stateOf(t, p.KeyPath)
			if got := aclOf(t, p.KeyPath); tc.wantACL != bytes.Equal(got, testACL()) || (!tc.wantACL && got != nil) {
				t.Fatalf("ACL after the run %x, want kept=%v", got, tc.wantACL)
			}
			if tc.wantACL && after.mode != before.mode {
				t.Fatalf("mode %v, want %v", after.mode, before.mode)
			}
			if !tc.wantACL && after.mode.Perm() != 0o600 {
				t.Fatalf("mode %v, want 0600", after.mode)
			}
			if tc.mismatch && after != before {
				t.Fatalf("restored %+v, want %+v", after, before)
			}
			r.assertClean("shop-web")
		})
	}
}
