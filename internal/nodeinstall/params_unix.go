//go:build unix

package nodeinstall

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
)

// linuxTargets checks the paths the format needs: given and distinct
// (paths the format does not use are ignored).
func (p *Params) linuxTargets() error {
	need := map[string]bool{}
	switch p.Format {
	case FormatPEM:
		need = map[string]bool{"CertPath": true, "KeyPath": true}
	case FormatSplit:
		need = map[string]bool{"CertPath": true, "KeyPath": true, "ChainPath": true}
	case FormatCombined:
		need = map[string]bool{"CertPath": true}
	case FormatPKCS12, FormatJKS:
		need = map[string]bool{"KeystorePath": true}
	}
	seen := map[string]string{}
	var errs []error
	for _, f := range []struct{ name, v string }{{"CertPath", p.CertPath}, {"KeyPath", p.KeyPath}, {"ChainPath", p.ChainPath}, {"KeystorePath", p.KeystorePath}} {
		if need[f.name] && f.v == "" {
			errs = append(errs, fmt.Errorf("format %s needs %s", p.Format, f.name))
		}
		if !need[f.name] || f.v == "" {
			continue
		}
		c := filepath.Clean(f.v)
		if other, dup := seen[c]; dup {
			errs = append(errs, fmt.Errorf("%s and %s are the same file", other, f.name))
		}
		seen[c] = f.name
	}
	return errors.Join(errs...)
}

// modeOf parses an optional octal mode.
func modeOf(s string) (uint32, bool) {
	if s == "" {
		return 0, false
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil {
		return 0, false
	}
	return uint32(m), true
}
