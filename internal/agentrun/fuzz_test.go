package agentrun

import (
	"regexp"
	"strings"
	"testing"
)

// Older SSM Agents paste parameters into the scripts as text (inside single
// quotes), so the allowedPatterns are the last line of defence: no value any
// pattern accepts may carry a character sh or PowerShell would act on.
func FuzzAllowedPatterns(f *testing.F) {
	for _, h := range hostile {
		f.Add(h)
	}
	for _, s := range []string{"certferry/shop-web", "/etc/ssl/certs/a.pem", "Default Web Site", `LocalMachine\My`, "443",
		strings.Repeat("AB:", 31) + "CD", "/etc/ssl:/opt", "installer/", "::1", strings.Repeat("ab", 32)} {
		f.Add(s)
	}
	d := loadDoc(f)
	const forbidden = "`$;|&<>(){}[]'\"!*?~#%^=,\n\r\t\x00"
	patterns := map[string]*regexp.Regexp{}
	for name := range d.Parameters {
		re, err := d.Pattern(name)
		if err != nil {
			f.Fatal(err)
		}
		patterns[name] = re
	}
	f.Fuzz(func(t *testing.T, v string) {
		for name, re := range patterns {
			if !re.MatchString(v) {
				continue
			}
			bad := forbidden
			if name == "SecretId" {
				bad = strings.ReplaceAll(bad, "=", "") // secret names may hold = (the pattern's set)
			}
			if i := strings.IndexAny(v, bad); i >= 0 {
				t.Fatalf("%s accepts %q, which holds %q", name, v, v[i])
			}
			// Paths and key prefixes may hold ".." inside a name (/etc/a..b),
			// never as a segment; an address of hex, ':' and '.' may; nothing
			// else may hold it at all.
			dots := strings.Contains(v, "..")
			switch name {
			case "CertPath", "KeyPath", "ChainPath", "KeystorePath", "AllowedPrefixes", "InstallerKeyPrefix":
				w := "/" + strings.ReplaceAll(v, ":", "/") + "/"
				dots = strings.Contains(w, "/../") || strings.Contains(w, "/./")
			case "VerifyAddress", "InstallerBucket":
				dots = false
			}
			if dots || strings.HasPrefix(v, "-") {
				t.Fatalf("%s accepts %q", name, v)
			}
		}
	})
}
