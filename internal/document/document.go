// Package document reads certferry's SSM Command document and runs its
// Linux step on this machine the way SSM Agent does (each parameter as an
// SSM_<Name> environment variable), for the node tests and `certferry demo`.
package document

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
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

// Step is one mainSteps entry.
type Step struct {
	Action       string              `yaml:"action"`
	Name         string              `yaml:"name"`
	Precondition map[string][]string `yaml:"precondition"`
	Inputs       struct {
		TimeoutSeconds string   `yaml:"timeoutSeconds"`
		RunCommand     []string `yaml:"runCommand"`
	} `yaml:"inputs"`
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
		return nil, fmt.Errorf("read SSM document: %w", err)
	}
	var d Document
	if err := yaml.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("parse SSM document %s: %w", path, err)
	}
	return &d, nil
}

// Pattern compiles a parameter's allowedPattern.
func (d *Document) Pattern(name string) (*regexp.Regexp, error) {
	p, ok := d.Parameters[name]
	if !ok {
		return nil, fmt.Errorf("no parameter %s", name)
	}
	return regexp.Compile(p.AllowedPattern)
}

// Script returns the runCommand text of the step for platform ("Linux",
// "Windows").
func (d *Document) Script(platform string) (string, error) {
	for _, s := range d.MainSteps {
		if pc := s.Precondition["StringEquals"]; len(pc) == 2 && pc[0] == "platformType" && pc[1] == platform {
			return strings.Join(s.Inputs.RunCommand, "\n"), nil
		}
	}
	return "", fmt.Errorf("no step for platform %s", platform)
}

// Result is the CERTFERRY_RESULT line of a run.
type Result struct {
	Status      string `json:"status"`
	Fingerprint string `json:"fingerprint"`
	Serial      string `json:"serial"`
	Reload      string `json:"reload"`
	Verify      string `json:"verify"`
	Detail      string `json:"detail"`
}

// ResultPrefix starts the last output line of every run.
const ResultPrefix = "CERTFERRY_RESULT "

// Line renders r as the step's last output line (the compact JSON the
// Windows step prints), for stand-ins of a node's output.
func (r Result) Line() string {
	b, _ := json.Marshal(r) // strings only: cannot fail
	return ResultPrefix + string(b)
}

// ResultLine returns the JSON of the last CERTFERRY_RESULT line in output,
// or "" when there is none.
func ResultLine(output string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), ResultPrefix) {
			last = strings.TrimPrefix(sc.Text(), ResultPrefix)
		}
	}
	return last
}

// ParseResult decodes the last CERTFERRY_RESULT line in output.
func ParseResult(output string) (*Result, error) {
	last := ResultLine(output)
	if last == "" {
		return nil, errors.New("no CERTFERRY_RESULT line in the output")
	}
	var r Result
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		return nil, fmt.Errorf("CERTFERRY_RESULT is not JSON: %w", err)
	}
	return &r, nil
}

// Run is one execution of the Linux step.
type Run struct {
	Stdout, Stderr string
	ExitCode       int
	Result         *Result
}

// RunLinux runs the Linux step with bash, each parameter as SSM_<Name> (as
// SSM Agent >= 3.3.2746.0 does with interpolationType ENV_VAR). env is
// added to the process environment (PATH for shims, AWS_ENDPOINT_URL, ...).
func (d *Document) RunLinux(ctx context.Context, params map[string]string, env []string) (*Run, error) {
	script, err := d.Script("Linux")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	for name, p := range d.Parameters {
		v, ok := params[name]
		if !ok && p.Default != nil {
			v, ok = *p.Default, true
		}
		if ok {
			cmd.Env = append(cmd.Env, "SSM_"+name+"="+v)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	run := &Run{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		run.ExitCode = exit.ExitCode()
	case err != nil:
		return nil, fmt.Errorf("run Linux step: %w", err)
	}
	run.Result, _ = ParseResult(run.Stdout)
	return run, nil
}
