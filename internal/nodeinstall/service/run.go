package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
)

// runner executes argv lists without a shell.
type runner struct {
	env     []string
	path    []string
	timeout time.Duration
}

// sbinDirs hold the servers' commands on Linux; SSM Agent's PATH may lack them.
var sbinDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// privateEnv: variable prefixes the servers' commands never get (AWS
// credentials the SDK may read from the environment, the command's SSM_*
// parameters).
var privateEnv = []string{"AWS_", "SSM_"}

func newRunner(opts Options) *runner {
	env := slices.DeleteFunc(slices.Clone(opts.Env), func(kv string) bool {
		for _, p := range privateEnv {
			if strings.HasPrefix(kv, p) {
				return true
			}
		}
		return false
	})
	path := opts.Path
	if path == "" {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		path = strings.Join(append(filepath.SplitList(path), sbinDirs...), string(os.PathListSeparator))
	}
	return &runner{env: env, path: filepath.SplitList(path), timeout: opts.CommandTimeout}
}

// lookPath finds an executable by name in the runner's path (or checks an
// absolute one).
func (r *runner) lookPath(name string) (string, error) {
	if filepath.IsAbs(name) {
		if isExec(name) {
			return name, nil
		}
		return "", fmt.Errorf("%s: not an executable file", name)
	}
	if strings.ContainsRune(name, os.PathSeparator) || strings.ContainsRune(name, '/') {
		return "", fmt.Errorf("%s: command must be a bare name or an absolute path", name)
	}
	for _, dir := range r.path {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // never resolve against the working directory
		}
		p := filepath.Join(dir, name)
		if isExec(p) {
			return p, nil
		}
		if p += ".exe"; isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: command not found (looked in %s)", name, strings.Join(r.path, string(os.PathListSeparator)))
}

// has reports whether name resolves.
func (r *runner) has(name string) bool {
	_, err := r.lookPath(name)
	return err == nil
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// exitError is a command that ran and exited non-zero.
type exitError struct {
	argv    []string
	code    int
	summary string
}

func (e *exitError) Error() string {
	s := fmt.Sprintf("%s exited with status %d", strings.Join(e.argv, " "), e.code)
	if e.summary != "" {
		s += ": " + e.summary
	}
	return s
}

// run executes argv and returns its combined output. A non-zero exit is an
// *exitError carrying a summary of the output.
func (r *runner) run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	bin, err := r.lookPath(argv[0])
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, argv[1:]...)
	cmd.Env = withPath(r.env, strings.Join(r.path, string(os.PathListSeparator)))
	cmd.Dir = "/"
	if _, err := os.Stat(cmd.Dir); err != nil {
		cmd.Dir = ""
	}
	var out bytes.Buffer
	cmd.Stdout = &limited{buf: &out, max: 64 << 10}
	cmd.Stderr = cmd.Stdout
	// A daemon started by the command may keep its output open; do not wait
	// for it longer than this once the command itself has exited.
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		err = nil
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ctx.Err() == nil {
			return out.Bytes(), &exitError{argv: shortArgv(argv), code: ee.ExitCode(), summary: sanitize(out.String(), 200)}
		}
		if ctx.Err() != nil {
			return out.Bytes(), fmt.Errorf("%s: %w (output: %s)", strings.Join(shortArgv(argv), " "), ctx.Err(), sanitize(out.String(), 200))
		}
		return out.Bytes(), fmt.Errorf("run %s: %w", strings.Join(shortArgv(argv), " "), err)
	}
	return out.Bytes(), nil
}

// exitCode returns the exit status of a command that ran, or -1 with the
// error when it could not run.
func (r *runner) exitCode(ctx context.Context, argv []string) (int, error) {
	_, err := r.run(ctx, argv)
	var ee *exitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.code, nil
	}
	return -1, err
}

func withPath(env []string, path string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PATH=") {
			out = append(out, kv)
		}
	}
	return append(out, "PATH="+path)
}

func shortArgv(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = sanitize(a, 120)
	}
	return out
}

// limited keeps at most max bytes.
type limited struct {
	buf *bytes.Buffer
	max int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// sanitize makes text safe for a one-line error: control characters become
// spaces, runs of space collapse, and it is cut at max runes.
func sanitize(s string, max int) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range strings.TrimSpace(s) {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			if !space {
				b.WriteByte(' ')
				space = true
			}
			continue
		}
		space = false
		if n == max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
