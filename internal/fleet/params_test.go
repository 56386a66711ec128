package fleet

import (
	"context"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"gopkg.in/yaml.v3"

	"github.com/certferry/certferry/internal/spec"
)

// recordingSSM records what is sent and lists it back, as SSM's ListCommands does.
type recordingSSM struct {
	sent []*ssm.SendCommandInput
}

func (f *recordingSSM) SendCommand(_ context.Context, in *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	f.sent = append(f.sent, in)
	return &ssm.SendCommandOutput{Command: &ssmtypes.Command{CommandId: aws.String("cmd-1"), TargetCount: 2}}, nil
}

func (f *recordingSSM) ListCommands(context.Context, *ssm.ListCommandsInput, ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	var out ssm.ListCommandsOutput
	for _, in := range f.sent {
		out.Commands = append(out.Commands, ssmtypes.Command{
			CommandId: aws.String("cmd-1"), DocumentName: in.DocumentName, Comment: in.Comment, Parameters: in.Parameters,
			Targets: in.Targets, InstanceIds: in.InstanceIds, Status: ssmtypes.CommandStatusInProgress,
			RequestedDateTime: aws.Time(time.Now()),
		})
	}
	return &out, nil
}

var installer = Installer{
	Bucket: "stack-installerbucket-1a2b3c", KeyPrefix: "installer/",
	SHA256LinuxAmd64:   strings.Repeat("a", 64),
	SHA256LinuxArm64:   strings.Repeat("b", 64),
	SHA256WindowsAmd64: strings.Repeat("c", 64),
}

func linuxInstall(l spec.Linux) Install {
	sp := spec.Spec{Name: "shop-web", CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555", Targets: []spec.Target{{Key: "tag:env", Values: []string{"prod"}}}, Linux: l}
	sp.ApplyDefaults()
	return Install{
		Spec: sp, SecretID: "certferry/shop-web", Region: "us-east-1", ServerName: "shop.example.com",
		ExpectedFingerprint: strings.TrimSuffix(strings.Repeat("AB:", 32), ":"), Serial: "0c",
		AllowedPrefixes: []string{"/etc/ssl", "/opt"}, SendID: NewSendID(),
	}
}

func TestSendCarriesOptionsAndInstaller(t *testing.T) {
	tests := []struct {
		name  string
		linux spec.Linux
		want  map[string]string
	}{
		{
			name:  "old body: pem with defaults",
			linux: spec.Linux{ReloadService: "nginx"},
			want: map[string]string{"Format": "pem", "CertPath": "/etc/ssl/certs/shop-web.pem", "KeyPath": "/etc/ssl/private/shop-web.key",
				"ChainPath": "", "KeystorePath": "", "Owner": "", "Group": "", "CertMode": "", "KeyMode": "", "ReloadService": "nginx",
				"VerifyPort": "443", "VerifyAddress": "", "Starttls": ""},
		},
		{
			name: "split with ownership, modes, address and starttls",
			linux: spec.Linux{Format: "split", CertPath: "/etc/ssl/a.pem", ChainPath: "/etc/ssl/a.chain", KeyPath: "/etc/ssl/a.key",
				Owner: "root", Group: "ssl-cert", CertMode: "0644", KeyMode: "0640", VerifyAddress: "::1", Starttls: "smtp"},
			want: map[string]string{"Format": "split", "CertPath": "/etc/ssl/a.pem", "ChainPath": "/etc/ssl/a.chain", "KeyPath": "/etc/ssl/a.key",
				"KeystorePath": "", "Owner": "root", "Group": "ssl-cert", "CertMode": "0644", "KeyMode": "0640", "VerifyAddress": "::1", "Starttls": "smtp"},
		},
		{
			name:  "jks: only the keystore path",
			linux: spec.Linux{Format: "jks", KeystorePath: "/opt/tomcat/shop.jks"},
			want:  map[string]string{"Format": "jks", "CertPath": "", "KeyPath": "", "ChainPath": "", "KeystorePath": "/opt/tomcat/shop.jks"},
		},
		{
			name:  "combined: no key path",
			linux: spec.Linux{Format: "combined", CertPath: "/etc/haproxy/certs/shop.pem"},
			want:  map[string]string{"Format": "combined", "CertPath": "/etc/haproxy/certs/shop.pem", "KeyPath": ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &recordingSSM{}
			f := New(api, Options{Document: "certferry-install", Installer: installer})
			in := linuxInstall(tc.linux)
			if _, err := f.Send(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			got := api.sent[0].Parameters
			for k, v := range tc.want {
				if !slices.Equal(got[k], []string{v}) {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for k, v := range map[string]string{
				"AllowedPrefixes": "/etc/ssl:/opt", "InstallerBucket": installer.Bucket, "InstallerKeyPrefix": "installer/",
				"InstallerSha256LinuxAmd64": installer.SHA256LinuxAmd64, "InstallerSha256LinuxArm64": installer.SHA256LinuxArm64,
				"InstallerSha256WindowsAmd64": installer.SHA256WindowsAmd64, "SecretId": "certferry/shop-web",
			} {
				if !slices.Equal(got[k], []string{v}) {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			// A retry finds the command by its send id and the same parameters, installer included.
			found, err := f.Find(context.Background(), in, time.Now().Add(-time.Hour))
			if err != nil || found == nil || found.ID != "cmd-1" {
				t.Fatalf("Find() = %+v, %v", found, err)
			}
			// A new installer is a different install: not adopted.
			moved := installer
			moved.SHA256LinuxAmd64 = strings.Repeat("d", 64)
			f2 := New(api, Options{Document: "certferry-install", Installer: moved})
			if found, err := f2.Find(context.Background(), in, time.Now().Add(-time.Hour)); err != nil || found != nil {
				t.Fatalf("Find() with another installer = %+v, %v, want nothing", found, err)
			}
		})
	}
}

// The key prefix has the stack's default when none is configured, so the
// document's InstallerKeyPrefix pattern (which refuses "") holds.
func TestInstallerKeyPrefixDefault(t *testing.T) {
	api := &recordingSSM{}
	if _, err := New(api, Options{Document: "d"}).Send(context.Background(), linuxInstall(spec.Linux{})); err != nil {
		t.Fatal(err)
	}
	if got := api.sent[0].Parameters["InstallerKeyPrefix"]; !slices.Equal(got, []string{"installer/"}) {
		t.Fatalf("InstallerKeyPrefix = %q", got)
	}
}

// Every parameter the fleet sends is declared by the SSM document, and the
// values of valid specs pass its allowedPattern: SendCommand would refuse
// anything else (InvalidParameters).
func TestParametersAgreeWithDocument(t *testing.T) {
	raw, err := os.ReadFile("../../ssm-documents/certferry-install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Parameters map[string]struct {
			AllowedPattern string `yaml:"allowedPattern"`
		} `yaml:"parameters"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	f := New(&recordingSSM{}, Options{Document: "d", Installer: installer})
	for _, l := range []spec.Linux{
		{},
		{Format: "split", ChainPath: "/etc/ssl/certs/c.pem", Owner: "www-data", Group: "0", CertMode: "644", KeyMode: "0600", VerifyAddress: "2001:db8::1", Starttls: "imap"},
		{Format: "combined", CertPath: "/etc/haproxy/certs/shop.pem"},
		{Format: "pkcs12", KeystorePath: "/opt/app/shop.p12"},
		{Format: "jks", KeystorePath: "/opt/app/shop.jks", VerifyAddress: "app.internal"},
	} {
		in := linuxInstall(l)
		if err := in.Spec.Validate(func(string) error { return nil }); err != nil {
			t.Fatalf("test spec invalid: %v", err)
		}
		params := f.parameters(in)
		for _, name := range slices.Sorted(maps.Keys(params)) {
			p, ok := doc.Parameters[name]
			if !ok {
				t.Errorf("the document declares no parameter %s", name)
				continue
			}
			re, err := regexp.Compile(p.AllowedPattern)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if v := params[name][0]; !re.MatchString(v) {
				t.Errorf("format %q: %s=%q does not match the document's allowedPattern %s", l.Format, name, v, p.AllowedPattern)
			}
		}
	}
}
