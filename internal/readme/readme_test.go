// Package readme checks that what README.md tells a reader to run exists:
// every `make` target, every `certferry` verb and flag of its shell blocks,
// every stack output and every events/ fixture it names, and every stack
// parameter is explained.
package readme

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const root = "../.."

// cli is the certferry binary, built once for the package's tests.
var cli struct {
	once     sync.Once
	dir, bin string
	err      error
}

func buildCLI(t *testing.T) string {
	t.Helper()
	cli.once.Do(func() {
		if cli.dir, cli.err = os.MkdirTemp("", "certferry-readme-"); cli.err != nil {
			return
		}
		cli.bin = filepath.Join(cli.dir, "certferry")
		build := exec.Command("go", "build", "-o", cli.bin, "./cmd/certferry")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			cli.err = fmt.Errorf("go build ./cmd/certferry: %w\n%s", err, out)
		}
	})
	if cli.err != nil {
		t.Fatal(cli.err)
	}
	return cli.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cli.dir != "" {
		_ = os.RemoveAll(cli.dir)
	}
	os.Exit(code)
}

func readme(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// shellBlocks returns the bodies of the fenced sh/bash/shell/console blocks
// of a Markdown text.
func shellBlocks(md string) []string {
	var out []string
	var cur []string
	inFence, isShell := false, false
	for _, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if !inFence {
				inFence = true
				isShell = slices.Contains([]string{"sh", "bash", "shell", "console"}, strings.TrimSpace(strings.TrimPrefix(trimmed, "```")))
				cur = nil
				continue
			}
			if isShell {
				out = append(out, strings.Join(cur, "\n"))
			}
			inFence = false
			continue
		}
		if inFence && isShell {
			cur = append(cur, line)
		}
	}
	return out
}

// command is one simple command of a shell block: its words, quotes
// removed, a command substitution standing as the word "$(…)" (its inside
// is a command of its own).
type command []string

// commands splits a shell block into simple commands: line continuations
// joined, comments dropped, split at unquoted newlines, ; & && || | and at
// command substitutions $(…), whose insides are commands too.
func commands(block string) ([]command, error) {
	src := strings.ReplaceAll(block, "\\\n", " ")
	var out []command
	var parse func(s string) (int, error)
	// parse reads s until its end or an unmatched ')' and returns where it
	// stopped.
	parse = func(s string) (int, error) {
		var words command
		var word strings.Builder
		inWord := false
		quoted := false // the current word holds a quote
		var flushCmd func()
		flushWord := func() {
			w := word.String()
			word.Reset()
			was := inWord
			inWord = false
			switch {
			case !was:
			case !quoted && (w == "{" || w == "}"): // a group: its braces separate commands
				flushCmd()
			default:
				words = append(words, w)
			}
			quoted = false
		}
		flushCmd = func() {
			flushWord()
			if len(words) > 0 {
				out = append(out, words)
			}
			words = nil
		}
		var quote byte
		depth := 0 // open subshell parentheses
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case quote == '\'':
				if c == '\'' {
					quote = 0
				} else {
					word.WriteByte(c)
				}
			case c == '$' && i+1 < len(s) && s[i+1] == '(':
				n, err := parse(s[i+2:])
				if err != nil {
					return 0, err
				}
				i += 2 + n // at the closing ')'
				word.WriteString("$(…)")
				inWord = true
			case quote == '"':
				switch {
				case c == '"':
					quote = 0
				case c == '\\' && i+1 < len(s):
					i++
					word.WriteByte(s[i])
				default:
					word.WriteByte(c)
				}
			case c == '\'' || c == '"':
				quote = c
				inWord, quoted = true, true
			case c == '\\' && i+1 < len(s):
				i++
				word.WriteByte(s[i])
				inWord = true
			case c == '#' && !inWord:
				for i < len(s) && s[i] != '\n' {
					i++
				}
				flushCmd()
			case c == '(' && i+1 < len(s) && s[i+1] == ')': // a function definition: name()
				word.WriteString("()")
				inWord = true
				i++
			case c == '(':
				flushCmd()
				depth++
			case c == ')' && depth > 0:
				flushCmd()
				depth--
			case c == ')':
				flushCmd()
				return i, nil
			case c == '\n' || c == ';' || c == '&' || c == '|':
				flushCmd()
			case c == ' ' || c == '\t':
				flushWord()
			default:
				word.WriteByte(c)
				inWord = true
			}
		}
		if quote != 0 {
			return 0, fmt.Errorf("unterminated %c quote", quote)
		}
		flushCmd()
		return len(s), nil
	}
	n, err := parse(src)
	if err == nil && n != len(src) {
		err = errors.New("unmatched )")
	}
	return out, err
}

// program returns the command's program and its arguments, past variable
// assignments and the wrappers eval, sudo, time, exec.
func (c command) program() (string, []string) {
	i := 0
	for i < len(c) && (regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(c[i]) ||
		slices.Contains([]string{"eval", "sudo", "time", "exec", "then", "do", "else", "{", "}"}, c[i])) {
		i++
	}
	if i >= len(c) {
		return "", nil
	}
	return c[i], c[i+1:]
}

// certferryCall reports whether c runs the certferry CLI (certferry,
// ./certferry, go run ./cmd/certferry) and with which verb and flags.
func (c command) certferryCall() (verb string, flags []string, ok bool) {
	prog, args := c.program()
	switch {
	case prog == "certferry" || strings.HasSuffix(prog, "/certferry"):
	case prog == "go" && len(args) >= 2 && args[0] == "run" && strings.TrimSuffix(args[1], "/") == "./cmd/certferry":
		args = args[2:]
	default:
		return "", nil, false
	}
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			flags = append(flags, name)
		} else if verb == "" {
			verb = a
		}
	}
	return verb, flags, true
}

func allCommands(t *testing.T, md string) []command {
	t.Helper()
	var out []command
	for i, b := range shellBlocks(md) {
		cs, err := commands(b)
		if err != nil {
			t.Fatalf("shell block %d: %v\n%s", i, err, b)
		}
		out = append(out, cs...)
	}
	return out
}

func TestCommandsParser(t *testing.T) {
	block := "eval \"$(go run ./cmd/certferry local up)\"   # comment (with parens)\n" +
		"X=1 make invoke-onboard EVENT=events/a.json && certferry status -api \"$API\" --node i-1\n" +
		"aws sns subscribe --topic-arn \"$(out AlertsTopicArn)\" \\\n  --protocol email\n" +
		"curl -d '{\"a\": \"'\"$B\"'\"}' x | jq . ; moto_server -p 5000 &\n" +
		"out() { aws x --query \"a=='$1'\"; }\n(cd /tmp && ls)\n"
	cs, err := commands(block)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, strings.Join(c, " "))
	}
	want := []string{
		"go run ./cmd/certferry local up", "eval $(…)",
		"X=1 make invoke-onboard EVENT=events/a.json", "certferry status -api $API --node i-1",
		"out AlertsTopicArn", "aws sns subscribe --topic-arn $(…) --protocol email",
		`curl -d {"a": "$B"} x`, "jq .", "moto_server -p 5000",
		"out()", "aws x --query a=='$1'", "cd /tmp", "ls",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("commands\n got %q\nwant %q", got, want)
	}
	verb, flags, ok := cs[3].certferryCall()
	if !ok || verb != "status" || !slices.Equal(flags, []string{"api", "node"}) {
		t.Fatalf("certferryCall = %q %q %v", verb, flags, ok)
	}
	if verb, _, ok := cs[0].certferryCall(); !ok || verb != "local" {
		t.Fatalf("go run form: %q %v", verb, ok)
	}
	if _, err := commands("echo 'open"); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}

// Every `certferry <verb>` of a shell block is a verb the CLI knows:
// `certferry <verb> --help` exits 0, and every flag the README passes
// appears in that help. The CLI runs from a temporary directory with no
// AWS credentials, an endpoint where nothing listens and an empty PATH, so
// a verb that acted instead of printing its help could reach nothing.
func TestCertferryVerbsExist(t *testing.T) {
	flagsOf := map[string]map[string]bool{}
	for _, c := range allCommands(t, readme(t)) {
		verb, flags, ok := c.certferryCall()
		if !ok {
			continue
		}
		if verb == "" {
			t.Errorf("README runs certferry without a verb: %q", c)
			continue
		}
		if flagsOf[verb] == nil {
			flagsOf[verb] = map[string]bool{}
		}
		for _, f := range flags {
			flagsOf[verb][f] = true
		}
	}
	if len(flagsOf) < 3 {
		t.Fatalf("only %d certferry verbs found in README's shell blocks", len(flagsOf))
	}
	bin := buildCLI(t)
	verbs := make([]string, 0, len(flagsOf))
	for v := range flagsOf {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	for _, verb := range verbs {
		t.Run(verb, func(t *testing.T) {
			help, err := runHelp(t, bin, verb)
			if err != nil {
				t.Fatalf("certferry %s --help: %v\n%s", verb, err, help)
			}
			for f := range flagsOf[verb] {
				if f == "help" || f == "h" {
					continue
				}
				if !regexp.MustCompile(`(^|[\s,\[])--?` + regexp.QuoteMeta(f) + `\b`).MatchString(help) {
					t.Errorf("README passes -%s to certferry %s; its --help does not list it:\n%s", f, verb, help)
				}
			}
		})
	}
}

func runHelp(t *testing.T, bin, verb string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{verb, "--help"}
	if verb == "help" {
		args = []string{"help"} // `certferry help` is the help itself
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=" + dir, "AWS_ENDPOINT_URL=http://127.0.0.1:1", "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_CONFIG_FILE=" + filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"), "AWS_EC2_METADATA_DISABLED=true"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("did not end within 60 s (it acted instead of printing help?): %w", err)
	}
	return out.String(), err
}

// outputs is template.yaml's Outputs and Parameters.
func templateKeys(t *testing.T) (outputs, params map[string]any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Outputs    map[string]any `yaml:"Outputs"`
		Parameters map[string]any `yaml:"Parameters"`
	}
	if err := yaml.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl.Outputs, tmpl.Parameters
}

// namedOutputs finds the stack outputs a Markdown text names: arguments of
// the walkthrough's `out` helper, OutputKey=='X' queries, code spans next
// to the word "output(s)" ("the `X` output", "output `X`", "outputs `X`,
// `Y`", and the first column of a table headed "output"), and any code span
// that is one identifier ending in Url or Arn, as outputs are named.
func namedOutputs(md string) map[string]bool {
	out := map[string]bool{}
	for _, c := range regexp.MustCompile("`([A-Z][A-Za-z0-9]*(?:Url|Arn))`").FindAllStringSubmatch(md, -1) {
		out[c[1]] = true
	}
	for _, c := range regexp.MustCompile(`\bout ([A-Za-z0-9]+)\)`).FindAllStringSubmatch(md, -1) {
		out[c[1]] = true
	}
	for _, c := range regexp.MustCompile(`OutputKey=='([A-Za-z0-9]+)'`).FindAllStringSubmatch(md, -1) {
		out[c[1]] = true
	}
	span := "`([A-Z][A-Za-z0-9]*)`"
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(span + `\s+outputs?\b`),
		regexp.MustCompile(`\boutputs?\s+` + span),
		regexp.MustCompile("\\boutputs?\\s+(?:`[A-Z][A-Za-z0-9]*`,?\\s*(?:and\\s+)?)+"),
	} {
		for _, m := range re.FindAllStringSubmatch(md, -1) {
			for _, s := range regexp.MustCompile(span).FindAllStringSubmatch(m[0], -1) {
				out[s[1]] = true
			}
		}
	}
	inTable := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(line, "| output |"):
			inTable = true
		case !strings.HasPrefix(line, "|"):
			inTable = false
		case inTable:
			cell := strings.Split(line, "|")[1]
			for _, s := range regexp.MustCompile(span).FindAllStringSubmatch(cell, -1) {
				out[s[1]] = true
			}
		}
	}
	return out
}

func TestNamedOutputsReader(t *testing.T) {
	md := "Subscribe to the `AlertsTopicArn` output; output `NodeReadPolicyArn`; outputs `A`, `B` and `C`.\n" +
		"x $(out ApiUrl) y OutputKey=='Q'\n| output | what |\n| --- | --- |\n| `D`, `E` | x `NotThis` |\nthe `Foo` field, the `RenewalDeadLetterQueueUrl` queue\n"
	got := namedOutputs(md)
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if fmt.Sprint(keys) != "[A AlertsTopicArn ApiUrl B C D E NodeReadPolicyArn Q RenewalDeadLetterQueueUrl]" {
		t.Fatalf("outputs %v", keys)
	}
}

// Every stack output the README names is one template.yaml has (the README
// once named a RenewalDeadLetterQueueUrl that never existed).
func TestNamedOutputsExist(t *testing.T) {
	outputs, _ := templateKeys(t)
	named := namedOutputs(readme(t))
	if len(named) < 5 {
		t.Errorf("only %d outputs named in README", len(named))
	}
	for n := range named {
		if _, ok := outputs[n]; !ok {
			t.Errorf("README names the stack output %s; template.yaml has no such output", n)
		}
	}
	if !strings.Contains(readme(t), "DeadLetterQueueUrl") {
		t.Error("README does not name the dead-letter queue's output")
	}
}

// Every template parameter is explained in the README (the deploy
// walkthrough's parameter table).
func TestParametersExplained(t *testing.T) {
	_, params := templateKeys(t)
	md := readme(t)
	for p := range params {
		if !regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(p) + "` \\|").MatchString(md) {
			t.Errorf("template parameter %s has no row in README's parameter table", p)
		}
	}
}

// Every events/*.json file the README names exists (brace lists such as
// events/renewal-health-{completed,failed}.json expanded).
func TestNamedEventFilesExist(t *testing.T) {
	md := readme(t)
	matches := regexp.MustCompile(`events/([A-Za-z0-9._{},-]+)\.json`).FindAllStringSubmatch(md, -1)
	if len(matches) == 0 {
		t.Fatal("README names no events/ file")
	}
	for _, m := range matches {
		for _, name := range expandBraces(m[1]) {
			if _, err := os.Stat(filepath.Join(root, "events", name+".json")); err != nil {
				t.Errorf("README names events/%s.json: %v", name, err)
			}
		}
	}
}

func expandBraces(s string) []string {
	i := strings.Index(s, "{")
	j := strings.Index(s, "}")
	if i < 0 || j < i {
		return []string{s}
	}
	var out []string
	for _, alt := range strings.Split(s[i+1:j], ",") {
		out = append(out, expandBraces(s[:i]+alt+s[j+1:])...)
	}
	return out
}
