//go:build integration

package readme

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// Every `make <target>` of a shell block is a target make runs a recipe
// for (make -n: nothing is executed; a phony target with no recipe, like a
// pattern rule shadowed by .PHONY, says "Nothing to be done").
func TestMakeTargetsExist(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range allCommands(t, readme(t)) {
		prog, args := c.program()
		if prog != "make" {
			continue
		}
		var target string
		var vars []string
		for _, a := range args {
			switch {
			case strings.HasPrefix(a, "-"):
			case strings.Contains(a, "="):
				vars = append(vars, a)
			case target == "":
				target = a
			}
		}
		key := target + " " + strings.Join(vars, " ")
		if seen[key] {
			continue
		}
		seen[key] = true
		cmd := exec.Command("make", append([]string{"-n", "--no-print-directory", target}, vars...)...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("Nothing to be done")) || bytes.Contains(out, []byte("No rule to make target")) {
			t.Errorf("README runs `make %s`: make -n says %v\n%s", key, err, out)
		}
	}
	if len(seen) == 0 {
		t.Fatal("no make command found in README's shell blocks")
	}
}
