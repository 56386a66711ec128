// Package winstore imports certificates into a Windows certificate store and
// points an IIS site's https binding at them, through Windows PowerShell.
//
// Every script is a fixed constant: no value (store, site, thumbprint,
// password) is ever pasted into script text. Values reach the script as
// environment variables; the PFX travels base64-encoded on the script's
// standard input, so it is never written to disk and never appears on a
// command line. The password is in the child's environment only.
//
// It compiles on every GOOS and runs only on Windows; its logic is tested
// with a fake Runner (PowerShell cannot run where certferry's tests run).
package winstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// Store is what the installer needs on Windows.
type Store interface {
	// Import adds the PFX's leaf (with its key, not exportable) to store
	// ("LocalMachine\My") and its intermediates to the matching
	// intermediate store, and returns the leaf's thumbprint.
	Import(ctx context.Context, store string, pfx []byte, password string) (thumbprint string, err error)
	// Has reports whether store holds the certificate with that thumbprint.
	Has(ctx context.Context, store, thumbprint string) (bool, error)
	// Remove deletes the certificate from store (absent: nothing to do).
	Remove(ctx context.Context, store, thumbprint string) error
	// Binding returns the certificate of site's first https binding, ""
	// when the site has no certificate bound.
	Binding(ctx context.Context, site string) (thumbprint string, store string, err error)
	// Bind points site's https binding at the certificate.
	Bind(ctx context.Context, site, store, thumbprint string) error
}

// Runner runs a PowerShell script with extra environment variables and
// standard input, and returns its standard output and error.
type Runner interface {
	Run(ctx context.Context, script string, env []string, stdin []byte) (stdout, stderr []byte, err error)
}

// Patterns of the values the scripts receive (the SSM document's
// CertStore and IisSite grammar).
var (
	StorePattern      = regexp.MustCompile(`^(LocalMachine|CurrentUser)\\[A-Za-z][A-Za-z0-9]{0,63}$`)
	SitePattern       = regexp.MustCompile(`^[A-Za-z0-9](\.?[A-Za-z0-9 _-]){0,127}$`)
	ThumbprintPattern = regexp.MustCompile(`^[0-9A-Fa-f]{40}$`)
)

// MaxPFX bounds the PFX Import accepts.
const MaxPFX = 1 << 20

// PowerShell is the Store backed by powershell.exe.
type PowerShell struct{ run Runner }

// New returns the PowerShell store; nil run means powershell.exe itself.
func New(run Runner) *PowerShell {
	if run == nil {
		run = execRunner{}
	}
	return &PowerShell{run: run}
}

var _ Store = (*PowerShell)(nil)

func checkStore(store string) error {
	if !StorePattern.MatchString(store) {
		return fmt.Errorf("certificate store %q: must match %s", clip(store), StorePattern)
	}
	return nil
}

func checkThumb(thumb string) error {
	if !ThumbprintPattern.MatchString(thumb) {
		return fmt.Errorf("thumbprint %q: must be 40 hex digits", clip(thumb))
	}
	return nil
}

func checkSite(site string) error {
	if !SitePattern.MatchString(site) {
		return fmt.Errorf("IIS site %q: must match %s", clip(site), SitePattern)
	}
	return nil
}

// Import adds the PFX to store.
func (p *PowerShell) Import(ctx context.Context, store string, pfx []byte, password string) (string, error) {
	if err := checkStore(store); err != nil {
		return "", err
	}
	if len(pfx) == 0 || len(pfx) > MaxPFX {
		return "", fmt.Errorf("import into %s: PFX size %d out of range", store, len(pfx))
	}
	if strings.ContainsRune(password, 0) {
		return "", fmt.Errorf("import into %s: password holds NUL", store)
	}
	stdin := []byte(base64.StdEncoding.EncodeToString(pfx))
	var out struct {
		Thumbprint string `json:"thumbprint"`
	}
	if err := p.call(ctx, "import into "+store, importScript, []string{envStore + "=" + store, envPassword + "=" + password}, stdin, &out); err != nil {
		return "", redact(err, password)
	}
	if err := checkThumb(out.Thumbprint); err != nil {
		return "", fmt.Errorf("import into %s: PowerShell answered %w", store, err)
	}
	return strings.ToUpper(out.Thumbprint), nil
}

// Has looks the thumbprint up in store.
func (p *PowerShell) Has(ctx context.Context, store, thumbprint string) (bool, error) {
	if err := errors.Join(checkStore(store), checkThumb(thumbprint)); err != nil {
		return false, err
	}
	var out struct {
		Present *bool `json:"present"`
	}
	if err := p.call(ctx, "look up "+thumbprint+" in "+store, hasScript, []string{envStore + "=" + store, envThumb + "=" + strings.ToUpper(thumbprint)}, nil, &out); err != nil {
		return false, err
	}
	if out.Present == nil {
		return false, fmt.Errorf("look up %s in %s: PowerShell answered without \"present\"", thumbprint, store)
	}
	return *out.Present, nil
}

// Remove deletes the certificate from store.
func (p *PowerShell) Remove(ctx context.Context, store, thumbprint string) error {
	if err := errors.Join(checkStore(store), checkThumb(thumbprint)); err != nil {
		return err
	}
	var out struct{}
	return p.call(ctx, "remove "+thumbprint+" from "+store, removeScript, []string{envStore + "=" + store, envThumb + "=" + strings.ToUpper(thumbprint)}, nil, &out)
}

// Binding reads site's https binding.
func (p *PowerShell) Binding(ctx context.Context, site string) (string, string, error) {
	if err := checkSite(site); err != nil {
		return "", "", err
	}
	var out struct {
		Thumbprint string `json:"thumbprint"`
		Store      string `json:"store"`
	}
	if err := p.call(ctx, "read the https binding of IIS site "+site, bindingScript, []string{envSite + "=" + site}, nil, &out); err != nil {
		return "", "", err
	}
	if out.Thumbprint == "" {
		return "", "", nil
	}
	if err := checkThumb(out.Thumbprint); err != nil {
		return "", "", fmt.Errorf("read the https binding of IIS site %s: %w", site, err)
	}
	// IIS keeps only the store name; its bindings are always the machine's.
	store := out.Store
	if store == "" {
		store = "My"
	}
	if !strings.Contains(store, `\`) {
		store = `LocalMachine\` + store
	}
	if err := checkStore(store); err != nil {
		return "", "", fmt.Errorf("read the https binding of IIS site %s: %w", site, err)
	}
	return strings.ToUpper(out.Thumbprint), store, nil
}

// Bind points site's https binding at the certificate.
func (p *PowerShell) Bind(ctx context.Context, site, store, thumbprint string) error {
	if err := errors.Join(checkSite(site), checkStore(store), checkThumb(thumbprint)); err != nil {
		return err
	}
	if !strings.HasPrefix(store, `LocalMachine\`) {
		return fmt.Errorf("bind IIS site %s: store %s: IIS binds only certificates of LocalMachine stores", site, store)
	}
	var out struct{}
	return p.call(ctx, "bind IIS site "+site+" to "+thumbprint, bindScript,
		[]string{envSite + "=" + site, envStore + "=" + store, envThumb + "=" + strings.ToUpper(thumbprint)}, nil, &out)
}

// Output protocol: the scripts' last line is "CERTFERRY_WINSTORE {json}"
// on success, "CERTFERRY_WINSTORE_ERROR <message>" on failure.
const (
	okPrefix  = "CERTFERRY_WINSTORE "
	errPrefix = "CERTFERRY_WINSTORE_ERROR "
)

func (p *PowerShell) call(ctx context.Context, what, script string, env []string, stdin []byte, out any) error {
	stdout, stderr, runErr := p.run.Run(ctx, script, env, stdin)
	line := lastLine(stdout, okPrefix, errPrefix)
	switch {
	case strings.HasPrefix(line, errPrefix):
		return fmt.Errorf("%s: %s", what, clip(strings.TrimPrefix(line, errPrefix)))
	case runErr != nil:
		return fmt.Errorf("%s: %w (%s)", what, runErr, clip(string(stderr)))
	case strings.HasPrefix(line, okPrefix):
		dec := json.NewDecoder(strings.NewReader(strings.TrimPrefix(line, okPrefix)))
		if err := dec.Decode(out); err != nil {
			return fmt.Errorf("%s: unreadable PowerShell answer: %w", what, err)
		}
		return nil
	}
	return fmt.Errorf("%s: PowerShell gave no result line (stderr: %s)", what, clip(string(stderr)))
}

// lastLine is the last output line starting with one of the prefixes.
func lastLine(out []byte, prefixes ...string) string {
	lines := strings.Split(strings.ReplaceAll(string(bytes.TrimSpace(out)), "\r\n", "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		for _, p := range prefixes {
			if strings.HasPrefix(lines[i], p) {
				return strings.TrimSpace(lines[i])
			}
		}
	}
	return ""
}

// redact removes a secret from an error's text (PowerShell's messages
// should never hold it; this makes sure).
func redact(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "[redacted]"))
}

// clip makes text one short printable line: control characters and runs
// of space become one space, at most 200 bytes.
func clip(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(s) {
		if b.Len() >= 200 {
			b.WriteString("…")
			break
		}
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}
