//go:build unix

package nodeinstall

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// defaultFirstLook bounds the first check of an "unchanged" run before it
// reloads the service to make it serve the files.
const defaultFirstLook = 20 * time.Second

// runFiles is the Linux flow: lock, recover, fetch and check, write the
// set, config test, reload, check the service, verify; roll back on any
// failure after writing.
func (e *Engine) runFiles(ctx context.Context, p Params, r Result) Result {
	work, cancel := workContext(ctx)
	defer cancel()
	if err := p.linuxTargets(); err != nil {
		r.Detail = err.Error()
		return r
	}
	if p.ReloadService != "" && e.Services == nil {
		r.Detail = "no service manager to reload " + p.ReloadService
		return r
	}
	if p.VerifyPort != 0 && e.Probe == nil {
		r.Detail = "no prober to verify port " + fmt.Sprint(p.VerifyPort)
		return r
	}
	l, err := e.acquire(work, p.CertName)
	if err != nil {
		r.Detail = err.Error()
		return r
	}
	defer l.unlock()
	e.say("locked %s", p.CertName)
	var notes []string
	note := func(d string) string {
		return strings.Join(append(notes, d), "; ")
	}
	if j, err := e.state().load(p.CertName); err != nil {
		r.Detail = err.Error()
		return r
	} else if j != nil {
		n, err := e.recoverFiles(ctx, j)
		if err != nil {
			r.Detail = "recovering an interrupted run failed: " + err.Error()
			return r
		}
		e.say("%s", n)
		notes = append(notes, n)
	}

	b, err := fetchBundle(work, e.Secrets, p.SecretID)
	if err != nil {
		r.Detail = note(err.Error())
		return r
	}
	m, err := checkBundle(b, p.ExpectedFingerprint, e.now())
	if err != nil {
		if errors.Is(err, errSuperseded) {
			e.say("superseded: nothing to do")
		}
		return refused(r, err, note)
	}
	r.Fingerprint, r.Serial = m.fingerprint, m.serial
	var storePass string
	if p.Format == FormatPKCS12 || p.Format == FormatJKS {
		if storePass, err = fetchKeystorePassword(work, e.Secrets, p.SecretID); err != nil {
			r.Detail = note(err.Error())
			return r
		}
	}
	e.say("bundle %s serial %s checked", m.fingerprint, m.serial)
	ts, err := render(p, m, storePass)
	if err != nil {
		r.Detail = note(err.Error())
		return r
	}
	ps, err := plan(p, ts, e.StateDir)
	if err != nil {
		r.Detail = note(err.Error())
		return r
	}
	vt := e.verifyTarget(p, m)

	if unchanged(ps) {
		e.say("files already hold %s", m.fingerprint)
		return e.runUnchanged(work, p, m, vt, r, note)
	}

	j, err := e.installSet(ctx, p.CertName, m.fingerprint, p.ReloadService, ps)
	if err != nil {
		if j != nil && j.Restore {
			r.Status = StatusRolledBack
		}
		r.Detail = note(err.Error())
		return r
	}
	e.say("wrote %d file(s) as %s", len(ps), p.Format)
	return e.activate(ctx, work, p, j, vt, m, r, note)
}

// activate tests, reloads, checks and verifies the freshly written set,
// rolling it back on any failure.
func (e *Engine) activate(ctx, work context.Context, p Params, j *journal, vt VerifyTarget, m *material, r Result, note func(string) string) Result {
	sd := e.state()
	rollback := func(reason string) Result {
		e.say("rolling back: %s", reason)
		r.Status = StatusRolledBack
		if err := e.rollbackFiles(ctx, j); errors.Is(err, errServiceRestore) {
			r.Detail = note(reason + "; rolled back; " + err.Error())
			return r
		} else if err != nil {
			r.Detail = note(reason + "; ROLLBACK FAILED: " + err.Error())
			return r
		}
		r.Detail = note(reason + "; rolled back")
		return r
	}
	svc := p.ReloadService
	if svc != "" {
		if err := e.Services.ConfigTest(work, svc); err != nil {
			return rollback(fmt.Sprintf("%s configuration test failed: %v", svc, err))
		}
		active, err := e.Services.Active(work, svc)
		if err != nil {
			return rollback(fmt.Sprintf("cannot tell whether %s runs: %v", svc, err))
		}
		j.WasActive = active
		if active {
			j.ReloadStarted = true
			if err := e.save(j); err != nil {
				return rollback(err.Error())
			}
			e.at("reloading")
			if err := e.Services.Reload(work, svc); err != nil {
				r.Reload = "failed"
				return rollback(fmt.Sprintf("reload of %s failed: %v", svc, err))
			}
			r.Reload = "done"
			j.Phase = phaseReloaded
			if err := e.save(j); err != nil {
				return rollback(err.Error())
			}
			e.at("reloaded")
			alive, err := e.Services.Active(work, svc)
			if err != nil || !alive {
				return rollback(fmt.Sprintf("%s stopped after the reload", svc))
			}
			e.say("reloaded %s", svc)
		} else {
			r.Reload = "skipped"
			e.say("%s is not running: not reloaded, not verified", svc)
		}
	}
	if p.VerifyPort != 0 && (svc == "" || j.WasActive) {
		e.at("verifying")
		ok, served := e.verify(work, vt, m.fingerprint)
		if !ok {
			r.Verify = "mismatch"
			return rollback(fmt.Sprintf("%s port %d serves %s for %s, not %s", vt.Address, vt.Port, served, vt.ServerName, m.fingerprint))
		}
		r.Verify = "ok"
		e.say("%s port %d serves %s", vt.Address, vt.Port, m.fingerprint)
	}
	j.Phase = phaseVerified
	if err := e.save(j); err != nil {
		return rollback(err.Error())
	}
	e.at("verified")
	r.Status = StatusInstalled
	r.Detail = note("installed " + p.CertName)
	if svc != "" && !j.WasActive {
		r.Detail = note(fmt.Sprintf("installed %s; %s is not running, so it was not reloaded or verified", p.CertName, svc))
	}
	if err := sd.remove(j.Name); err != nil {
		r.Detail += "; " + err.Error()
	}
	if err := sd.prune(j.Name, j.Generation); err != nil {
		r.Detail += "; " + err.Error()
	}
	return r
}

// runUnchanged: the files already hold the bundle. The node must still
// serve it; if it does not, reload and verify again (nothing to roll back:
// the files stay as they are).
func (e *Engine) runUnchanged(work context.Context, p Params, m *material, vt VerifyTarget, r Result, note func(string) string) Result {
	r.Status, r.Detail = StatusUnchanged, note("already installed")
	svc := p.ReloadService
	if p.VerifyPort == 0 {
		return r
	}
	if svc != "" {
		active, err := e.Services.Active(work, svc)
		if err != nil {
			r.Status, r.Detail = StatusFailed, note(fmt.Sprintf("already installed; cannot tell whether %s runs: %v", svc, err))
			return r
		}
		if !active {
			r.Detail = note(fmt.Sprintf("already installed; %s is not running, so it was not verified", svc))
			return r
		}
	}
	first := e.FirstLook
	if first <= 0 {
		first = defaultFirstLook
	}
	look, cancel := context.WithTimeout(work, first)
	ok, served := e.verify(look, vt, m.fingerprint)
	cancel()
	if ok {
		r.Verify = "ok"
		return r
	}
	e.say("files are in place but %s port %d serves %s", vt.Address, vt.Port, served)
	if svc == "" {
		r.Status, r.Verify = StatusFailed, "mismatch"
		r.Detail = note(fmt.Sprintf("files already hold %s but port %d serves %s and no ReloadService is given", m.fingerprint, vt.Port, served))
		return r
	}
	if err := e.Services.ConfigTest(work, svc); err != nil {
		r.Status, r.Detail = StatusFailed, note(fmt.Sprintf("files already in place; %s configuration test failed: %v", svc, err))
		return r
	}
	if err := e.Services.Reload(work, svc); err != nil {
		r.Status, r.Reload = StatusFailed, "failed"
		r.Detail = note(fmt.Sprintf("files already in place; reload of %s failed: %v", svc, err))
		e.keepRunning(work, svc)
		return r
	}
	r.Reload = "done"
	if alive, err := e.Services.Active(work, svc); err != nil || !alive {
		r.Status = StatusFailed
		r.Detail = note(fmt.Sprintf("files already in place; %s stopped after the reload", svc))
		e.keepRunning(work, svc)
		return r
	}
	if ok, served := e.verify(work, vt, m.fingerprint); !ok {
		r.Status, r.Verify = StatusFailed, "mismatch"
		r.Detail = note(fmt.Sprintf("files already in place; after reloading %s port %d serves %s, not %s", svc, vt.Port, served, m.fingerprint))
		return r
	}
	r.Status, r.Verify = StatusInstalled, "ok"
	r.Detail = note(fmt.Sprintf("files were already in place; reloaded %s, which now serves them", svc))
	return r
}

// keepRunning starts svc again when our reload stopped it (it ran before).
func (e *Engine) keepRunning(ctx context.Context, svc string) {
	if alive, err := e.Services.Active(ctx, svc); err == nil && !alive {
		_ = e.Services.Start(ctx, svc)
	}
}

// errServiceRestore: the old files are back, but the service did not take
// them (reported in the result; the journal is done).
var errServiceRestore = errors.New("the files are restored but")

// restoreService runs after the old files are back: if the service may
// hold the new ones, reload it; if our reload stopped it, start it again.
func (e *Engine) restoreService(ctx context.Context, j *journal) error {
	if !j.ReloadStarted || j.Service == "" || e.Services == nil {
		return nil
	}
	alive, err := e.Services.Active(ctx, j.Service)
	if err != nil {
		return fmt.Errorf("check %s after restoring its files: %w", j.Service, err)
	}
	if alive {
		if err := e.Services.Reload(ctx, j.Service); err != nil {
			return fmt.Errorf("reload %s after restoring its files: %w", j.Service, err)
		}
		return nil
	}
	if j.WasActive {
		if err := e.Services.Start(ctx, j.Service); err != nil {
			return fmt.Errorf("start %s again after restoring its files: %w", j.Service, err)
		}
	}
	return nil
}

// recoverFiles finishes (phase verified) or rolls back the set a killed
// run left, before this run does anything else.
func (e *Engine) recoverFiles(ctx context.Context, j *journal) (string, error) {
	if j.Phase == phaseVerified {
		if err := e.state().remove(j.Name); err != nil {
			return "", err
		}
		if err := e.state().prune(j.Name, j.Generation); err != nil {
			return "", err
		}
		return fmt.Sprintf("recovered: finished an interrupted run that had installed %s", j.Fingerprint), nil
	}
	if len(j.Files) == 0 && j.Site != "" {
		return "", errors.New("the journal is a Windows run's")
	}
	phase := j.Phase
	if err := e.rollbackFiles(ctx, j); err != nil && !errors.Is(err, errServiceRestore) {
		return "", err
	}
	return fmt.Sprintf("recovered: rolled back an interrupted run of %s (killed at phase %s)", j.Fingerprint, phase), nil
}
