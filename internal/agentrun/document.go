// Package agentrun runs an SSM Command document's steps on this machine the
// way SSM Agent runs them, for `certferry agent-run`, the demo and the node
// tests: parameters checked as SendCommand checks them, ENV_VAR parameters
// as SSM_<Name> variables, {{Name}} substituted in the other inputs,
// preconditions on platformType, aws:downloadContent from S3 (at
// AWS_ENDPOINT_URL), aws:runShellScript with sh in a per-command directory,
// and each step's timeoutSeconds enforced by SIGKILL of its process group.
//
// It is a test rig and a developer tool: no Lambda function links it.
package agentrun

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Param is one document parameter.
type Param struct {
	Type              string  `yaml:"type"`
	Description       string  `yaml:"description"`
	Default           *string `yaml:"default"`
	AllowedPattern    string  `yaml:"allowedPattern"`
	InterpolationType string  `yaml:"interpolationType"`
}

// Step is one mainSteps entry. Inputs stay generic: each action reads its own.
type Step struct {
	Action       string              `yaml:"action"`
	Name         string              `yaml:"name"`
	Precondition map[string][]string `yaml:"precondition"`
	OnFailure    string              `yaml:"onFailure"`
	Inputs       map[string]any      `yaml:"inputs"`
}

// Document is an SSM Command document, schema 2.2.
type Document struct {
	SchemaVersion string           `yaml:"schemaVersion"`
	Description   string           `yaml:"description"`
	Parameters    map[string]Param `yaml:"parameters"`
	MainSteps     []Step           `yaml:"mainSteps"`
}

// Load parses the document at path.
func Load(path string) (*Document, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read SSM document %s: %w", path, err)
	}
	d, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse SSM document %s: %w", path, err)
	}
	return d, nil
}

// Parse decodes a YAML (or JSON) document and checks what SSM checks at
// CreateDocument that agent-run relies on: schema 2.2, unique step names,
// and {{ }} references only to declared parameters.
func Parse(raw []byte) (*Document, error) {
	var d Document
	if err := yaml.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	if d.SchemaVersion != "2.2" {
		return nil, fmt.Errorf("schemaVersion %q: agent-run runs 2.2 Command documents", d.SchemaVersion)
	}
	seen := map[string]bool{}
	for i, s := range d.MainSteps {
		if s.Name == "" || s.Action == "" {
			return nil, fmt.Errorf("step %d has no name or action", i)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("step name %s used twice", s.Name)
		}
		seen[s.Name] = true
		for _, ref := range references(s.Inputs) {
			if _, ok := d.Parameters[ref]; !ok {
				return nil, fmt.Errorf("step %s references {{%s}}, which is not a parameter", s.Name, ref)
			}
		}
	}
	return &d, nil
}

// Pattern compiles a parameter's allowedPattern.
func (d *Document) Pattern(name string) (*regexp.Regexp, error) {
	p, ok := d.Parameters[name]
	if !ok {
		return nil, fmt.Errorf("no parameter %s", name)
	}
	re, err := regexp.Compile(p.AllowedPattern)
	if err != nil {
		return nil, fmt.Errorf("allowedPattern of %s: %w", name, err)
	}
	return re, nil
}

// Step returns the step called name.
func (d *Document) Step(name string) (*Step, bool) {
	for i := range d.MainSteps {
		if d.MainSteps[i].Name == name {
			return &d.MainSteps[i], true
		}
	}
	return nil, false
}

// Script returns the runCommand lines of a run*Script step joined as SSM
// Agent writes them into its script file.
func (s *Step) Script() (string, error) {
	lines, err := stringList(s.Inputs["runCommand"])
	if err != nil {
		return "", fmt.Errorf("step %s runCommand: %w", s.Name, err)
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// Platform is the platformType the step's precondition names, or "".
func (s *Step) Platform() string {
	if pc := s.Precondition["StringEquals"]; len(pc) == 2 && pc[0] == "platformType" {
		return pc[1]
	}
	return ""
}

// Resolve checks given values the way SendCommand does and returns every
// parameter's value: unknown names and values their allowedPattern refuses
// are errors, parameters without a default must be given, the rest take
// their default.
func (d *Document) Resolve(given map[string]string) (map[string]string, error) {
	var errs []error
	for _, name := range sortedKeys(given) {
		if _, ok := d.Parameters[name]; !ok {
			errs = append(errs, fmt.Errorf("parameter %s is not in the document", name))
		}
	}
	out := map[string]string{}
	for _, name := range sortedKeys(d.Parameters) {
		p := d.Parameters[name]
		v, ok := given[name]
		if !ok {
			if p.Default == nil {
				errs = append(errs, fmt.Errorf("parameter %s is required", name))
				continue
			}
			v = *p.Default
		}
		if p.AllowedPattern != "" {
			re, err := d.Pattern(name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !re.MatchString(v) {
				errs = append(errs, fmt.Errorf("parameter %s: value %q does not match its allowedPattern", name, v))
				continue
			}
		}
		out[name] = v
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid parameters: %w", errors.Join(errs...))
	}
	return out, nil
}

var refPattern = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.:/-]+)\s*\}\}`)

// references lists the {{ }} names anywhere in v.
func references(v any) []string {
	var out []string
	walkStrings(v, func(s string) string {
		for _, m := range refPattern.FindAllStringSubmatch(s, -1) {
			out = append(out, m[1])
		}
		return s
	})
	return out
}

// substitute replaces {{Name}} with the parameter's value in every string
// of v (the service-side interpolation every agent receives).
func substitute(v any, values map[string]string) any {
	return walkStrings(v, func(s string) string {
		return refPattern.ReplaceAllStringFunc(s, func(m string) string {
			name := refPattern.FindStringSubmatch(m)[1]
			if val, ok := values[name]; ok {
				return val
			}
			return m
		})
	})
}

func walkStrings(v any, f func(string) string) any {
	switch t := v.(type) {
	case string:
		return f(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = walkStrings(e, f)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = walkStrings(e, f)
		}
		return out
	default:
		return v
	}
}

// stringList reads a runCommand-like input: a list of strings or one string.
func stringList(v any) ([]string, error) {
	switch t := v.(type) {
	case string:
		return []string{t}, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("element %v is not a string", e)
			}
			out = append(out, s)
		}
		return out, nil
	case nil:
		return nil, errors.New("missing")
	}
	return nil, fmt.Errorf("%T is neither a string nor a list", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
