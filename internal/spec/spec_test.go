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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.mutate(&s)
			err := s.Validate(okARN)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want a FieldError", err)
			}
			if fe.Field != tc.wantField {
				t.Fatalf("field = %q (%v), want %q", fe.Field, err, tc.wantField)
			}
		})
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
	zero := 0
	e := Spec{Name: "api", Linux: Linux{ReloadService: "nginx", VerifyPort: &zero}}
	e.ApplyDefaults()
	if *e.Linux.VerifyPort != 0 {
		t.Errorf("explicit 0 overridden to %d", *e.Linux.VerifyPort)
	}
}
