package agentrun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/certferry/certferry/internal/document"
)

// fakeS3 serves objects from a map and records what was asked. Like S3
// without s3:ListBucket, listing is refused (the node policy grants only
// s3:GetObject), which the agent treats as "the key is one object".
type fakeS3 struct {
	objects map[string][]byte // "bucket/key"
	gets    []string
}

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	k := aws.ToString(in.Bucket) + "/" + aws.ToString(in.Key)
	f.gets = append(f.gets, k)
	b, ok := f.objects[k]
	if !ok {
		return nil, &s3types.NoSuchKey{Message: aws.String("The specified key does not exist.")}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func (f *fakeS3) ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return nil, errors.New("AccessDenied: s3:ListBucket not granted")
}

const tinyDoc = `
schemaVersion: "2.2"
description: test
parameters:
  Word:
    type: String
    default: hello
    allowedPattern: '^[a-z]+$'
    interpolationType: ENV_VAR
  Plain:
    type: String
    default: plain
    allowedPattern: '^[a-z]+$'
  Key:
    type: String
    default: obj
    allowedPattern: '^[a-z/]+$'
mainSteps:
  - action: aws:downloadContent
    name: fetch
    precondition:
      StringEquals: [platformType, Linux]
    inputs:
      sourceType: S3
      sourceInfo: '{"path": "https://s3.us-east-1.amazonaws.com/bkt/{{Key}}"}'
      destinationPath: sub/file.txt
  - action: aws:runShellScript
    name: show
    inputs:
      timeoutSeconds: "60"
      runCommand:
        - echo "word=${SSM_Word-unset} plain=${SSM_Plain-unset} text={{Word}} plain2={{Plain}}"
        - echo "pwd=$(pwd) script=$0 file=$(cat sub/file.txt)"
        - echo "id=$AWS_SSM_INSTANCE_ID region=$AWS_SSM_REGION_NAME cmd=$SSM_COMMAND_ID"
  - action: aws:runPowerShellScript
    name: windowsOnly
    precondition:
      StringEquals: [platformType, Windows]
    inputs:
      runCommand: ["Write-Output nope"]
`

func parse(t *testing.T, raw string) *Document {
	t.Helper()
	d, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func newAgent(t *testing.T, s3 ObjectGetter) *Agent {
	return &Agent{Root: t.TempDir(), Platform: "Linux", InstanceID: "i-0123456789abcdef0", Region: "eu-west-1", S3: s3}
}

func TestRunEnvironmentAndSubstitution(t *testing.T) {
	d := parse(t, tinyDoc)
	s3 := &fakeS3{objects: map[string][]byte{"bkt/a/b": []byte("content")}}
	tests := []struct {
		name   string
		legacy bool
		want   string
	}{
		// ENV_VAR parameters arrive as SSM_<Name>; their {{ }} text stays in
		// the script; other parameters are substituted.
		{"current agent", false, "word=shout plain=unset text={{Word}} plain2=plain"},
		// Older agents paste every value and set no SSM_* variable.
		{"agent older than 3.3.2746.0", true, "word=unset plain=unset text=shout plain2=plain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(t, s3)
			a.Legacy = tc.legacy
			res, err := a.Run(context.Background(), d, map[string]string{"Word": "shout", "Key": "a/b"})
			if err != nil {
				t.Fatal(err)
			}
			show, _ := res.Step("show")
			if res.ExitCode != 0 || show.Status != StatusSuccess {
				t.Fatalf("exit %d %+v", res.ExitCode, res.Steps)
			}
			if !strings.Contains(show.Stdout, tc.want+"\n") {
				t.Errorf("stdout %q, want %q", show.Stdout, tc.want)
			}
			// The script file and the working directory of SSM Agent's layout;
			// the download landed where destinationPath says, {{Key}} substituted.
			wantDir := filepath.Join(res.Dir, "downloads")
			if !strings.Contains(show.Stdout, "pwd="+wantDir+" script="+filepath.Join(res.Dir, "show", "_script.sh")+" file=content\n") {
				t.Errorf("layout: %q", show.Stdout)
			}
			if !strings.Contains(show.Stdout, "id=i-0123456789abcdef0 region=eu-west-1 cmd="+res.CommandID+"\n") {
				t.Errorf("agent variables: %q", show.Stdout)
			}
			if st, err := os.Stat(filepath.Join(wantDir, "sub/file.txt")); err != nil || st.Mode().Perm() != 0o700 {
				t.Errorf("downloaded file: %v %v", st, err)
			}
			if w, _ := res.Step("windowsOnly"); w.Status != StatusSkipped {
				t.Errorf("Windows step on Linux: %s", w.Status)
			}
		})
	}
	if s3.gets[0] != "bkt/a/b" {
		t.Errorf("downloaded %v", s3.gets)
	}
}

// An ENV_VAR parameter in another plugin's input (downloadContent's
// sourceInfo): an agent older than 3.3.2746.0 pastes it; for newer agents
// AWS documents only the SSM_<Name> variable, so agent-run leaves the
// {{Name}} text as written and the download fails — which is why the
// document's download parameters are not ENV_VAR.
func TestEnvVarParameterNotPastedIntoDownloads(t *testing.T) {
	doc := strings.Replace(tinyDoc, "    allowedPattern: '^[a-z/]+$'\n", "    allowedPattern: '^[a-z/]+$'\n    interpolationType: ENV_VAR\n", 1)
	d := parse(t, doc)
	for _, legacy := range []bool{false, true} {
		s3 := &fakeS3{objects: map[string][]byte{"bkt/a/b": []byte("content")}}
		a := newAgent(t, s3)
		a.Legacy = legacy
		res, err := a.Run(context.Background(), d, map[string]string{"Word": "shout", "Key": "a/b"})
		if err != nil {
			t.Fatal(err)
		}
		fetch, _ := res.Step("fetch")
		switch {
		case legacy && (fetch.Status != StatusSuccess || s3.gets[0] != "bkt/a/b"):
			t.Errorf("legacy agent: fetch %s, gets %v; want the value pasted", fetch.Status, s3.gets)
		case !legacy && (fetch.Status != StatusFailed || s3.gets[0] != "bkt/{{Key}}"):
			t.Errorf("current agent: fetch %s, gets %v; want {{Key}} left as written", fetch.Status, s3.gets)
		}
	}
}

// SendCommand's checks: nothing runs when they fail.
func TestRunRefusesBadParameters(t *testing.T) {
	d := parse(t, strings.Replace(tinyDoc, "    default: hello\n", "", 1))
	tests := []struct {
		name   string
		params map[string]string
		err    string
	}{
		{"required missing", map[string]string{}, "parameter Word is required"},
		{"pattern", map[string]string{"Word": "a;id"}, `parameter Word: value "a;id" does not match its allowedPattern`},
		{"unknown", map[string]string{"Word": "a", "Nope": "x"}, "parameter Nope is not in the document"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(t, &fakeS3{})
			_, err := a.Run(context.Background(), d, tc.params)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if entries, _ := os.ReadDir(a.Root); len(entries) != 0 {
				t.Fatalf("something ran: %v", entries)
			}
		})
	}
	if _, err := Parse([]byte(strings.Replace(tinyDoc, "{{Key}}", "{{Nope}}", 1))); err == nil || !strings.Contains(err.Error(), "{{Nope}}, which is not a parameter") {
		t.Fatalf("reference to an unknown parameter: %v", err)
	}
}

// As SSM Agent with the default onFailure: a failed step does not stop the
// next; onFailure: exit does. agent-run exits with the last failing code.
func TestRunFailedSteps(t *testing.T) {
	doc := func(onFailure string) string {
		return `
schemaVersion: "2.2"
description: t
mainSteps:
  - action: aws:runShellScript
    name: first
    ` + onFailure + `
    inputs:
      runCommand: ["echo first", "exit 3"]
  - action: aws:runShellScript
    name: second
    inputs:
      runCommand: ["echo second"]
`
	}
	a := newAgent(t, nil)
	res, err := a.Run(context.Background(), parse(t, doc("")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := res.Step("second"); s.Status != StatusSuccess || res.ExitCode != 3 {
		t.Fatalf("default onFailure: %+v exit %d", res.Steps, res.ExitCode)
	}
	res, err = a.Run(context.Background(), parse(t, doc("onFailure: exit")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := res.Step("second"); s.Status != StatusSkipped || res.ExitCode != 3 {
		t.Fatalf("onFailure exit: %+v exit %d", res.Steps, res.ExitCode)
	}
}

// At timeoutSeconds the agent SIGKILLs the step's whole process group: the
// shell and what it started, which gets no chance to clean up.
func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("process states are read from /proc")
	}
	pids := filepath.Join(t.TempDir(), "pids")
	d := parse(t, `
schemaVersion: "2.2"
description: t
mainSteps:
  - action: aws:runShellScript
    name: slow
    inputs:
      timeoutSeconds: "5"
      runCommand:
        - trap 'echo trapped' TERM INT EXIT
        - sleep 300 &
        - echo "$$ $!" > `+pids+`
        - echo started
        - wait
`)
	a := newAgent(t, nil)
	res, err := a.Run(context.Background(), d, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := res.Step("slow")
	if s.Status != StatusTimedOut || s.ExitCode != KilledExitCode || res.ExitCode != KilledExitCode {
		t.Fatalf("step %+v, exit %d", s, res.ExitCode)
	}
	if s.Stdout != "started\n" {
		t.Errorf("stdout %q: the trap ran, so it was not SIGKILL", s.Stdout)
	}
	raw, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(raw)) {
		pid, _ := strconv.Atoi(f)
		for deadline := time.Now().Add(10 * time.Second); alive(pid); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d of the step's group still runs", pid)
			}
		}
	}
}

// alive: the process exists and is not a zombie waiting for its reaper.
func alive(pid int) bool {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

// installLinux of the real document with a stand-in installer (a script
// that reports its environment): download, SHA-256 check on the cached copy,
// run from the cache, prune, and the failures it reports itself.
type installRig struct {
	t        *testing.T
	doc      *Document
	s3       *fakeS3
	state    string
	marker   string
	fake     []byte
	sha      string
	params   map[string]string
	archHash string
}

func newInstallRig(t *testing.T) *installRig {
	t.Helper()
	r := &installRig{t: t, doc: loadDoc(t), state: filepath.Join(t.TempDir(), "state"), marker: filepath.Join(t.TempDir(), "ran")}
	r.fake = []byte("#!/bin/sh\necho \"ran $0 $1\" >> " + r.marker + "\nenv | grep '^SSM_' | sort\n" +
		`echo 'CERTFERRY_RESULT {"status": "installed", "fingerprint": "AB", "serial": "0c", "format": "pem", "reload": "done", "verify": "ok", "detail": ""}'` + "\n")
	sum := sha256.Sum256(r.fake)
	r.sha = hex.EncodeToString(sum[:])
	r.archHash = "InstallerSha256LinuxAmd64"
	if runtime.GOARCH == "arm64" {
		r.archHash = "InstallerSha256LinuxArm64"
	}
	r.s3 = &fakeS3{objects: map[string][]byte{"installers/installer/" + r.sha + "/certferry-node": r.fake}}
	r.params = map[string]string{
		"SecretId": "certferry/shop-web", "CertName": "shop-web", "ExpectedFingerprint": strings.Repeat("AB:", 31) + "CD",
		"Region": "eu-west-1", "InstallerBucket": "installers", r.archHash: r.sha,
	}
	return r
}

func (r *installRig) run(legacy bool) (*Result, StepResult) {
	r.t.Helper()
	a := newAgent(r.t, r.s3)
	a.Legacy = legacy
	a.Env = []string{"CERTFERRY_STATE_DIR=" + r.state}
	res, err := a.Run(context.Background(), r.doc, r.params)
	if err != nil {
		r.t.Fatal(err)
	}
	install, ok := res.Step("installLinux")
	if !ok || install.Status == StatusSkipped {
		r.t.Fatalf("installLinux did not run: %+v", res.Steps)
	}
	return res, install
}

func (r *installRig) ran() string {
	raw, _ := os.ReadFile(r.marker)
	return string(raw)
}

func TestInstallStepRunsVerifiedInstaller(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run("legacy="+strconv.FormatBool(legacy), func(t *testing.T) {
			r := newInstallRig(t)
			r.params["CertPath"] = "/etc/ssl/certs/shop.pem"
			res, install := r.run(legacy)
			if install.Status != StatusSuccess || install.ExitCode != 0 {
				t.Fatalf("install: %+v", install)
			}
			cached := filepath.Join(r.state, "installer", r.sha, "certferry-node")
			if got := r.ran(); got != "ran "+cached+" install\n" {
				t.Fatalf("installer ran as %q, want from the cache %s", got, cached)
			}
			for _, dir := range []string{r.state, filepath.Join(r.state, "installer"), filepath.Dir(cached)} {
				if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
					t.Errorf("%s: %v %v, want 0700", dir, st.Mode(), err)
				}
			}
			// Every parameter reaches the installer as SSM_<Name>, also from
			// an old agent through the fallback lines.
			for _, want := range []string{"SSM_CertPath=/etc/ssl/certs/shop.pem", "SSM_CertName=shop-web", "SSM_Format=pem",
				"SSM_VerifyPort=443", "SSM_AllowedPrefixes=/etc/ssl:/etc/pki:", "SSM_IisSite=\n", "SSM_CertStore=LocalMachine\\My"} {
				if !strings.Contains(install.Stdout, want) {
					t.Errorf("installer environment lacks %q:\n%s", want, install.Stdout)
				}
			}
			if n := strings.Count(install.Stdout, "\nSSM_") + 1; n < len(wantParams) {
				t.Errorf("%d SSM_ variables, want at least %d", n, len(wantParams))
			}
			lines := strings.Split(strings.TrimSpace(install.Stdout), "\n")
			if !strings.HasPrefix(lines[len(lines)-1], document.ResultPrefix) {
				t.Errorf("last line %q", lines[len(lines)-1])
			}
			// The other arch's download fails (empty hash): the install still
			// ran, and the command reports that step's failure.
			if res.ExitCode == 0 {
				t.Errorf("a failed download step must show in the exit code")
			}
		})
	}
}

func TestInstallStepRefusesUnverifiedInstaller(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(r *installRig)
		detail string
	}{
		{"object differs from its hash", func(r *installRig) {
			r.s3.objects["installers/installer/"+r.sha+"/certferry-node"] = append([]byte("#!/bin/sh\necho evil > "+r.marker+"\n#"), r.fake...)
		}, "installer SHA-256 mismatch for linux-"},
		{"object missing", func(r *installRig) { r.s3.objects = map[string][]byte{} }, "was not downloaded"},
		{"no hash in the command", func(r *installRig) { delete(r.params, r.archHash) }, "installer not published"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newInstallRig(t)
			tc.setup(r)
			_, install := r.run(false)
			res, err := document.ParseResult(install.Stdout)
			if err != nil || install.ExitCode != 1 || res.Status != "failed" || !strings.Contains(res.Detail, tc.detail) {
				t.Fatalf("exit %d result %+v (%v)\n%s%s", install.ExitCode, res, err, install.Stdout, install.Stderr)
			}
			if got := r.ran(); got != "" {
				t.Fatalf("something ran: %q", got)
			}
			entries, _ := os.ReadDir(filepath.Join(r.state, "installer", r.sha))
			if len(entries) != 0 {
				t.Fatalf("left in the cache: %v", entries)
			}
		})
	}
}

// A cached copy that no longer matches its hash is replaced from the
// download; older hashes are pruned but the newest other one stays.
func TestInstallStepCacheAndPrune(t *testing.T) {
	r := newInstallRig(t)
	cache := filepath.Join(r.state, "installer")
	old := []string{strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)}
	for i, h := range append(old, "not-a-hash") {
		if err := os.MkdirAll(filepath.Join(cache, h), 0o700); err != nil {
			t.Fatal(err)
		}
		stamp := time.Now().Add(time.Duration(i-10) * time.Minute)
		os.Chtimes(filepath.Join(cache, h), stamp, stamp)
	}
	bin := filepath.Join(cache, r.sha, "certferry-node")
	os.MkdirAll(filepath.Dir(bin), 0o700)
	os.WriteFile(bin, []byte("#!/bin/sh\necho tampered > "+r.marker+"\n"), 0o700)
	_, install := r.run(false)
	if install.ExitCode != 0 || !strings.HasPrefix(r.ran(), "ran "+bin) {
		t.Fatalf("exit %d ran %q\n%s", install.ExitCode, r.ran(), install.Stderr)
	}
	var left []string
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{old[2], r.sha, "not-a-hash"}
	if strings.Join(left, " ") != strings.Join(sortStrings(want), " ") {
		t.Fatalf("cache holds %v, want %v", left, sortStrings(want))
	}
}

func sortStrings(s []string) []string {
	out := slicesClone(s)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
