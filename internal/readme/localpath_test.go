package readme

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// localPathMarker comes on the line before each fenced shell block of the
// README's local path ("Try it locally"): TestLocalPath runs those blocks,
// in order, in one shell.
const localPathMarker = "<!-- local-path -->"

// localPathBlocks returns the bodies of the shell blocks a localPathMarker
// line announces. A marker not followed (blank lines aside) by a ```sh
// fence is an error, so a block cannot silently drop out of the run.
func localPathBlocks(md string) ([]string, error) {
	lines := strings.Split(md, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != localPathMarker {
			continue
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j >= len(lines) || !slices.Contains([]string{"```sh", "```bash"}, strings.TrimSpace(lines[j])) {
			return nil, fmt.Errorf("line %d: %s is not followed by a ```sh block", i+1, localPathMarker)
		}
		var body []string
		for j++; j < len(lines) && strings.TrimSpace(lines[j]) != "```"; j++ {
			body = append(body, lines[j])
		}
		if j >= len(lines) {
			return nil, fmt.Errorf("line %d: the local-path block never ends", i+1)
		}
		out = append(out, strings.Join(body, "\n"))
		i = j
	}
	return out, nil
}

func TestLocalPathBlocksReader(t *testing.T) {
	md := "intro\n" + localPathMarker + "\n```sh\nmake demo\n```\n\n```sh\nnot marked\n```\n" +
		localPathMarker + "\n\n```sh\na \\\n  b\nc\n```\n"
	got, err := localPathBlocks(md)
	if err != nil || !slices.Equal(got, []string{"make demo", "a \\\n  b\nc"}) {
		t.Fatalf("localPathBlocks = %q, %v", got, err)
	}
	for _, bad := range []string{localPathMarker + "\ntext\n```sh\nx\n```\n", localPathMarker + "\n```json\n{}\n```\n", localPathMarker + "\n```sh\nx\n"} {
		if _, err := localPathBlocks(bad); err == nil {
			t.Errorf("localPathBlocks(%q) accepted", bad)
		}
	}
}

// The README marks its local path, and the blocks parse as shell commands
// whose certferry verbs and make targets the other tests of this package
// check (TestCertferryVerbsExist, TestMakeTargetsExist read every block).
// TestLocalPath (integration tier) runs them.
func TestLocalPathMarked(t *testing.T) {
	blocks, err := localPathBlocks(readme(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 {
		t.Fatalf("README marks no local-path block (%s before a ```sh fence)", localPathMarker)
	}
	var verbs []string
	for i, b := range blocks {
		cs, err := commands(b)
		if err != nil {
			t.Fatalf("local-path block %d: %v\n%s", i+1, err, b)
		}
		for _, c := range cs {
			if v, _, ok := c.certferryCall(); ok && !slices.Contains(verbs, v) {
				verbs = append(verbs, v)
			}
		}
	}
	// The walkthrough the issue asks for (issue 13): these verbs at least.
	for _, v := range []string{"local", "onboard", "status", "get", "redeploy", "delete", "invoke", "agent-run"} {
		if !slices.Contains(verbs, v) {
			t.Errorf("the README's local path never runs certferry %s (it runs %v)", v, verbs)
		}
	}
	if !strings.Contains(strings.Join(blocks, "\n"), "make demo") {
		t.Error("the README's local path does not start with make demo")
	}
}
