package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Default locations of the servers' files as their Debian and Red Hat
// packages install them.
const (
	defaultHAProxyConfig = "/etc/haproxy/haproxy.cfg"
	nginxPidFile         = "/run/nginx.pid"
	apache2PidDir        = "/run/apache2" // Debian: APACHE_PID_FILE in /etc/apache2/envvars
	httpdPidFile         = "/run/httpd/httpd.pid"
	haproxyPidFile       = "/run/haproxy.pid"
)

// ErrUnknownService: no services file entry, no systemd, and not a server
// certferry knows the commands of.
var ErrUnknownService = errors.New("unknown service: add it to the services file (CERTFERRY_SERVICES)")

// native uses each server's own commands, for nodes without systemd.
// root prefixes the packages' default paths (tests point it at a temp dir).
type native struct {
	run  *runner
	root string
}

// ownTest runs the server's own configuration test. haproxyCfgs are the
// -f arguments for HAProxy.
func ownTest(ctx context.Context, r *runner, name string, haproxyCfgs []string) error {
	var argv []string
	switch kindOf(name) {
	case kindNginx:
		argv = []string{"nginx", "-t", "-q"}
	case kindApache2:
		argv = []string{"apache2ctl", "-t"}
		if !r.has("apache2ctl") {
			argv[0] = "apachectl"
		}
	case kindHttpd:
		argv = []string{"httpd", "-t"}
		if !r.has("httpd") {
			argv = []string{"apachectl", "-t"}
		}
	case kindHAProxy:
		if len(haproxyCfgs) == 0 {
			haproxyCfgs = []string{defaultHAProxyConfig}
		}
		argv = []string{"haproxy", "-c", "-q"}
		for _, c := range haproxyCfgs {
			argv = append(argv, "-f", c)
		}
	case kindPostfix:
		argv = []string{"postfix", "check"}
	default:
		return nil // no known check; reload and verification still run
	}
	_, err := r.run(ctx, argv)
	return err
}

func (n *native) configTest(ctx context.Context, name string) error {
	return ownTest(ctx, n.run, name, []string{n.root + defaultHAProxyConfig})
}

func (n *native) pidFile(name string) string {
	if f := pidFileOf(name); f != "" {
		return n.root + f
	}
	return ""
}

// pidFileOf is where the server's package keeps its master's pid.
func pidFileOf(name string) string {
	switch kindOf(name) {
	case kindNginx:
		return nginxPidFile
	case kindApache2:
		// apache2@www uses /run/apache2-www (Debian's envvars SUFFIX).
		if _, inst, ok := strings.Cut(strings.TrimSuffix(name, ".service"), "@"); ok && inst != "" {
			return apache2PidDir + "-" + inst + "/apache2.pid"
		}
		return apache2PidDir + "/apache2.pid"
	case kindHttpd:
		return httpdPidFile
	case kindHAProxy:
		return haproxyPidFile
	}
	return ""
}

func (n *native) active(ctx context.Context, name string) (bool, error) {
	if kindOf(name) == kindPostfix {
		// postfix status: exit 0 when the master runs, 1 when not.
		code, err := n.run.exitCode(ctx, []string{"postfix", "status"})
		return code == 0, err
	}
	f := n.pidFile(name)
	if f == "" {
		return false, fmt.Errorf("%w", ErrUnknownService)
	}
	pid := pidSource{file: f}.pid()
	return pid > 0 && alive(pid), nil
}

func (n *native) mainPID(_ context.Context, name string) (pidSource, error) {
	return pidSource{file: n.pidFile(name)}, nil
}

func (n *native) reload(ctx context.Context, name string) error {
	var argv []string
	switch kindOf(name) {
	case kindNginx:
		argv = []string{"nginx", "-s", "reload"}
	case kindApache2:
		argv = []string{"apache2ctl", "-k", "graceful"}
		if !n.run.has("apache2ctl") {
			argv[0] = "apachectl"
		}
	case kindHttpd:
		argv = []string{"httpd", "-k", "graceful"}
	case kindHAProxy:
		pid := pidSource{file: n.root + haproxyPidFile}.pid()
		if masterWorker(pid, n.root+defaultHAProxyConfig) {
			// The master re-executes itself with the new configuration and
			// keeps serving with the old workers if it cannot load it.
			return signalPID(pid, "USR2")
		}
		if pid <= 0 {
			return fmt.Errorf("no pid in %s", n.root+haproxyPidFile)
		}
		argv = []string{"haproxy", "-f", n.root + defaultHAProxyConfig, "-p", n.root + haproxyPidFile, "-D", "-sf", strconv.Itoa(pid)}
	case kindPostfix:
		argv = []string{"postfix", "reload"}
	default:
		return ErrUnknownService
	}
	_, err := n.run.run(ctx, argv)
	return err
}

// masterWorker: HAProxy runs with -W/-Ws (or "master-worker" in its
// configuration), so SIGUSR2 reloads it.
func masterWorker(pid int, config string) bool {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for _, a := range strings.Split(string(raw), "\x00") {
		if a == "-W" || a == "-Ws" {
			return true
		}
	}
	cfg, err := os.ReadFile(config)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(cfg), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "master-worker" {
			return true
		}
	}
	return false
}

func (n *native) start(ctx context.Context, name string) error {
	var argv []string
	switch kindOf(name) {
	case kindNginx:
		argv = []string{"nginx"}
	case kindApache2:
		argv = []string{"apache2ctl", "-k", "start"}
		if !n.run.has("apache2ctl") {
			argv[0] = "apachectl"
		}
	case kindHttpd:
		argv = []string{"httpd", "-k", "start"}
	case kindHAProxy:
		argv = []string{"haproxy", "-W", "-D", "-f", n.root + defaultHAProxyConfig, "-p", n.root + haproxyPidFile}
	case kindPostfix:
		argv = []string{"postfix", "start"}
	default:
		return ErrUnknownService
	}
	_, err := n.run.run(ctx, argv)
	return err
}
