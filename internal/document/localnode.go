package document

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/certs"
)

// LocalNode is a managed node simulated on this machine: a private nginx
// on a free loopback port serving one TLS site from CertPath/KeyPath, and
// shims that point the script's `nginx` and `systemctl` at that nginx. Env
// holds the PATH with the shims, to pass to RunLinux.
type LocalNode struct {
	Dir, CertPath, KeyPath string
	ServerName             string
	Port                   int
	Env                    []string
	shims, shimLog         string
}

// NginxBinary finds nginx (Debian installs it in /usr/sbin).
func NginxBinary() (string, error) {
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	return "", errors.New("nginx not found (apt-get install nginx-light)")
}

// StartLocalNode starts nginx in dir with a placeholder certificate for
// serverName, as a server has before certferry's first install.
func StartLocalNode(dir, serverName string) (*LocalNode, error) {
	nginx, err := NginxBinary()
	if err != nil {
		return nil, err
	}
	n := &LocalNode{
		Dir: dir, ServerName: serverName, shims: filepath.Join(dir, "bin"), shimLog: filepath.Join(dir, "reloads.log"),
		CertPath: filepath.Join(dir, "ssl/certs/site.pem"), KeyPath: filepath.Join(dir, "ssl/private/site.key"),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	certPEM, keyPEM, err := placeholder(serverName)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	files := []struct {
		path, content string
		mode          os.FileMode
	}{
		{n.CertPath, certPEM, 0o644},
		{n.KeyPath, keyPEM, 0o600},
		{conf, fmt.Sprintf(`daemon on;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp; uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  server {
    listen 127.0.0.1:%[2]d ssl;
    server_name %[3]s;
    ssl_certificate %[4]s;
    ssl_certificate_key %[5]s;
    return 204;
  }
}
`, dir, n.Port, serverName, n.CertPath, n.KeyPath), 0o644},
		{filepath.Join(n.shims, "nginx"), fmt.Sprintf("#!/bin/sh\nexec %s -c %s -p %s \"$@\"\n", nginx, conf, dir), 0o755},
		{filepath.Join(n.shims, "systemctl"), fmt.Sprintf(`#!/bin/sh
echo "$@" >> %s
case "$1" in
  reload|reload-or-restart|restart) exec nginx -s reload ;;
  *) exit 0 ;;
esac
`, n.shimLog), 0o755},
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(f.path, []byte(f.content), f.mode); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command(filepath.Join(n.shims, "nginx")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start nginx: %v: %s", err, out)
	}
	n.Env = []string{"PATH=" + n.shims + ":" + os.Getenv("PATH")}
	if _, err := n.Served("", 10*time.Second); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

// EmulatorEnv is Env plus what aims the node's aws CLI at an emulator
// (moto) with throwaway credentials, ignoring the user's AWS config files.
func (n *LocalNode) EmulatorEnv(endpoint, region string) []string {
	return append(slices.Clone(n.Env),
		"AWS_ENDPOINT_URL="+endpoint, "AWS_DEFAULT_REGION="+region,
		"AWS_ACCESS_KEY_ID=emulator", "AWS_SECRET_ACCESS_KEY=emulator",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

// Stop stops nginx.
func (n *LocalNode) Stop() { _ = exec.Command(filepath.Join(n.shims, "nginx"), "-s", "stop").Run() }

// Reloads counts the service reloads the script asked for.
func (n *LocalNode) Reloads() int {
	raw, _ := os.ReadFile(n.shimLog)
	return strings.Count(string(raw), "\n")
}

// Served does real TLS handshakes with SNI until nginx serves want (old
// workers drain for a moment after a reload; empty want takes the first
// answer) or timeout passes, and returns the fingerprint served last.
func (n *LocalNode) Served(want string, timeout time.Duration) (string, error) {
	var got string
	var lastErr error
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(n.Port),
			&tls.Config{ServerName: n.ServerName, InsecureSkipVerify: true}) //nolint:gosec // fingerprints are compared instead
		if err == nil {
			got = certs.Fingerprint(conn.ConnectionState().PeerCertificates[0].Raw)
			conn.Close()
			if want == "" || got == want {
				return got, nil
			}
		}
		lastErr = err
		if time.Now().After(deadline) {
			if got == "" {
				return "", fmt.Errorf("no TLS answer on port %d: %v", n.Port, lastErr)
			}
			return got, nil
		}
	}
}

// placeholder is a throwaway self-signed certificate and key.
func placeholder(name string) (certPEM, keyPEM string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name + " placeholder"},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), nil
}
