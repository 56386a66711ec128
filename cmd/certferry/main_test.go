package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/cli"
	"github.com/certferry/certferry/internal/localenv"
)

// --help (and -h) on every command prints that command's usage on stdout,
// succeeds and does nothing else. AWS_ENDPOINT_URL points at a closed
// port and no CERTFERRY_* is set, so a command that acted would fail.
func TestHelpNeverActs(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "x")
	for _, k := range []string{"CERTFERRY_TABLE", "CERTFERRY_DOCUMENT", "CERTFERRY_TOPIC_ARN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for _, c := range commands() {
		for _, flagArgs := range [][]string{{"--help"}, {"-h"}, {"up", "-help"}, {"shop-web", "--name", "x", "--help"}} {
			var out, errOut bytes.Buffer
			args := append([]string{c.name}, flagArgs...)
			if err := run(context.Background(), args, &out, &errOut); err != nil {
				t.Errorf("%v: %v", args, err)
				continue
			}
			if out.String() != c.usage || !strings.HasPrefix(out.String(), "usage: certferry "+c.name) {
				t.Errorf("%v printed %q, want the usage of %s", args, out.String(), c.name)
			}
		}
	}
	// help --help is the general usage, like help alone.
	var out bytes.Buffer
	for _, args := range [][]string{{"help", "--help"}, {"help", "-h"}, {"help"}} {
		out.Reset()
		if err := run(context.Background(), args, &out, &out); err != nil || out.String() != usage() {
			t.Errorf("%v: %v %q, want the general usage", args, err, out.String())
		}
	}
	// help NAME is the same text.
	out.Reset()
	if err := run(context.Background(), []string{"help", "status"}, &out, &out); err != nil || !strings.Contains(out.String(), "--node ID") {
		t.Fatalf("help status: %v %q", err, out.String())
	}
}

// sync-template --help leaves template.yaml alone; without --help the
// same call does rewrite it (so the check above proves something).
func TestSyncTemplateHelpLeavesTheTemplate(t *testing.T) {
	dir := t.TempDir()
	tmpl, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("../..", localenv.DocumentFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(localenv.DocumentFile)), 0o755); err != nil {
		t.Fatal(err)
	}
	// A document that differs from the template's copy: syncing changes the template.
	changed := strings.Replace(string(doc), "description:", "description: changed", 1)
	if changed == string(doc) {
		t.Fatal("the document has no description line to change")
	}
	if err := os.WriteFile(filepath.Join(dir, localenv.DocumentFile), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "template.yaml"), tmpl, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	var out bytes.Buffer
	for _, h := range []string{"--help", "-h"} {
		if err := run(context.Background(), []string{"sync-template", h}, &out, &out); err != nil {
			t.Fatal(err)
		}
		if now, _ := os.ReadFile("template.yaml"); !bytes.Equal(now, tmpl) {
			t.Fatalf("sync-template %s rewrote template.yaml", h)
		}
	}
	if err := run(context.Background(), []string{"sync-template"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile("template.yaml"); bytes.Equal(now, tmpl) {
		t.Fatal("sync-template without --help did not sync: the test proves nothing")
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	for _, tc := range []struct{ typed, want string }{
		{"stauts", `did you mean "status"?`}, {"onbaord", `did you mean "onboard"?`}, {"delet", `did you mean "delete"?`},
		{"verison", `did you mean "version"?`}, {"xyzzy-plugh", ""}, {"demoo", `did you mean "demo"?`},
	} {
		err := run(context.Background(), []string{tc.typed}, &bytes.Buffer{}, &bytes.Buffer{})
		if cli.ExitCode(err) != cli.ExitUsage || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("%s: %v (exit %d)", tc.typed, err, cli.ExitCode(err))
			continue
		}
		if tc.want == "" && strings.Contains(err.Error(), "did you mean") || tc.want != "" && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.typed, err, tc.want)
		}
	}
	if err := run(context.Background(), nil, &bytes.Buffer{}, &bytes.Buffer{}); cli.ExitCode(err) != cli.ExitUsage {
		t.Errorf("no command: %v", err)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "certferry dev (commit ") {
		t.Fatalf("version %q", out.String())
	}
	old := commit
	version, commit = "1.2.3", "abc123"
	defer func() { version, commit = "dev", old }()
	out.Reset()
	_ = run(context.Background(), []string{"--version"}, &out, &out)
	if out.String() != "certferry 1.2.3 (commit abc123)\n" {
		t.Fatalf("with -X: %q", out.String())
	}
	if err := run(context.Background(), []string{"version", "extra"}, &out, &out); cli.ExitCode(err) != cli.ExitUsage {
		t.Fatalf("version extra: %v", err)
	}
}

// Bad command lines exit 2 before any AWS call.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"get"}, {"get", "a", "b"}, {"get", "a", "-o", "yaml"}, {"status", "a", "b"}, {"status", "a", "--node", "i-1"},
		{"delete"}, {"redeploy"}, {"onboard", "--name", "a"}, {"onboard", "--name", "a", "--arn", "x"},
		{"onboard", "--name", "a", "--arn", "x", "--target", "tag:env"}, {"onboard", "--bogus"}, {"local"}, {"local", "down"},
		{"invoke"}, {"invoke", "nope", "events/x.json"}, {"demo", "now"},
	} {
		err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		var ue *cli.UsageError
		if !errors.As(err, &ue) || cli.ExitCode(err) != 2 {
			t.Errorf("%v: %v (exit %d), want a usage error", args, err, cli.ExitCode(err))
		}
	}
}

// invoke fails on an API answer of 400 or more, with the API's message.
func TestInvokeAnswer(t *testing.T) {
	for _, tc := range []struct {
		out  string
		exit int
		msg  string
	}{
		{`{"statusCode": 202, "body": "{}"}`, 0, ""},
		{`{"statusCode": 404, "body": "{\"error\":{\"code\":\"NotFound\",\"message\":\"unknown certificate name: x\",\"field\":\"name\"}}"}`, 3, "404 NotFound: unknown certificate name: x"},
		{`{"statusCode": 502, "body": "{\"error\":{\"code\":\"DependencyFailure\",\"message\":\"an AWS dependency failed\"}}"}`, 4, "502 DependencyFailure"},
		{`{"failed": 0}`, 0, ""}, // not an API answer (a sweep report)
	} {
		err := invokeAnswer("onboard", []byte(tc.out))
		if cli.ExitCode(err) != tc.exit || tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v (exit %d), want exit %d %q", tc.out, err, cli.ExitCode(err), tc.exit, tc.msg)
		}
	}
}

// The in-process handlers' log lines reach the terminal from warn up,
// unless CERTFERRY_LOG_LEVEL says otherwise.
func TestLogLevel(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want slog.Level
	}{
		{"", slog.LevelWarn}, {"info", slog.LevelInfo}, {"DEBUG", slog.LevelDebug}, {"error", slog.LevelError}, {"loud", slog.LevelWarn},
	} {
		t.Setenv("CERTFERRY_LOG_LEVEL", tc.env)
		if got := logLevel(); got != tc.want {
			t.Errorf("CERTFERRY_LOG_LEVEL=%q: level %v, want %v", tc.env, got, tc.want)
		}
	}
}
