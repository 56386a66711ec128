package nodeinstall

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/document"
)

// Budget is the installer's total time: lock wait, fetch, install, reload,
// verification and rollback. The document's install step allows 300 s, so
// a run always ends (and prints its result) with 60 s to spare.
const Budget = 240 * time.Second

// rollbackReserve is the part of Budget kept for a rollback after the work
// (lock wait, verification) has used up its share.
const rollbackReserve = 45 * time.Second

// defaultVerifyBudget bounds one verification loop.
const defaultVerifyBudget = 120 * time.Second

// lockWait bounds the wait for another run of the same name.
const lockWait = 90 * time.Second

// Statuses of the result line, as the node output contract spells them
// (internal/document owns them).
const (
	StatusInstalled  = string(document.StatusInstalled)
	StatusUnchanged  = string(document.StatusUnchanged)
	StatusRolledBack = string(document.StatusRolledBack)
	StatusFailed     = string(document.StatusFailed)
	StatusSuperseded = string(document.StatusSuperseded)
)

// ResultPrefix starts the last output line.
const ResultPrefix = document.ResultPrefix

// maxOutput bounds stdout (ListCommandInvocations keeps 2,500 characters).
const maxOutput = 2000

// Result is the CERTFERRY_RESULT line: the fields the tracker reads by name
// (status, fingerprint, serial, reload, verify, detail) plus format.
type Result struct {
	Status      string `json:"status"`
	Fingerprint string `json:"fingerprint"`
	Serial      string `json:"serial"`
	Format      string `json:"format"`
	Reload      string `json:"reload"`
	Verify      string `json:"verify"`
	Detail      string `json:"detail"`
}

// ExitCode is the process exit code for r: 0 installed/unchanged/superseded,
// 2 rolled_back, 1 failed (nothing changed). A superseded run exits 0: it
// did what a command overtaken by a newer one must do (nothing), so SSM
// reports the step Success and the command's MaxErrors, the Run Command
// console and any alarm on failed invocations do not count it as an
// error; the result line's status tells the tracker it installed nothing.
func (r Result) ExitCode() int {
	switch r.Status {
	case StatusInstalled, StatusUnchanged, StatusSuperseded:
		return 0
	case StatusRolledBack:
		return 2
	}
	return 1
}

// Line renders r as the last output line.
func (r Result) Line() string {
	// Every field is bounded: format may echo an SSM_Format that failed
	// validation.
	r.Status, r.Format = sanitize(r.Status, 12), sanitize(r.Format, 12)
	r.Reload, r.Verify = sanitize(r.Reload, 12), sanitize(r.Verify, 12)
	r.Fingerprint, r.Serial = sanitize(r.Fingerprint, 95), sanitize(r.Serial, 64)
	r.Detail = sanitize(r.Detail, 400)
	b, _ := json.Marshal(r) // strings only: cannot fail
	return ResultPrefix + string(b)
}

// ServiceManager tests, reloads and checks the service that uses the files
// (implemented by internal/nodeinstall/service).
type ServiceManager interface {
	ConfigTest(ctx context.Context, name string) error
	Active(ctx context.Context, name string) (bool, error)
	Reload(ctx context.Context, name string) error
	Start(ctx context.Context, name string) error
}

// VerifyTarget is where verification shakes hands.
type VerifyTarget struct {
	Address    string
	Port       int
	ServerName string
	StartTLS   string
}

// Prober does one TLS handshake and returns the leaf served
// (internal/nodeinstall/probe.Served behind an adapter).
type Prober func(ctx context.Context, t VerifyTarget) (*x509.Certificate, error)

// CertStore is the Windows certificate store and IIS binding
// (implemented by internal/nodeinstall/winstore.PowerShell).
type CertStore interface {
	Import(ctx context.Context, store string, pfx []byte, password string) (thumbprint string, err error)
	Has(ctx context.Context, store, thumbprint string) (bool, error)
	Remove(ctx context.Context, store, thumbprint string) error
	Binding(ctx context.Context, site string) (thumbprint string, store string, err error)
	Bind(ctx context.Context, site, store, thumbprint string) error
}

// Engine runs one install. Platform "windows" runs the store flow,
// anything else the file flow.
type Engine struct {
	Secrets  SecretsAPI
	Services ServiceManager // needed when ReloadService is given
	Probe    Prober         // needed when VerifyPort is not 0
	Store    CertStore      // Windows only
	StateDir string
	Windows  bool
	Out      io.Writer // progress lines; nil discards
	Now      func() time.Time

	// VerifyInterval is the pause between handshakes (default 500 ms);
	// VerifyStreak the matching handshakes in a row required (default 3:
	// a reload drains old workers gradually).
	VerifyInterval time.Duration
	VerifyStreak   int
	// VerifyBudget bounds a verification (default 120 s; the run's budget
	// bounds it further). FirstLook bounds the first check of an
	// "unchanged" run before it reloads (default 20 s).
	VerifyBudget time.Duration
	FirstLook    time.Duration

	// hook, when set (tests only, in-process), is called at each step of
	// the install and rollback, so a test can stop or kill the run there.
	hook func(step string)
	// saveFault, when set (tests only, in-process), fails the journal
	// save of a phase, as a full state filesystem would.
	saveFault func(phase string) error
	written   int
}

// save writes j durably (see stateDir.save).
func (e *Engine) save(j *journal) error {
	if e.saveFault != nil {
		if err := e.saveFault(j.Phase); err != nil {
			return fmt.Errorf("write journal of %s: %w", j.Name, err)
		}
	}
	return e.state().save(j)
}

func (e *Engine) at(step string) {
	if e.hook != nil {
		e.hook(step)
	}
}

func (e *Engine) state() stateDir { return stateDir(e.StateDir) }

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// resultRoom is the most a result line takes (every field at its bound,
// with the newline): 715 characters.
const resultRoom = 720

// say prints a progress line, keeping stdout within maxOutput with room
// for the result line.
func (e *Engine) say(format string, args ...any) {
	if e.Out == nil {
		return
	}
	line := "certferry-node: " + sanitize(fmt.Sprintf(format, args...), 200) + "\n"
	if e.written+len(line) >= maxOutput-resultRoom {
		return
	}
	e.written += len(line)
	_, _ = io.WriteString(e.Out, line)
}

// Run installs per p within Budget and returns the result; main prints
// Line() last and exits with ExitCode().
func (e *Engine) Run(ctx context.Context, p Params) (res Result) {
	start := e.now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(Budget))
	defer cancel()
	r := Result{Status: StatusFailed, Format: p.Format, Reload: "skipped", Verify: "skipped"}
	if e.Windows {
		r.Format = "windows"
	}
	if err := p.validate(); err != nil {
		r.Detail = err.Error()
		return r
	}
	defer func() {
		// A bug must still end with a result line and a consistent node:
		// roll back whatever the journal says was started.
		if v := recover(); v != nil {
			res = r
			res.Detail = fmt.Sprintf("internal error: %v", v)
			if j, err := e.state().load(p.CertName); err == nil && j != nil {
				var rerr error
				if e.Windows {
					_, rerr = e.recoverWindows(ctx, j)
				} else {
					_, rerr = e.recoverFiles(ctx, j)
				}
				res.Status = StatusRolledBack
				if rerr != nil {
					res.Detail += "; ROLLBACK FAILED: " + rerr.Error()
				} else {
					res.Detail += "; rolled back"
				}
			}
		}
	}()
	if e.Windows {
		return e.runWindows(ctx, p, r)
	}
	return e.runFiles(ctx, p, r)
}

// workContext leaves rollbackReserve of the budget for a rollback.
func workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl.Add(-rollbackReserve))
	}
	return context.WithCancel(ctx)
}

// acquire takes the name's lock within lockWait and the work budget.
func (e *Engine) acquire(ctx context.Context, name string) (*lockFile, error) {
	if !filepath.IsAbs(e.StateDir) {
		// The file flow walks every directory from / and the check that
		// targets lie outside the state directory compares absolute paths.
		return nil, fmt.Errorf("state directory %s is not an absolute path", sanitize(e.StateDir, 200))
	}
	if err := e.state().ensure(); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	l, err := lock(lctx, e.state().lockPath(name))
	if err != nil {
		return nil, err
	}
	return l, nil
}

// verify shakes hands until the node serves fp VerifyStreak times in a row
// or ctx ends; it returns what was served last.
func (e *Engine) verify(ctx context.Context, t VerifyTarget, fp string) (bool, string) {
	streak, want := 0, e.VerifyStreak
	if want <= 0 {
		want = 3
	}
	interval := e.VerifyInterval
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	budget := e.VerifyBudget
	if budget <= 0 {
		budget = defaultVerifyBudget
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	last := "nothing"
	for {
		hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cert, err := e.Probe(hctx, t)
		cancel()
		switch {
		case err != nil:
			streak, last = 0, "nothing ("+shortErr(err)+")"
		case Fingerprint(cert.Raw) == fp:
			streak, last = streak+1, fp
		default:
			streak, last = 0, Fingerprint(cert.Raw)
		}
		if streak >= want {
			return true, last
		}
		select {
		case <-ctx.Done():
			return false, last
		case <-time.After(interval):
		}
	}
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && len(s)-i < 80 {
		s = s[i+2:]
	}
	return sanitize(s, 80)
}

func (e *Engine) verifyTarget(p Params, m *material) VerifyTarget {
	sn := p.ServerName
	if sn == "" {
		sn = serverNameFor(m.leaf)
	}
	return VerifyTarget{Address: p.VerifyAddress, Port: p.VerifyPort, ServerName: sn, StartTLS: p.StartTLS}
}

// refused is the result of a run whose bundle check failed, nothing
// written: superseded when a newer deployment replaced the command's
// certificate (detail "superseded: ..."), else failed.
func refused(r Result, err error, note func(string) string) Result {
	if errors.Is(err, errSuperseded) {
		r.Status, r.Detail = StatusSuperseded, note(err.Error())
		return r
	}
	r.Detail = note("bundle refused, nothing written: " + err.Error())
	return r
}

// serverNameFor is the SNI name the verification sends when the command
// names none: the leaf's first DNS name ("www" for a wildcard), as the
// pipeline picks it, else localhost.
func serverNameFor(leaf *x509.Certificate) string {
	for _, d := range leaf.DNSNames {
		if strings.HasPrefix(d, "*.") {
			d = "www" + d[1:]
		}
		if hostPattern.MatchString(d) && d != "" {
			return d
		}
	}
	return "localhost"
}
