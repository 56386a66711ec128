package samtemplate

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/publish"
	"github.com/certferry/certferry/internal/spec"
)

// installerObjects is the NodeReadPolicy and publisher resource, as yaml.v3
// reads the !Sub string.
const installerObjects = "${InstallerBucket.Arn}/installer/*"

func props(t *testing.T, tmpl map[string]any, id string) map[string]any {
	t.Helper()
	p, ok := res(t, tmpl, id)["Properties"].(map[string]any)
	if !ok {
		t.Fatalf("%s has no properties", id)
	}
	return p
}

// The installer bucket: encrypted, never public, TLS only, a generated name,
// kept when the stack goes.
func TestInstallerBucket(t *testing.T) {
	_, tmpl := readTemplate(t)
	b := res(t, tmpl, "InstallerBucket")
	if b["Type"] != "AWS::S3::Bucket" || b["DeletionPolicy"] != "Retain" || b["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("bucket %v", b)
	}
	p := props(t, tmpl, "InstallerBucket")
	if _, named := p["BucketName"]; named {
		t.Error("the installer bucket has a fixed name; bucket names are global")
	}
	enc := fmt.Sprint(p["BucketEncryption"])
	if !strings.Contains(enc, "SSEAlgorithm:AES256") && !strings.Contains(enc, "SSEAlgorithm:aws:kms") {
		t.Errorf("bucket encryption %s", enc)
	}
	pab, _ := p["PublicAccessBlockConfiguration"].(map[string]any)
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if pab[k] != true {
			t.Errorf("public access block %s = %v", k, pab[k])
		}
	}
	if fmt.Sprint(p["OwnershipControls"]) != "map[Rules:[map[ObjectOwnership:BucketOwnerEnforced]]]" {
		t.Errorf("ownership controls %v (ACLs must be off)", p["OwnershipControls"])
	}

	pol := props(t, tmpl, "InstallerBucketPolicy")
	if pol["Bucket"] != "InstallerBucket" {
		t.Errorf("bucket policy on %v", pol["Bucket"])
	}
	stmts := asList(pol["PolicyDocument"].(map[string]any)["Statement"])
	if len(stmts) != 1 {
		t.Fatalf("bucket policy statements %v, want the TLS-only deny", stmts)
	}
	s := stmts[0].(map[string]any)
	if s["Effect"] != "Deny" || s["Principal"] != "*" || s["Action"] != "s3:*" ||
		fmt.Sprint(s["Resource"]) != "[InstallerBucket.Arn ${InstallerBucket.Arn}/*]" ||
		fmt.Sprint(s["Condition"]) != "map[Bool:map[aws:SecureTransport:false]]" {
		t.Errorf("TLS-only statement %v", s)
	}
}

// The custom resource: the publisher function's package, the bucket and
// prefix of the Layout, an Update whenever the package changes, a bounded
// wait; the publisher may only put installer objects.
func TestInstallerPublicationWiring(t *testing.T) {
	_, tmpl := readTemplate(t)
	cr := res(t, tmpl, "InstallerPublication")
	if cr["Type"] != "Custom::InstallerPublication" {
		t.Errorf("type %v", cr["Type"])
	}
	if fmt.Sprint(cr["DependsOn"]) != "InstallerBucketPolicy" {
		t.Errorf("DependsOn %v: the TLS-only policy must be in place before the first object", cr["DependsOn"])
	}
	p := props(t, tmpl, "InstallerPublication")
	for k, want := range map[string]any{
		"ServiceToken":        "PublishInstallerFunction.Arn",
		publish.PropBucket:    "InstallerBucket",
		publish.PropKeyPrefix: config.DefaultInstallerKeyPrefix,
		"CodeVersion":         "PublishInstallerFunction.Version",
	} {
		if fmt.Sprint(p[k]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", k, p[k], want)
		}
	}
	if st, ok := p["ServiceTimeout"].(int); !ok || st < 60 || st > 900 {
		t.Errorf("ServiceTimeout %v: want a bound of a few minutes (CloudFormation's default is an hour)", p["ServiceTimeout"])
	}
	fn := props(t, tmpl, "PublishInstallerFunction")
	if fn["AutoPublishAlias"] == nil {
		t.Error("PublishInstallerFunction has no AutoPublishAlias: a new package would not change CodeVersion, so no Update would publish it")
	}
	if to, _ := fn["Timeout"].(int); to < 60 || to > 900 {
		t.Errorf("publisher timeout %v", fn["Timeout"])
	}
	stmts := statements(tmpl)["PublishInstallerFunction"]
	if len(stmts) != 1 || fmt.Sprint(stmts[0]["Action"]) != "s3:PutObject" || fmt.Sprint(stmts[0]["Resource"]) != installerObjects {
		t.Errorf("publisher statements %v, want exactly s3:PutObject on %s", stmts, installerObjects)
	}
}

// NodeReadPolicy, statement by statement: the bundles and keystore
// passwords under the prefix, their KMS key through Secrets Manager only,
// and the installer objects.
func TestNodeReadPolicyExactly(t *testing.T) {
	_, tmpl := readTemplate(t)
	got := statements(tmpl)["NodeReadPolicy"]
	want := []string{
		"Allow [secretsmanager:GetSecretValue] [arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:certferry/*] map[]",
		"Allow [kms:Decrypt] [SecretsKey.Arn] map[StringEquals:map[kms:ViaService:secretsmanager.${AWS::Region}.amazonaws.com]]",
		"Allow [s3:GetObject] [" + installerObjects + "] map[]",
	}
	var have []string
	for _, s := range got {
		cond := s["Condition"]
		if cond == nil {
			cond = map[string]any{}
		}
		have = append(have, fmt.Sprintf("%v %v %v %v", s["Effect"], asList(s["Action"]), asList(s["Resource"]), cond))
	}
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		t.Errorf("NodeReadPolicy statements:\n  %s\nwant:\n  %s", strings.Join(have, "\n  "), strings.Join(want, "\n  "))
	}
	// The keystore secret is <prefix><name>/keystore: under the same prefix.
	if prefix := globalsEnv(t, tmpl)[config.EnvSecretPrefix]; prefix != "certferry/" {
		t.Errorf("secret prefix %v; the policy's certferry/* must follow it", prefix)
	}
}

func globalsEnv(t *testing.T, tmpl map[string]any) map[string]any {
	t.Helper()
	fn := tmpl["Globals"].(map[string]any)["Function"].(map[string]any)
	return fn["Environment"].(map[string]any)["Variables"].(map[string]any)
}

// The stack parameter and the installer settings reach the functions that
// send commands, under the names internal/config reads.
func TestInstallerEnvReachesFunctions(t *testing.T) {
	_, tmpl := readTemplate(t)
	param := tmpl["Parameters"].(map[string]any)["AllowedPathPrefixes"].(map[string]any)
	if param["AllowedPattern"] != spec.AllowedPrefixesPattern.String() {
		t.Errorf("AllowedPathPrefixes pattern %v, want spec.AllowedPrefixesPattern %s", param["AllowedPattern"], spec.AllowedPrefixesPattern)
	}
	if param["Default"] != strings.Join(spec.DefaultAllowedPrefixes, ":") {
		t.Errorf("AllowedPathPrefixes default %v", param["Default"])
	}
	env := globalsEnv(t, tmpl)
	if fmt.Sprint(env[config.EnvAllowedPrefixes]) != "AllowedPathPrefixes" {
		t.Errorf("Globals %s = %v, want !Ref AllowedPathPrefixes", config.EnvAllowedPrefixes, env[config.EnvAllowedPrefixes])
	}
	hashes := map[string]string{
		config.EnvInstallerBucket:             "InstallerBucket",
		config.EnvInstallerKeyPrefix:          config.DefaultInstallerKeyPrefix,
		config.EnvInstallerSHA256LinuxAmd64:   "InstallerPublication." + publish.AttrSHA256LinuxAmd64,
		config.EnvInstallerSHA256LinuxArm64:   "InstallerPublication." + publish.AttrSHA256LinuxArm64,
		config.EnvInstallerSHA256WindowsAmd64: "InstallerPublication." + publish.AttrSHA256WindowsAmd64,
	}
	for _, id := range []string{"OnboardFunction", "RenewalFunction", "SweepWorkerFunction"} {
		e, _ := props(t, tmpl, id)["Environment"].(map[string]any)
		vars, _ := e["Variables"].(map[string]any)
		for k, want := range hashes {
			if fmt.Sprint(vars[k]) != want {
				t.Errorf("%s: %s = %v, want %s", id, k, vars[k], want)
			}
		}
	}
	if e := props(t, tmpl, "PublishInstallerFunction")["Environment"]; e != nil && strings.Contains(fmt.Sprint(e), "InstallerPublication") {
		t.Error("the publisher depends on its own custom resource")
	}
}

// findCycle follows Ref, Fn::GetAtt, ${X} in Fn::Sub and DependsOn between
// resources and returns a cycle, or nil.
func findCycle(resources map[string]any) []string {
	deps := map[string][]string{}
	var walk func(id string, v any)
	walk = func(id string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, w := range x {
				switch k {
				case "Ref":
					if s, ok := w.(string); ok {
						deps[id] = append(deps[id], s)
					}
				case "Fn::GetAtt":
					if l, ok := w.([]any); ok && len(l) > 0 {
						deps[id] = append(deps[id], fmt.Sprint(l[0]))
					}
				case "Fn::Sub":
					s := fmt.Sprint(w)
					if l, ok := w.([]any); ok && len(l) > 0 {
						s = fmt.Sprint(l[0])
						walk(id, l[1:])
					}
					for _, part := range strings.Split(s, "${")[1:] {
						name := strings.SplitN(strings.SplitN(part, "}", 2)[0], ".", 2)[0]
						deps[id] = append(deps[id], name)
					}
				}
				walk(id, w)
			}
		case []any:
			for _, w := range x {
				walk(id, w)
			}
		}
	}
	for id, r := range resources {
		rm := r.(map[string]any)
		walk(id, rm["Properties"])
		for _, d := range asList(rm["DependsOn"]) {
			deps[id] = append(deps[id], fmt.Sprint(d))
		}
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var visit func(id string) []string
	visit = func(id string) []string {
		color[id] = grey
		stack = append(stack, id)
		for _, d := range deps[id] {
			if _, isResource := resources[d]; !isResource {
				continue
			}
			switch color[d] {
			case grey:
				return append(slices.Clone(stack), d)
			case white:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = black
		return nil
	}
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for k := range resources {
			if !yield(k) {
				return
			}
		}
	}) {
		if color[id] == white {
			if c := visit(id); c != nil {
				return c
			}
		}
	}
	return nil
}

// The cycle finder finds one.
func TestFindCycle(t *testing.T) {
	r := map[string]any{
		"A": map[string]any{"Properties": map[string]any{"X": map[string]any{"Fn::GetAtt": []any{"B", "Arn"}}}},
		"B": map[string]any{"Properties": map[string]any{"Y": map[string]any{"Fn::Sub": "${A.Arn}/x"}}},
		"C": map[string]any{"Properties": map[string]any{"Z": map[string]any{"Ref": "AWS::Region"}}},
	}
	if findCycle(r) == nil {
		t.Fatal("A -> B -> A not found")
	}
	delete(r, "B")
	if c := findCycle(r); c != nil {
		t.Fatalf("cycle %v in an acyclic template", c)
	}
}

// Every function starts with the environment the template gives it:
// config.Load accepts the Globals plus the function's own variables, with
// parameters at their defaults and resource attributes at plausible values.
func TestEveryFunctionsEnvironmentLoads(t *testing.T) {
	_, tmpl := readTemplate(t)
	params := tmpl["Parameters"].(map[string]any)
	value := func(v any) string {
		switch x := v.(type) {
		case string:
			if p, ok := params[x].(map[string]any); ok { // yaml.v3 reads !Ref P as "P"
				return fmt.Sprint(p["Default"])
			}
			switch {
			case strings.HasPrefix(x, "InstallerPublication.Sha256"):
				return strings.Repeat("ab", 32)
			case x == "InstallerBucket":
				return "certferry-installerbucket-1a2b3c4d5e6f"
			case x == "StepSchedules": // Ref: the group's name
				return "certferry-StepSchedules-1A2B3C4D5E6F"
			case x == "StepSchedulerRole.Arn":
				return "arn:aws:iam::123456789012:role/certferry-StepSchedulerRole-1A2B3C4D5E6F"
			case x == "RenewalFunction.Arn":
				return "arn:aws:lambda:us-east-1:123456789012:function:certferry-RenewalFunction-1A2B3C4D5E6F"
			case x == "EventsDLQ.Arn":
				return "arn:aws:sqs:us-east-1:123456789012:certferry-EventsDLQ-1A2B3C4D5E6F"
			case strings.HasSuffix(x, ".Arn"):
				return "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
			}
			return x
		default:
			return fmt.Sprint(x)
		}
	}
	globals := globalsEnv(t, tmpl)
	for id, r := range tmpl["Resources"].(map[string]any) {
		if r.(map[string]any)["Type"] != "AWS::Serverless::Function" {
			continue
		}
		// What Lambda itself sets in every function's environment.
		env := map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "certferry-" + id + "-1A2B3C4D5E6F", "AWS_REGION": "us-east-1"}
		for k, v := range globals {
			env[k] = value(v)
		}
		if e, ok := props(t, tmpl, id)["Environment"].(map[string]any); ok {
			for k, v := range e["Variables"].(map[string]any) {
				env[k] = value(v)
			}
		}
		_, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, config.EnvTable, config.EnvDocument)
		if err != nil {
			t.Errorf("%s would not start: %v", id, err)
		}
	}
}
