package document

import (
	"regexp"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/spec"
)

func loadDoc(t *testing.T) *Document {
	t.Helper()
	d, err := Load(docPath)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

var wantParams = []string{"SecretId", "CertName", "CertPath", "KeyPath", "ReloadService", "VerifyPort", "ServerName",
	"ExpectedFingerprint", "Region", "CertStore", "IisSite"}

func TestDocumentShape(t *testing.T) {
	d := loadDoc(t)
	if d.SchemaVersion != "2.2" {
		t.Fatalf("schemaVersion %q", d.SchemaVersion)
	}
	if len(d.Parameters) != len(wantParams) {
		t.Fatalf("parameters %d, want %d", len(d.Parameters), len(wantParams))
	}
	for _, name := range wantParams {
		p, ok := d.Parameters[name]
		if !ok {
			t.Fatalf("parameter %s missing", name)
		}
		if p.InterpolationType != "ENV_VAR" {
			t.Errorf("%s: interpolationType %q, want ENV_VAR", name, p.InterpolationType)
		}
		if !strings.HasPrefix(p.AllowedPattern, "^") || !strings.HasSuffix(p.AllowedPattern, "$") {
			t.Errorf("%s: allowedPattern %q is not anchored", name, p.AllowedPattern)
		}
		re, err := regexp.Compile(p.AllowedPattern)
		if err != nil {
			t.Errorf("%s: allowedPattern does not compile: %v", name, err)
		}
		if p.Default != nil && !re.MatchString(*p.Default) {
			t.Errorf("%s: default %q fails its own pattern", name, *p.Default)
		}
	}
	platforms := map[string]string{}
	for _, s := range d.MainSteps {
		pc := s.Precondition["StringEquals"]
		if len(pc) != 2 || pc[0] != "platformType" {
			t.Fatalf("step %s has no platformType precondition", s.Name)
		}
		platforms[pc[1]] = s.Action
	}
	if platforms["Linux"] != "aws:runShellScript" || platforms["Windows"] != "aws:runPowerShellScript" {
		t.Fatalf("steps %v", platforms)
	}
}

// Each step reads every parameter it uses from SSM_<Name>, with the
// documented {{Name}} fallback for agents that substitute text, and never
// uses a parameter's {{ }} text anywhere else.
func TestScriptsUseParametersAsEnvironment(t *testing.T) {
	d := loadDoc(t)
	linux, _ := d.Script("Linux")
	windows, _ := d.Script("Windows")
	for _, name := range wantParams {
		fallback := regexp.MustCompile(`(?m)^\s*\[ -z "\$\{SSM_` + name + `\+x\}" \] && SSM_` + name + `="\{\{` + name + `\}\}"$`)
		uses := strings.Count(linux, "{{"+name+"}}")
		if uses > 0 && !fallback.MatchString(linux) {
			t.Errorf("Linux: {{%s}} used outside the documented fallback", name)
		}
		if uses > 1 {
			t.Errorf("Linux: {{%s}} appears %d times", name, uses)
		}
		wf := "if ($null -eq $env:SSM_" + name + ") { $env:SSM_" + name + " = '{{" + name + "}}' }"
		if n := strings.Count(windows, "{{"+name+"}}"); n > 1 || (n == 1 && !strings.Contains(windows, wf)) {
			t.Errorf("Windows: {{%s}} used outside the documented fallback", name)
		}
	}
	for _, p := range []string{"SecretId", "CertName", "CertPath", "KeyPath", "ReloadService", "VerifyPort", "ServerName", "ExpectedFingerprint", "Region"} {
		if !strings.Contains(linux, "$SSM_"+p) {
			t.Errorf("Linux step never reads SSM_%s", p)
		}
	}
	for _, p := range []string{"SecretId", "ExpectedFingerprint", "Region", "CertStore", "IisSite", "VerifyPort", "ServerName"} {
		if !strings.Contains(windows, "$env:SSM_"+p) {
			t.Errorf("Windows step never reads SSM_%s", p)
		}
	}
}

// PowerShell is not on these machines, so the Windows step is checked
// statically: fetch, import, rebind, verify, rollback, result line.
func TestWindowsStepStatic(t *testing.T) {
	d := loadDoc(t)
	w, err := d.Script("Windows")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Get-SECSecretValue", "aws secretsmanager get-secret-value", "Import-PfxCertificate", "AddSslCertificate",
		"AuthenticateAsClient", "'rolled_back'", "'unchanged'", "'installed'", "'CERTFERRY_RESULT '", "ConvertTo-Json -Compress",
		"Remove-Item -Path $pfxFile", "SHA256",
	} {
		if !strings.Contains(w, want) {
			t.Errorf("Windows step lacks %q", want)
		}
	}
	if strings.Contains(w, "Write-Output $bundle") || strings.Contains(w, "Write-Host $bundle") {
		t.Error("Windows step prints the bundle")
	}
	l, _ := d.Script("Linux")
	if !strings.Contains(l, "CERTFERRY_RESULT {") || !strings.Contains(l, "-passin fd:3") {
		t.Error("Linux step lacks the result line or passes the passphrase otherwise than by fd")
	}
	if strings.Contains(l, "-passin pass:") || strings.Contains(l, "set -x") {
		t.Error("Linux step could expose the passphrase")
	}
}

var hostile = []string{
	";", "a;b", "$(id)", "`id`", "a\nb", "a\rb", "..", "../etc/passwd", "/etc/ssl/../shadow", "a b", `a"b`, "a'b",
	"a|b", "a&b", "a>b", "$HOME", "${IFS}", "\\", "\x00", strings.Repeat("a", 300), "/" + strings.Repeat("a/", 150),
}

func TestAllowedPatternsRejectHostileStrings(t *testing.T) {
	d := loadDoc(t)
	legal := map[string][]string{
		"SecretId":            {"certferry/shop-web", "team-a/certferry/api"},
		"CertName":            {"shop-web", "a", "a1-b2"},
		"CertPath":            {"/etc/ssl/certs/shop-web.pem", "/opt/app/tls/server.crt", "/etc/haproxy/certs/site.pem"},
		"KeyPath":             {"/etc/ssl/private/shop-web.key", "/etc/pki/tls/private/k_1.key"},
		"ReloadService":       {"", "nginx", "apache2", "haproxy@edge.service", "httpd"},
		"VerifyPort":          {"0", "443", "8443", "65535"},
		"ServerName":          {"", "shop.example.com", "localhost", "a-b.c-d.example"},
		"ExpectedFingerprint": {strings.Repeat("AB:", 31) + "CD"},
		"Region":              {"us-east-1", "eu-central-2", "us-gov-west-1", "ap-southeast-4"},
		"CertStore":           {`LocalMachine\My`, `LocalMachine\WebHosting`, `CurrentUser\My`},
		"IisSite":             {"", "Default Web Site", "shop_web-01"},
	}
	extra := map[string][]string{
		"VerifyPort":          {"65536", "-1", "0443", "99999"},
		"ExpectedFingerprint": {strings.Repeat("ab:", 31) + "cd", strings.Repeat("AB:", 19) + "CD"},
		"Region":              {"US-EAST-1", "us-east"},
		"CertStore":           {`LocalMachine\My\..`, `Machine\My`, `LocalMachine/My`},
		"CertName":            {"-rf", "Shop"},
		"ReloadService":       {"-x", ".."},
		"CertPath":            {"relative/x.pem", "/etc/ssl/", "/etc//x", "/etc/.hidden"},
		"IisSite":             {" leading"},
		"SecretId":            {"certferry/../x", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "certferry/Shop", "noprefix"},
	}
	for _, name := range wantParams {
		re, err := d.Pattern(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range legal[name] {
			if !re.MatchString(v) {
				t.Errorf("%s rejects legal %q", name, v)
			}
		}
		for _, v := range append(append([]string{}, hostile...), extra[name]...) {
			if name == "IisSite" && v == "a b" {
				continue // IIS site names have spaces ("Default Web Site"); the script only quotes them
			}
			if re.MatchString(v) {
				t.Errorf("%s accepts hostile %q", name, v)
			}
		}
	}
}

// What the API accepts, the document must accept too (or SendCommand would
// fail after the bundle was stored), and vice versa for the shared fields.
func TestAPIPatternsAgreeWithDocument(t *testing.T) {
	d := loadDoc(t)
	pairs := []struct {
		param string
		api   *regexp.Regexp
	}{
		{"CertName", spec.NamePattern},
		{"CertPath", spec.PathPattern},
		{"ReloadService", spec.ServicePattern},
		{"ServerName", spec.ServerNamePattern},
		{"CertStore", spec.StorePattern},
		{"IisSite", spec.IISSitePattern},
	}
	corpus := append(append([]string{}, hostile...), "shop-web", "/etc/ssl/certs/a.pem", "nginx", "haproxy@x", "shop.example.com",
		`LocalMachine\My`, "Default Web Site", "a", "-a", "/a/.b", "/a/b.", "x.", "A", "a@b")
	for _, p := range pairs {
		re, _ := d.Pattern(p.param)
		for _, v := range corpus {
			if p.api.MatchString(v) && !re.MatchString(v) {
				t.Errorf("%s: API accepts %q but the document refuses it", p.param, v)
			}
		}
	}
}
