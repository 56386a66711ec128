package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Entry is one service in the services file. Every field is optional; what
// an entry leaves out is done the way the machine would do it without the
// file (systemd, or the server's own commands).
//
//	{"nginx": {"test": ["/usr/sbin/nginx", "-t", "-c", "/srv/nginx.conf"],
//	           "reload": ["/usr/sbin/nginx", "-s", "reload", "-c", "/srv/nginx.conf"],
//	           "start": ["/usr/sbin/nginx", "-c", "/srv/nginx.conf"],
//	           "pidFile": "/run/nginx-srv.pid"},
//	 "haproxy": {"reloadSignal": "USR2", "pidFile": "/run/haproxy.pid", ...}}
//
// In an argv, an element that is exactly "{pid}" becomes the pid read from
// pidFile (HAProxy's `-sf {pid}` re-exec pattern).
type Entry struct {
	Test   []string `json:"test,omitempty"`
	Reload []string `json:"reload,omitempty"`
	Start  []string `json:"start,omitempty"`
	// Status: exit 0 means running; used when there is no pid file.
	Status []string `json:"status,omitempty"`
	// PidFile holds the main (master) process id: the service runs when that
	// process is alive (and not a zombie).
	PidFile string `json:"pidFile,omitempty"`
	// ReloadSignal (HUP, USR1, USR2) is sent to the pid file's process when
	// Reload is not given.
	ReloadSignal string `json:"reloadSignal,omitempty"`
}

// reloadSignals are the signals a services file may name.
var reloadSignals = map[string]bool{"HUP": true, "USR1": true, "USR2": true}

// LoadFile reads and checks a services file. It must be a regular file, not
// writable by group or others when owned by root, and every argv must start
// with an absolute path or a bare command name.
func LoadFile(path string) (map[string]Entry, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read services file %s: %w", path, err)
	}
	if len(raw) > 1<<20 {
		return nil, fmt.Errorf("read services file %s: larger than 1 MiB", path)
	}
	if err := checkFilePerm(path); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var entries map[string]Entry
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("parse services file %s: %w", path, err)
	}
	var errs []error
	for name, e := range entries {
		if err := checkName(name); err != nil {
			errs = append(errs, err)
			continue
		}
		for field, argv := range map[string][]string{"test": e.Test, "reload": e.Reload, "start": e.Start, "status": e.Status} {
			if argv == nil {
				continue
			}
			if err := checkArgv(argv); err != nil {
				errs = append(errs, fmt.Errorf("%s.%s: %w", name, field, err))
			}
		}
		if e.PidFile != "" && !filepath.IsAbs(e.PidFile) {
			errs = append(errs, fmt.Errorf("%s.pidFile: must be an absolute path", name))
		}
		if e.ReloadSignal != "" {
			if !reloadSignals[strings.TrimPrefix(e.ReloadSignal, "SIG")] {
				errs = append(errs, fmt.Errorf("%s.reloadSignal: %q is not HUP, USR1 or USR2", name, sanitize(e.ReloadSignal, 20)))
			}
			if e.PidFile == "" {
				errs = append(errs, fmt.Errorf("%s.reloadSignal: needs pidFile", name))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("services file %s: %w", path, err)
	}
	return entries, nil
}

func checkArgv(argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return errors.New("empty command")
	}
	if !filepath.IsAbs(argv[0]) && strings.ContainsAny(argv[0], `/\`) {
		return fmt.Errorf("%q: command must be an absolute path or a bare name", sanitize(argv[0], 80))
	}
	for _, a := range argv {
		if strings.ContainsRune(a, 0) {
			return errors.New("NUL in argument")
		}
	}
	return nil
}

// fileBackend is a services file entry, falling back to next for what the
// entry leaves out.
type fileBackend struct {
	name string
	e    Entry
	run  *runner
	next backend
}

func (f *fileBackend) argv(argv []string) ([]string, error) {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "{pid}" {
			out[i] = a
			continue
		}
		pid := pidSource{file: f.e.PidFile}.pid()
		if pid <= 0 {
			return nil, fmt.Errorf("{pid}: no pid in %s", f.e.PidFile)
		}
		out[i] = fmt.Sprint(pid)
	}
	return out, nil
}

func (f *fileBackend) do(ctx context.Context, argv []string) error {
	a, err := f.argv(argv)
	if err != nil {
		return err
	}
	_, err = f.run.run(ctx, a)
	return err
}

func (f *fileBackend) configTest(ctx context.Context, name string) error {
	if f.e.Test != nil {
		return f.do(ctx, f.e.Test)
	}
	return f.next.configTest(ctx, name)
}

func (f *fileBackend) active(ctx context.Context, name string) (bool, error) {
	switch {
	case f.e.PidFile != "":
		pid := pidSource{file: f.e.PidFile}.pid()
		return pid > 0 && alive(pid), nil
	case f.e.Status != nil:
		code, err := f.run.exitCode(ctx, f.e.Status)
		return code == 0, err
	}
	return f.next.active(ctx, name)
}

func (f *fileBackend) mainPID(ctx context.Context, name string) (pidSource, error) {
	if f.e.PidFile != "" {
		return pidSource{file: f.e.PidFile}, nil
	}
	if f.e.Status != nil {
		return pidSource{}, nil
	}
	return f.next.mainPID(ctx, name)
}

func (f *fileBackend) reload(ctx context.Context, name string) error {
	switch {
	case f.e.Reload != nil:
		return f.do(ctx, f.e.Reload)
	case f.e.ReloadSignal != "":
		return signalPID(pidSource{file: f.e.PidFile}.pid(), strings.TrimPrefix(f.e.ReloadSignal, "SIG"))
	}
	return f.next.reload(ctx, name)
}

func (f *fileBackend) start(ctx context.Context, name string) error {
	if f.e.Start != nil {
		return f.do(ctx, f.e.Start)
	}
	return f.next.start(ctx, name)
}
