//go:build integration

package samtemplate

// The template checks that need more than Go: the SAM translator (python3
// with samtranslator, which cfn-lint ships) and the release build through
// make.

import (
	"debug/elf"
	"debug/pe"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/publish"
)

// translate runs the SAM translator on template.yaml as if `sam package`
// had uploaded the code under packageID.
func translate(t *testing.T, packageID string) map[string]any {
	t.Helper()
	tmpl, err := translateTemplate(packageID)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// translateTemplate is translate for callers that translate once per
// package (the dashboard and caller-policy tests).
func translateTemplate(packageID string) (map[string]any, error) {
	cmd := exec.Command("python3", filepath.Join("testdata", "sam_translate.py"), filepath.Join("..", "..", "template.yaml"), packageID)
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION=us-east-1")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return nil, fmt.Errorf("SAM translation (python3 with samtranslator, which cfn-lint ships): %w\n%s", err, stderr)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(out, &tmpl); err != nil {
		return nil, fmt.Errorf("SAM translation output: %w", err)
	}
	return tmpl, nil
}

// The transformed template, as CloudFormation deploys it.
func TestTranslatedInstallerResources(t *testing.T) {
	tmpl := translate(t, "pkg-1")
	r := tmpl["Resources"].(map[string]any)
	get := func(id string) map[string]any {
		x, ok := r[id].(map[string]any)
		if !ok {
			t.Fatalf("translated template lacks %s", id)
		}
		return x
	}
	fn := get("PublishInstallerFunction")
	fp := fn["Properties"].(map[string]any)
	if fn["Type"] != "AWS::Lambda::Function" || fp["Handler"] != "bootstrap" || fp["Runtime"] != "provided.al2023" ||
		fmt.Sprint(fp["Architectures"]) != "[arm64]" {
		t.Errorf("publisher function %v", fp)
	}
	if code := fmt.Sprint(fp["Code"]); !strings.Contains(code, "pkg-1/PublishInstallerFunction") {
		t.Errorf("publisher code %s", code)
	}
	// CodeVersion refers to the Version SAM made for this package.
	cr := get("InstallerPublication")["Properties"].(map[string]any)
	ver := fmt.Sprint(cr["CodeVersion"].(map[string]any)["Ref"])
	if v := get(ver); v["Type"] != "AWS::Lambda::Version" {
		t.Fatalf("CodeVersion refers to %s (%v), want an AWS::Lambda::Version", ver, v["Type"])
	}
	if fmt.Sprint(cr["ServiceToken"]) != "map[Fn::GetAtt:[PublishInstallerFunction Arn]]" {
		t.Errorf("ServiceToken %v", cr["ServiceToken"])
	}
	// Another package: another Version, so CloudFormation sends an Update
	// and the new builds get published.
	other := translate(t, "pkg-2")["Resources"].(map[string]any)["InstallerPublication"].(map[string]any)["Properties"].(map[string]any)
	if ver2 := fmt.Sprint(other["CodeVersion"].(map[string]any)["Ref"]); ver2 == ver {
		t.Errorf("a new package keeps CodeVersion %s: no Update would publish it", ver)
	}
	// The publisher's role may put installer objects and nothing else.
	role := get("PublishInstallerFunctionRole")["Properties"].(map[string]any)
	pols, _ := json.Marshal(role["Policies"])
	if !strings.Contains(string(pols), `"Action":"s3:PutObject"`) || !strings.Contains(string(pols), `"Fn::Sub":"${InstallerBucket.Arn}/installer/*"`) ||
		strings.Count(string(pols), `"Action"`) != 1 {
		t.Errorf("publisher role policies %s", pols)
	}
	// The hashes reach the deploying functions; the bucket and prefixes all.
	for _, id := range []string{"OnboardFunction", "RenewalFunction", "SweepWorkerFunction"} {
		env, _ := json.Marshal(get(id)["Properties"].(map[string]any)["Environment"])
		for _, want := range []string{
			`"` + config.EnvInstallerSHA256LinuxAmd64 + `":{"Fn::GetAtt":["InstallerPublication","` + publish.AttrSHA256LinuxAmd64 + `"]}`,
			`"` + config.EnvInstallerSHA256LinuxArm64 + `":{"Fn::GetAtt":["InstallerPublication","` + publish.AttrSHA256LinuxArm64 + `"]}`,
			`"` + config.EnvInstallerSHA256WindowsAmd64 + `":{"Fn::GetAtt":["InstallerPublication","` + publish.AttrSHA256WindowsAmd64 + `"]}`,
			`"` + config.EnvInstallerBucket + `":{"Ref":"InstallerBucket"}`,
			`"` + config.EnvInstallerKeyPrefix + `":"installer/"`,
			`"` + config.EnvAllowedPrefixes + `":{"Ref":"AllowedPathPrefixes"}`,
		} {
			if !strings.Contains(string(env), want) {
				t.Errorf("%s environment lacks %s", id, want)
			}
		}
	}
	if cycle := findCycle(r); cycle != nil {
		t.Errorf("dependency cycle in the translated template: %v", cycle)
	}
}

// sam build's path for the publisher: make build-PublishInstallerFunction
// puts the arm64 bootstrap and the three installer builds, for the right
// platforms, into ARTIFACTS_DIR (ENGINE's cmd/certferry-node must compile).
func TestPublisherPackageBuild(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "build-PublishInstallerFunction", "ARTIFACTS_DIR="+dir)
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-PublishInstallerFunction: %v\n%s", err, out)
	}
	checkELF := func(name string, machine elf.Machine) {
		f, err := elf.Open(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		defer f.Close()
		if f.Machine != machine || f.Type != elf.ET_EXEC {
			t.Errorf("%s is %v %v, want a %v executable", name, f.Machine, f.Type, machine)
		}
	}
	checkELF("bootstrap", elf.EM_AARCH64)
	for _, p := range publish.Platforms {
		switch p.GOOS + "/" + p.GOARCH {
		case "linux/amd64":
			checkELF(p.PackageFile(), elf.EM_X86_64)
		case "linux/arm64":
			checkELF(p.PackageFile(), elf.EM_AARCH64)
		case "windows/amd64":
			f, err := pe.Open(filepath.Join(dir, p.PackageFile()))
			if err != nil {
				t.Errorf("%s: %v", p.PackageFile(), err)
				continue
			}
			if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
				t.Errorf("%s machine %#x, want amd64", p.PackageFile(), f.Machine)
			}
			f.Close()
		default:
			t.Errorf("no check for platform %s", p)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1+len(publish.Platforms) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("package holds %v, want bootstrap and %d installer builds", names, len(publish.Platforms))
	}
}
