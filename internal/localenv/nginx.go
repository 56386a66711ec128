package localenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
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

// LocalNode is a managed node simulated on this machine for the demo and the
// agent-run tests: a private nginx on a free loopback port serving one TLS
// site from CertPath/KeyPath, a services file (CERTFERRY_SERVICES) that
// tells certferry-node how to test, reload and start that nginx, its own
// installer state directory (CERTFERRY_STATE_DIR), and a PATH holding only
// the POSIX tools the document's install step uses: no aws CLI, openssl, jq,
// python3 or bash.
type LocalNode struct {
	Dir, CertPath, KeyPath string
	StateDir, ServicesFile string
	ServerName             string
	Port                   int
	// Env is what SSM Agent's environment would hold on such a node.
	Env            []string
	nginx, conf    string
	reloadLog, bin string
}

// nodeTools are the commands the document's installLinux step runs.
var nodeTools = []string{"sh", "uname", "tr", "cut", "sha256sum", "mkdir", "chmod", "rm", "cp", "mv", "ls", "cat"}

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
		Dir: dir, ServerName: serverName, nginx: nginx, conf: filepath.Join(dir, "nginx.conf"),
		CertPath: filepath.Join(dir, "ssl/certs/site.pem"), KeyPath: filepath.Join(dir, "ssl/private/site.key"),
		StateDir: filepath.Join(dir, "state"), ServicesFile: filepath.Join(dir, "services.json"),
		reloadLog: filepath.Join(dir, "reloads.log"), bin: filepath.Join(dir, "bin"),
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
	nginxArgs := []string{nginx, "-c", n.conf, "-p", dir}
	reloadShim := filepath.Join(dir, "reload.sh")
	services, err := json.Marshal(map[string]any{"nginx": map[string]any{
		"test":    append(slices.Clone(nginxArgs), "-t", "-q"),
		"reload":  []string{reloadShim},
		"start":   nginxArgs,
		"pidFile": filepath.Join(dir, "nginx.pid"),
	}})
	if err != nil {
		return nil, err
	}
	files := []struct {
		path, content string
		mode          os.FileMode
	}{
		{n.CertPath, certPEM, 0o644},
		{n.KeyPath, keyPEM, 0o600},
		{n.conf, fmt.Sprintf(`daemon on;
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
		// The reload goes through a shim only to count reloads.
		{reloadShim, fmt.Sprintf("#!/bin/sh\necho reload >> %s\nexec %s -s reload\n", n.reloadLog, strings.Join(nginxArgs, " ")), 0o755},
		{n.ServicesFile, string(services) + "\n", 0o644},
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
	if err := os.MkdirAll(n.bin, 0o755); err != nil {
		return nil, err
	}
	for _, tool := range nodeTools {
		p, err := exec.LookPath(tool)
		if err != nil {
			return nil, fmt.Errorf("node tool %s: %w", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(n.bin, tool)); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
	}
	if out, err := exec.Command(nginx, nginxArgs[1:]...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start nginx: %v: %s", err, out)
	}
	n.Env = []string{"PATH=" + n.bin, "CERTFERRY_STATE_DIR=" + n.StateDir, "CERTFERRY_SERVICES=" + n.ServicesFile}
	if _, err := n.Served("", 10*time.Second); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

// Params are the install parameters that aim a command at this node's
// nginx: its files, port and server name, reloaded as "nginx", with its
// directory as the only allowed prefix.
func (n *LocalNode) Params() map[string]string {
	return map[string]string{
		"CertPath": n.CertPath, "KeyPath": n.KeyPath, "ReloadService": "nginx",
		"VerifyPort": strconv.Itoa(n.Port), "VerifyAddress": "127.0.0.1", "ServerName": n.ServerName,
		"AllowedPrefixes": filepath.Join(n.Dir, "ssl"),
	}
}

// EmulatorEnv is Env plus what aims the node's AWS SDK at an emulator (moto)
// with throwaway credentials, ignoring the user's AWS config files.
func (n *LocalNode) EmulatorEnv(endpoint, region string) []string {
	return append(slices.Clone(n.Env),
		"AWS_ENDPOINT_URL="+endpoint, "AWS_REGION="+region, "AWS_DEFAULT_REGION="+region,
		"AWS_ACCESS_KEY_ID=emulator", "AWS_SECRET_ACCESS_KEY=emulator", "AWS_SESSION_TOKEN=",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true")
}

// Stop stops nginx.
func (n *LocalNode) Stop() {
	_ = exec.Command(n.nginx, "-c", n.conf, "-p", n.Dir, "-s", "stop").Run()
}

// Reloads counts the reloads certferry-node asked for.
func (n *LocalNode) Reloads() int {
	raw, _ := os.ReadFile(n.reloadLog)
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

// ServedCert is the certificate nginx serves now (one TLS handshake with
// SNI).
func (n *LocalNode) ServedCert() (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(n.Port),
		&tls.Config{ServerName: n.ServerName, InsecureSkipVerify: true}) //nolint:gosec // the caller compares serials
	if err != nil {
		return nil, fmt.Errorf("TLS handshake with nginx on port %d: %w", n.Port, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}
