package spec

import (
	"errors"
	"strings"
	"testing"
)

func okARN(string) error { return nil }

func valid() Spec {
	s := Spec{
		Name:           "shop-web",
		CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
		Targets:        []Target{{Key: "tag:env", Values: []string{"prod"}}},
	}
	s.ApplyDefaults()
	return s
}

func TestValidate(t *testing.T) {
	port := func(p int) *int { return &p }
	tests := []struct {
		name      string
		mutate    func(*Spec)
		wantField string
	}{
		{name: "valid", mutate: func(*Spec) {}},
		{name: "instance ids", mutate: func(s *Spec) {
			s.Targets = []Target{{Key: "InstanceIds", Values: []string{"i-0123456789abcdef0", "mi-0123456789abcdef0"}}}
		}},
		{name: "tag with spaces and colon", mutate: func(s *Spec) {
			s.Targets = []Target{{Key: "tag:aws:cloudformation:stack-name", Values: []string{"My Stack"}}}
		}},
		{name: "missing name", mutate: func(s *Spec) { s.Name = "" }, wantField: "name"},
		{name: "name traversal", mutate: func(s *Spec) { s.Name = "../x" }, wantField: "name"},
		{name: "name semicolon", mutate: func(s *Spec) { s.Name = "a;b" }, wantField: "name"},
		{name: "name command substitution", mutate: func(s *Spec) { s.Name = "$(id)" }, wantField: "name"},
		{name: "name 200 chars", mutate: func(s *Spec) { s.Name = strings.Repeat("a", 200) }, wantField: "name"},
		{name: "name upper case", mutate: func(s *Spec) { s.Name = "Shop" }, wantField: "name"},
		{name: "missing arn", mutate: func(s *Spec) { s.CertificateARN = "" }, wantField: "certificateArn"},
		{name: "no targets", mutate: func(s *Spec) { s.Targets = nil }, wantField: "targets"},
		{name: "six targets", mutate: func(s *Spec) {
			for i := 0; i < 5; i++ {
				s.Targets = append(s.Targets, Target{Key: "tag:x", Values: []string{"y"}})
			}
		}, wantField: "targets"},
		{name: "tag value semicolon", mutate: func(s *Spec) { s.Targets[0].Values = []string{"prod;reboot"} }, wantField: "targets[0].values[0]"},
		{name: "tag value substitution", mutate: func(s *Spec) { s.Targets[0].Values = []string{"$(id)"} }, wantField: "targets[0].values[0]"},
		{name: "tag value backtick", mutate: func(s *Spec) { s.Targets[0].Values = []string{"`id`"} }, wantField: "targets[0].values[0]"},
		{name: "tag value newline", mutate: func(s *Spec) { s.Targets[0].Values = []string{"a\nb"} }, wantField: "targets[0].values[0]"},
		{name: "tag value quote", mutate: func(s *Spec) { s.Targets[0].Values = []string{`a"b`} }, wantField: "targets[0].values[0]"},
		{name: "tag value empty", mutate: func(s *Spec) { s.Targets[0].Values = []string{""} }, wantField: "targets[0].values[0]"},
		{name: "tag value 300 chars", mutate: func(s *Spec) { s.Targets[0].Values = []string{strings.Repeat("v", 300)} }, wantField: "targets[0].values[0]"},
		{name: "tag key hostile", mutate: func(s *Spec) { s.Targets[0].Key = "tag:env;id" }, wantField: "targets[0].key"},
		{name: "unknown target key", mutate: func(s *Spec) { s.Targets[0].Key = "resource-groups:Name" }, wantField: "targets[0].key"},
		{name: "no values", mutate: func(s *Spec) { s.Targets[0].Values = nil }, wantField: "targets[0].values"},
		{name: "bad instance id", mutate: func(s *Spec) { s.Targets = []Target{{Key: "InstanceIds", Values: []string{"i-xyz;rm"}}} }, wantField: "targets[0].values[0]"},
		{name: "instance ids mixed with tags", mutate: func(s *Spec) {
			s.Targets = append(s.Targets, Target{Key: "InstanceIds", Values: []string{"i-0123456789abcdef0"}})
		}, wantField: "targets[1].key"},
		{name: "relative path", mutate: func(s *Spec) { s.Linux.CertPath = "etc/x.pem" }, wantField: "linux.certPath"},
		{name: "dotdot path", mutate: func(s *Spec) { s.Linux.CertPath = "/etc/ssl/../shadow" }, wantField: "linux.certPath"},
		{name: "dot segment path", mutate: func(s *Spec) { s.Linux.KeyPath = "/etc/./x.key" }, wantField: "linux.keyPath"},
		{name: "path with space", mutate: func(s *Spec) { s.Linux.CertPath = "/etc/ssl/a b.pem" }, wantField: "linux.certPath"},
		{name: "path with substitution", mutate: func(s *Spec) { s.Linux.KeyPath = "/tmp/$(id)" }, wantField: "linux.keyPath"},
		{name: "path trailing slash", mutate: func(s *Spec) { s.Linux.KeyPath = "/etc/ssl/" }, wantField: "linux.keyPath"},
		{name: "path newline", mutate: func(s *Spec) { s.Linux.KeyPath = "/etc/a\n/b" }, wantField: "linux.keyPath"},
		{name: "path too long", mutate: func(s *Spec) { s.Linux.KeyPath = "/" + strings.Repeat("a/", 600) + "k" }, wantField: "linux.keyPath"},
		{name: "cert and key same", mutate: func(s *Spec) { s.Linux.KeyPath = s.Linux.CertPath }, wantField: "linux.keyPath"},
		{name: "service hostile", mutate: func(s *Spec) { s.Linux.ReloadService = "nginx; reboot" }, wantField: "linux.reloadService"},
		{name: "service option-like", mutate: func(s *Spec) { s.Linux.ReloadService = "--force" }, wantField: "linux.reloadService"},
		{name: "service templated ok", mutate: func(s *Spec) { s.Linux.ReloadService = "haproxy@edge.service" }},
		{name: "port negative", mutate: func(s *Spec) { s.Linux.VerifyPort = port(-1) }, wantField: "linux.verifyPort"},
		{name: "port too big", mutate: func(s *Spec) { s.Linux.VerifyPort = port(70000) }, wantField: "linux.verifyPort"},
		{name: "server name hostile", mutate: func(s *Spec) { s.Linux.ServerName = "a.example.com -connect evil" }, wantField: "linux.serverName"},
		{name: "server name wildcard", mutate: func(s *Spec) { s.Linux.ServerName = "*.example.com" }, wantField: "linux.serverName"},
		{name: "store hostile", mutate: func(s *Spec) { s.Windows.Store = `LocalMachine\My'; rm` }, wantField: "windows.store"},
		{name: "iis site hostile", mutate: func(s *Spec) { s.Windows.IISSite = "Default'; Remove-Item C:\\" }, wantField: "windows.iisSite"},
		{name: "iis site with spaces", mutate: func(s *Spec) { s.Windows.IISSite = "Default Web Site" }},

		// Node installer options (linux.format and friends).
		{name: "format pem explicit", mutate: func(s *Spec) { s.Linux.Format = "pem" }},
		{name: "format split", mutate: func(s *Spec) { s.Linux.Format = "split"; s.Linux.ChainPath = "/etc/ssl/certs/shop-web.chain.pem" }},
		{name: "format split without chain", mutate: func(s *Spec) { s.Linux.Format = "split" }, wantField: "linux.chainPath"},
		{name: "format split chain same as cert", mutate: func(s *Spec) { s.Linux.Format = "split"; s.Linux.ChainPath = s.Linux.CertPath }, wantField: "linux.chainPath"},
		{name: "format split key same as chain", mutate: func(s *Spec) {
			s.Linux.Format, s.Linux.ChainPath, s.Linux.KeyPath = "split", "/etc/ssl/c.pem", "/etc/ssl/c.pem"
		}, wantField: "linux.keyPath"},
		{name: "format split chain hostile", mutate: func(s *Spec) { s.Linux.Format = "split"; s.Linux.ChainPath = "/etc/ssl/$(id)" }, wantField: "linux.chainPath"},
		{name: "format combined", mutate: func(s *Spec) { s.Linux.Format = "combined"; s.Linux.CertPath = "/etc/haproxy/certs/shop.pem" }},
		{name: "format combined ignores a key path", mutate: func(s *Spec) { s.Linux.Format = "combined" }},
		{name: "format combined key path still checked", mutate: func(s *Spec) { s.Linux.Format = "combined"; s.Linux.KeyPath = "/etc/../x" }, wantField: "linux.keyPath"},
		{name: "format combined with chain", mutate: func(s *Spec) { s.Linux.Format = "combined"; s.Linux.ChainPath = "/etc/ssl/c.pem" }, wantField: "linux.chainPath"},
		{name: "format pkcs12", mutate: func(s *Spec) { *s = keystoreSpec("pkcs12", "/opt/app/shop.p12") }},
		{name: "format jks", mutate: func(s *Spec) { *s = keystoreSpec("jks", "/opt/tomcat/conf/shop.jks") }},
		{name: "format pkcs12 without keystore", mutate: func(s *Spec) { *s = keystoreSpec("pkcs12", "") }, wantField: "linux.keystorePath"},
		{name: "format jks keystore hostile", mutate: func(s *Spec) { *s = keystoreSpec("jks", "/opt/a b.jks") }, wantField: "linux.keystorePath"},
		{name: "format jks with cert path", mutate: func(s *Spec) { *s = keystoreSpec("jks", "/opt/a.jks"); s.Linux.CertPath = "/etc/ssl/a.pem" }, wantField: "linux.certPath"},
		{name: "format pkcs12 with key path", mutate: func(s *Spec) { *s = keystoreSpec("pkcs12", "/opt/a.p12"); s.Linux.KeyPath = "/etc/ssl/a.key" }, wantField: "linux.keyPath"},
		{name: "format pem with keystore", mutate: func(s *Spec) { s.Linux.KeystorePath = "/opt/a.p12" }, wantField: "linux.keystorePath"},
		{name: "format pem with chain", mutate: func(s *Spec) { s.Linux.ChainPath = "/etc/ssl/c.pem" }, wantField: "linux.chainPath"},
		{name: "format unknown", mutate: func(s *Spec) { s.Linux.Format = "der" }, wantField: "linux.format"},
		{name: "format upper case", mutate: func(s *Spec) { s.Linux.Format = "PEM" }, wantField: "linux.format"},
		{name: "owner and group names", mutate: func(s *Spec) { s.Linux.Owner, s.Linux.Group = "root", "ssl-cert" }},
		{name: "owner and group ids", mutate: func(s *Spec) { s.Linux.Owner, s.Linux.Group = "0", "33" }},
		{name: "owner underscore", mutate: func(s *Spec) { s.Linux.Owner = "_haproxy" }},
		{name: "owner hostile", mutate: func(s *Spec) { s.Linux.Owner = "root;id" }, wantField: "linux.owner"},
		{name: "owner upper case", mutate: func(s *Spec) { s.Linux.Owner = "Root" }, wantField: "linux.owner"},
		{name: "owner option-like", mutate: func(s *Spec) { s.Linux.Owner = "-R" }, wantField: "linux.owner"},
		{name: "owner 33 chars", mutate: func(s *Spec) { s.Linux.Owner = strings.Repeat("a", 33) }, wantField: "linux.owner"},
		{name: "owner id beyond 32 bits", mutate: func(s *Spec) { s.Linux.Owner = "4294967296" }, wantField: "linux.owner"},
		{name: "owner id minus one", mutate: func(s *Spec) { s.Linux.Owner = "4294967295" }, wantField: "linux.owner"},
		{name: "group with colon", mutate: func(s *Spec) { s.Linux.Group = "root:root" }, wantField: "linux.group"},
		{name: "modes", mutate: func(s *Spec) { s.Linux.CertMode, s.Linux.KeyMode, s.Linux.Group = "0644", "640", "ssl-cert" }},
		{name: "cert mode not octal", mutate: func(s *Spec) { s.Linux.CertMode = "0648" }, wantField: "linux.certMode"},
		{name: "cert mode setuid", mutate: func(s *Spec) { s.Linux.CertMode = "4755" }, wantField: "linux.certMode"},
		{name: "cert mode symbolic", mutate: func(s *Spec) { s.Linux.CertMode = "u+rw" }, wantField: "linux.certMode"},
		{name: "key mode world readable", mutate: func(s *Spec) { s.Linux.KeyMode = "0644" }, wantField: "linux.keyMode"},
		{name: "key mode hostile", mutate: func(s *Spec) { s.Linux.KeyMode = "0600;id" }, wantField: "linux.keyMode"},
		{name: "combined cert mode world readable", mutate: func(s *Spec) { s.Linux.Format, s.Linux.CertMode = "combined", "0644" }, wantField: "linux.certMode"},
		{name: "combined cert mode group readable", mutate: func(s *Spec) { s.Linux.Format, s.Linux.CertMode = "combined", "0640" }},
		{name: "verify address ipv4", mutate: func(s *Spec) { s.Linux.VerifyAddress = "10.0.0.5" }},
		{name: "verify address ipv6", mutate: func(s *Spec) { s.Linux.VerifyAddress = "::1" }},
		{name: "verify address ipv6 full", mutate: func(s *Spec) { s.Linux.VerifyAddress = "2001:db8::10" }},
		{name: "verify address host", mutate: func(s *Spec) { s.Linux.VerifyAddress = "web1.internal.example.com" }},
		{name: "verify address bad ipv4", mutate: func(s *Spec) { s.Linux.VerifyAddress = "10.0.0.256" }, wantField: "linux.verifyAddress"},
		{name: "verify address bracketed", mutate: func(s *Spec) { s.Linux.VerifyAddress = "[::1]" }, wantField: "linux.verifyAddress"},
		{name: "verify address zone", mutate: func(s *Spec) { s.Linux.VerifyAddress = "fe80::1%eth0" }, wantField: "linux.verifyAddress"},
		{name: "verify address with port", mutate: func(s *Spec) { s.Linux.VerifyAddress = "127.0.0.1:443" }, wantField: "linux.verifyAddress"},
		{name: "verify address hostile", mutate: func(s *Spec) { s.Linux.VerifyAddress = "localhost -connect evil" }, wantField: "linux.verifyAddress"},
		{name: "verify address colons only", mutate: func(s *Spec) { s.Linux.VerifyAddress = ":::" }, wantField: "linux.verifyAddress"},
		{name: "starttls smtp", mutate: func(s *Spec) { s.Linux.Starttls = "smtp" }},
		{name: "starttls imap", mutate: func(s *Spec) { s.Linux.Starttls = "imap" }},
		{name: "starttls pop3", mutate: func(s *Spec) { s.Linux.Starttls = "pop3" }},
		{name: "starttls unknown", mutate: func(s *Spec) { s.Linux.Starttls = "ftp" }, wantField: "linux.starttls"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.mutate(&s)
			checkFieldError(t, s.Validate(okARN), tc.wantField)
		})
	}
}

// checkFieldError checks Validate's answer: nil when wantField is "", else
// a FieldError (ErrInvalid) on wantField, which it returns.
func checkFieldError(t *testing.T, err error, wantField string) *FieldError {
	t.Helper()
	if wantField == "" {
		if err != nil {
			t.Fatalf("Validate() = %v, want nil", err)
		}
		return nil
	}
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate() = %v, want a FieldError", err)
	}
	if fe.Field != wantField {
		t.Fatalf("field = %q (%v), want %q", fe.Field, err, wantField)
	}
	return fe
}

// keystoreSpec is a pkcs12 or jks spec with defaults applied.
func keystoreSpec(format, keystore string) Spec {
	s := Spec{
		Name:           "shop-web",
		CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
		Targets:        []Target{{Key: "tag:env", Values: []string{"prod"}}},
		Linux:          Linux{Format: format, KeystorePath: keystore},
	}
	s.ApplyDefaults()
	return s
}

func TestCheckPrefixes(t *testing.T) {
	tests := []struct {
		name      string
		spec      Spec
		prefixes  []string
		wantField string
	}{
		{name: "defaults under /etc/ssl", spec: valid(), prefixes: DefaultAllowedPrefixes},
		{name: "cert outside", spec: withLinux(Linux{CertPath: "/etc/passwd"}), prefixes: DefaultAllowedPrefixes, wantField: "linux.certPath"},
		{name: "key outside", spec: withLinux(Linux{KeyPath: "/root/x.key"}), prefixes: DefaultAllowedPrefixes, wantField: "linux.keyPath"},
		{name: "prefix itself is not under it", spec: withLinux(Linux{CertPath: "/opt"}), prefixes: DefaultAllowedPrefixes, wantField: "linux.certPath"},
		{name: "sibling sharing a name prefix", spec: withLinux(Linux{CertPath: "/optical/x.pem"}), prefixes: DefaultAllowedPrefixes, wantField: "linux.certPath"},
		{name: "etc/sslx is not etc/ssl", spec: withLinux(Linux{CertPath: "/etc/sslx/x.pem"}), prefixes: DefaultAllowedPrefixes, wantField: "linux.certPath"},
		{name: "nested ok", spec: withLinux(Linux{CertPath: "/srv/a/b/c/x.pem"}), prefixes: DefaultAllowedPrefixes},
		{name: "chain outside", spec: withLinux(Linux{Format: "split", ChainPath: "/tmp/chain.pem"}), prefixes: DefaultAllowedPrefixes, wantField: "linux.chainPath"},
		{name: "keystore outside", spec: keystoreSpec("jks", "/home/app/k.jks"), prefixes: DefaultAllowedPrefixes, wantField: "linux.keystorePath"},
		{name: "keystore inside", spec: keystoreSpec("jks", "/opt/app/k.jks"), prefixes: DefaultAllowedPrefixes},
		{name: "combined ignored key path still inside", spec: withLinux(Linux{Format: "combined", KeyPath: "/root/k"}), prefixes: DefaultAllowedPrefixes, wantField: "linux.keyPath"},
		{name: "installer state dir", spec: withLinux(Linux{CertPath: "/var/lib/certferry/journal"}), prefixes: DefaultAllowedPrefixes, wantField: "linux.certPath"},
		{name: "installer state dir sibling ok", spec: withLinux(Linux{CertPath: "/var/lib/certferry-data/x.pem"}), prefixes: DefaultAllowedPrefixes},
		{name: "stack narrows the list", spec: valid(), prefixes: []string{"/etc/nginx"}, wantField: "linux.certPath"},
		{name: "stack widens the list", spec: withLinux(Linux{CertPath: "/data/tls/x.pem", KeyPath: "/data/tls/x.key"}), prefixes: []string{"/data/tls"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.spec.Validate(okARN); err != nil {
				t.Fatalf("Validate() = %v; the case needs a valid spec", err)
			}
			err := tc.spec.CheckPrefixes(tc.prefixes)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("CheckPrefixes() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.wantField {
				t.Fatalf("CheckPrefixes() = %v, want a FieldError on %s", err, tc.wantField)
			}
			if !strings.Contains(fe.Message, "must") {
				t.Errorf("message %q does not say what is expected", fe.Message)
			}
		})
	}
}

// withLinux is a valid spec with l's non-empty fields over the defaults.
func withLinux(l Linux) Spec {
	s := Spec{
		Name:           "shop-web",
		CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555",
		Targets:        []Target{{Key: "tag:env", Values: []string{"prod"}}},
		Linux:          l,
	}
	if s.Linux.EffectiveFormat() == FormatSplit && s.Linux.ChainPath == "" {
		s.Linux.ChainPath = "/etc/ssl/certs/shop-web.chain.pem"
	}
	s.ApplyDefaults()
	return s
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes(strings.Join(DefaultAllowedPrefixes, ":"))
	if err != nil || strings.Join(got, ",") != strings.Join(DefaultAllowedPrefixes, ",") {
		t.Fatalf("ParsePrefixes(default) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "/", "relative", "/etc/ssl/", "/etc/ssl::/opt", "/etc/../root", "/etc/ssl:/opt;id", "/etc/ssl /opt", ":/etc/ssl", "/etc/.hidden"} {
		if _, err := ParsePrefixes(bad); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", bad)
		}
	}
}

func TestApplyDefaults(t *testing.T) {
	s := Spec{Name: "api"}
	s.ApplyDefaults()
	if s.Linux.CertPath != "/etc/ssl/certs/api.pem" || s.Linux.KeyPath != "/etc/ssl/private/api.key" {
		t.Errorf("paths = %q, %q", s.Linux.CertPath, s.Linux.KeyPath)
	}
	if *s.Linux.VerifyPort != 0 {
		t.Errorf("verify port without reload = %d, want 0 (nothing reloads, so nothing new would be served)", *s.Linux.VerifyPort)
	}
	if s.Windows.Store != `LocalMachine\My` {
		t.Errorf("store = %q", s.Windows.Store)
	}
	r := Spec{Name: "api", Linux: Linux{ReloadService: "nginx"}}
	r.ApplyDefaults()
	if *r.Linux.VerifyPort != 443 {
		t.Errorf("verify port with reload = %d, want 443", *r.Linux.VerifyPort)
	}
	for format, want := range map[string][2]string{
		"split":    {"/etc/ssl/certs/api.pem", "/etc/ssl/private/api.key"},
		"combined": {"/etc/ssl/certs/api.pem", ""},
		"pkcs12":   {"", ""},
		"jks":      {"", ""},
	} {
		k := Spec{Name: "api", Linux: Linux{Format: format}}
		k.ApplyDefaults()
		if k.Linux.CertPath != want[0] || k.Linux.KeyPath != want[1] || k.Linux.ChainPath != "" || k.Linux.KeystorePath != "" {
			t.Errorf("format %s defaults: %+v, want cert %q key %q", format, k.Linux, want[0], want[1])
		}
	}
	zero := 0
	e := Spec{Name: "api", Linux: Linux{ReloadService: "nginx", VerifyPort: &zero}}
	e.ApplyDefaults()
	if *e.Linux.VerifyPort != 0 {
		t.Errorf("explicit 0 overridden to %d", *e.Linux.VerifyPort)
	}
}
