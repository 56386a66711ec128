package nodeinstall

import (
	"os"
	"regexp"
	"testing"

	"gopkg.in/yaml.v3"
)

// The installer re-checks every parameter with the document's own
// allowedPattern (defence in depth): the two must not drift apart.
// VerifyAddress is parsed instead (an IP literal or a host name), which is
// stricter than the document's character class.
func TestGrammarMatchesDocument(t *testing.T) {
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
	optional := func(re *regexp.Regexp) string { return "^(" + re.String()[1:len(re.String())-1] + ")?$" }
	ours := map[string]string{
		"SecretId": secretIDPattern.String(), "CertName": namePattern.String(),
		"ExpectedFingerprint": fingerprintPattern.String(), "Region": regionPattern.String(),
		"CertPath": optional(pathPattern), "KeyPath": optional(pathPattern), "ChainPath": optional(pathPattern),
		"KeystorePath": optional(pathPattern), "Owner": ownerPattern.String(), "Group": ownerPattern.String(),
		"CertMode": modePattern.String(), "KeyMode": modePattern.String(), "ReloadService": servicePattern.String(),
		"VerifyPort": portPattern.String(), "ServerName": hostPattern.String(), "CertStore": storePattern.String(),
		"IisSite": iisSitePattern.String(),
	}
	for name, want := range ours {
		got := doc.Parameters[name].AllowedPattern
		if got != want {
			t.Errorf("%s: document %q, installer %q", name, got, want)
		}
	}
}
