// Package service controls the server that uses an installed certificate:
// its own configuration test, whether it runs, a reload that never starts a
// stopped service, and a start for rollback.
//
// Three ways to reach a service, chosen per service name:
//   - an entry in the services file (CERTFERRY_SERVICES, default
//     /etc/certferry/services.json): argv lists and a pid file, for nodes
//     without systemd and for servers run from their own configuration;
//   - systemd, when /run/systemd/system exists (systemctl is-active, reload,
//     start; the configuration test through the server's own command,
//     since systemd has none);
//   - the server's own commands (nginx, Apache httpd, HAProxy, Postfix).
//
// Commands never go through a shell, run with a bounded timeout, and their
// output appears in errors only as a short, sanitised summary.
package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Manager is what the installer needs from a service manager.
type Manager interface {
	// ConfigTest runs the service's own configuration check (nginx -t,
	// apachectl -t, haproxy -c, postfix check). A service without a known
	// check passes.
	ConfigTest(ctx context.Context, name string) error
	// Active reports whether the service runs now. For servers whose master
	// can exit after a reload (Apache after a graceful restart with a bad
	// certificate) it looks at the master process itself.
	Active(ctx context.Context, name string) (bool, error)
	// Reload reloads a running service and waits until the reload has
	// settled; it fails with ErrNotRunning, and changes nothing, when the
	// service does not run. It never starts a stopped service.
	Reload(ctx context.Context, name string) error
	// Start starts the service (rollback uses it only when our reload
	// stopped a service that ran before).
	Start(ctx context.Context, name string) error
}

// Errors callers check with errors.Is.
var (
	// ErrNotRunning: Reload was asked for a service that does not run.
	ErrNotRunning = errors.New("service is not running")
	// ErrExited: the service's main process exited during a reload.
	ErrExited = errors.New("service exited during reload")
	// ErrBadName: the service name is not one certferry accepts.
	ErrBadName = errors.New("invalid service name")
)

// DefaultServicesFile is read when Options.ServicesFile is empty and it exists.
const DefaultServicesFile = "/etc/certferry/services.json"

// Options configure New.
type Options struct {
	// ServicesFile is the JSON file of per-service commands
	// (CERTFERRY_SERVICES). Empty: DefaultServicesFile when it exists.
	ServicesFile string
	// SystemdDir is where systemd as init leaves its mark
	// (sd_booted(3)); default /run/systemd/system.
	SystemdDir string
	// CommandTimeout bounds each command (default 60 s); a deadline in the
	// context bounds it further.
	CommandTimeout time.Duration
	// Settle bounds the wait after a reload for the new generation of the
	// server (default 5 s).
	Settle time.Duration
	// Env is the commands' environment (default os.Environ()); the sbin
	// directories are appended to its PATH.
	Env []string
	// Path is where commands are looked up (default: PATH from Env plus
	// /usr/local/sbin, /usr/sbin, /sbin).
	Path string

	// root prefixes the servers' default paths (tests only).
	root string
}

// NamePattern is the grammar of service names (the API's and the
// document's ReloadService grammar); names holding ".." are refused too.
var NamePattern = regexp.MustCompile(`^[A-Za-z0-9@._-]{1,64}$`)

func checkName(name string) error {
	if !NamePattern.MatchString(name) || strings.Contains(name, "..") || strings.HasPrefix(name, "-") {
		return fmt.Errorf("%w %q", ErrBadName, sanitize(name, 80))
	}
	return nil
}

// New returns the Manager for this machine. A services file that cannot be
// read or parsed makes every call fail with that error (use Open to see it
// at once).
func New(opts Options) Manager {
	m, err := Open(opts)
	if err != nil {
		return broken{err}
	}
	return m
}

// Open is New that reports a bad services file instead of deferring it.
func Open(opts Options) (Manager, error) {
	if opts.SystemdDir == "" {
		opts.SystemdDir = "/run/systemd/system"
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 60 * time.Second
	}
	if opts.Settle <= 0 {
		opts.Settle = 5 * time.Second
	}
	if opts.Env == nil {
		opts.Env = os.Environ()
	}
	r := newRunner(opts)
	m := &manager{run: r, settle: opts.Settle}
	file := opts.ServicesFile
	if file == "" {
		if _, err := os.Stat(DefaultServicesFile); err == nil {
			file = DefaultServicesFile
		}
	}
	if file != "" {
		entries, err := LoadFile(file)
		if err != nil {
			return nil, err
		}
		m.entries = entries
	}
	if fi, err := os.Stat(opts.SystemdDir); err == nil && fi.IsDir() {
		m.fallback = &systemd{run: r}
	} else {
		m.fallback = &native{run: r, root: opts.root}
	}
	return m, nil
}

// backend is one way of controlling services.
type backend interface {
	configTest(ctx context.Context, name string) error
	active(ctx context.Context, name string) (bool, error)
	// mainPID is the service's main process (0 when unknown).
	mainPID(ctx context.Context, name string) (pidSource, error)
	reload(ctx context.Context, name string) error
	start(ctx context.Context, name string) error
}

// manager picks, per name, the services file entry or the fallback
// (systemd or native).
type manager struct {
	run      *runner
	entries  map[string]Entry
	fallback backend
	settle   time.Duration
}

func (m *manager) backendFor(name string) (backend, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if e, ok := m.entries[name]; ok {
		return &fileBackend{name: name, e: e, run: m.run, next: m.fallback}, nil
	}
	return m.fallback, nil
}

func (m *manager) ConfigTest(ctx context.Context, name string) error {
	b, err := m.backendFor(name)
	if err != nil {
		return err
	}
	if err := b.configTest(ctx, name); err != nil {
		return fmt.Errorf("config test of %s: %w", name, err)
	}
	return nil
}

func (m *manager) Active(ctx context.Context, name string) (bool, error) {
	b, err := m.backendFor(name)
	if err != nil {
		return false, err
	}
	ok, err := b.active(ctx, name)
	if err != nil {
		return false, fmt.Errorf("check whether %s runs: %w", name, err)
	}
	return ok, nil
}

func (m *manager) Reload(ctx context.Context, name string) error {
	b, err := m.backendFor(name)
	if err != nil {
		return err
	}
	up, err := b.active(ctx, name)
	if err != nil {
		return fmt.Errorf("reload %s: %w", name, err)
	}
	if !up {
		return fmt.Errorf("reload %s: %w (not started by certferry)", name, ErrNotRunning)
	}
	var before generation
	// Without a main pid (unknown, or systemctl show failed) there is
	// nothing to watch; the verification still decides.
	src, err := b.mainPID(ctx, name)
	watch := err == nil && settles(kindOf(name)) && src.pid() > 0
	if watch {
		before = snapshot(src)
	}
	if err := b.reload(ctx, name); err != nil {
		return fmt.Errorf("reload %s: %w", name, err)
	}
	if watch {
		if err := waitSettled(ctx, src, before, m.settle); err != nil {
			return fmt.Errorf("reload %s: %w", name, err)
		}
	}
	return nil
}

func (m *manager) Start(ctx context.Context, name string) error {
	b, err := m.backendFor(name)
	if err != nil {
		return err
	}
	// A master that died (Apache after a failed graceful restart) may stay a
	// zombie where PID 1 does not reap, and its pid file still names it:
	// `apachectl -k start` would take it for a running server and do
	// nothing. Such a pid file is stale; remove it first.
	if f := pidFileFor(b, name); f != "" {
		if pid := (pidSource{file: f}).pid(); pid > 0 && !alive(pid) {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("start %s: remove stale pid file %s: %w", name, f, err)
			}
		}
	}
	if err := b.start(ctx, name); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	// A daemon's start command returns before the daemon has loaded its
	// configuration and written its pid file: wait (at most Settle) until
	// it runs, so the caller knows the service is back.
	deadline := time.Now().Add(m.settle)
	for {
		up, err := b.active(ctx, name)
		if err == nil && up {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("start %s: %w", name, err)
			}
			return fmt.Errorf("start %s: the start command succeeded but the service is not running", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pidFileFor is the pid file a backend watches for name ("" under systemd,
// which tracks the main process itself).
func pidFileFor(b backend, name string) string {
	switch b := b.(type) {
	case *fileBackend:
		if b.e.PidFile != "" {
			return b.e.PidFile
		}
		if b.e.Status != nil {
			return ""
		}
		return pidFileFor(b.next, name)
	case *native:
		return b.pidFile(name)
	}
	return ""
}

// broken is the Manager of a services file that could not be loaded.
type broken struct{ err error }

func (b broken) ConfigTest(context.Context, string) error     { return b.err }
func (b broken) Active(context.Context, string) (bool, error) { return false, b.err }
func (b broken) Reload(context.Context, string) error         { return b.err }
func (b broken) Start(context.Context, string) error          { return b.err }

// kind is the server family a service name belongs to.
type kind int

const (
	kindUnknown kind = iota
	kindNginx
	kindApache2 // Debian's apache2
	kindHttpd   // Red Hat's httpd
	kindHAProxy
	kindPostfix
)

// kindOf maps a unit or service name (nginx, nginx.service, apache2@www,
// httpd, haproxy, postfix@-) to its server family.
func kindOf(name string) kind {
	base := strings.TrimSuffix(name, ".service")
	if i := strings.IndexByte(base, '@'); i >= 0 {
		base = base[:i]
	}
	switch base {
	case "nginx":
		return kindNginx
	case "apache2":
		return kindApache2
	case "httpd", "apache":
		return kindHttpd
	case "haproxy":
		return kindHAProxy
	case "postfix":
		return kindPostfix
	}
	return kindUnknown
}

// settles: servers whose reload starts a new generation of a long-lived
// master, which Reload waits for (and whose master may die instead).
func settles(k kind) bool {
	return k == kindNginx || k == kindApache2 || k == kindHttpd || k == kindHAProxy
}
