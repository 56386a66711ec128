//go:build integration && linux

package realserver

// The real servers, each from its own configuration in the node's temp
// directory, on free loopback ports, with its own pid and log files, and
// stopped at cleanup. Each registers a services file entry: the commands
// certferry-node's service manager runs for it (the way an operator without
// systemd configures a server).

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/certferry/certferry/internal/nodeinstall/probe"
	"github.com/certferry/certferry/internal/nodeinstall/service"
)

const wwwData = 33 // Debian's www-data uid and gid

// server is a running real server.
type server struct {
	service string       // the ReloadService name
	target  probe.Target // where it serves the name's certificate
	pidFile string
	log     string
}

func (s *server) pid() int { return readPid(s.pidFile) }

// other is the certificate of another site on the same server (outside the
// allowed prefix): what a wrong SNI gets.
func (n *node) other() (cert, key, fp string) {
	n.t.Helper()
	dir := filepath.Join(n.dir, "other")
	c, k, fp := selfSigned(n.t, "other.example.com")
	writeFile(n.t, filepath.Join(dir, "other.pem"), c, 0o644)
	writeFile(n.t, filepath.Join(dir, "other.key"), k, 0o644)
	return filepath.Join(dir, "other.pem"), filepath.Join(dir, "other.key"), fp
}

// placeholder writes a self-signed certificate and key for domain at the
// paths (as a server has before certferry's first install) and returns
// its fingerprint.
func (n *node) placeholder(certPath, keyPath, domain string) string {
	n.t.Helper()
	c, k, fp := selfSigned(n.t, domain)
	writeFile(n.t, certPath, c, 0o644)
	writeFile(n.t, keyPath, k, 0o600)
	return fp
}

func runCmd(t *testing.T, argv []string, cred *syscall.Credential) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

// stopper stops a server at cleanup: its own stop command, then SIGKILL to
// the master if it is still there.
func (n *node) stopper(s *server, stop []string) {
	n.t.Cleanup(func() {
		pid := s.pid()
		cmd := exec.Command(stop[0], stop[1:]...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		_ = cmd.Run()
		if pid > 0 && !waitGone(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			waitGone(pid)
		}
	})
}

// ---- nginx ----

type nginxOpts struct {
	listen     []string // "127.0.0.1:port", "[::1]:port"
	serverName string
	cert, key  string
	// asWwwData runs the master itself as www-data: the key must be
	// readable by the group (a root master reads it before dropping
	// privileges, which would prove nothing).
	asWwwData bool
}

func (n *node) startNginx(o nginxOpts) *server {
	n.t.Helper()
	nginx, err := lookSbin("nginx")
	if err != nil {
		n.t.Fatalf("nginx is required (.ci/run installs nginx-light): %v", err)
	}
	dir := filepath.Join(n.dir, "nginx")
	mkdirs(n.t, filepath.Join(dir, "tmp"))
	otherCert, otherKey, _ := n.other()
	s := &server{service: "nginx", pidFile: filepath.Join(dir, "nginx.pid"), log: filepath.Join(dir, "error.log")}
	var listenDefault, listenSite strings.Builder
	for _, l := range o.listen {
		fmt.Fprintf(&listenDefault, "    listen %s ssl default_server;\n", l)
		fmt.Fprintf(&listenSite, "    listen %s ssl;\n", l)
	}
	user := "user www-data www-data;"
	if o.asWwwData {
		user = ""
		for _, p := range []string{dir, filepath.Join(dir, "tmp")} {
			if err := os.Chown(p, wwwData, wwwData); err != nil {
				n.t.Fatal(err)
			}
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(n.t, conf, fmt.Sprintf(`daemon on;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
%[2]s
worker_processes 1;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp; uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  server {
%[3]s    server_name other.example.com;
    ssl_certificate %[4]s;
    ssl_certificate_key %[5]s;
    return 204;
  }
  server {
%[6]s    server_name %[7]s;
    ssl_certificate %[8]s;
    ssl_certificate_key %[9]s;
    return 204;
  }
}
`, dir, user, listenDefault.String(), otherCert, otherKey, listenSite.String(), o.serverName, o.cert, o.key), 0o644)
	base := []string{"-e", s.log, "-c", conf, "-p", dir + "/"}
	start := append([]string{nginx}, base...)
	if o.asWwwData {
		setpriv, err := lookSbin("setpriv")
		if err != nil {
			n.t.Fatal(err)
		}
		start = append([]string{setpriv, "--reuid=33", "--regid=33", "--clear-groups"}, start...)
	}
	n.addService(s.service, service.Entry{
		Test:    append([]string{nginx, "-t", "-q"}, base...),
		Reload:  append([]string{nginx, "-s", "reload"}, base...),
		Start:   start,
		PidFile: s.pidFile,
	})
	runCmd(n.t, start, nil)
	n.stopper(s, append([]string{nginx, "-s", "stop"}, base...))
	addr, port := splitListen(n.t, o.listen[0])
	s.target = probe.Target{Address: addr, Port: port, ServerName: o.serverName}
	if got := waitServing(s.target); strings.HasPrefix(got, "error") {
		n.t.Fatalf("nginx does not serve: %s\n%s", got, tail(s.log, 20))
	}
	return s
}

func splitListen(t *testing.T, l string) (string, int) {
	t.Helper()
	i := strings.LastIndexByte(l, ':')
	port, err := strconv.Atoi(l[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Trim(l[:i], "[]"), port
}

// ---- Apache httpd ----

type apacheOpts struct {
	port       int
	serverName string
	cert, key  string
}

// startApache runs Debian's apache2 from a self-contained configuration
// (its own ServerRoot, PidFile, runtime dir and port; no /etc/apache2).
func (n *node) startApache(o apacheOpts) *server {
	n.t.Helper()
	apache, err := lookSbin("apache2")
	if err != nil {
		n.t.Fatalf("apache2 is required (.ci/run installs it): %v", err)
	}
	mods := "/usr/lib/apache2/modules"
	for _, m := range []string{"mod_mpm_event.so", "mod_ssl.so", "mod_authz_core.so", "mod_socache_shmcb.so"} {
		if _, err := os.Stat(filepath.Join(mods, m)); err != nil {
			n.t.Fatalf("apache2 module %s is required: %v", m, err)
		}
	}
	dir := filepath.Join(n.dir, "apache")
	mkdirs(n.t, dir)
	otherCert, otherKey, _ := n.other()
	s := &server{service: "apache2", pidFile: filepath.Join(dir, "httpd.pid"), log: filepath.Join(dir, "error.log")}
	conf := filepath.Join(dir, "httpd.conf")
	writeFile(n.t, conf, fmt.Sprintf(`ServerRoot %[1]s
PidFile %[1]s/httpd.pid
ErrorLog %[1]s/error.log
DefaultRuntimeDir %[1]s
Mutex file:%[1]s
LoadModule mpm_event_module %[2]s/mod_mpm_event.so
LoadModule authz_core_module %[2]s/mod_authz_core.so
LoadModule socache_shmcb_module %[2]s/mod_socache_shmcb.so
LoadModule ssl_module %[2]s/mod_ssl.so
User www-data
Group www-data
ServerName localhost
StartServers 1
Listen 127.0.0.1:%[3]d
SSLSessionCache shmcb:%[1]s/scache(512000)
<VirtualHost 127.0.0.1:%[3]d>
  ServerName other.example.com
  SSLEngine on
  SSLCertificateFile %[4]s
  SSLCertificateKeyFile %[5]s
</VirtualHost>
<VirtualHost 127.0.0.1:%[3]d>
  ServerName %[6]s
  SSLEngine on
  SSLCertificateFile %[7]s
  SSLCertificateKeyFile %[8]s
</VirtualHost>
`, dir, mods, o.port, otherCert, otherKey, o.serverName, o.cert, o.key), 0o644)
	ap := func(args ...string) []string { return append([]string{apache, "-f", conf}, args...) }
	n.addService(s.service, service.Entry{Test: ap("-t"), Reload: ap("-k", "graceful"), Start: ap("-k", "start"), PidFile: s.pidFile})
	runCmd(n.t, ap("-k", "start"), nil)
	n.stopper(s, ap("-k", "stop"))
	s.target = probe.Target{Address: "127.0.0.1", Port: o.port, ServerName: o.serverName}
	if got := waitServing(s.target); strings.HasPrefix(got, "error") {
		n.t.Fatalf("apache2 does not serve: %s\n%s", got, tail(s.log, 20))
	}
	return s
}

// ---- HAProxy ----

// startHAProxy runs HAProxy serving crt (a combined PEM file or a
// directory of them). In master-worker mode (-W, as the packages' units do
// with -Ws) the services file reloads it with SIGUSR2 to the master;
// otherwise with the re-exec pattern `haproxy -D ... -sf {pid}`, where a
// new process takes over and the old one finishes.
func (n *node) startHAProxy(port int, crt, serverName string, masterWorker bool) *server {
	n.t.Helper()
	haproxy, err := lookSbin("haproxy")
	if err != nil {
		n.t.Fatalf("haproxy is required (.ci/run installs it): %v", err)
	}
	dir := filepath.Join(n.dir, "haproxy")
	mkdirs(n.t, dir)
	s := &server{service: "haproxy", pidFile: filepath.Join(dir, "haproxy.pid"), log: filepath.Join(dir, "haproxy.log")}
	cfg := filepath.Join(dir, "haproxy.cfg")
	writeFile(n.t, cfg, fmt.Sprintf(`global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend site
  bind 127.0.0.1:%d ssl crt %s
  http-request return status 204
`, port, crt), 0o644)
	start := []string{haproxy, "-W", "-D", "-f", cfg, "-p", s.pidFile}
	e := service.Entry{Test: []string{haproxy, "-c", "-q", "-f", cfg}, ReloadSignal: "USR2", Start: start, PidFile: s.pidFile}
	if !masterWorker {
		start = []string{haproxy, "-D", "-f", cfg, "-p", s.pidFile}
		e = service.Entry{Test: e.Test, Reload: append(start, "-sf", "{pid}"), Start: start, PidFile: s.pidFile}
	}
	n.addService(s.service, e)
	runCmd(n.t, start, nil)
	n.t.Cleanup(func() {
		if pid := s.pid(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			if !waitGone(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	s.target = probe.Target{Address: "127.0.0.1", Port: port, ServerName: serverName}
	if got := waitServing(s.target); strings.HasPrefix(got, "error") {
		n.t.Fatalf("haproxy does not serve: %s", got)
	}
	return s
}

// ---- Postfix ----

// startPostfix runs a Postfix instance from its own configuration
// directory (postfix -c <dir> start) with smtpd on a free loopback port
// offering STARTTLS with cert/key.
func (n *node) startPostfix(port int, cert, key string) *server {
	n.t.Helper()
	postfix, err := lookSbin("postfix")
	if err != nil {
		n.t.Fatalf("postfix is required (.ci/run installs it): %v", err)
	}
	daemons := "/usr/lib/postfix/sbin"
	if _, err := os.Stat(filepath.Join(daemons, "smtpd")); err != nil {
		n.t.Fatalf("postfix daemons missing in %s: %v", daemons, err)
	}
	dir := filepath.Join(n.dir, "postfix")
	conf, queue, data := filepath.Join(dir, "conf"), filepath.Join(dir, "queue"), filepath.Join(dir, "data")
	mkdirs(n.t, conf, queue, data)
	if err := os.Chown(data, postfixUID(n.t), -1); err != nil {
		n.t.Fatal(err)
	}
	s := &server{service: "postfix", pidFile: filepath.Join(queue, "pid", "master.pid"), log: filepath.Join(dir, "maillog")}
	writeFile(n.t, filepath.Join(conf, "main.cf"), fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
command_directory = /usr/sbin
daemon_directory = %[3]s
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.example.com
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file = %[4]s
maillog_file_prefixes = %[5]s
smtpd_tls_cert_file = %[6]s
smtpd_tls_key_file = %[7]s
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
`, queue, data, daemons, s.log, dir, cert, key), 0o644)
	services := fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n", port) + `pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
`
	writeFile(n.t, filepath.Join(conf, "master.cf"), services, 0o644)
	pf := func(args ...string) []string { return append([]string{postfix, "-c", conf}, args...) }
	n.addService(s.service, service.Entry{Test: pf("check"), Reload: pf("reload"), Start: pf("start"), Status: pf("status")})
	runCmd(n.t, pf("start"), nil)
	n.stopper(s, pf("stop"))
	s.target = probe.Target{Address: "127.0.0.1", Port: port, StartTLS: "smtp"}
	if got := waitServing(s.target); strings.HasPrefix(got, "error") {
		n.t.Fatalf("postfix does not offer STARTTLS: %s\n%s", got, tail(s.log, 20))
	}
	return s
}

func postfixUID(t *testing.T) int {
	t.Helper()
	raw, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 3 && f[0] == "postfix" {
			uid, _ := strconv.Atoi(f[2])
			return uid
		}
	}
	t.Fatal("no postfix user (the postfix package creates it)")
	return 0
}
