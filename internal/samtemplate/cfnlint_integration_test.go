//go:build integration

package samtemplate

import (
	"os/exec"
	"testing"
)

// cfn-lint passes on central.yaml (.ci/run and make lint lint both
// stacks; this test keeps central.yaml's lint in make test, and fails,
// never skips, when cfn-lint is missing). About 25 s.
func TestCfnLint(t *testing.T) {
	for _, f := range []string{"central.yaml"} {
		t.Run(f, func(t *testing.T) {
			out, err := exec.Command("cfn-lint", "../../"+f).CombinedOutput()
			if err != nil {
				t.Fatalf("cfn-lint %s: %v\n%s", f, err, out)
			}
		})
	}
}
