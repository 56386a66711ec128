package agentrun

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/nodeinstall"
	"github.com/certferry/certferry/internal/spec"
)

const docPath = "../../ssm-documents/certferry-install.yaml"

func loadDoc(t testing.TB) *Document {
	t.Helper()
	d, err := Load(docPath)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The parameters of NODE-CONTRACT.md; the first four have no default.
var (
	requiredParams = []string{"SecretId", "CertName", "ExpectedFingerprint", "Region"}
	wantParams     = append(slicesClone(requiredParams), "Format", "CertPath", "KeyPath", "ChainPath", "KeystorePath",
		"Owner", "Group", "CertMode", "KeyMode", "ReloadService", "VerifyPort", "VerifyAddress", "ServerName", "Starttls",
		"AllowedPrefixes", "CertStore", "IisSite", "InstallerBucket", "InstallerKeyPrefix",
		"InstallerSha256LinuxAmd64", "InstallerSha256LinuxArm64", "InstallerSha256WindowsAmd64")
)

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// textualParams are the parameters the download steps' sourceInfo names as
// {{Name}}: AWS documents ENV_VAR parameters only as SSM_<Name> variables
// for agents >= 3.3.2746.0, not whether such agents still paste them into
// other plugins' inputs, so these are plain parameters, pasted by every
// agent; their patterns hold no character a shell, PowerShell or a URL
// would read as syntax (TestTextualParamsAreInert).
var textualParams = []string{"Region", "InstallerBucket", "InstallerKeyPrefix",
	"InstallerSha256LinuxAmd64", "InstallerSha256LinuxArm64", "InstallerSha256WindowsAmd64"}

// Every {{Name}} outside the scripts names a textual parameter, and every
// textual parameter's pattern refuses shell, PowerShell and URL syntax.
func TestTextualParamsAreInert(t *testing.T) {
	d := loadDoc(t)
	ref := regexp.MustCompile(`\{\{\s*([A-Za-z0-9]+)\s*\}\}`)
	used := map[string]bool{}
	for _, st := range d.MainSteps {
		if st.Action == "aws:runShellScript" || st.Action == "aws:runPowerShellScript" {
			continue
		}
		raw, _ := json.Marshal(st.Inputs)
		for _, m := range ref.FindAllStringSubmatch(string(raw), -1) {
			used[m[1]] = true
			if !slicesContains(textualParams, m[1]) {
				t.Errorf("step %s pastes {{%s}}, an ENV_VAR parameter: agents >= 3.3.2746.0 may leave it as written", st.Name, m[1])
			}
		}
	}
	for _, name := range textualParams {
		if !used[name] && name != "Region" {
			t.Errorf("%s is textual but no download step uses it", name)
		}
		re, err := d.Pattern(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"a'b", `a"b`, "a$b", "a`b", "a;b", "a b", "a\nb", "a?b", "a#b", "a%b", "a&b", "a|b", "a(b", "a{b", "a\\b", "a@b"} {
			if re.MatchString(bad) {
				t.Errorf("%s's allowedPattern accepts %q", name, bad)
			}
		}
	}
}

func TestDocumentShape(t *testing.T) {
	d := loadDoc(t)
	if len(d.Parameters) != len(wantParams) {
		t.Errorf("%d parameters, want %d", len(d.Parameters), len(wantParams))
	}
	for _, name := range wantParams {
		p, ok := d.Parameters[name]
		if !ok {
			t.Errorf("parameter %s missing", name)
			continue
		}
		wantInterp := "ENV_VAR"
		if slicesContains(textualParams, name) {
			wantInterp = ""
		}
		if p.Type != "String" || p.InterpolationType != wantInterp {
			t.Errorf("%s: type %q interpolationType %q, want String %q", name, p.Type, p.InterpolationType, wantInterp)
		}
		if !strings.HasPrefix(p.AllowedPattern, "^") || !strings.HasSuffix(p.AllowedPattern, "$") {
			t.Errorf("%s: allowedPattern %q is not anchored", name, p.AllowedPattern)
		}
		re, err := d.Pattern(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		required := slicesContains(requiredParams, name)
		switch {
		case required && p.Default != nil:
			t.Errorf("%s has a default; SendCommand must carry it", name)
		case !required && p.Default == nil:
			t.Errorf("%s has no default: commands and bodies older than it would fail", name)
		case p.Default != nil && !re.MatchString(*p.Default):
			t.Errorf("%s: default %q fails its own pattern", name, *p.Default)
		}
	}

	// Step names are the tracker's contract; each platform downloads, then installs.
	var names []string
	for _, s := range d.MainSteps {
		names = append(names, s.Name+"/"+s.Action+"/"+s.Platform())
	}
	want := []string{
		"downloadLinuxAmd64/aws:downloadContent/Linux", "downloadLinuxArm64/aws:downloadContent/Linux",
		"installLinux/aws:runShellScript/Linux",
		"downloadWindowsAmd64/aws:downloadContent/Windows", "installWindows/aws:runPowerShellScript/Windows",
	}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("steps %v\nwant  %v", names, want)
	}
	for _, s := range d.MainSteps {
		if s.OnFailure != "" {
			t.Errorf("step %s has onFailure %q: the install step must run (and report) after a failed download", s.Name, s.OnFailure)
		}
	}

	// The installer's whole budget plus a margin fits the install steps' timeout.
	for _, name := range []string{"installLinux", "installWindows"} {
		s, _ := d.Step(name)
		ts, _ := s.Inputs["timeoutSeconds"].(string)
		secs, err := strconv.Atoi(ts)
		if err != nil {
			t.Fatalf("%s timeoutSeconds %q", name, ts)
		}
		if limit := time.Duration(secs) * time.Second; nodeinstall.Budget+60*time.Second > limit {
			t.Errorf("%s: timeoutSeconds %s < installer budget %s + 60 s", name, limit, nodeinstall.Budget)
		}
	}
}

// The download steps fetch the content-addressed key of their platform
// (NODE-CONTRACT.md, Layout) into the directory the install step reads.
func TestDownloadSteps(t *testing.T) {
	d := loadDoc(t)
	values := map[string]string{"Region": "eu-west-1", "InstallerBucket": "stack-installerbucket-1a2b", "InstallerKeyPrefix": "installer/",
		"InstallerSha256LinuxAmd64": strings.Repeat("a", 64), "InstallerSha256LinuxArm64": strings.Repeat("b", 64),
		"InstallerSha256WindowsAmd64": strings.Repeat("c", 64)}
	tests := []struct{ step, key, dest, script, relative string }{
		{"downloadLinuxAmd64", "installer/" + strings.Repeat("a", 64) + "/certferry-node", "linux-amd64/certferry-node", "installLinux", "./linux-$arch/certferry-node"},
		{"downloadLinuxArm64", "installer/" + strings.Repeat("b", 64) + "/certferry-node", "linux-arm64/certferry-node", "installLinux", "./linux-$arch/certferry-node"},
		{"downloadWindowsAmd64", "installer/" + strings.Repeat("c", 64) + "/certferry-node.exe", `windows-amd64\certferry-node.exe`, "installWindows", `'windows-amd64\certferry-node.exe'`},
	}
	for _, tc := range tests {
		t.Run(tc.step, func(t *testing.T) {
			s, ok := d.Step(tc.step)
			if !ok {
				t.Fatal("missing")
			}
			in := substitute(s.Inputs, values).(map[string]any)
			if in["sourceType"] != "S3" || in["destinationPath"] != tc.dest {
				t.Fatalf("inputs %v", in)
			}
			info, _ := in["sourceInfo"].(string)
			path := strings.TrimSuffix(strings.TrimPrefix(info, `{"path": "`), `"}`)
			loc, err := ParseS3URL(path)
			if err != nil {
				t.Fatal(err)
			}
			if loc != (S3Location{Bucket: "stack-installerbucket-1a2b", Key: tc.key, Region: "eu-west-1"}) {
				t.Fatalf("downloads %+v", loc)
			}
			install, _ := d.Step(tc.script)
			script, _ := install.Script()
			if !strings.Contains(script, tc.relative) {
				t.Fatalf("%s does not read %s", tc.script, tc.relative)
			}
		})
	}
}

// Each script reads every parameter from SSM_<Name>, with the documented
// fallback for agents that paste {{Name}} text, and never uses a
// parameter's {{ }} text anywhere else.
func TestScriptsUseParametersAsEnvironment(t *testing.T) {
	d := loadDoc(t)
	ls, _ := d.Step("installLinux")
	ws, _ := d.Step("installWindows")
	linux, _ := ls.Script()
	windows, _ := ws.Script()
	exports := regexp.MustCompile(`(?m)^export (SSM_\w+( SSM_\w+)*)$`).FindStringSubmatch(linux)
	if exports == nil {
		t.Fatal("Linux step exports no SSM_* variables")
	}
	exported := strings.Fields(exports[1])
	for _, name := range wantParams {
		fallback := `[ -n "${SSM_` + name + `+x}" ] || SSM_` + name + `='{{` + name + `}}'`
		if !strings.Contains(linux, "\n"+fallback+"\n") {
			t.Errorf("Linux: no fallback line for %s", name)
		}
		if n := strings.Count(linux, "{{"+name+"}}"); n != 1 {
			t.Errorf("Linux: {{%s}} appears %d times, want once (the fallback)", name, n)
		}
		if !slicesContains(exported, "SSM_"+name) {
			t.Errorf("Linux: SSM_%s not exported to the installer", name)
		}
		wf := "if ($null -eq $env:SSM_" + name + ") { $env:SSM_" + name + " = '{{" + name + "}}' }"
		if !strings.Contains(windows, wf) {
			t.Errorf("Windows: no fallback line for %s", name)
		}
		if n := strings.Count(windows, "{{"+name+"}}"); n != 1 {
			t.Errorf("Windows: {{%s}} appears %d times, want once (the fallback)", name, n)
		}
	}
	if refs := refPattern.FindAllString(linux+windows, -1); len(refs) != 2*len(wantParams) {
		t.Errorf("%d {{ }} references in the scripts, want %d (one fallback each)", len(refs), 2*len(wantParams))
	}
}

// SSM Agent runs the Linux step with sh (dash on Debian/Ubuntu, busybox
// ash on minimal images): no bash syntax.
func TestLinuxStepIsPOSIXShell(t *testing.T) {
	d := loadDoc(t)
	s, _ := d.Step("installLinux")
	script, _ := s.Script()
	for _, bashism := range []string{"[[", "pipefail", "local ", "function ", "source ", "$'", "=(", "${!", "&>", "<<<", "declare ", "#!/bin/bash", "$RANDOM", "==", "${#*}"} {
		if strings.Contains(script, bashism) {
			t.Errorf("Linux step uses %q, which POSIX sh lacks", bashism)
		}
	}
	for _, sh := range []string{"dash", "sh"} {
		path, err := exec.LookPath(sh)
		if err != nil {
			continue
		}
		if out, err := exec.Command(path, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v: %s", sh, err, out)
		}
	}
	// The Windows step checks the hash the same way, on its cached copy.
	w, _ := d.Step("installWindows")
	ws, _ := w.Script()
	for _, want := range []string{"Get-FileHash -LiteralPath $tmp -Algorithm SHA256", "-cne $want", "& $bin install", "'CERTFERRY_RESULT '", "SetAccessRuleProtection"} {
		if !strings.Contains(ws, want) {
			t.Errorf("Windows step lacks %q", want)
		}
	}
	// Any user may create folders under %ProgramData%: the step runs the
	// installer only from a chain owned by SYSTEM or Administrators, each
	// checked before the binary is trusted (PowerShell cannot run here).
	for _, want := range []string{"Assert-Trusted $state", "Assert-Trusted $cache", "Assert-Trusted $dir", "Assert-Trusted $bin", "'S-1-5-18'", "'S-1-5-32-544'"} {
		if !strings.Contains(ws, want) {
			t.Errorf("Windows step lacks %q", want)
		}
	}
	if i, j := strings.Index(ws, "Assert-Trusted $dir"), strings.Index(ws, "Get-FileHash -LiteralPath $bin"); i < 0 || j < 0 || i > j {
		t.Error("the Windows step must check the cache directory's owner before it trusts a cached binary")
	}
}

var hostile = []string{
	";", "a;b", "$(id)", "`id`", "a\nb", "a\rb", "..", "../etc/passwd", "/etc/ssl/../shadow", "a b", `a"b`, "a'b",
	"a|b", "a&b", "a>b", "$HOME", "${IFS}", "\\", "\x00", strings.Repeat("a", 300), "/" + strings.Repeat("a/", 150),
	"'; id; '", "{{CertName}}", "a\tb",
}

func TestAllowedPatternsRejectHostileStrings(t *testing.T) {
	d := loadDoc(t)
	sha := strings.Repeat("0123456789abcdef", 4)
	legal := map[string][]string{
		"SecretId":                    {"certferry/shop-web", "team-a/certferry/api"},
		"CertName":                    {"shop-web", "a", "a1-b2"},
		"ExpectedFingerprint":         {strings.Repeat("AB:", 31) + "CD"},
		"Region":                      {"us-east-1", "eu-central-2", "us-gov-west-1", "ap-southeast-4"},
		"Format":                      {"", "pem", "split", "combined", "pkcs12", "jks"},
		"CertPath":                    {"", "/etc/ssl/certs/shop-web.pem", "/opt/app/tls/server.crt", "/etc/haproxy/certs/site.pem"},
		"KeyPath":                     {"", "/etc/ssl/private/shop-web.key", "/etc/pki/tls/private/k_1.key"},
		"ChainPath":                   {"", "/etc/ssl/certs/chain.pem"},
		"KeystorePath":                {"", "/opt/app/keystore.p12", "/opt/tomcat/conf/site.jks"},
		"Owner":                       {"", "root", "www-data", "_haproxy", "33"},
		"Group":                       {"", "ssl-cert", "0"},
		"CertMode":                    {"", "644", "0644"},
		"KeyMode":                     {"", "600", "0640"},
		"ReloadService":               {"", "nginx", "apache2", "haproxy@edge.service", "httpd"},
		"VerifyPort":                  {"0", "443", "8443", "65535"},
		"VerifyAddress":               {"", "127.0.0.1", "::1", "2001:db8::1", "localhost", "shop.example.com"},
		"ServerName":                  {"", "shop.example.com", "localhost", "a-b.c-d.example"},
		"Starttls":                    {"", "smtp", "imap", "pop3"},
		"AllowedPrefixes":             {"", "/etc/ssl", "/etc/ssl:/opt", "/etc/ssl:/etc/pki:/etc/nginx:/etc/httpd:/etc/apache2:/etc/haproxy:/opt:/srv:/var/lib"},
		"CertStore":                   {`LocalMachine\My`, `LocalMachine\WebHosting`, `CurrentUser\My`},
		"IisSite":                     {"", "Default Web Site", "shop_web-01"},
		"InstallerBucket":             {"", "certferry-installerbucket-1a2b3c4d", "my.bucket.example"},
		"InstallerKeyPrefix":          {"installer/", "nodes/installer/", "a/b/c/d/"},
		"InstallerSha256LinuxAmd64":   {"", sha},
		"InstallerSha256LinuxArm64":   {"", sha},
		"InstallerSha256WindowsAmd64": {"", sha},
	}
	extra := map[string][]string{
		"VerifyPort":                {"65536", "-1", "0443", "99999", ""},
		"ExpectedFingerprint":       {strings.Repeat("ab:", 31) + "cd", strings.Repeat("AB:", 19) + "CD"},
		"Region":                    {"US-EAST-1", "us-east"},
		"CertStore":                 {`LocalMachine\My\..`, `Machine\My`, `LocalMachine/My`},
		"CertName":                  {"-rf", "Shop"},
		"ReloadService":             {"-x", ".."},
		"CertPath":                  {"relative/x.pem", "/etc/ssl/", "/etc//x", "/etc/.hidden"},
		"AllowedPrefixes":           {"/etc/ssl:", ":/etc/ssl", "/etc/ssl::/opt", "etc/ssl", "/etc/ssl/../x"},
		"Format":                    {"PEM", "der", "pem "},
		"Owner":                     {"Root", "-x", "a b", strings.Repeat("a", 33)},
		"CertMode":                  {"0800", "7777", "u+rw"},
		"Starttls":                  {"SMTP", "ftp"},
		"IisSite":                   {" leading"},
		"SecretId":                  {"certferry/../x", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x", "certferry/Shop", "noprefix"},
		"InstallerBucket":           {"Bucket", "-bucket", "ab", "bucket/key", "bucket-"},
		"InstallerKeyPrefix":        {"", "installer", "/installer/", "../", "./", "a/b/c/d/e/", ".hidden/"},
		"InstallerSha256LinuxAmd64": {strings.ToUpper(sha), sha[:63], sha + "0", "../" + sha[3:]},
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
		for _, v := range append(slicesClone(hostile), extra[name]...) {
			if name == "IisSite" && v == "a b" {
				continue // IIS site names have spaces ("Default Web Site"); the script only quotes them
			}
			if name == "VerifyAddress" && v == ".." {
				continue // the API's address grammar (hex, ':' and '.') allows it; no shell or path meaning
			}
			if re.MatchString(v) {
				t.Errorf("%s accepts hostile %q", name, v)
			}
		}
	}
}

// What the API (internal/spec) and the configuration accept, the document
// must accept too, or SendCommand would fail after the bundle was stored.
func TestAPIPatternsAgreeWithDocument(t *testing.T) {
	d := loadDoc(t)
	optional := func(re *regexp.Regexp) func(string) bool {
		return func(v string) bool { return v == "" || re.MatchString(v) }
	}
	pairs := []struct {
		param string
		api   func(string) bool
	}{
		{"CertName", spec.NamePattern.MatchString},
		{"CertPath", spec.PathPattern.MatchString},
		{"KeyPath", spec.PathPattern.MatchString},
		{"ChainPath", optional(spec.PathPattern)},
		{"KeystorePath", optional(spec.PathPattern)},
		{"ReloadService", optional(spec.ServicePattern)},
		{"ServerName", optional(spec.ServerNamePattern)},
		{"CertStore", spec.StorePattern.MatchString},
		{"IisSite", optional(spec.IISSitePattern)},
		{"Format", spec.FormatPattern.MatchString},
		{"Owner", spec.OwnerPattern.MatchString},
		{"Group", spec.OwnerPattern.MatchString},
		{"CertMode", spec.ModePattern.MatchString},
		{"KeyMode", spec.ModePattern.MatchString},
		{"Starttls", spec.StarttlsPattern.MatchString},
		{"VerifyAddress", spec.VerifyAddressPattern.MatchString},
		{"AllowedPrefixes", spec.AllowedPrefixesPattern.MatchString},
		{"InstallerKeyPrefix", spec.KeyPrefixPattern.MatchString},
		{"InstallerSha256LinuxAmd64", spec.SHA256Pattern.MatchString},
		{"InstallerSha256LinuxArm64", spec.SHA256Pattern.MatchString},
		{"InstallerSha256WindowsAmd64", spec.SHA256Pattern.MatchString},
	}
	corpus := append(slicesClone(hostile), "shop-web", "/etc/ssl/certs/a.pem", "nginx", "haproxy@x", "shop.example.com",
		`LocalMachine\My`, "Default Web Site", "a", "-a", "/a/.b", "/a/b.", "x.", "A", "a@b", "pem", "jks", "www-data", "0640",
		"smtp", "::1", "127.0.0.1", "fe80::1", "/etc/ssl:/opt", "installer/", "a.b/", strings.Repeat("ab", 32), "0", "33")
	for _, p := range pairs {
		re, err := d.Pattern(p.param)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range corpus {
			if p.api(v) && !re.MatchString(v) {
				t.Errorf("%s: the API accepts %q but the document refuses it", p.param, v)
			}
		}
	}
}

func slicesContains(s []string, v string) bool {
	for _, e := range s {
		if e == v {
			return true
		}
	}
	return false
}
