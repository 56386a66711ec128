package testkit

import (
	"fmt"
	"sort"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/certferry/certferry/internal/testkit/awsmodel"
)

// ssmDocuments remembers the parameters of the Command documents the rig
// saw created or updated, to check SendCommand's Parameters as SSM does
// ("SendCommand", Systems Manager API Reference: InvalidParameters — "You
// must specify values for all required parameters in the Amazon Web
// Services Systems Manager document (SSM document). You can only supply
// values to parameters defined in the SSM document"; "Creating SSM document
// content", Systems Manager User Guide: a value must match the parameter's
// allowedPattern). moto checks none of this.
type ssmDocuments struct {
	mu   sync.Mutex
	docs map[string]map[string]docParam
}

type docParam struct {
	Type           string  `yaml:"type"`
	Default        *string `yaml:"default"`
	AllowedPattern string  `yaml:"allowedPattern"`
}

func (d *ssmDocuments) observe(req awsmodel.Request) []awsmodel.Violation {
	in, _ := req.Input.(map[string]any)
	switch req.Op() {
	case "ssm.CreateDocument", "ssm.UpdateDocument":
		name, _ := in["Name"].(string)
		content, _ := in["Content"].(string)
		var doc struct {
			Parameters map[string]docParam `yaml:"parameters"`
		}
		if err := yaml.Unmarshal([]byte(content), &doc); err != nil {
			return []awsmodel.Violation{{Service: "ssm", Operation: req.Operation, Member: "Content", Constraint: "documented", Code: "InvalidDocumentContent",
				Message: fmt.Sprintf("document %s content does not parse: %v", name, err)}}
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.docs == nil {
			d.docs = map[string]map[string]docParam{}
		}
		d.docs[name] = doc.Parameters
	case "ssm.SendCommand":
		name, _ := in["DocumentName"].(string)
		d.mu.Lock()
		params, known := d.docs[name]
		d.mu.Unlock()
		if !known {
			return nil // a document the rig did not see (moto answers InvalidDocument)
		}
		given, _ := in["Parameters"].(map[string]any)
		var out []awsmodel.Violation
		bad := func(format string, a ...any) {
			out = append(out, awsmodel.Violation{Service: "ssm", Operation: req.Operation, Member: "Parameters", Constraint: "documented", Code: "InvalidParameters",
				Message: fmt.Sprintf(format, a...)})
		}
		names := make([]string, 0, len(given))
		for k := range given {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			p, ok := params[k]
			if !ok {
				bad("parameter %s is not defined in document %s", k, name)
				continue
			}
			vals, _ := given[k].([]any)
			if p.Type == "String" && len(vals) != 1 {
				bad("parameter %s of document %s is a String: one value, not %d", k, name, len(vals))
			}
			if p.AllowedPattern == "" {
				continue
			}
			m, err := awsmodel.CompilePattern(p.AllowedPattern)
			if err != nil {
				bad("allowedPattern of %s does not compile: %v", k, err)
				continue
			}
			for _, v := range vals {
				if s, _ := v.(string); !m.Match(s) {
					bad("value of parameter %s (%d characters) does not match its allowedPattern %s", k, len(s), p.AllowedPattern)
				}
			}
		}
		for k, p := range params {
			if _, ok := given[k]; !ok && p.Default == nil {
				bad("required parameter %s of document %s has no value", k, name)
			}
		}
		return out
	}
	return nil
}
