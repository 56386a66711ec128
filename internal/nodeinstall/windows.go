package nodeinstall

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// runWindows is the Windows flow: lock, recover, fetch and check, import the
// PFX, remember the old binding, bind IisSite, verify; on failure rebind the
// old certificate and remove the new one if it was not in the store before.
// It is plain Go over CertStore, so it is unit-tested on every platform.
func (e *Engine) runWindows(ctx context.Context, p Params, r Result) Result {
	work, cancel := workContext(ctx)
	defer cancel()
	if e.Store == nil {
		r.Detail = "no certificate store"
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
	var notes []string
	note := func(d string) string { return strings.Join(append(notes, d), "; ") }
	sd := e.state()
	if j, err := sd.load(p.CertName); err != nil {
		r.Detail = err.Error()
		return r
	} else if j != nil {
		n, err := e.recoverWindows(ctx, j)
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
	if err == nil {
		err = checkPFX(m)
	}
	if err != nil {
		if errors.Is(err, errSuperseded) {
			e.say("superseded: nothing to do")
		}
		return refused(r, err, note)
	}
	r.Fingerprint, r.Serial = m.fingerprint, m.serial
	e.say("bundle %s serial %s checked", m.fingerprint, m.serial)
	vt := e.verifyTarget(p, m)

	var oldThumb, oldStore string
	if p.IisSite != "" {
		if oldThumb, oldStore, err = e.Store.Binding(work, p.IisSite); err != nil {
			r.Detail = note(fmt.Sprintf("read the https binding of IIS site %s: %v", p.IisSite, err))
			return r
		}
		if oldThumb == "" {
			r.Detail = note(fmt.Sprintf("IIS site %s has no certificate on an https binding (bind one first; rollback needs it)", p.IisSite))
			return r
		}
	}
	had, err := e.Store.Has(work, p.CertStore, m.thumbprint)
	if err != nil {
		r.Detail = note(fmt.Sprintf("look for %s in %s: %v", m.thumbprint, p.CertStore, err))
		return r
	}
	bound := p.IisSite == "" || strings.EqualFold(oldThumb, m.thumbprint) && strings.EqualFold(oldStore, p.CertStore)
	if had && bound {
		r.Status, r.Detail = StatusUnchanged, note("already installed")
		if p.VerifyPort == 0 {
			return r
		}
		if ok, _ := e.verify(work, vt, m.fingerprint); ok {
			r.Verify = "ok"
			return r
		}
		// Served something else: bind again and verify below (nothing to undo).
	}

	j := &journal{Name: p.CertName, Fingerprint: m.fingerprint, Phase: phasePrepared, Site: p.IisSite,
		OldThumb: oldThumb, OldStore: oldStore, NewThumb: m.thumbprint, NewStore: p.CertStore, HadNew: had}
	if err := e.save(j); err != nil {
		r.Detail = note(err.Error())
		return r
	}
	e.at("prepared")
	rollback := func(reason string) Result {
		e.say("rolling back: %s", reason)
		r.Status = StatusRolledBack
		if err := e.rollbackWindows(ctx, j); err != nil {
			r.Detail = note(reason + "; ROLLBACK FAILED: " + err.Error())
			return r
		}
		r.Detail = note(reason + "; rolled back")
		return r
	}
	if !had {
		j.Imported = true // set before the call: a kill during Import still removes it
		if err := e.save(j); err != nil {
			return rollback(err.Error())
		}
		thumb, err := e.Store.Import(work, p.CertStore, m.pkcs12, m.passphrase)
		if err != nil {
			reason := fmt.Sprintf("import the PFX into %s: %v", p.CertStore, err)
			if rerr := e.rollbackWindows(ctx, j); rerr != nil {
				r.Status, r.Detail = StatusRolledBack, note(reason+"; ROLLBACK FAILED: "+rerr.Error())
				return r
			}
			r.Detail = note(reason + "; nothing changed") // status failed: the store is as it was
			return r
		}
		if !strings.EqualFold(thumb, m.thumbprint) {
			return rollback(fmt.Sprintf("the store reports thumbprint %s, want %s", sanitize(thumb, 64), m.thumbprint))
		}
		e.at("imported")
		e.say("imported %s into %s", m.thumbprint, p.CertStore)
	}
	if p.IisSite != "" {
		j.Bound = true
		if err := e.save(j); err != nil {
			return rollback(err.Error())
		}
		if err := e.Store.Bind(work, p.IisSite, p.CertStore, m.thumbprint); err != nil {
			r.Reload = "failed"
			return rollback(fmt.Sprintf("bind IIS site %s: %v", p.IisSite, err))
		}
		r.Reload = "done"
		e.at("bound")
		e.say("bound IIS site %s to %s", p.IisSite, m.thumbprint)
	}
	if p.VerifyPort != 0 {
		e.at("verifying")
		ok, served := e.verify(work, vt, m.fingerprint)
		if !ok {
			r.Verify = "mismatch"
			return rollback(fmt.Sprintf("%s port %d serves %s for %s, not %s", vt.Address, vt.Port, served, vt.ServerName, m.fingerprint))
		}
		r.Verify = "ok"
	}
	j.Phase = phaseVerified
	if err := e.save(j); err != nil {
		return rollback(err.Error())
	}
	e.at("verified")
	if err := sd.remove(j.Name); err != nil {
		notes = append(notes, err.Error())
	}
	r.Status, r.Detail = StatusInstalled, note("installed "+p.CertName)
	return r
}

// rollbackWindows rebinds the old certificate and removes the new one when
// this run imported it. Idempotent, like the file rollback.
func (e *Engine) rollbackWindows(ctx context.Context, j *journal) error {
	sd := e.state()
	if j.Phase != phaseRollingBack {
		j.Phase = phaseRollingBack
		if err := e.save(j); err != nil {
			return err
		}
	}
	e.at("rolling_back")
	var errs []error
	if j.Bound && j.Site != "" && j.OldThumb != "" {
		if err := e.Store.Bind(ctx, j.Site, j.OldStore, j.OldThumb); err != nil {
			errs = append(errs, fmt.Errorf("rebind IIS site %s to %s: %w", j.Site, j.OldThumb, err))
		}
	}
	if j.Imported && !j.HadNew {
		has, err := e.Store.Has(ctx, j.NewStore, j.NewThumb)
		if err == nil && has {
			err = e.Store.Remove(ctx, j.NewStore, j.NewThumb)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", j.NewThumb, j.NewStore, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return sd.remove(j.Name)
}

func (e *Engine) recoverWindows(ctx context.Context, j *journal) (string, error) {
	if j.Phase == phaseVerified {
		if err := e.state().remove(j.Name); err != nil {
			return "", err
		}
		return fmt.Sprintf("recovered: finished an interrupted run that had installed %s", j.Fingerprint), nil
	}
	phase := j.Phase
	if err := e.rollbackWindows(ctx, j); err != nil {
		return "", err
	}
	return fmt.Sprintf("recovered: rolled back an interrupted run of %s (killed at phase %s)", j.Fingerprint, phase), nil
}
