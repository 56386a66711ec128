//go:build unix

package nodeinstall

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pavlo-v-chernykh/keystore-go/v4"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/certferry/certferry/internal/testkit"
)

func pemBlocks(t testing.TB, b []byte) []*pem.Block {
	t.Helper()
	var out []*pem.Block
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		out = append(out, blk)
	}
	return out
}

func TestFormats(t *testing.T) {
	for _, kt := range []testkit.KeyType{testkit.RSA2048, testkit.ECP256} {
		f := newFixture(t, kt)
		chain, _ := certificates(f.exp.CertificateChain)
		wantKey := mustPKCS8(f)
		cases := []struct {
			format string
			files  map[string]os.FileMode // base name -> mode
			check  func(t *testing.T, dir string)
		}{
			{FormatPEM, map[string]os.FileMode{"site.pem": 0o644, "site.key": 0o600}, func(t *testing.T, dir string) {
				blks := pemBlocks(t, readFile(t, dir, "site.pem"))
				if len(blks) != 1+len(chain) || !bytes.Equal(blks[0].Bytes, f.exp.Leaf.Raw) || !bytes.Equal(blks[1].Bytes, chain[0].Raw) {
					t.Fatalf("site.pem holds %d blocks, want leaf + chain", len(blks))
				}
				kb := pemBlocks(t, readFile(t, dir, "site.key"))
				if len(kb) != 1 || kb[0].Type != "PRIVATE KEY" || !bytes.Equal(kb[0].Bytes, wantKey) {
					t.Fatalf("site.key is not the unencrypted PKCS#8 key")
				}
			}},
			{FormatSplit, map[string]os.FileMode{"site.pem": 0o644, "chain.pem": 0o644, "site.key": 0o600}, func(t *testing.T, dir string) {
				if blks := pemBlocks(t, readFile(t, dir, "site.pem")); len(blks) != 1 || !bytes.Equal(blks[0].Bytes, f.exp.Leaf.Raw) {
					t.Fatal("site.pem is not the leaf alone")
				}
				if blks := pemBlocks(t, readFile(t, dir, "chain.pem")); len(blks) != len(chain) || !bytes.Equal(blks[0].Bytes, chain[0].Raw) {
					t.Fatal("chain.pem is not the chain")
				}
			}},
			{FormatCombined, map[string]os.FileMode{"site.pem": 0o600}, func(t *testing.T, dir string) {
				blks := pemBlocks(t, readFile(t, dir, "site.pem"))
				if len(blks) != 2+len(chain) || blks[0].Type != "CERTIFICATE" || blks[len(blks)-1].Type != "PRIVATE KEY" ||
					!bytes.Equal(blks[len(blks)-1].Bytes, wantKey) {
					t.Fatalf("combined file holds %d blocks, want leaf + chain + key", len(blks))
				}
				if _, err := os.Stat(filepath.Join(dir, "site.key")); !errors.Is(err, os.ErrNotExist) {
					t.Fatal("combined wrote a key file too")
				}
			}},
			{FormatPKCS12, map[string]os.FileMode{"site.p12": 0o600}, func(t *testing.T, dir string) {
				key, cert, cas, err := pkcs12.DecodeChain(readFile(t, dir, "site.p12"), "keystore-pass-123")
				if err != nil || !bytes.Equal(cert.Raw, f.exp.Leaf.Raw) || len(cas) != len(chain) {
					t.Fatalf("PKCS#12 does not hold leaf + chain under the keystore password: %v", err)
				}
				if der, _ := x509.MarshalPKCS8PrivateKey(key); !bytes.Equal(der, wantKey) {
					t.Fatal("PKCS#12 key differs")
				}
			}},
			{FormatJKS, map[string]os.FileMode{"site.p12": 0o600}, func(t *testing.T, dir string) {
				ks := keystore.New()
				if err := ks.Load(bytes.NewReader(readFile(t, dir, "site.p12")), []byte("keystore-pass-123")); err != nil {
					t.Fatal(err)
				}
				e, err := ks.GetPrivateKeyEntry("shop-web", []byte("keystore-pass-123"))
				if err != nil || !bytes.Equal(e.PrivateKey, wantKey) || len(e.CertificateChain) != 1+len(chain) ||
					!bytes.Equal(e.CertificateChain[0].Content, f.exp.Leaf.Raw) {
					t.Fatalf("JKS entry shop-web is not key + leaf + chain: %v", err)
				}
			}},
		}
		for _, tc := range cases {
			t.Run(string(kt)+"/"+tc.format, func(t *testing.T) {
				r := newRig(t)
				dir := filepath.Join(r.etc, "ssl")
				p := r.params(f, func(p *Params) {
					p.Format = tc.format
					p.ChainPath = filepath.Join(dir, "chain.pem")
					p.KeystorePath = filepath.Join(dir, "site.p12")
					if tc.format == FormatPKCS12 || tc.format == FormatJKS {
						p.ReloadService, p.VerifyPort = "", 0
					}
				})
				res := r.run(p)
				if res.Status != StatusInstalled || res.ExitCode() != 0 || res.Fingerprint != f.fp || res.Serial != f.serial || res.Format != tc.format {
					t.Fatalf("first run: %+v", res)
				}
				for name, mode := range tc.files {
					st := stateOf(t, filepath.Join(dir, name))
					if !st.exists || st.mode != mode || st.uid != os.Geteuid() {
						t.Errorf("%s: %+v, want mode %v", name, st, mode)
					}
				}
				tc.check(t, dir)
				r.assertClean("shop-web")
				res = r.run(p)
				if res.Status != StatusUnchanged || res.ExitCode() != 0 {
					t.Fatalf("second run: %+v, want unchanged", res)
				}
				assertNoSecrets(t, r.out.String()+res.Line(), f)
			})
		}
	}
}

func readFile(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A verification failure restores exactly what was there: the certificate
// file with its content, owner, group and mode, and no key file, because
// only the certificate existed.
func TestRollbackRestoresExactly(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	r := newRig(t)
	p := r.params(f)
	writeFile(t, p.CertPath, "old certificate\n", 1234, 2345, 0o640)
	before := stateOf(t, p.CertPath)
	r.server.ignoreFiles = true // keeps serving the old certificate
	r.server.served = newFixture(t, testkit.ECP256).exp.Leaf
	res := r.run(p)
	if res.Status != StatusRolledBack || res.ExitCode() != 2 || res.Verify != "mismatch" || res.Reload != "done" ||
		!strings.Contains(res.Detail, "rolled back") {
		t.Fatalf("result %+v, want rolled_back after a verify mismatch", res)
	}
	if after := stateOf(t, p.CertPath); after != before {
		t.Errorf("certificate file %+v, want %+v", after, before)
	}
	if st := stateOf(t, p.KeyPath); st.exists {
		t.Errorf("key file exists after rollback; it did not before")
	}
	if calls := r.server.callList(); !slices.Equal(calls, []string{"test nginx", "reload nginx", "reload nginx"}) {
		t.Errorf("service calls %v, want test, reload, reload after restoring", calls)
	}
	r.assertClean("shop-web")
	if gens, _ := os.ReadDir(stateDir(r.state).backupDir("shop-web")); len(gens) != 0 {
		t.Errorf("rollback kept %d backup generations", len(gens))
	}
}

func TestOwnershipAndModes(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	t.Run("existing files keep owner group and mode", func(t *testing.T) {
		r := newRig(t)
		p := r.params(f)
		writeFile(t, p.CertPath, "old\n", 101, 102, 0o604)
		writeFile(t, p.KeyPath, "old key\n", 101, 103, 0o640)
		if res := r.run(p); res.Status != StatusInstalled {
			t.Fatalf("%+v", res)
		}
		if st := stateOf(t, p.CertPath); st.uid != 101 || st.gid != 102 || st.mode != 0o604 {
			t.Errorf("cert %+v", st)
		}
		if st := stateOf(t, p.KeyPath); st.uid != 101 || st.gid != 103 || st.mode != 0o640 {
			t.Errorf("key %+v", st)
		}
		if gens, _ := os.ReadDir(stateDir(r.state).backupDir("shop-web")); len(gens) != 1 {
			t.Errorf("%d backup generations, want 1", len(gens))
		}
	})
	t.Run("options", func(t *testing.T) {
		r := newRig(t)
		p := r.params(f, func(p *Params) { p.Owner, p.Group, p.CertMode, p.KeyMode = "4321", "0", "0444", "0440" })
		writeFile(t, p.CertPath, "old\n", 101, 102, 0o604)
		if res := r.run(p); res.Status != StatusInstalled {
			t.Fatalf("%+v", res)
		}
		if st := stateOf(t, p.CertPath); st.uid != 4321 || st.gid != 0 || st.mode != 0o444 {
			t.Errorf("cert %+v", st)
		}
		if st := stateOf(t, p.KeyPath); st.uid != 4321 || st.gid != 0 || st.mode != 0o440 {
			t.Errorf("key %+v", st)
		}
	})
	t.Run("a new key readable by the group", func(t *testing.T) {
		r := newRig(t)
		p := r.params(f, func(p *Params) { p.Group = "555" })
		if res := r.run(p); res.Status != StatusInstalled {
			t.Fatalf("%+v", res)
		}
		if st := stateOf(t, p.KeyPath); st.uid != 0 || st.gid != 555 || st.mode != 0o640 {
			t.Errorf("key %+v, want root:555 0640", st)
		}
		if st := stateOf(t, p.CertPath); st.gid != 555 || st.mode != 0o644 {
			t.Errorf("cert %+v, want group 555 0644", st)
		}
	})
	t.Run("an unknown user is refused before writing", func(t *testing.T) {
		r := newRig(t)
		p := r.params(f, func(p *Params) { p.Owner = "no-such-user-x" })
		if res := r.run(p); res.Status != StatusFailed || !strings.Contains(res.Detail, "no such user") {
			t.Fatalf("%+v", res)
		}
		if stateOf(t, p.CertPath).exists {
			t.Fatal("wrote a file")
		}
	})
}

func TestPathsRefused(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	cases := []struct {
		name   string
		mod    func(r *rig, p *Params)
		detail string
	}{
		{"outside the prefixes", func(r *rig, p *Params) { p.CertPath = filepath.Join(r.root, "other", "site.pem") }, "not under the allowed prefixes"},
		{"the prefix itself", func(r *rig, p *Params) { p.CertPath = r.etc }, "not under the allowed prefixes"},
		{"dot-dot", func(r *rig, p *Params) { p.CertPath = r.etc + "/ssl/../../x.pem" }, "bad CertPath"},
		{"relative", func(r *rig, p *Params) { p.CertPath = "etc/ssl/site.pem" }, "bad CertPath"},
		{"inside the state directory", func(r *rig, p *Params) {
			r.state = filepath.Join(r.etc, "state")
			p.CertPath = filepath.Join(r.state, "site.pem")
		}, "state directory"},
		{"same file twice", func(r *rig, p *Params) { p.KeyPath = p.CertPath }, "same file"},
		{"same file through a symlinked parent", func(r *rig, p *Params) {
			_ = os.Symlink(filepath.Join(r.etc, "ssl"), filepath.Join(r.etc, "alias"))
			p.KeyPath = filepath.Join(r.etc, "alias", "site.pem")
		}, "same file"},
		{"split without chain path", func(r *rig, p *Params) { p.Format = FormatSplit }, "needs ChainPath"},
		{"parent symlink leading outside", func(r *rig, p *Params) {
			out := filepath.Join(r.root, "outside")
			_ = os.MkdirAll(out, 0o755)
			_ = os.Symlink(out, filepath.Join(r.etc, "link"))
			p.CertPath = filepath.Join(r.etc, "link", "site.pem")
		}, "outside the allowed prefixes"},
		{"target is a symlink", func(r *rig, p *Params) {
			victim := filepath.Join(r.root, "victim")
			_ = os.WriteFile(victim, []byte("victim\n"), 0o644)
			_ = os.Symlink(victim, p.KeyPath)
		}, "is a symlink"},
		{"target is a symlink inside the prefixes", func(r *rig, p *Params) {
			_ = os.WriteFile(filepath.Join(r.etc, "victim"), []byte("victim\n"), 0o644)
			_ = os.Symlink(filepath.Join(r.etc, "victim"), p.CertPath)
		}, "is a symlink"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			p := r.params(f)
			tc.mod(r, &p)
			res := r.run(p)
			if res.Status != StatusFailed || res.ExitCode() != 1 || !strings.Contains(res.Detail, tc.detail) {
				t.Fatalf("result %+v, want failed with %q", res, tc.detail)
			}
			if l := leftovers(t, r.root); len(l) > 0 {
				t.Errorf("temp files: %v", l)
			}
			for _, v := range []string{filepath.Join(r.root, "victim"), filepath.Join(r.etc, "victim")} {
				if st := stateOf(t, v); st.exists && st.content != "victim\n" {
					t.Errorf("wrote through a symlink into %s", v)
				}
			}
			if r.server.callList() != nil {
				t.Errorf("service touched: %v", r.server.callList())
			}
		})
	}
}

// A symlinked parent inside the prefixes (RHEL: /etc/ssl/certs ->
// /etc/pki/tls/certs) is followed to its real directory.
func TestParentSymlinkInsidePrefixes(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	r := newRig(t)
	real := filepath.Join(r.etc, "pki", "tls")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(r.etc, "ssl", "certs")); err != nil {
		t.Fatal(err)
	}
	p := r.params(f, func(p *Params) { p.CertPath = filepath.Join(r.etc, "ssl", "certs", "site.pem") })
	if res := r.run(p); res.Status != StatusInstalled {
		t.Fatalf("%+v", res)
	}
	if st := stateOf(t, filepath.Join(real, "site.pem")); !st.exists {
		t.Fatal("not installed in the real directory")
	}
}

// Symlinks planted at the temp and backup paths after the journal names
// them: creation is exclusive and never follows, so the run rolls back and
// nothing is written through them.
func TestPlantedSymlinksRefused(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	for _, where := range []string{"temp", "backup file", "backup generation"} {
		t.Run(where, func(t *testing.T) {
			r := newRig(t)
			victim := filepath.Join(r.root, "victim")
			writeFile(t, victim, "victim\n", 0, 0, 0o644)
			p := r.params(f)
			writeFile(t, p.CertPath, "old cert\n", 0, 0, 0o644)
			writeFile(t, p.KeyPath, "old key\n", 0, 0, 0o600)
			r.hook = func(step string) {
				if step != "prepared" {
					return
				}
				j, err := stateDir(r.state).load("shop-web")
				if err != nil || j == nil {
					t.Errorf("no journal at prepared: %v", err)
					return
				}
				switch where {
				case "temp":
					_ = os.Symlink(victim, j.Files[1].Temp)
				case "backup file":
					_ = os.MkdirAll(filepath.Dir(j.Files[0].Backup), 0o700)
					_ = os.Symlink(victim, j.Files[0].Backup)
				case "backup generation":
					_ = os.MkdirAll(filepath.Dir(filepath.Dir(j.Files[0].Backup)), 0o700)
					_ = os.Symlink(r.root, filepath.Dir(j.Files[0].Backup))
				}
			}
			certBefore, keyBefore := stateOf(t, p.CertPath), stateOf(t, p.KeyPath)
			res := r.run(p)
			if res.Status == StatusInstalled {
				t.Fatalf("%+v, want a refusal", res)
			}
			if st := stateOf(t, victim); st.content != "victim\n" {
				t.Fatalf("wrote through the symlink: %q", st.content)
			}
			if stateOf(t, p.CertPath) != certBefore || stateOf(t, p.KeyPath) != keyBefore {
				t.Fatal("target files changed")
			}
			if l := leftovers(t, r.etc); len(l) > 0 {
				t.Errorf("temp files: %v", l)
			}
		})
	}
}

func TestBundleRefusedBeforeWriting(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	other := newFixture(t, testkit.ECP256)
	cases := []struct {
		name   string
		mod    func(p *Params, b *fixture)
		detail string
		status string
		exit   int
	}{
		{"mismatched key", func(_ *Params, b *fixture) { b.b.PrivateKey, b.b.Passphrase = other.b.PrivateKey, other.b.Passphrase },
			"private key does not match the certificate", StatusFailed, 1},
		{"wrong passphrase", func(_ *Params, b *fixture) { b.b.Passphrase = "nope" }, "does not decrypt", StatusFailed, 1},
		{"chain of another CA", func(_ *Params, b *fixture) { b.b.CertificateChain = other.b.CertificateChain },
			"chain does not verify", StatusFailed, 1},
		{"a key in the chain field", func(_ *Params, b *fixture) {
			b.b.CertificateChain += testkit.PEM("PRIVATE KEY", []byte{1, 2, 3})
		}, "not a certificate", StatusFailed, 1},
		{"text in the certificate field", func(_ *Params, b *fixture) { b.b.Certificate += "junk\n" }, "not a PEM certificate", StatusFailed, 1},
		{"two certificates in the certificate field", func(_ *Params, b *fixture) { b.b.Certificate += b.b.CertificateChain }, "want 1", StatusFailed, 1},
		{"fingerprint field lies", func(p *Params, b *fixture) { b.b.Fingerprint, p.ExpectedFingerprint = other.fp, other.fp },
			"bundle says", StatusFailed, 1},
		{"superseded", func(p *Params, _ *fixture) { p.ExpectedFingerprint = other.fp }, "superseded: the bundle holds " + f.fp + " but this command installs " + other.fp, StatusSuperseded, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			b := f
			p := r.params(f)
			tc.mod(&p, &b)
			r.secrets.put(secretID, b.b)
			res := r.run(p)
			if res.Status != tc.status || res.ExitCode() != tc.exit || !strings.Contains(res.Detail, tc.detail) {
				t.Fatalf("result %+v (exit %d), want %s (exit %d) with %q", res, res.ExitCode(), tc.status, tc.exit, tc.detail)
			}
			if stateOf(t, p.CertPath).exists || stateOf(t, p.KeyPath).exists || r.server.callList() != nil {
				t.Fatal("something was written or reloaded")
			}
			assertNoSecrets(t, r.out.String()+res.Line(), f)
		})
	}
}

func TestServiceFlow(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	cases := []struct {
		name   string
		setup  func(s *fakeServer)
		status string
		reload string
		verify string
		calls  []string
		detail string
		kept   bool // old files still in place
	}{
		{"installed", func(*fakeServer) {}, StatusInstalled, "done", "ok", []string{"test nginx", "reload nginx"}, "installed shop-web", false},
		{"config test fails", func(s *fakeServer) { s.configErr = errors.New("nginx: [emerg] bad") }, StatusRolledBack, "skipped", "skipped",
			[]string{"test nginx"}, "configuration test failed", true},
		{"reload kills the service", func(s *fakeServer) { s.dieOnReload = true }, StatusRolledBack, "done", "skipped",
			[]string{"test nginx", "reload nginx", "start nginx"}, "stopped after the reload", true},
		{"reload fails", func(s *fakeServer) { s.reloadErr = errors.New("exit status 1") }, StatusRolledBack, "failed", "skipped",
			[]string{"test nginx", "reload nginx", "reload nginx"}, "reload of nginx failed", true},
		{"stopped service is not started", func(s *fakeServer) { s.active = false }, StatusInstalled, "skipped", "skipped",
			[]string{"test nginx"}, "not running", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			p := r.params(f)
			writeFile(t, p.CertPath, "old cert\n", 0, 0, 0o644)
			writeFile(t, p.KeyPath, "old key\n", 0, 0, 0o600)
			tc.setup(r.server)
			res := r.run(p)
			if res.Status != tc.status || res.Reload != tc.reload || res.Verify != tc.verify || !strings.Contains(res.Detail, tc.detail) {
				t.Fatalf("result %+v, want %s reload=%s verify=%s %q", res, tc.status, tc.reload, tc.verify, tc.detail)
			}
			if calls := r.server.callList(); !slices.Equal(calls, tc.calls) {
				t.Errorf("calls %v, want %v", calls, tc.calls)
			}
			if kept := stateOf(t, p.CertPath).content == "old cert\n" && stateOf(t, p.KeyPath).content == "old key\n"; kept != tc.kept {
				t.Errorf("old files kept = %v, want %v", kept, tc.kept)
			}
			r.assertClean("shop-web")
		})
	}
}

// "unchanged" still verifies; a node serving something else is reloaded
// until it serves the files.
func TestUnchangedButServingSomethingElse(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	r := newRig(t)
	p := r.params(f)
	if res := r.run(p); res.Status != StatusInstalled {
		t.Fatalf("%+v", res)
	}
	r.server.served = newFixture(t, testkit.ECP256).exp.Leaf
	res := r.run(p)
	if res.Status != StatusInstalled || res.Reload != "done" || res.Verify != "ok" || !strings.Contains(res.Detail, "already in place") {
		t.Fatalf("%+v", res)
	}
	res = r.run(p)
	if res.Status != StatusUnchanged || res.Verify != "ok" || res.Reload != "skipped" {
		t.Fatalf("%+v", res)
	}
	r.server.ignoreFiles = true
	r.server.served = newFixture(t, testkit.ECP256).exp.Leaf
	res = r.run(p)
	if res.Status != StatusFailed || res.ExitCode() != 1 || res.Verify != "mismatch" {
		t.Fatalf("%+v, want failed when a reload does not help", res)
	}
}

// Two runs for one name serialize on the lock; the second, whose bundle
// moved on meanwhile, is superseded and does nothing.
func TestLockSerializesRuns(t *testing.T) {
	a, b := newFixture(t, testkit.ECP256), newFixture(t, testkit.ECP256)
	r := newRig(t)
	pa := r.params(a)
	r.server.reloadGate, r.server.reloading = make(chan struct{}), make(chan struct{}, 4)
	var (
		mu    sync.Mutex
		order []string
	)
	log := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	r.secrets.onGet = func(id string) { log("get " + id) }
	resA := make(chan Result)
	go func() { resA <- r.engine().Run(t.Context(), pa) }()
	<-r.server.reloading // A holds the lock and is reloading
	// The bundle moves on to b; the still-queued command for a is
	// superseded, a command for b installs after A.
	r.secrets.put(secretID, b.b)
	pStale := pa
	resStale := make(chan Result)
	go func() { resStale <- r.engine().Run(t.Context(), pStale) }()
	log("A released")
	close(r.server.reloadGate)
	ra := <-resA
	rs := <-resStale
	if ra.Status != StatusInstalled {
		t.Fatalf("A: %+v", ra)
	}
	if rs.Status != StatusSuperseded || rs.ExitCode() != 0 || !strings.HasPrefix(rs.Detail, "superseded: ") {
		t.Fatalf("stale run: %+v, want superseded, exit 0", rs)
	}
	mu.Lock()
	defer mu.Unlock()
	if i := slices.Index(order, "A released"); i < 0 || slices.Index(order[i:], "get "+secretID) < 0 || slices.Index(order[:i], "get "+secretID) != 0 {
		t.Fatalf("calls %v: the second run read the bundle before the first released the lock", order)
	}
	if got := stateOf(t, pa.CertPath); !strings.Contains(got.content, strings.TrimSpace(strings.Split(a.exp.Certificate, "\n")[1])) {
		t.Fatal("the superseded run changed the files")
	}
}

func TestOutputContract(t *testing.T) {
	f := newFixture(t, testkit.RSA2048)
	r := newRig(t)
	p := r.params(f)
	var buf bytes.Buffer
	e := r.engine()
	e.Out = &buf
	res := e.Run(t.Context(), p)
	buf.WriteString(res.Line() + "\n")
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], ResultPrefix+`{"status":"installed","fingerprint":"`+f.fp+`","serial":"`+f.serial+`","format":"pem","reload":"done","verify":"ok"`) {
		t.Fatalf("last line %q", lines[len(lines)-1])
	}
	if len(out) > maxOutput {
		t.Fatalf("output is %d characters", len(out))
	}
	assertNoSecrets(t, out, f)
	long := Result{Status: StatusFailed, Detail: strings.Repeat("x\"\n", 2000)}
	if l := long.Line(); len(l) > 600 || strings.Contains(l[len(ResultPrefix):], "\\n") {
		t.Fatalf("long detail not bounded/sanitised: %d", len(l))
	}
}

func TestParamsFromEnv(t *testing.T) {
	fp := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	base := map[string]string{
		"SSM_SecretId": "certferry/shop-web", "SSM_CertName": "shop-web", "SSM_ExpectedFingerprint": fp,
		"SSM_CertPath": "/etc/ssl/certs/shop.pem", "SSM_KeyPath": "/etc/ssl/private/shop.key", "AWS_SSM_REGION_NAME": "eu-west-1",
	}
	cases := []struct {
		name string
		set  map[string]string
		err  string
		want func(p Params) bool
	}{
		{"defaults", nil, "", func(p Params) bool {
			return p.Region == "eu-west-1" && p.Format == FormatPEM && p.VerifyPort == 443 && p.VerifyAddress == "127.0.0.1" &&
				len(p.AllowedPrefixes) == 9 && p.CertStore == `LocalMachine\My`
		}},
		{"region parameter wins", map[string]string{"SSM_Region": "us-east-2"}, "", func(p Params) bool { return p.Region == "us-east-2" }},
		{"ipv6 and starttls", map[string]string{"SSM_VerifyAddress": "::1", "SSM_Starttls": "smtp", "SSM_VerifyPort": "25"}, "",
			func(p Params) bool { return p.VerifyAddress == "::1" && p.StartTLS == "smtp" && p.VerifyPort == 25 }},
		{"prefixes", map[string]string{"SSM_AllowedPrefixes": "/srv/tls:/opt/app"}, "", func(p Params) bool {
			return slices.Equal(p.AllowedPrefixes, []string{"/srv/tls", "/opt/app"})
		}},
		{"bad fingerprint", map[string]string{"SSM_ExpectedFingerprint": "ab"}, "bad ExpectedFingerprint", nil},
		{"bad path", map[string]string{"SSM_CertPath": "/etc/ssl/../passwd"}, "bad CertPath", nil},
		{"unfilled fallback", map[string]string{"SSM_KeyPath": "{{KeyPath}}"}, "bad KeyPath", nil},
		{"bad format", map[string]string{"SSM_Format": "der"}, "bad Format", nil},
		{"bad owner", map[string]string{"SSM_Owner": "root;rm"}, "bad Owner", nil},
		{"bad mode", map[string]string{"SSM_KeyMode": "0800"}, "bad KeyMode", nil},
		{"bad port", map[string]string{"SSM_VerifyPort": "65536"}, "bad VerifyPort", nil},
		{"bad starttls", map[string]string{"SSM_Starttls": "ftp"}, "bad Starttls", nil},
		{"bad address", map[string]string{"SSM_VerifyAddress": "a b"}, "bad VerifyAddress", nil},
		{"bad prefix", map[string]string{"SSM_AllowedPrefixes": "/etc/ssl:relative"}, "bad AllowedPrefixes", nil},
		{"no region", map[string]string{"AWS_SSM_REGION_NAME": ""}, "bad Region", nil},
		{"bad secret", map[string]string{"SSM_SecretId": "shop-web"}, "bad SecretId", nil},
		{"service with dot-dot", map[string]string{"SSM_ReloadService": "a..b"}, "bad ReloadService", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tc.set {
				env[k] = v
			}
			p, err := ParamsFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !tc.want(p) {
				t.Fatalf("%+v, %v", p, err)
			}
		})
	}
}

// A target larger than the installer reads (16 MiB) is refused before
// anything is written: its backup would be truncated, and a rollback would
// then put back a cut file.
func TestHugeExistingTargetRefused(t *testing.T) {
	f := newFixture(t, testkit.ECP256)
	r := newRig(t)
	p := r.params(f)
	writeFile(t, p.CertPath, strings.Repeat("x", 16<<20+1), 0, 0, 0o644)
	before := stateOf(t, p.CertPath)
	r.server.ignoreFiles = true
	r.server.served = newFixture(t, testkit.ECP256).exp.Leaf
	res := r.run(p)
	if after := stateOf(t, p.CertPath); after != before {
		t.Fatalf("the %d-byte file is now %d bytes (result %+v)", len(before.content), len(after.content), res)
	}
	if res.Status != StatusFailed || !strings.Contains(res.Detail, "larger than") {
		t.Fatalf("result %+v, want failed: larger than the installer reads", res)
	}
	if stateOf(t, p.KeyPath).exists {
		t.Fatal("wrote the key")
	}
	r.assertClean("shop-web")
}

// The worst case stays under the contract's 2,000 characters: progress
// lines up to their cap, then a result whose every field is at its longest,
// including a Format that failed validation (echoed from SSM_Format).
func TestOutputBoundWorstCase(t *testing.T) {
	var buf bytes.Buffer
	e := &Engine{Out: &buf}
	for range 50 {
		e.say("%s", strings.Repeat("error ", 100))
	}
	p := Params{Format: strings.Repeat("pkcs12\n", 5000)}
	res := e.Run(t.Context(), p) // fails validation; echoes the format
	res.Status, res.Reload, res.Verify = StatusRolledBack, "skipped", "mismatch"
	res.Fingerprint, res.Serial = strings.TrimSuffix(strings.Repeat("AB:", 32), ":"), strings.Repeat("f", 64)
	res.Detail = strings.Repeat("detail ", 500)
	buf.WriteString(res.Line() + "\n")
	if out := buf.String(); len(out) >= maxOutput {
		t.Fatalf("output is %d characters, want < %d", len(out), maxOutput)
	}
}
