package app

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/certferry/certferry"

// rigs are the packages that exist for tests and local runs only: the
// emulator and its stand-ins, the local environment, the SSM Agent player,
// the YAML reader they use, and the testing package itself.
var rigs = []string{
	"testing",
	"gopkg.in/yaml.v3",
	module + "/internal/testkit",
	module + "/internal/schedulerstandin",
	module + "/internal/motoserver",
	module + "/internal/localenv",
	module + "/internal/agentrun",
}

// buildEnvs are the ways the binaries are built: for this machine, and as
// template.yaml's Makefile targets build the Lambda packages.
var buildEnvs = []struct {
	name string
	env  []string
	tags string
}{
	{name: "host"},
	{name: "lambda", env: []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"}, tags: "lambda.norpc"},
}

// TestPackageBoundaries keeps production binaries free of test rigging: no
// function, and not the node installer, links a rig, YAML or package
// testing; the benchmark driver (which uses the rig on purpose) does not
// link package testing.
func TestPackageBoundaries(t *testing.T) {
	functions := goList(t, nil, "", "-f", "{{.ImportPath}}", module+"/functions/...")
	if len(functions) < 5 {
		t.Fatalf("go list found %d functions: %v", len(functions), functions)
	}
	checks := map[string][]string{module + "/cmd/certferry-node": rigs, module + "/cmd/certferry-bench": {"testing"}}
	for _, fn := range functions {
		checks[fn] = rigs
	}
	for _, be := range buildEnvs {
		for pkg, forbidden := range checks {
			t.Run(be.name+"/"+strings.TrimPrefix(pkg, module+"/"), func(t *testing.T) {
				for _, bad := range forbiddenDeps(t, be.env, be.tags, pkg, forbidden) {
					t.Errorf("%s links %s", pkg, bad)
				}
			})
		}
	}
}

// TestBoundaryCheckSeesRigs proves the check can fail: a rig package is
// found in its own dependency list, with the chain that reaches it.
func TestBoundaryCheckSeesRigs(t *testing.T) {
	got := forbiddenDeps(t, nil, "", module+"/internal/motoserver", rigs)
	if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, module+"/internal/motoserver") }) {
		t.Fatalf("the check did not see internal/motoserver in its own dependencies: %v", got)
	}
}

// forbiddenDeps lists the forbidden packages (or packages under them) pkg
// links, each with one import chain from pkg.
func forbiddenDeps(t *testing.T, env []string, tags, pkg string, forbidden []string) []string {
	t.Helper()
	lines := goList(t, env, tags, "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", pkg)
	imports := map[string][]string{}
	for _, l := range lines {
		f := strings.Fields(l)
		imports[f[0]] = f[1:]
	}
	var found []string
	for dep := range imports {
		for _, bad := range forbidden {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				found = append(found, dep+" (via "+strings.Join(chain(imports, pkg, dep), " -> ")+")")
			}
		}
	}
	slices.Sort(found)
	return found
}

// chain is one import path from pkg to dep (breadth first).
func chain(imports map[string][]string, pkg, dep string) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == dep {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{pkg, "?", dep}
}

func goList(t *testing.T, env []string, tags string, args ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the boundary check needs the go command on PATH: %v", err)
	}
	full := []string{"list"}
	if tags != "" {
		full = append(full, "-tags", tags)
	}
	cmd := exec.Command(gobin, append(full, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(full, " "), err, stderr.String())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
