package testkit

// The two test tiers (README "Tests"): `go test ./...` runs the unit tier,
// which needs only Go and a POSIX shell; `go test -tags integration ./...`
// (make test) adds the tests that need moto_server, botocore's models, a
// real server, root, or a tool such as openssl, python3 or make. This test
// keeps the split honest from the unit tier itself.

import (
	"go/build/constraint"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// integrationOnly are the paths (from the module root, slash-separated)
// whose every test file is integration: the real-server matrix.
var integrationOnly = []string{"internal/nodeinstall/realserver/"}

// needsIntegration are what a unit-tier test file must not use, each with
// why. (Spelled in two parts so this file does not match itself.)
var needsIntegration = map[string]string{
	"\"github.com/certferry/certferry/internal/" + "motoserver\"": "imports the moto_server launcher",
	"StartRig" + "(":             "starts moto_server behind the model check",
	"StartRig" + "T(":            "starts moto_server behind the model check",
	"StartLocal" + "Node(":       "starts a real nginx",
	"localenv." + "Up(":          "creates the stack in moto_server",
	"awsmodel." + "Load(":        "reads botocore's models",
	"awsmodel." + "Check(":       "reads botocore's models",
	"\"open" + "ssl\"":           "runs openssl",
	"\"python" + "3\"":           "runs python3",
	"exec.Command(\"ma" + "ke\"": "runs make",
	"LookPath(\"ma" + "ke\")":    "runs make",
}

// integrationTagged reports whether the file's build constraint leaves it
// out of every build without the integration tag (other tags are taken as
// satisfied, so "integration && unix" counts and "integration || x" does
// not).
func integrationTagged(t *testing.T, path string, src string) bool {
	t.Helper()
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "package ") {
			return false
		}
		if !constraint.IsGoBuild(line) {
			continue
		}
		expr, err := constraint.Parse(line)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return false
		}
		return !expr.Eval(func(tag string) bool { return tag != "integration" })
	}
	return false
}

func TestTestTiers(t *testing.T) {
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not at %s: %v", root, err)
	}
	units, integrations := 0, 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := string(raw)
		tagged := integrationTagged(t, rel, src)
		onlyIntegration := strings.HasSuffix(rel, "_integration_test.go")
		for _, p := range integrationOnly {
			onlyIntegration = onlyIntegration || strings.HasPrefix(rel, p)
		}
		switch {
		case onlyIntegration && !tagged:
			t.Errorf("%s: an integration test file must start with //go:build integration", rel)
		case tagged && !onlyIntegration:
			t.Errorf("%s: tagged integration but not named *_integration_test.go: rename it, so the name tells the tier", rel)
		}
		if tagged {
			integrations++
			return nil
		}
		units++
		if rel == "internal/testkit/tiers_test.go" {
			return nil
		}
		for marker, why := range needsIntegration {
			if strings.Contains(src, marker) {
				t.Errorf("%s %s (%s): the unit tier needs only Go; move the test to a *_integration_test.go file tagged //go:build integration", rel, why, marker)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if units < 20 || integrations < 20 {
		t.Fatalf("%d unit and %d integration test files: the walk missed the tree", units, integrations)
	}
}
