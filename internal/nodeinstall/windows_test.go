//go:build unix

package nodeinstall

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certferry/certferry/internal/testkit"
)

// fakeStore is a certificate store and one IIS site whose https binding
// serves the bound certificate (thumbprints are SHA-1, as Windows's).
type fakeStore struct {
	mu        sync.Mutex
	certs     map[string]*x509.Certificate // store + "|" + thumbprint
	bound     string                       // thumbprint
	boundIn   string                       // store
	importErr error
	stale     bool // the site keeps serving the previous certificate
	served    *x509.Certificate
	calls     []string
}

func thumbOf(c *x509.Certificate) string {
	s := sha1.Sum(c.Raw)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

func (s *fakeStore) add(store string, c *x509.Certificate) {
	if s.certs == nil {
		s.certs = map[string]*x509.Certificate{}
	}
	s.certs[store+"|"+thumbOf(c)] = c
}

func (s *fakeStore) call(c string) { s.calls = append(s.calls, c) }

func (s *fakeStore) Import(_ context.Context, store string, pfx []byte, password string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("import")
	if s.importErr != nil {
		return "", s.importErr
	}
	_, c, _, err := pkcs12.DecodeChain(pfx, password)
	if err != nil {
		return "", err
	}
	s.add(store, c)
	return thumbOf(c), nil
}

func (s *fakeStore) Has(_ context.Context, store, thumb string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.certs[store+"|"+thumb]
	return ok, nil
}

func (s *fakeStore) Remove(_ context.Context, store, thumb string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("remove " + thumb[:8])
	delete(s.certs, store+"|"+thumb)
	return nil
}

func (s *fakeStore) Binding(_ context.Context, site string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bound, s.boundIn, nil
}

func (s *fakeStore) Bind(_ context.Context, site, store, thumb string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call("bind " + thumb[:8])
	c, ok := s.certs[store+"|"+thumb]
	if !ok {
		return errors.New("no such certificate in " + store)
	}
	s.bound, s.boundIn = thumb, store
	if !s.stale {
		s.served = c
	}
	return nil
}

func (s *fakeStore) probe(context.Context, VerifyTarget) (*x509.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.served == nil {
		return nil, syscall.ECONNREFUSED
	}
	return s.served, nil
}

func windowsRig(t *testing.T, f fixture) (*rig, *fakeStore, Params, *x509.Certificate) {
	r := newRig(t)
	old := newFixture(t, testkit.ECP256).exp.Leaf
	st := &fakeStore{}
	st.add(`LocalMachine\My`, old)
	st.bound, st.boundIn, st.served = thumbOf(old), `LocalMachine\My`, old
	p := r.params(f, func(p *Params) { p.IisSite, p.CertStore = "Default Web Site", `LocalMachine\My` })
	return r, st, p, old
}

func (r *rig) winEngine(st *fakeStore) *Engine {
	e := r.engine()
	e.Windows, e.Store, e.Services, e.Probe = true, st, nil, st.probe
	return e
}

func TestWindowsFlow(t *testing.T) {
	f := newFixture(t, testkit.RSA2048)
	newThumb := thumbOf(f.exp.Leaf)
	cases := []struct {
		name      string
		setup     func(st *fakeStore)
		status    string
		calls     func(old string) []string
		boundNew  bool
		hasNew    bool
		detailHas string
	}{
		{"installed", func(*fakeStore) {}, StatusInstalled,
			func(string) []string { return []string{"import", "bind " + newThumb[:8]} }, true, true, "installed shop-web"},
		{"verify fails then rebind old and remove new", func(st *fakeStore) { st.stale = true }, StatusRolledBack,
			func(old string) []string {
				return []string{"import", "bind " + newThumb[:8], "bind " + old[:8], "remove " + newThumb[:8]}
			},
			false, false, "rolled back"},
		{"verify fails and new was in the store before", func(st *fakeStore) {
			st.stale = true
			st.add(`LocalMachine\My`, f.exp.Leaf)
		}, StatusRolledBack,
			func(old string) []string { return []string{"bind " + newThumb[:8], "bind " + old[:8]} }, false, true, "rolled back"},
		{"import fails", func(st *fakeStore) { st.importErr = errors.New("access denied") }, StatusFailed,
			func(string) []string { return []string{"import"} }, false, false, "nothing changed"},
		{"no binding", func(st *fakeStore) { st.bound, st.boundIn = "", "" }, StatusFailed,
			func(string) []string { return nil }, false, false, "no certificate on an https binding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, st, p, old := windowsRig(t, f)
			tc.setup(st)
			res := r.winEngine(st).Run(t.Context(), p)
			t.Logf("%s", res.Line())
			if res.Status != tc.status || !strings.Contains(res.Detail, tc.detailHas) {
				t.Fatalf("%+v, want %s with %q", res, tc.status, tc.detailHas)
			}
			if want := tc.calls(thumbOf(old)); !slices.Equal(st.calls, want) {
				t.Errorf("calls %v, want %v", st.calls, want)
			}
			if got := st.bound == newThumb; got != tc.boundNew {
				t.Errorf("bound to new = %v, want %v", got, tc.boundNew)
			}
			if tc.name != "no binding" && !tc.boundNew && st.bound != thumbOf(old) {
				t.Errorf("binding %s, want the old %s", st.bound, thumbOf(old))
			}
			if has, _ := st.Has(t.Context(), `LocalMachine\My`, newThumb); has != tc.hasNew {
				t.Errorf("new certificate in store = %v, want %v", has, tc.hasNew)
			}
			assertNoSecrets(t, r.out.String()+res.Line(), f)
		})
	}
	t.Run("unchanged", func(t *testing.T) {
		r, st, p, _ := windowsRig(t, f)
		if res := r.winEngine(st).Run(t.Context(), p); res.Status != StatusInstalled {
			t.Fatalf("%+v", res)
		}
		st.calls = nil
		if res := r.winEngine(st).Run(t.Context(), p); res.Status != StatusUnchanged || res.Verify != "ok" || st.calls != nil {
			t.Fatalf("%+v calls %v", res, st.calls)
		}
	})
	// A command a newer deployment replaced: the same outcome as on Linux
	// (superseded, exit 0), and the store and binding untouched.
	t.Run("superseded", func(t *testing.T) {
		r, st, p, old := windowsRig(t, f)
		p.ExpectedFingerprint = newFixture(t, testkit.ECP256).fp
		res := r.winEngine(st).Run(t.Context(), p)
		if res.Status != StatusSuperseded || res.ExitCode() != 0 || !strings.HasPrefix(res.Detail, "superseded: the bundle holds "+f.fp) {
			t.Fatalf("%+v (exit %d), want superseded, exit 0", res, res.ExitCode())
		}
		if st.calls != nil || st.bound != thumbOf(old) {
			t.Fatalf("calls %v, bound %s: a superseded run changed the store", st.calls, st.bound)
		}
	})
}

// A Windows run stopped at each step (the goroutine ends there, as if the
// process were killed) is rolled back by the next run: old binding, new
// certificate removed.
func TestWindowsRecovery(t *testing.T) {
	f := newFixture(t, testkit.RSA2048)
	other := newFixture(t, testkit.ECP256)
	for _, step := range []string{"prepared", "imported", "bound", "verifying"} {
		t.Run(step, func(t *testing.T) {
			r, st, p, old := windowsRig(t, f)
			e := r.winEngine(st)
			e.hook = func(s string) {
				if s == step {
					runtime.Goexit()
				}
			}
			done := make(chan struct{})
			go func() { defer close(done); e.Run(context.Background(), p) }()
			<-done
			next := p
			next.ExpectedFingerprint = other.fp
			res := r.winEngine(st).Run(t.Context(), next)
			if res.Status != StatusSuperseded || !strings.Contains(res.Detail, "recovered: rolled back") {
				t.Fatalf("%+v, want recovery then superseded", res)
			}
			if st.bound != thumbOf(old) {
				t.Errorf("binding %s, want the old one", st.bound)
			}
			if has, _ := st.Has(t.Context(), `LocalMachine\My`, thumbOf(f.exp.Leaf)); has {
				t.Error("the new certificate stayed in the store")
			}
		})
	}
}
