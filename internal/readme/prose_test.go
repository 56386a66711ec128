package readme

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// notVerbs are the words after `certferry` in the README's prose that are
// not meant to be commands, each with the reason.
var notVerbs = map[string]string{
	"stauts":    "the README's example of a mistyped command and its suggestion",
	"rotate":    "named as not available yet (issue 14)",
	"…":         "a placeholder for any verb (`certferry … -api \"$API\"`)",
	"<command>": "a placeholder for any verb",
}

// withoutFences drops the fenced blocks of a Markdown text (their commands
// are TestCertferryVerbsExist's).
func withoutFences(md string) string {
	var out []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if !in {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// proseCalls finds the certferry commands the README names outside its
// shell blocks: code spans `certferry VERB [flags]`, and the CLI table's
// rows, whose option lists are code spans of --flags.
func proseCalls(md string) map[string]map[string]bool {
	calls := map[string]map[string]bool{}
	add := func(verb string, flags []string) {
		if calls[verb] == nil {
			calls[verb] = map[string]bool{}
		}
		for _, f := range flags {
			calls[verb][f] = true
		}
	}
	flagRE := regexp.MustCompile(`(?:^|[\s\[(|])--?([a-z][a-z0-9-]*)`)
	spanRE := regexp.MustCompile("`(certferry [^`]+)`")
	flagsOf := func(s string) []string {
		var out []string
		for _, m := range flagRE.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		return out
	}
	verbOf := func(span string) string {
		for _, w := range strings.Fields(strings.TrimPrefix(span, "certferry ")) {
			if !strings.HasPrefix(w, "-") {
				return w
			}
		}
		return ""
	}
	for _, line := range strings.Split(withoutFences(md), "\n") {
		spans := spanRE.FindAllStringSubmatch(line, -1)
		if strings.HasPrefix(line, "| `certferry ") && len(spans) > 0 {
			// A CLI table row: its verb, and the flags of its certferry
			// spans and of its spans that list options (--a --b …).
			verb := verbOf(spans[0][1])
			var flags []string
			for _, s := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(line, -1) {
				if strings.HasPrefix(s[1], "certferry ") && verbOf(s[1]) == verb || strings.HasPrefix(s[1], "--") {
					flags = append(flags, flagsOf(s[1])...)
				}
			}
			add(verb, flags)
			continue
		}
		for _, s := range spans {
			if v := verbOf(s[1]); v != "" {
				add(v, flagsOf(s[1]))
			}
		}
	}
	return calls
}

func TestProseCallsReader(t *testing.T) {
	md := "Run `certferry demo --keep` or `certferry status NAME [-o table\\|json]`.\n" +
		"| `certferry onboard --name N` | `POST`; options `--cert-path --format pem\\|split` and `-ldflags -X` |\n" +
		"```sh\ncertferry hidden --x\n```\n"
	got := proseCalls(md)
	var keys []string
	for v, fs := range got {
		var f []string
		for k := range fs {
			f = append(f, k)
		}
		sort.Strings(f)
		keys = append(keys, v+":"+strings.Join(f, ","))
	}
	sort.Strings(keys)
	if strings.Join(keys, " ") != "demo:keep onboard:cert-path,format,name status:o" {
		t.Fatalf("proseCalls = %v", keys)
	}
}

// Every certferry command the README names in its prose and tables is a
// verb the CLI has, and every flag it gives that verb is in the verb's
// --help (the shell blocks are TestCertferryVerbsExist's): the README and
// the CLI's help agree.
func TestProseCommandsMatchHelp(t *testing.T) {
	calls := proseCalls(readme(t))
	if len(calls) < 8 {
		t.Fatalf("only %d certferry verbs found in README's prose", len(calls))
	}
	bin := buildCLI(t)
	var verbs []string
	for v := range calls {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	for _, verb := range verbs {
		if _, ok := notVerbs[verb]; ok {
			continue
		}
		t.Run(verb, func(t *testing.T) {
			help, err := runHelp(t, bin, verb)
			if err != nil {
				t.Fatalf("certferry %s --help: %v\n%s", verb, err, help)
			}
			for f := range calls[verb] {
				if f == "help" || f == "h" {
					continue
				}
				if !regexp.MustCompile(`(^|[\s,\[])--?` + regexp.QuoteMeta(f) + `\b`).MatchString(help) {
					t.Errorf("README gives certferry %s the flag -%s; its --help does not list it:\n%s", verb, f, help)
				}
			}
		})
	}
}

func hasHeadingPrefix(headings map[string]bool, prefix string) bool {
	for h := range headings {
		if strings.HasPrefix(h, prefix) {
			return true
		}
	}
	return false
}

// What the CLI and the docs call a README section ("README \"CLI\"",
// README.md "Deploy to your AWS account") is a heading of the README (or
// the start of one before its colon: "Renewal" for "Renewal: no human in
// the loop").
func TestReadmeSectionsNamedExist(t *testing.T) {
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(withoutFences(readme(t)), -1) {
		headings[strings.TrimSpace(m[1])] = true
	}
	ref := regexp.MustCompile(`README(?:\.md)? \\?"([^"\\]+)\\?"`)
	var files []string
	for _, glob := range []string{"cmd/*/*.go", "internal/*/*.go", "docs/*.md", "Makefile"} {
		m, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	found := 0
	for _, f := range files {
		if strings.Contains(f, filepath.Join("internal", "readme")) {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(raw), -1) {
			found++
			if !headings[m[1]] && !hasHeadingPrefix(headings, m[1]+":") {
				t.Errorf("%s names README section %q; the README has no such heading", f, m[1])
			}
		}
	}
	if found == 0 {
		t.Fatal("no README section named anywhere: the pattern is wrong")
	}
}

// slug is GitHub's anchor for a heading: lower case, punctuation other
// than - and _ dropped, spaces to -.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every in-page link of the README ([text](#anchor)) leads to a heading,
// and every link to a Markdown file of the repository to a file.
func TestReadmeAnchorsExist(t *testing.T) {
	md := readme(t)
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#+ (.+)$`).FindAllStringSubmatch(withoutFences(md), -1) {
		anchors[slug(strings.TrimSpace(m[1]))] = true
	}
	links := regexp.MustCompile(`\]\(#([^)]+)\)`).FindAllStringSubmatch(md, -1)
	if len(links) == 0 {
		t.Fatal("README links to none of its sections")
	}
	for _, l := range links {
		if !anchors[l[1]] {
			t.Errorf("README links to #%s; no heading has that anchor", l[1])
		}
	}
	for _, l := range regexp.MustCompile(`\]\(((?:docs/)?[A-Za-z0-9_./-]+\.md)(?:#[^)]*)?\)`).FindAllStringSubmatch(md, -1) {
		if _, err := os.Stat(filepath.Join(root, l[1])); err != nil {
			t.Errorf("README links to %s: %v", l[1], err)
		}
	}
	if slug("5. Be the node: run the command as SSM Agent would") != "5-be-the-node-run-the-command-as-ssm-agent-would" || slug("4. Let callers in: `ApiCallerPolicyArn`") != "4-let-callers-in-apicallerpolicyarn" {
		t.Error("slug differs from GitHub's anchors")
	}
}
