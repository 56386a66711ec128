//go:build linux

package service

// systemd is not PID 1 on the machines that run these tests, so the systemd
// path runs against a fake systemctl: a shell script on a private PATH that
// records every call and answers from files. The servers' own commands are
// faked the same way here; internal/nodeinstall/realserver drives the real
// nginx, Apache httpd, HAProxy and Postfix.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rig is a private PATH of fake commands, each appending "name args" to a
// call log.
type rig struct {
	t       *testing.T
	dir     string
	bin     string
	calls   string
	systemd string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{t: t, dir: dir, bin: filepath.Join(dir, "bin"), calls: filepath.Join(dir, "calls.log"), systemd: filepath.Join(dir, "run-systemd-system")}
	if err := os.MkdirAll(r.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

// fake installs a command: it logs its name and arguments, then runs body
// (sh; $STATE is the rig's directory).
func (r *rig) fake(name, body string) {
	r.t.Helper()
	script := fmt.Sprintf("#!/bin/sh\nPATH=\"$PATH:/usr/bin:/bin\"\nSTATE='%s'\necho \"%s $*\" >> '%s'\n%s\n", r.dir, name, r.calls, body)
	if err := os.WriteFile(filepath.Join(r.bin, name), []byte(script), 0o755); err != nil {
		r.t.Fatal(err)
	}
}

// fakeSystemctl: units are active when $STATE/<unit>.active exists; start
// creates it; reload succeeds only for an active unit (as systemctl does:
// "Unit is not active, cannot reload") and runs $STATE/<unit>.onreload if
// present; MainPID comes from $STATE/<unit>.pid.
func (r *rig) fakeSystemctl() {
	r.fake("systemctl", `
case "$1" in
  is-active) [ -e "$STATE/$3.active" ] && exit 0; exit 3 ;;
  show)
    case "$3" in
      MainPID) if [ -e "$STATE/$4.pid" ]; then read p < "$STATE/$4.pid"; echo "MainPID=$p"; else echo "MainPID=0"; fi ;;
      Environment) if [ -e "$STATE/$4.env" ]; then read e < "$STATE/$4.env"; echo "Environment=$e"; else echo "Environment="; fi ;;
    esac ;;
  reload) [ -e "$STATE/$2.active" ] || { echo "$2.service is not active, cannot reload." >&2; exit 1; }
          [ -e "$STATE/$2.onreload" ] && . "$STATE/$2.onreload"; exit 0 ;;
  start) : > "$STATE/$2.active" ;;
  *) echo "fake systemctl: unexpected $*" >&2; exit 64 ;;
esac`)
	if err := os.MkdirAll(r.systemd, 0o755); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) write(name, content string) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) log() []string {
	raw, _ := os.ReadFile(r.calls)
	s := strings.TrimSpace(string(raw))
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (r *rig) manager(opts Options) Manager {
	r.t.Helper()
	opts.Path = r.bin
	if opts.SystemdDir == "" {
		opts.SystemdDir = filepath.Join(r.dir, "no-systemd")
	}
	opts.root = r.dir
	m, err := Open(opts)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// sleeper starts a process the test controls and returns its pid; it is
// reaped (and killed, if still running) at cleanup.
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

func TestSystemd(t *testing.T) {
	ctx := context.Background()
	t.Run("config tests run the servers' own commands, not systemctl", func(t *testing.T) {
		r := newRig(t)
		r.fakeSystemctl()
		for _, c := range []string{"nginx", "apache2ctl", "httpd", "haproxy", "postfix"} {
			r.fake(c, "exit 0")
		}
		r.write("haproxy.env", `CONFIG=/etc/haproxy/site.cfg "PIDFILE=/run/haproxy.pid" CFGDIR=/etc/haproxy/conf.d`)
		m := r.manager(Options{SystemdDir: r.systemd})
		for _, name := range []string{"nginx", "apache2", "httpd.service", "haproxy", "postfix@-", "tomcat"} {
			if err := m.ConfigTest(ctx, name); err != nil {
				t.Errorf("ConfigTest(%s): %v", name, err)
			}
		}
		equal(t, "calls", r.log(), []string{
			"nginx -t -q", "apache2ctl -t", "httpd -t",
			"systemctl show -p Environment haproxy", "haproxy -c -q -f /etc/haproxy/site.cfg -f /etc/haproxy/conf.d",
			"postfix check",
		})
	})
	t.Run("reload of an active unit is systemctl reload, never reload-or-restart", func(t *testing.T) {
		r := newRig(t)
		r.fakeSystemctl()
		r.write("nginx.active", "")
		m := r.manager(Options{SystemdDir: r.systemd})
		if err := m.Reload(ctx, "nginx"); err != nil {
			t.Fatal(err)
		}
		equal(t, "calls", r.log(), []string{"systemctl is-active --quiet nginx", "systemctl show -p MainPID nginx", "systemctl reload nginx"})
	})
	t.Run("a stopped unit is not reloaded and not started", func(t *testing.T) {
		r := newRig(t)
		r.fakeSystemctl()
		m := r.manager(Options{SystemdDir: r.systemd})
		err := m.Reload(ctx, "nginx")
		if !errors.Is(err, ErrNotRunning) {
			t.Fatalf("Reload of a stopped unit: %v, want ErrNotRunning", err)
		}
		equal(t, "calls", r.log(), []string{"systemctl is-active --quiet nginx"})
		if _, err := os.Stat(filepath.Join(r.dir, "nginx.active")); err == nil {
			t.Error("the stopped unit was started")
		}
	})
	t.Run("active and start", func(t *testing.T) {
		r := newRig(t)
		r.fakeSystemctl()
		m := r.manager(Options{SystemdDir: r.systemd})
		if up, err := m.Active(ctx, "haproxy"); err != nil || up {
			t.Fatalf("Active before start = %v, %v; want false", up, err)
		}
		if err := m.Start(ctx, "haproxy"); err != nil {
			t.Fatal(err)
		}
		if up, err := m.Active(ctx, "haproxy"); err != nil || !up {
			t.Fatalf("Active after start = %v, %v; want true", up, err)
		}
		equal(t, "calls", r.log(), []string{"systemctl is-active --quiet haproxy", "systemctl start haproxy", "systemctl is-active --quiet haproxy", "systemctl is-active --quiet haproxy"})
	})
	t.Run("Apache's main process exiting after the graceful reload is caught", func(t *testing.T) {
		r := newRig(t)
		r.fakeSystemctl()
		master := sleeper(t)
		r.write("apache2.active", "")
		r.write("apache2.pid", strconv.Itoa(master.Process.Pid))
		// apachectl graceful with a certificate Apache cannot load: the master
		// exits; nobody reaps it yet, so it stays a zombie, as under a PID 1
		// that does not reap.
		r.write("apache2.onreload", fmt.Sprintf("kill -TERM %d\n", master.Process.Pid))
		m := r.manager(Options{SystemdDir: r.systemd, Settle: time.Minute})
		err := m.Reload(ctx, "apache2")
		if !errors.Is(err, ErrExited) {
			t.Fatalf("Reload = %v, want ErrExited", err)
		}
	})
	t.Run("a failing reload reports systemctl's output", func(t *testing.T) {
		r := newRig(t)
		r.fakeSystemctl()
		r.write("nginx.active", "")
		r.write("nginx.onreload", "echo 'Job for nginx.service failed because the control process exited with error code.' >&2; exit 1\n")
		m := r.manager(Options{SystemdDir: r.systemd})
		err := m.Reload(ctx, "nginx")
		if err == nil || !strings.Contains(err.Error(), "exited with status 1: Job for nginx.service failed") {
			t.Fatalf("Reload = %v", err)
		}
	})
}

func TestNative(t *testing.T) {
	ctx := context.Background()
	t.Run("config tests", func(t *testing.T) {
		r := newRig(t)
		for _, c := range []string{"nginx", "apachectl", "httpd", "haproxy", "postfix"} {
			r.fake(c, "exit 0")
		}
		m := r.manager(Options{})
		for _, name := range []string{"nginx", "apache2", "httpd", "haproxy", "postfix"} {
			if err := m.ConfigTest(ctx, name); err != nil {
				t.Errorf("ConfigTest(%s): %v", name, err)
			}
		}
		equal(t, "calls", r.log(), []string{"nginx -t -q", "apachectl -t", "httpd -t", "haproxy -c -q -f " + r.dir + "/etc/haproxy/haproxy.cfg", "postfix check"})
	})
	t.Run("a failing config test carries a short summary of the output", func(t *testing.T) {
		r := newRig(t)
		r.fake("nginx", `printf 'nginx: [emerg] cannot load certificate "/etc/ssl/site.pem"\n\tline two %0300d\n' 0 >&2; exit 1`)
		m := r.manager(Options{})
		err := m.ConfigTest(ctx, "nginx")
		if err == nil {
			t.Fatal("ConfigTest passed a failing nginx -t")
		}
		msg := err.Error()
		if !strings.Contains(msg, `config test of nginx: nginx -t -q exited with status 1: nginx: [emerg] cannot load certificate "/etc/ssl/site.pem" line two 000`) {
			t.Errorf("error = %q", msg)
		}
		if len(msg) > 320 || strings.ContainsAny(msg, "\n\t") {
			t.Errorf("error not summarised (%d chars): %q", len(msg), msg)
		}
	})
	t.Run("nginx: pid file, reload, never started when stopped", func(t *testing.T) {
		r := newRig(t)
		r.fake("nginx", "exit 0")
		m := r.manager(Options{Settle: 50 * time.Millisecond})
		if err := m.Reload(ctx, "nginx"); !errors.Is(err, ErrNotRunning) {
			t.Fatalf("Reload without a pid file = %v, want ErrNotRunning", err)
		}
		if len(r.log()) != 0 {
			t.Fatalf("commands ran for a stopped nginx: %q", r.log())
		}
		master := sleeper(t)
		if err := os.MkdirAll(filepath.Join(r.dir, "run"), 0o755); err != nil {
			t.Fatal(err)
		}
		r.write("run/nginx.pid", strconv.Itoa(master.Process.Pid)+"\n")
		if up, err := m.Active(ctx, "nginx"); err != nil || !up {
			t.Fatalf("Active = %v, %v", up, err)
		}
		if err := m.Reload(ctx, "nginx"); err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx, "nginx"); err != nil {
			t.Fatal(err)
		}
		equal(t, "calls", r.log(), []string{"nginx -s reload", "nginx"})
		_ = master.Process.Signal(syscall.SIGTERM)
		_, _ = master.Process.Wait()
		if up, err := m.Active(ctx, "nginx"); err != nil || up {
			t.Fatalf("Active after the master exited = %v, %v", up, err)
		}
	})
	t.Run("a zombie master is not running", func(t *testing.T) {
		r := newRig(t)
		master := sleeper(t)
		_ = master.Process.Signal(syscall.SIGKILL)
		// Not reaped: a zombie until cleanup waits for it.
		for i := 0; i < 200 && alive(master.Process.Pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if err := os.MkdirAll(filepath.Join(r.dir, "run/apache2"), 0o755); err != nil {
			t.Fatal(err)
		}
		r.write("run/apache2/apache2.pid", strconv.Itoa(master.Process.Pid))
		m := r.manager(Options{})
		if up, err := m.Active(ctx, "apache2"); err != nil || up {
			t.Fatalf("Active with a zombie master = %v, %v; want false", up, err)
		}
		if st, _, ok := procStat(master.Process.Pid); !ok || st != 'Z' {
			t.Fatalf("test process state %q, want a zombie", st)
		}
	})
	t.Run("postfix uses postfix status, reload and start", func(t *testing.T) {
		r := newRig(t)
		r.fake("postfix", `case "$1" in status) [ -e "$STATE/up" ] && exit 0; echo "postfix/postfix-script: the Postfix mail system is not running" >&2; exit 1;; start) : > "$STATE/up";; esac`)
		m := r.manager(Options{})
		if err := m.Reload(ctx, "postfix"); !errors.Is(err, ErrNotRunning) {
			t.Fatalf("Reload of stopped postfix = %v", err)
		}
		if err := m.Start(ctx, "postfix"); err != nil {
			t.Fatal(err)
		}
		if err := m.Reload(ctx, "postfix"); err != nil {
			t.Fatal(err)
		}
		equal(t, "calls", r.log(), []string{"postfix status", "postfix start", "postfix status", "postfix status", "postfix reload"})
	})
	t.Run("unknown services need a services file", func(t *testing.T) {
		r := newRig(t)
		m := r.manager(Options{})
		if err := m.ConfigTest(ctx, "tomcat"); err != nil {
			t.Errorf("ConfigTest of a service without a check: %v", err)
		}
		if _, err := m.Active(ctx, "tomcat"); !errors.Is(err, ErrUnknownService) {
			t.Errorf("Active(tomcat) = %v, want ErrUnknownService", err)
		}
	})
}

func TestServicesFile(t *testing.T) {
	ctx := context.Background()
	write := func(t *testing.T, r *rig, json string) string {
		t.Helper()
		p := filepath.Join(r.dir, "services.json")
		if err := os.WriteFile(p, []byte(json), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("an entry overrides systemd for what it gives; systemd does the rest", func(t *testing.T) {
		r := newRig(t)
		r.fakeSystemctl()
		r.fake("my-nginx", "exit 0")
		r.write("nginx.active", "")
		f := write(t, r, `{"nginx": {"test": ["my-nginx", "-t", "-c", "/srv/n.conf"]}}`)
		m := r.manager(Options{SystemdDir: r.systemd, ServicesFile: f})
		if err := m.ConfigTest(ctx, "nginx"); err != nil {
			t.Fatal(err)
		}
		if err := m.Reload(ctx, "nginx"); err != nil {
			t.Fatal(err)
		}
		equal(t, "calls", r.log(), []string{"my-nginx -t -c /srv/n.conf", "systemctl is-active --quiet nginx", "systemctl show -p MainPID nginx", "systemctl reload nginx"})
	})
	t.Run("pid file, {pid} and start", func(t *testing.T) {
		r := newRig(t)
		r.fake("haproxy", "exit 0")
		master := sleeper(t)
		pidFile := filepath.Join(r.dir, "haproxy.pid")
		f := write(t, r, fmt.Sprintf(`{"haproxy": {"test": ["haproxy", "-c", "-f", "/srv/h.cfg"],
			"reload": ["haproxy", "-f", "/srv/h.cfg", "-p", %[1]q, "-D", "-sf", "{pid}"],
			"start": ["haproxy", "-f", "/srv/h.cfg", "-p", %[1]q, "-D"], "pidFile": %[1]q}}`, pidFile))
		m := r.manager(Options{ServicesFile: f, Settle: 50 * time.Millisecond})
		if err := m.Reload(ctx, "haproxy"); !errors.Is(err, ErrNotRunning) {
			t.Fatalf("Reload without a live pid = %v", err)
		}
		r.write("haproxy.pid", strconv.Itoa(master.Process.Pid))
		if err := m.Reload(ctx, "haproxy"); err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx, "haproxy"); err != nil {
			t.Fatal(err)
		}
		equal(t, "calls", r.log(), []string{
			fmt.Sprintf("haproxy -f /srv/h.cfg -p %s -D -sf %d", pidFile, master.Process.Pid),
			fmt.Sprintf("haproxy -f /srv/h.cfg -p %s -D", pidFile),
		})
	})
	t.Run("reloadSignal is sent to the pid file's process", func(t *testing.T) {
		// A run started under nohup ignores SIGHUP, and an ignored signal
		// stays ignored across exec: catching it here makes the sleeper
		// start with the default action (exec resets caught signals).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		r := newRig(t)
		master := sleeper(t)
		pidFile := filepath.Join(r.dir, "svc.pid")
		r.write("svc.pid", strconv.Itoa(master.Process.Pid))
		f := write(t, r, fmt.Sprintf(`{"custom": {"pidFile": %q, "reloadSignal": "HUP"}}`, pidFile))
		m := r.manager(Options{ServicesFile: f})
		if err := m.Reload(ctx, "custom"); err != nil {
			t.Fatal(err)
		}
		// sleep dies of SIGHUP: proof the signal went to that pid.
		err := master.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGHUP {
			t.Fatalf("process ended with %v, want SIGHUP", err)
		}
	})
	t.Run("reload waits for the new generation: Apache rewrites its pid file", func(t *testing.T) {
		r := newRig(t)
		master := sleeper(t)
		pidFile := filepath.Join(r.dir, "httpd.pid")
		r.write("httpd.pid", strconv.Itoa(master.Process.Pid))
		// The graceful restart succeeds a moment later and rewrites the pid file.
		r.fake("apache2", fmt.Sprintf(`(sleep 0.3; echo %d > "$STATE/httpd.pid") &`, master.Process.Pid))
		f := write(t, r, fmt.Sprintf(`{"apache2": {"reload": ["apache2", "-k", "graceful"], "pidFile": %q}}`, pidFile))
		// Settle is an hour: only seeing the new generation lets Reload return
		// before the context's deadline.
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := r.manager(Options{ServicesFile: f, Settle: time.Hour}).Reload(ctx, "apache2"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("start removes the pid file of a dead (zombie) master first", func(t *testing.T) {
		r := newRig(t)
		master := sleeper(t)
		_ = master.Process.Signal(syscall.SIGKILL)
		for i := 0; i < 200 && alive(master.Process.Pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		pidFile := filepath.Join(r.dir, "httpd.pid")
		r.write("httpd.pid", strconv.Itoa(master.Process.Pid))
		// Like apachectl -k start: "already running" while the pid file names
		// a process; otherwise a new master writes its pid.
		fresh := sleeper(t)
		r.fake("apache2", fmt.Sprintf(`if [ -e "$STATE/httpd.pid" ]; then echo "httpd (pid $(cat "$STATE/httpd.pid")) already running"; exit 0; fi; echo %d > "$STATE/httpd.pid"`, fresh.Process.Pid))
		f := write(t, r, fmt.Sprintf(`{"apache2": {"start": ["apache2", "-k", "start"], "pidFile": %q}}`, pidFile))
		m := r.manager(Options{ServicesFile: f})
		if err := m.Start(ctx, "apache2"); err != nil {
			t.Fatal(err)
		}
		if got := (pidSource{file: pidFile}).pid(); got != fresh.Process.Pid {
			t.Fatalf("pid file names %d, want the new master %d (the stale file was not removed)", got, fresh.Process.Pid)
		}
		equal(t, "calls", r.log(), []string{"apache2 -k start"})
	})
	t.Run("a start after which the service does not run fails", func(t *testing.T) {
		r := newRig(t)
		r.fake("nginx", "exit 0")
		f := write(t, r, fmt.Sprintf(`{"nginx": {"start": ["nginx"], "pidFile": %q}}`, filepath.Join(r.dir, "nginx.pid")))
		err := r.manager(Options{ServicesFile: f, Settle: 100 * time.Millisecond}).Start(ctx, "nginx")
		if err == nil || !strings.Contains(err.Error(), "the start command succeeded but the service is not running") {
			t.Fatalf("Start = %v", err)
		}
	})
	t.Run("start keeps the pid file of a live master", func(t *testing.T) {
		r := newRig(t)
		master := sleeper(t)
		pidFile := filepath.Join(r.dir, "httpd.pid")
		r.write("httpd.pid", strconv.Itoa(master.Process.Pid))
		r.fake("apache2", "exit 0")
		f := write(t, r, fmt.Sprintf(`{"apache2": {"start": ["apache2", "-k", "start"], "pidFile": %q}}`, pidFile))
		if err := r.manager(Options{ServicesFile: f}).Start(ctx, "apache2"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(pidFile); err != nil {
			t.Fatalf("live master's pid file removed: %v", err)
		}
	})
	t.Run("status argv", func(t *testing.T) {
		r := newRig(t)
		r.fake("check", `exit 3`)
		f := write(t, r, `{"custom": {"status": ["check"], "reload": ["check"]}}`)
		m := r.manager(Options{ServicesFile: f})
		if up, err := m.Active(ctx, "custom"); err != nil || up {
			t.Fatalf("Active = %v, %v", up, err)
		}
	})
	t.Run("a command that leaves a daemon holding its output returns", func(t *testing.T) {
		r := newRig(t)
		r.fake("daemon", `sleep 30 & echo $! > "$STATE/daemon.pid"; echo started; exit 0`)
		t.Cleanup(func() {
			if raw, err := os.ReadFile(filepath.Join(r.dir, "daemon.pid")); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
		r.fake("up", "exit 0")
		f := write(t, r, `{"custom": {"start": ["daemon"], "status": ["up"]}}`)
		m := r.manager(Options{ServicesFile: f})
		if err := m.Start(ctx, "custom"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a command that hangs is cut at the timeout", func(t *testing.T) {
		r := newRig(t)
		r.fake("hang", `exec sleep 30`)
		f := write(t, r, `{"custom": {"test": ["hang"]}}`)
		m := r.manager(Options{ServicesFile: f, CommandTimeout: 200 * time.Millisecond})
		err := m.ConfigTest(ctx, "custom")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ConfigTest = %v, want a deadline error", err)
		}
	})
	t.Run("commands get no AWS credentials and no SSM parameters", func(t *testing.T) {
		r := newRig(t)
		r.fake("dumpenv", `env > "$STATE/env"`)
		f := write(t, r, `{"custom": {"test": ["dumpenv"]}}`)
		env := []string{"LANG=C", "AWS_ACCESS_KEY_ID=AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_SESSION_TOKEN=tok", "SSM_SecretId=certferry/x", "PATH=/nowhere"}
		if err := r.manager(Options{ServicesFile: f, Env: env}).ConfigTest(ctx, "custom"); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(filepath.Join(r.dir, "env"))
		got := string(raw)
		if strings.Contains(got, "AKIAEXAMPLE") || strings.Contains(got, "=secret") || strings.Contains(got, "=tok") || strings.Contains(got, "SSM_SecretId") || !strings.Contains(got, "LANG=C") {
			t.Fatalf("command environment:\n%s", got)
		}
	})
	t.Run("arguments never go through a shell", func(t *testing.T) {
		r := newRig(t)
		r.fake("echoargs", `for a in "$@"; do echo "[$a]" >> "$STATE/args"; done`)
		f := write(t, r, `{"custom": {"test": ["echoargs", "$(touch pwned)", "a b;c", "*"]}}`)
		m := r.manager(Options{ServicesFile: f})
		if err := m.ConfigTest(ctx, "custom"); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(filepath.Join(r.dir, "args"))
		if got := string(raw); got != "[$(touch pwned)]\n[a b;c]\n[*]\n" {
			t.Errorf("arguments arrived as %q", got)
		}
	})
	bad := []struct{ name, json, want string }{
		{"not JSON", `{`, "parse services file"},
		{"unknown field", `{"nginx": {"tset": ["nginx"]}}`, `unknown field "tset"`},
		{"bad service name", `{"../x": {}}`, "invalid service name"},
		{"relative command", `{"nginx": {"test": ["bin/nginx", "-t"]}}`, "nginx.test: \"bin/nginx\": command must be an absolute path or a bare name"},
		{"empty argv", `{"nginx": {"reload": []}}`, "nginx.reload: empty command"},
		{"relative pid file", `{"nginx": {"pidFile": "run/nginx.pid"}}`, "nginx.pidFile: must be an absolute path"},
		{"signal", `{"nginx": {"pidFile": "/run/n.pid", "reloadSignal": "KILL"}}`, `"KILL" is not HUP, USR1 or USR2`},
		{"signal without pid file", `{"nginx": {"reloadSignal": "HUP"}}`, "needs pidFile"},
	}
	for _, c := range bad {
		t.Run("refused: "+c.name, func(t *testing.T) {
			r := newRig(t)
			f := write(t, r, c.json)
			_, err := Open(Options{ServicesFile: f, Path: r.bin})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v, want %q", err, c.want)
			}
			// New defers the error to every call.
			m := New(Options{ServicesFile: f, Path: r.bin})
			if err := m.Reload(ctx, "nginx"); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Reload through New = %v", err)
			}
		})
	}
	t.Run("refused: writable by others", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Fatal("this check applies to root, which runs the installer; run the tests as root (CI does)")
		}
		r := newRig(t)
		f := write(t, r, `{}`)
		if err := os.Chmod(f, 0o666); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(Options{ServicesFile: f}); err == nil || !strings.Contains(err.Error(), "not writable by group or others") {
			t.Fatalf("Open = %v", err)
		}
	})
	t.Run("bad names are refused before anything runs", func(t *testing.T) {
		r := newRig(t)
		r.fakeSystemctl()
		m := r.manager(Options{SystemdDir: r.systemd})
		for _, name := range []string{"", "-h", "a/b", "a..b", "nginx;id", strings.Repeat("a", 65)} {
			if err := m.Reload(ctx, name); !errors.Is(err, ErrBadName) {
				t.Errorf("Reload(%q) = %v, want ErrBadName", name, err)
			}
		}
		if len(r.log()) != 0 {
			t.Errorf("commands ran: %q", r.log())
		}
	})
}

func TestSanitize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a\n\tb\x1b[31m", "a b [31m"},
		{strings.Repeat("x", 300), strings.Repeat("x", 200) + "…"},
		{"  ok  ", "ok"},
	} {
		if got := sanitize(c.in, 200); got != c.want {
			t.Errorf("sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
