//go:build integration && linux

package realserver

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/nodeinstall/probe"
	"github.com/certferry/certferry/internal/nodeinstall/service"
)

const shop = "shop.example.com"

// params for a pem install served by s.
func pemParams(certPath, keyPath string, s *server) map[string]string {
	return map[string]string{
		"Format": "pem", "CertPath": certPath, "KeyPath": keyPath,
		"ReloadService": s.service, "VerifyPort": strconv.Itoa(s.target.Port), "ServerName": s.target.ServerName,
	}
}

func with(p map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range p {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func expectStatus(t *testing.T, r result, status string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %s, want %s: %s", r.Status, status, r)
	}
}

// The two tests that wait out the installer's whole verification budget
// (120 s) come first: every test here runs in parallel (TestMain), so the
// others run while these wait.

// TestKeyReadableByServiceGroup the other way round: a KeyMode that takes the group's read access away
// makes the www-data nginx fail to load the key on reload; the run rolls
// back and the old key comes back root:www-data 0640, still served.
// Verification waits its whole budget before giving up.
func TestKeyNotReadableByServiceRollsBack(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	certPath, keyPath := n.etc("ssl/site.pem"), n.etc("ssl/private/site.key")
	old := n.placeholder(certPath, keyPath, shop)
	if err := os.Chown(keyPath, 0, wwwData); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyPath, 0o640); err != nil {
		t.Fatal(err)
	}
	s := n.startNginx(nginxOpts{listen: []string{fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp4"))}, serverName: shop, cert: certPath, key: keyPath, asWwwData: true})
	before := []fileState{stat(t, certPath), stat(t, keyPath)}
	x := newIssuer(t).issue(t, shop, ecP256)
	n.publish(x.b)
	r := n.run(x.b, with(pemParams(certPath, keyPath, s), "KeyMode", "0600"))
	expectStatus(t, r, "rolled_back")
	if r.Verify != "mismatch" {
		t.Fatalf("result %s", r)
	}
	if !strings.Contains(tail(s.log, 20), "Permission denied") {
		t.Errorf("nginx's log does not show the refused key:\n%s", tail(s.log, 20))
	}
	if after := []fileState{stat(t, certPath), stat(t, keyPath)}; !slices.Equal(before, after) {
		t.Fatalf("files not restored: %v -> %v", before, after)
	}
	n.expectServed(s.target, old, "after the rollback")
}

// An SNI mismatch (the server answers that name with another site's
// certificate) rolls back; the old certificate is still served for the
// real name. Verification waits its whole budget before giving up.
func TestSNIMismatchRollsBack(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	certPath, keyPath := n.etc("ssl/site.pem"), n.etc("ssl/site.key")
	n.placeholder(certPath, keyPath, shop)
	s := n.startNginx(nginxOpts{listen: []string{fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp4"))}, serverName: shop, cert: certPath, key: keyPath})
	is := newIssuer(t)
	a, b := is.issue(t, shop, ecP256), is.issue(t, shop, ecP256)
	n.publish(a.b)
	expectStatus(t, n.run(a.b, pemParams(certPath, keyPath, s)), "installed")
	before := []fileState{stat(t, certPath), stat(t, keyPath)}
	n.publish(b.b)
	r := n.run(b.b, with(pemParams(certPath, keyPath, s), "ServerName", "typo.example.com"))
	expectStatus(t, r, "rolled_back")
	if r.exit != 2 || r.Verify != "mismatch" {
		t.Fatalf("result %s", r)
	}
	if after := []fileState{stat(t, certPath), stat(t, keyPath)}; !slices.Equal(before, after) {
		t.Fatalf("files not restored: %v -> %v", before, after)
	}
	n.expectServed(s.target, a.b.Fingerprint, "after the rollback")
}

// nginx: first install, unchanged, renewal, files in place but something
// else served, a mismatched key refused, a corrupt chain refused.
func TestNginx(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	certPath, keyPath := n.etc("ssl/certs/site.pem"), n.etc("ssl/private/site.key")
	placeholder := n.placeholder(certPath, keyPath, shop)
	s := n.startNginx(nginxOpts{listen: []string{fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp4"))}, serverName: shop, cert: certPath, key: keyPath})
	n.expectServed(s.target, placeholder, "before the first install")
	is := newIssuer(t)
	p := pemParams(certPath, keyPath, s)

	a := is.issue(t, shop, ecP256)
	t.Run("first install", func(t *testing.T) {
		n.publish(a.b)
		r := n.run(a.b, p)
		expectStatus(t, r, "installed")
		if r.Fingerprint != a.b.Fingerprint || r.Serial != a.b.Serial || r.Reload != "done" || r.Verify != "ok" {
			t.Fatalf("result %s", r)
		}
		n.expectServed(s.target, a.b.Fingerprint, "after the first install")
		if got := leafOf(t, stat(t, certPath).content); got != a.b.Fingerprint {
			t.Fatalf("certificate file holds %s", got)
		}
		if key := stat(t, keyPath); key.mode.Perm() != 0o600 || key.uid != 0 || key.gid != 0 {
			t.Fatalf("key file %s: want the existing file's root:root 0600 kept", key)
		}
	})
	t.Run("same bundle again: unchanged, still verified", func(t *testing.T) {
		r := n.run(a.b, p)
		expectStatus(t, r, "unchanged")
		if r.Verify != "ok" {
			t.Fatalf("unchanged without verification: %s", r)
		}
	})
	b := is.issue(t, shop, rsa2048)
	t.Run("renewal: the new serial is served", func(t *testing.T) {
		n.publish(b.b)
		r := n.run(b.b, p)
		expectStatus(t, r, "installed")
		if r.Serial != b.b.Serial || r.Serial == a.b.Serial {
			t.Fatalf("serial %s, want %s", r.Serial, b.b.Serial)
		}
		n.expectServed(s.target, b.b.Fingerprint, "after renewal")
	})
	c := is.issue(t, shop, ecP256)
	t.Run("files in place but the server serves something else: reloaded and verified", func(t *testing.T) {
		n.publish(c.b)
		// Files only: nginx is not reloaded and still serves b.
		r := n.run(c.b, with(p, "ReloadService", "", "VerifyPort", "0"))
		expectStatus(t, r, "installed")
		if got := served(s.target); got != b.b.Fingerprint {
			t.Fatalf("nginx serves %s before the second run, want the old %s", got, b.b.Fingerprint)
		}
		r = n.run(c.b, p)
		if r.exit != 0 || r.Reload != "done" || r.Verify != "ok" {
			t.Fatalf("want a reload and a verified handshake: %s", r)
		}
		n.expectServed(s.target, c.b.Fingerprint, "after the reload of an unchanged install")
	})
	t.Run("a key that does not match the certificate is refused, nothing written", func(t *testing.T) {
		d, e := is.issue(t, shop, ecP256), is.issue(t, shop, ecP256)
		bad := d.b
		bad.PrivateKey, bad.Passphrase = e.b.PrivateKey, e.b.Passphrase
		n.publish(bad)
		before := []fileState{stat(t, certPath), stat(t, keyPath)}
		r := n.run(bad, p)
		expectStatus(t, r, "failed")
		if r.exit != 1 || r.Reload != "skipped" {
			t.Fatalf("want failed, exit 1, no reload: %s", r)
		}
		after := []fileState{stat(t, certPath), stat(t, keyPath)}
		if !slices.Equal(before, after) {
			t.Fatalf("files changed: %v -> %v", before, after)
		}
		n.expectServed(s.target, c.b.Fingerprint, "after a refused key")
	})
	t.Run("a corrupt chain is refused, nothing written", func(t *testing.T) {
		d := is.issue(t, shop, ecP256)
		bad := d.b
		bad.CertificateChain = strings.Replace(is.pem, "\n", "\nAAAA", 2)
		n.publish(bad)
		before := []fileState{stat(t, certPath), stat(t, keyPath)}
		r := n.run(bad, p)
		expectStatus(t, r, "failed")
		if !slices.Equal(before, []fileState{stat(t, certPath), stat(t, keyPath)}) {
			t.Fatal("files changed")
		}
		n.expectServed(s.target, c.b.Fingerprint, "after a refused chain")
	})
}

// Apache: a corrupt chain never reaches Apache; a certificate Apache cannot
// load (configtest passes, the graceful restart kills the master) is caught,
// rolled back, and Apache is started again serving the old certificate.
func TestApache(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	certPath, keyPath := n.etc("apache2/ssl/site.pem"), n.etc("apache2/ssl/site.key")
	n.placeholder(certPath, keyPath, shop)
	s := n.startApache(apacheOpts{port: freePort(t, "tcp4"), serverName: shop, cert: certPath, key: keyPath})
	is := newIssuer(t)
	p := pemParams(certPath, keyPath, s)
	a := is.issue(t, shop, rsa2048)
	t.Run("first install", func(t *testing.T) {
		n.publish(a.b)
		r := n.run(a.b, p)
		expectStatus(t, r, "installed")
		n.expectServed(s.target, a.b.Fingerprint, "after install")
	})
	t.Run("bad chain: refused before Apache sees it; Apache stays up", func(t *testing.T) {
		master := s.pid()
		d := is.issue(t, shop, rsa2048)
		bad := d.b
		bad.CertificateChain += "-----BEGIN CERTIFICATE-----\nMIIBgarbage\n-----END CERTIFICATE-----\n"
		n.publish(bad)
		r := n.run(bad, p)
		expectStatus(t, r, "failed")
		if s.pid() != master || !processAlive(master) {
			t.Fatalf("Apache's master changed or died (%d -> %d)", master, s.pid())
		}
		n.expectServed(s.target, a.b.Fingerprint, "after a refused chain")
	})
	t.Run("a certificate Apache cannot load: rolled back, Apache running and serving the old one", func(t *testing.T) {
		master := s.pid()
		weak := is.issue(t, shop, rsa1024)
		n.publish(weak.b)
		r := n.run(weak.b, p)
		expectStatus(t, r, "rolled_back")
		if r.exit != 2 || !strings.Contains(r.Detail, "rolled back") {
			t.Fatalf("result %s", r)
		}
		// The installer's rollback waited for the restarted Apache to run.
		if processAlive(master) {
			t.Fatalf("the old master %d survived the graceful restart: the test did not kill Apache", master)
		}
		if !processAlive(s.pid()) {
			t.Fatalf("Apache is down after the rollback (pid file: %d)\n%s", s.pid(), tail(s.log, 20))
		}
		n.expectServed(s.target, a.b.Fingerprint, "after the rollback")
		if got := leafOf(t, stat(t, certPath).content); got != a.b.Fingerprint {
			t.Fatalf("certificate file holds %s after the rollback", got)
		}
		if !strings.Contains(tail(s.log, 50), "too small") {
			t.Errorf("Apache's log does not show why it refused the key:\n%s", tail(s.log, 20))
		}
	})
	t.Run("after the rollback the next renewal installs", func(t *testing.T) {
		b := is.issue(t, shop, ecP256)
		n.publish(b.b)
		expectStatus(t, n.run(b.b, p), "installed")
		n.expectServed(s.target, b.b.Fingerprint, "after renewal")
	})
}

// HAProxy with a combined PEM file, and with `crt <directory>` next to
// another site's file: several renewals in a row, each reload works, and no
// backup or temp file ever appears in the directory HAProxy loads.
func TestHAProxy(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"file", "directory", "directory, -sf re-exec"} {
		t.Run(mode, func(t *testing.T) {
			n := newNode(t)
			crtDir := n.etc("haproxy/certs")
			site := filepath.Join(crtDir, "site.pem")
			c, k, _ := selfSigned(t, shop)
			writeFile(t, site, c+k, 0o600)
			want := []string{"site.pem"}
			crt := site
			if mode != "file" {
				oc, ok, _ := selfSigned(t, "other.example.com")
				writeFile(t, filepath.Join(crtDir, "00-other.pem"), oc+ok, 0o600)
				want = []string{"00-other.pem", "site.pem"}
				crt = crtDir
			}
			s := n.startHAProxy(freePort(t, "tcp4"), crt, shop, !strings.Contains(mode, "-sf"))
			first := s.pid()
			is := newIssuer(t)
			p := map[string]string{"Format": "combined", "CertPath": site, "ReloadService": "haproxy",
				"VerifyPort": strconv.Itoa(s.target.Port), "ServerName": shop}
			for i := 0; i < 3; i++ {
				x := is.issue(t, shop, ecP256)
				n.publish(x.b)
				r := n.run(x.b, p)
				expectStatus(t, r, "installed")
				n.expectServed(s.target, x.b.Fingerprint, fmt.Sprintf("run %d", i+1))
				if got := listDir(t, crtDir); !slices.Equal(got, want) {
					t.Fatalf("run %d: %s holds %v, want %v", i+1, crtDir, got, want)
				}
				if f := stat(t, site); f.mode.Perm() != 0o600 || !strings.Contains(f.content, "PRIVATE KEY") {
					t.Fatalf("combined file %s", f)
				}
			}
			if strings.Contains(mode, "-sf") && (s.pid() == first || !processAlive(s.pid())) {
				t.Fatalf("the re-exec did not hand over to a new process (pid %d -> %d)", first, s.pid())
			}
			if mode != "file" {
				other := probe.Target{Address: "127.0.0.1", Port: s.target.Port, ServerName: "other.example.com"}
				if got := served(other); strings.HasPrefix(got, "error") {
					t.Fatalf("the other site is gone: %s", got)
				}
			}
		})
	}
}

// A file that existed before the run comes back exactly (content, mode,
// owner, group), and a file that did not exist is removed, when the run
// rolls back (here: the service's configuration test fails).
func TestRestoredExactly(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	certPath, keyPath := n.etc("haproxy/site.pem"), n.etc("haproxy/site.key")
	original := "# operator's own file, kept byte for byte\n" + strings.Repeat("x", 100) + "\n"
	writeFile(t, certPath, original, 0o604)
	if err := os.Chown(certPath, 1, 2); err != nil {
		t.Fatal(err)
	}
	before := stat(t, certPath)
	n.addService("haproxy", service.Entry{
		Test:    []string{"/bin/sh", "-c", "echo '[ALERT] config : parsing [/etc/haproxy/haproxy.cfg:42] : unable to load certificate' >&2; exit 1"},
		PidFile: filepath.Join(n.dir, "no.pid"),
	})
	is := newIssuer(t)
	a := is.issue(t, shop, ecP256)
	n.publish(a.b)
	r := n.run(a.b, map[string]string{"Format": "pem", "CertPath": certPath, "KeyPath": keyPath, "ReloadService": "haproxy", "VerifyPort": "0"})
	expectStatus(t, r, "rolled_back")
	if !strings.Contains(r.Detail, "unable to load certificate") {
		t.Errorf("detail does not carry the config test's output: %q", r.Detail)
	}
	if after := stat(t, certPath); after != before {
		t.Fatalf("pre-existing file not restored exactly: %s -> %s", before, after)
	}
	if k := stat(t, keyPath); k.exists {
		t.Fatalf("the key file that did not exist before is still there: %s", k)
	}
	if got := listDir(t, filepath.Dir(certPath)); !slices.Equal(got, []string{"site.pem"}) {
		t.Fatalf("directory holds %v", got)
	}
}

// Concurrent runs for one name: the lock serialises them; the current
// bundle ends up installed and served; a superseded command does nothing.
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	certPath, keyPath := n.etc("ssl/site.pem"), n.etc("ssl/site.key")
	n.placeholder(certPath, keyPath, shop)
	s := n.startNginx(nginxOpts{listen: []string{fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp4"))}, serverName: shop, cert: certPath, key: keyPath})
	is := newIssuer(t)
	old, cur := is.issue(t, shop, ecP256), is.issue(t, shop, ecP256)
	n.publish(old.b)
	n.publish(cur.b)
	p := pemParams(certPath, keyPath, s)
	var wg sync.WaitGroup
	results := make([]result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := cur.b
			if i == 0 {
				b = old.b // a late command for the previous export
			}
			results[i] = n.install(b, p)
		}()
	}
	wg.Wait()
	installed := 0
	for i, r := range results {
		if i == 0 {
			if r.Status != "superseded" || r.exit != 0 || !strings.HasPrefix(r.Detail, "superseded: ") {
				t.Errorf("superseded run: %s", r)
			}
			continue
		}
		if r.exit != 0 {
			t.Errorf("run %d: %s", i, r)
		}
		if r.Status == "installed" {
			installed++
		}
	}
	if installed < 1 {
		t.Errorf("no run installed the current bundle")
	}
	n.expectServed(s.target, cur.b.Fingerprint, "after concurrent runs")
	if got := leafOf(t, stat(t, certPath).content); got != cur.b.Fingerprint {
		t.Fatalf("file holds %s", got)
	}
}

// Killed mid-run (SIGKILL to the process group, as SSM Agent does at the
// step timeout), during the reload and just after it: every file is
// complete (old or new), and the next run recovers and installs.
func TestKilledMidRun(t *testing.T) {
	t.Parallel()
	for _, when := range []string{"during reload", "after reload"} {
		t.Run(when, func(t *testing.T) {
			n := newNode(t)
			certPath, keyPath := n.etc("ssl/site.pem"), n.etc("ssl/private/site.key")
			n.placeholder(certPath, keyPath, shop)
			s := n.startNginx(nginxOpts{listen: []string{fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp4"))}, serverName: shop, cert: certPath, key: keyPath})
			is := newIssuer(t)
			a, b := is.issue(t, shop, ecP256), is.issue(t, shop, ecP256)
			p := pemParams(certPath, keyPath, s)
			n.publish(a.b)
			expectStatus(t, n.run(a.b, p), "installed")

			// The reload goes through a wrapper that marks its progress.
			hang, started, reloaded := filepath.Join(n.dir, "hang"), filepath.Join(n.dir, "started"), filepath.Join(n.dir, "reloaded")
			e := n.services["nginx"]
			script := filepath.Join(n.dir, "reload.sh")
			writeFile(t, script, fmt.Sprintf("#!/bin/sh\ntouch %s\nif [ -e %s ]; then exec sleep 60; fi\n%s || exit 1\ntouch %s\n",
				started, hang, strings.Join(e.Reload, " "), reloaded), 0o755)
			e.Reload = []string{"/bin/sh", script}
			n.addService("nginx", e)
			mark := reloaded
			if when == "during reload" {
				writeFile(t, hang, "", 0o644)
				mark = started
			}

			n.publish(b.b)
			cmd := n.command(b.b, p)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(90 * time.Second)
			for {
				if _, err := os.Stat(mark); err == nil {
					break
				}
				if time.Now().After(deadline) {
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					_ = cmd.Wait()
					t.Fatalf("the run never reached %s:\n%s", filepath.Base(mark), out.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			if strings.Contains(out.String(), "CERTFERRY_RESULT") {
				t.Fatalf("the run finished before the kill:\n%s", out.String())
			}

			// Each file is complete: the old or the new content, never a mix.
			fp := leafOf(t, stat(t, certPath).content)
			if fp != a.b.Fingerprint && fp != b.b.Fingerprint {
				t.Fatalf("certificate file holds %s, neither old nor new", fp)
			}
			keyPEM := stat(t, keyPath).content
			if !matchesOne(t, keyPEM, a, b) {
				t.Fatal("key file holds neither the old nor the new key")
			}

			os.Remove(hang)
			r := n.run(b.b, p)
			if r.exit != 0 || !strings.Contains(r.Detail, "recovered") {
				t.Fatalf("the run after the kill should recover the killed run, then install: %s", r)
			}
			n.expectServed(s.target, b.b.Fingerprint, "after recovery")
			if !matchesOne(t, stat(t, keyPath).content, b) || leafOf(t, stat(t, certPath).content) != b.b.Fingerprint {
				t.Fatal("files do not hold the new certificate and key after recovery")
			}
			for _, d := range []string{filepath.Dir(certPath), filepath.Dir(keyPath)} {
				for _, name := range listDir(t, d) {
					if name != filepath.Base(certPath) && name != filepath.Base(keyPath) && name != "private" {
						t.Errorf("left behind in %s: %s", d, name)
					}
				}
			}
		})
	}
}

// matchesOne reports whether keyPEM (unencrypted, as written for servers)
// is the private key of one of xs.
func matchesOne(t *testing.T, keyPEM string, xs ...issued) bool {
	t.Helper()
	key, err := parseKey(keyPEM)
	if err != nil {
		t.Fatalf("key file: %v", err)
	}
	for _, x := range xs {
		if certs.KeyMatches(x.leaf, key) == nil {
			return true
		}
	}
	return false
}

// The key is readable by the service's group: nginx's master itself runs
// as www-data, so a reload reads the key as www-data.
func TestKeyReadableByServiceGroup(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	certPath, keyPath := n.etc("ssl/site.pem"), n.etc("ssl/private/site.key")
	n.placeholder(certPath, keyPath, shop)
	if err := os.Chown(keyPath, 0, wwwData); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyPath, 0o640); err != nil {
		t.Fatal(err)
	}
	s := n.startNginx(nginxOpts{listen: []string{fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp4"))}, serverName: shop, cert: certPath, key: keyPath, asWwwData: true})
	if uid := procUID(t, s.pid()); uid != wwwData {
		t.Fatalf("nginx master runs as uid %d, want www-data", uid)
	}
	is := newIssuer(t)
	for i := 0; i < 2; i++ {
		x := is.issue(t, shop, ecP256)
		n.publish(x.b)
		r := n.run(x.b, with(pemParams(certPath, keyPath, s), "Group", "www-data", "KeyMode", "0640"))
		expectStatus(t, r, "installed")
		n.expectServed(s.target, x.b.Fingerprint, "served by a www-data nginx")
		if k := stat(t, keyPath); k.uid != 0 || k.gid != wwwData || k.mode.Perm() != 0o640 {
			t.Fatalf("key file %s, want root:www-data 0640", k)
		}
	}
}

func procUID(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			uid, _ := strconv.Atoi(f[1])
			return uid
		}
	}
	t.Fatal("no Uid in /proc status")
	return -1
}

// An IPv6-only listener, verified at ::1.
func TestIPv6Only(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	certPath, keyPath := n.etc("ssl/site.pem"), n.etc("ssl/site.key")
	n.placeholder(certPath, keyPath, shop)
	port := freePort(t, "tcp6")
	s := n.startNginx(nginxOpts{listen: []string{fmt.Sprintf("[::1]:%d", port)}, serverName: shop, cert: certPath, key: keyPath})
	if got := served(probe.Target{Address: "127.0.0.1", Port: port, ServerName: shop}); !strings.HasPrefix(got, "error") {
		t.Fatalf("something serves on 127.0.0.1:%d: the listener is not IPv6-only", port)
	}
	is := newIssuer(t)
	a := is.issue(t, shop, ecP256)
	n.publish(a.b)
	r := n.run(a.b, with(pemParams(certPath, keyPath, s), "VerifyAddress", "::1"))
	expectStatus(t, r, "installed")
	if r.Verify != "ok" {
		t.Fatalf("result %s", r)
	}
	n.expectServed(s.target, a.b.Fingerprint, "over IPv6")
}

// STARTTLS on a real Postfix: installed, reloaded, verified with SMTP
// STARTTLS, and renewed.
func TestPostfixStartTLS(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	certPath, keyPath := n.etc("postfix/smtpd.pem"), n.etc("postfix/smtpd.key")
	n.placeholder(certPath, keyPath, "mail.example.com")
	s := n.startPostfix(freePort(t, "tcp4"), certPath, keyPath)
	is := newIssuer(t)
	p := map[string]string{"Format": "pem", "CertPath": certPath, "KeyPath": keyPath, "ReloadService": "postfix",
		"VerifyPort": strconv.Itoa(s.target.Port), "Starttls": "smtp", "ServerName": "mail.example.com"}
	for i := 0; i < 2; i++ {
		x := is.issue(t, "mail.example.com", rsa2048)
		n.publish(x.b)
		r := n.run(x.b, p)
		expectStatus(t, r, "installed")
		if r.Verify != "ok" || r.Reload != "done" {
			t.Fatalf("result %s", r)
		}
		n.expectServed(s.target, x.b.Fingerprint, "over SMTP STARTTLS")
	}
}
