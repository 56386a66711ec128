//go:build integration

package samtemplate

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/certferry/certferry/internal/testkit/awsmodel"
)

// paramRows map each template parameter with an AllowedPattern to the AWS
// request member its value reaches.
var paramRows = map[string]struct{ service, operation, member string }{
	// CERTFERRY_MAX_CONCURRENCY → fleet.Options → SendCommand MaxConcurrency.
	"MaxConcurrency": {"ssm", "SendCommand", "MaxConcurrency"},
	// CERTFERRY_MAX_ERRORS → fleet.Options → SendCommand MaxErrors.
	"MaxErrors": {"ssm", "SendCommand", "MaxErrors"},
	// AlertEmailSubscription (CloudFormation AWS::SNS::Subscription) →
	// SNS Subscribe Endpoint.
	"AlertEmail": {"sns", "Subscribe", "Endpoint"},
}

// docParamRows map each template parameter whose value reaches SendCommand
// as a document parameter to that parameter: SSM checks the value against
// the document's allowedPattern (InvalidParameters), which the template's
// AllowedPattern must not be looser than. The API model gives such values
// no constraint (ParameterValue).
var docParamRows = map[string]string{
	// CERTFERRY_ALLOWED_PREFIXES → pipeline → SendCommand Parameters.AllowedPrefixes.
	"AllowedPathPrefixes": "AllowedPrefixes",
}

// pathCandidates are every string of up to 5 characters over an alphabet
// that covers the path-list grammar's edges, and long lists.
func pathCandidates() []string {
	alphabet := []string{"/", "a", ".", ":", "-", "_", " ", "*"}
	out, level := []string{""}, []string{""}
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
	for _, seg := range []string{"/etc/ssl", "/a/..", "/a/.b", "/a b", "/a/", "//a"} {
		out = append(out, seg, strings.Repeat(seg+":", 100)+seg)
	}
	return out
}

// documentParameters reads the SSM document's parameters.
func documentParameters(t *testing.T) map[string]map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../../ssm-documents/certferry-install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Parameters map[string]map[string]any `yaml:"parameters"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Parameters
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
			if _, ok := shapeRows[name]; ok { // centralbus_integration_test.go
				checkWithinShape(t, name, pattern, p)
				return
			}
			if docParam, ok := docParamRows[name]; ok {
				checkWithinDocument(t, name, pattern, p, docParam, documentParameters(t))
				return
			}
			row, ok := paramRows[name]
			if !ok {
				t.Fatalf("parameter %s has an AllowedPattern but no row naming the AWS member it reaches (parampatterns_integration_test.go)", name)
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

// checkWithinDocument: every value the template parameter's AllowedPattern
// (and MaxLength) accepts is one the document parameter's allowedPattern
// accepts, so SendCommand never answers InvalidParameters for it.
func checkWithinDocument(t *testing.T, name, pattern string, p map[string]any, docParam string, params map[string]map[string]any) {
	t.Helper()
	dp, ok := params[docParam]
	if !ok {
		t.Fatalf("%s reaches document parameter %s, which the document lacks", name, docParam)
	}
	docPattern, _ := dp["allowedPattern"].(string)
	if docPattern == "" {
		t.Fatalf("document parameter %s has no allowedPattern", docParam)
	}
	allowed, err := awsmodel.CompilePattern(pattern)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := awsmodel.CompilePattern(docPattern)
	if err != nil {
		t.Fatal(err)
	}
	maxLen, _ := p["MaxLength"].(int)
	cands := pathCandidates()
	if def, ok := p["Default"].(string); ok {
		cands = append(cands, def)
	}
	accepted := 0
	for _, v := range cands {
		if !allowed.Match(v) || maxLen > 0 && len(v) > maxLen {
			continue
		}
		accepted++
		if !doc.Match(v) {
			t.Errorf("%s's AllowedPattern accepts %q, which the document's %s allowedPattern refuses (SendCommand: InvalidParameters)", name, v, docParam)
		}
	}
	if accepted < 2 {
		t.Errorf("%s's AllowedPattern accepts only %d candidates: the check proves little", name, accepted)
	}
}
