//go:build integration

package samtemplate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The StackSets template (docs/stacksets.md, scripts/stackset-template.sh):
// the processed template (here the SAM translator's, as CloudFormation's
// transform makes it after sam package) rewritten so that every function
// reads its code from the bucket of its own region; no transform or SAM
// type is left, no name collides, and cfn-lint passes on it.
func TestStackSetTemplate(t *testing.T) {
	processed := translate(t, "pkg-1")
	in, err := json.Marshal(processed)
	if err != nil {
		t.Fatal(err)
	}
	run := func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.Command("bash", append([]string{"../../scripts/stackset-template.sh"}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, stderr.String())
		}
		return out, err
	}
	out, err := run(in, "regionalize", "acme-certferry")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(out, &tmpl); err != nil {
		t.Fatal(err)
	}
	if tmpl["Transform"] != nil {
		t.Errorf("Transform %v left", tmpl["Transform"])
	}
	fns := 0
	for id, r := range tmpl["Resources"].(map[string]any) {
		r := r.(map[string]any)
		typ := fmt.Sprint(r["Type"])
		if strings.HasPrefix(typ, "AWS::Serverless::") {
			t.Errorf("%s is still %s", id, typ)
		}
		if typ != "AWS::Lambda::Function" {
			continue
		}
		fns++
		code := r["Properties"].(map[string]any)["Code"].(map[string]any)
		if fmt.Sprint(code["S3Bucket"]) != "map[Fn::Sub:acme-certferry-${AWS::Region}]" {
			t.Errorf("%s reads its code from %v, want the stack's region's bucket", id, code["S3Bucket"])
		}
		if key := fmt.Sprint(code["S3Key"]); !strings.Contains(key, "pkg-1/") {
			t.Errorf("%s code key %s changed", id, key)
		}
	}
	if fns < 5 {
		t.Errorf("%d functions in the processed template", fns)
	}
	for _, v := range namingViolations(tmpl) {
		t.Error(v)
	}
	// The rewrite refuses a template that still needs the transform, and a
	// prefix that is no bucket name.
	if _, err := run([]byte(`{"Transform":"AWS::Serverless-2016-10-31","Resources":{}}`), "regionalize", "acme-certferry"); err == nil || !strings.Contains(err.Error(), "process it first") {
		t.Errorf("an unprocessed template: %v", err)
	}
	if _, err := run(in, "regionalize", "Acme_Certs"); err == nil {
		t.Error("a prefix with capitals and _ was accepted")
	}
	// cfn-lint on the result, as CloudFormation will read it (about 25 s).
	f := filepath.Join(t.TempDir(), "certferry-stackset.json")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	// W2001 (parameter not used): NodeTagKey is a fixed, documented
	// parameter no resource refers to; cfn-lint does not report it on the
	// SAM template, only once it is processed.
	if lint, err := exec.Command("cfn-lint", "--ignore-checks", "W2001", "--", f).CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint on the StackSets template: %v\n%s", err, lint)
	}
}
