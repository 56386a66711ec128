package samtemplate

import (
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/testkit/awsmodel"
)

// paramRows map each template parameter with an AllowedPattern to the AWS
// request member its value reaches.
var paramRows = map[string]struct{ service, operation, member string }{
	// CERTFERRY_MAX_CONCURRENCY → fleet.Options → SendCommand MaxConcurrency.
	"MaxConcurrency": {"ssm", "SendCommand", "MaxConcurrency"},
	// CERTFERRY_MAX_ERRORS → fleet.Options → SendCommand MaxErrors.
	"MaxErrors": {"ssm", "SendCommand", "MaxErrors"},
}

// templateCandidates are every string of up to 5 characters over an
// alphabet that covers the rate-control grammar's edges, and long runs.
func templateCandidates() []string {
	alphabet := []string{"0", "1", "5", "9", "%", "a", "-", " "}
	out := []string{""}
	level := []string{""}
	for n := 1; n <= 5; n++ {
		var next []string
		for _, s := range level {
			for _, c := range alphabet {
				next = append(next, s+c)
			}
		}
		out = append(out, next...)
		level = next
	}
	for _, n := range []int{6, 7, 8, 9, 64, 256} {
		out = append(out, strings.Repeat("1", n), strings.Repeat("9", n-1)+"%")
	}
	return out
}

// TestTemplatePatternsWithinModel: whatever a template parameter's
// AllowedPattern lets CloudFormation accept, the AWS member it reaches
// accepts too (CloudFormation matches AllowedPattern against the whole
// value, as the model's patterns are matched).
func TestTemplatePatternsWithinModel(t *testing.T) {
	_, tmpl := readTemplate(t)
	params, _ := tmpl["Parameters"].(map[string]any)
	if len(params) == 0 {
		t.Fatal("template.yaml has no Parameters")
	}
	cands := templateCandidates()
	for name, raw := range params {
		p, _ := raw.(map[string]any)
		pattern, _ := p["AllowedPattern"].(string)
		if pattern == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			row, ok := paramRows[name]
			if !ok {
				t.Fatalf("parameter %s has an AllowedPattern but no row naming the AWS member it reaches (parampatterns_test.go)", name)
			}
			m, err := awsmodel.Load(row.service)
			if err != nil {
				t.Fatal(err)
			}
			in, _, err := m.Input(row.operation)
			if err != nil {
				t.Fatal(err)
			}
			ref, ok := in.Members[row.member]
			if !ok {
				t.Fatalf("%s %s has no member %s", row.service, row.operation, row.member)
			}
			shape := m.Shapes[ref.Shape]
			allowed, err := awsmodel.CompilePattern(pattern)
			if err != nil {
				t.Fatal(err)
			}
			if def, ok := p["Default"].(string); ok {
				cands = append(cands, def)
			}
			accepted := 0
			for _, v := range cands {
				if !allowed.Match(v) {
					continue
				}
				accepted++
				if vs := m.Validate(shape, v, row.member); len(vs) > 0 {
					t.Errorf("%s's AllowedPattern accepts %q, which %s %s refuses: %s", name, v, row.service, row.operation, vs[0].Message)
				}
			}
			if accepted < 2 {
				t.Errorf("%s's AllowedPattern accepts only %d candidates: the check proves little", name, accepted)
			}
		})
	}
}
