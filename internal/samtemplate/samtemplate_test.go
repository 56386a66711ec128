package samtemplate

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func readTemplate(t *testing.T) (raw []byte, tmpl map[string]any) {
	t.Helper()
	raw, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	return raw, tmpl
}

func TestTemplateCarriesTheDocument(t *testing.T) {
	raw, tmpl := readTemplate(t)
	doc, err := os.ReadFile("../../ssm-documents/certferry-install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	synced, err := SyncDocument(raw, doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(synced, raw) {
		t.Fatal("template.yaml's SSM document differs from ssm-documents/certferry-install.yaml: run make sync-template")
	}
	var want map[string]any
	if err := yaml.Unmarshal(doc, &want); err != nil {
		t.Fatal(err)
	}
	got := res(t, tmpl, "InstallDocument")["Properties"].(map[string]any)["Content"]
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatal("inline document content does not parse to the document file's content")
	}
}

func res(t *testing.T, tmpl map[string]any, id string) map[string]any {
	t.Helper()
	r, ok := tmpl["Resources"].(map[string]any)[id].(map[string]any)
	if !ok {
		t.Fatalf("resource %s missing", id)
	}
	return r
}

func TestTemplateGlobalsAndFunctions(t *testing.T) {
	_, tmpl := readTemplate(t)
	if tmpl["Transform"] != "AWS::Serverless-2016-10-31" {
		t.Fatal("not a SAM template")
	}
	fn := tmpl["Globals"].(map[string]any)["Function"].(map[string]any)
	if fn["Runtime"] != "provided.al2023" || fn["Handler"] != "bootstrap" || fmt.Sprint(fn["Architectures"]) != "[arm64]" {
		t.Fatalf("globals %v", fn)
	}
	if fn["LoggingConfig"].(map[string]any)["LogFormat"] != "JSON" {
		t.Fatal("log format is not JSON")
	}
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir("../../functions")
	var fns int
	for id, r := range tmpl["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] != "AWS::Serverless::Function" {
			continue
		}
		fns++
		if r["Metadata"].(map[string]any)["BuildMethod"] != "makefile" {
			t.Errorf("%s: BuildMethod is not makefile", id)
		}
		target := regexp.MustCompile(`(?m)^build-` + id + `:\n\t.*-o \$\(ARTIFACTS_DIR\)/bootstrap \./functions/([a-z-]+)$`)
		m := target.FindSubmatch(makefile)
		if m == nil {
			t.Errorf("Makefile has no build-%s target building into $(ARTIFACTS_DIR)/bootstrap", id)
			continue
		}
		if _, err := os.Stat("../../functions/" + string(m[1]) + "/main.go"); err != nil {
			t.Errorf("%s builds ./functions/%s, which has no main.go", id, m[1])
		}
	}
	if fns != len(entries) {
		t.Errorf("%d functions in the template, %d folders in functions/", fns, len(entries))
	}
	table := res(t, tmpl, "InventoryTable")["Properties"].(map[string]any)
	if table["BillingMode"] != "PAY_PER_REQUEST" ||
		table["PointInTimeRecoverySpecification"].(map[string]any)["PointInTimeRecoveryEnabled"] != true ||
		table["TimeToLiveSpecification"].(map[string]any)["AttributeName"] != "expiresAt" {
		t.Fatalf("table %v", table)
	}
	api := res(t, tmpl, "Api")["Properties"].(map[string]any)
	if api["Auth"].(map[string]any)["DefaultAuthorizer"] != "AWS_IAM" {
		t.Fatal("API is not AWS_IAM-authorized")
	}
}

// statements returns every IAM statement in the template: function
// Policies, managed policies and inline role policies.
func statements(tmpl map[string]any) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	add := func(id string, doc any) {
		d, ok := doc.(map[string]any)
		if !ok {
			return
		}
		for _, s := range asList(d["Statement"]) {
			out[id] = append(out[id], s.(map[string]any))
		}
	}
	for id, r := range tmpl["Resources"].(map[string]any) {
		r := r.(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		switch r["Type"] {
		case "AWS::Serverless::Function":
			for _, p := range asList(props["Policies"]) {
				add(id, p)
			}
		case "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy":
			add(id, props["PolicyDocument"])
		case "AWS::IAM::Role":
			for _, p := range asList(props["Policies"]) {
				add(id, p.(map[string]any)["PolicyDocument"])
			}
		}
	}
	return out
}

func asList(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	default:
		return []any{x}
	}
}

// Actions allowed on Resource "*": reads and lists that IAM cannot scope.
var starOK = map[string]bool{"secretsmanager:GetRandomPassword": true, "ssm:ListCommands": true,
	"ssm:GetCommandInvocation": true, "ssm:ListCommandInvocations": true, "ssm:DescribeInstanceInformation": true, "ec2:DescribeInstances": true,
	"cloudwatch:PutMetricData": true, "cloudwatch:DescribeAlarms": true}

func TestLeastPrivilege(t *testing.T) {
	_, tmpl := readTemplate(t)
	if len(statements(tmpl)) == 0 {
		t.Fatal("no IAM statements found")
	}
	for _, v := range policyViolations(tmpl) {
		t.Error(v)
	}
}

// policyViolations lists every IAM statement of a template that breaks
// certferry's rules: no "*" action, nothing but unscopable reads on
// Resource "*", SendCommand only on certferry's document and on instances
// under an ssm:resourceTag condition, Secrets Manager only under the
// certferry/ prefix, DynamoDB only on the inventory, nodes read only.
func policyViolations(tmpl map[string]any) []string {
	var out []string
	bad := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	all := statements(tmpl)
	sendScoped := false
	for id, stmts := range all {
		for _, s := range stmts {
			if s["Effect"] == "Deny" {
				continue
			}
			resources := fmt.Sprint(asList(s["Resource"]))
			for _, a := range asList(s["Action"]) {
				a := fmt.Sprint(a)
				if a == "*" || strings.HasSuffix(a, ":*") {
					bad("%s: wildcard action %q", id, a)
				}
				if resources == "[*]" && !starOK[a] {
					bad("%s: %s on Resource *", id, a)
				}
				if a == "ssm:SendCommand" {
					switch {
					case strings.Contains(resources, ":document/"):
						if !strings.Contains(resources, "${InstallDocument}") {
							bad("%s: SendCommand on a document other than certferry's: %s", id, resources)
						}
					case strings.Contains(resources, ":instance/") || strings.Contains(resources, ":managed-instance/"):
						if !strings.Contains(fmt.Sprint(s["Condition"]), "ssm:resourceTag/") {
							bad("%s: SendCommand on instances without an ssm:resourceTag condition", id)
						}
						sendScoped = true
					default:
						bad("%s: SendCommand on %s", id, resources)
					}
				}
				if strings.HasPrefix(a, "secretsmanager:") && a != "secretsmanager:GetRandomPassword" &&
					(!strings.Contains(resources, ":secret:certferry/*") || strings.Count(resources, "arn:") != 1) {
					bad("%s: %s outside the certferry/ prefix: %s", id, a, resources)
				}
				if strings.HasPrefix(a, "dynamodb:") && !strings.Contains(resources, "InventoryTable") {
					bad("%s: %s on %s, not the inventory table", id, a, resources)
				}
				if id == "NodeReadPolicy" && a != "secretsmanager:GetSecretValue" && a != "kms:Decrypt" && a != "s3:GetObject" {
					bad("node read policy allows %s", a)
				}
				// The API: callers invoke this stack's API (its v1 stage),
				// through ApiCallerPolicy only (TestApiCallerPolicy).
				if strings.HasPrefix(a, "execute-api:") &&
					(id != "ApiCallerPolicy" || a != "execute-api:Invoke" || resources != "["+apiCallerResource+"]") {
					bad("%s: %s on %s (only ApiCallerPolicy invokes, on %s)", id, a, resources, apiCallerResource)
				}
				if id == "ApiCallerPolicy" && a != "execute-api:Invoke" {
					bad("API caller policy allows %s", a)
				}
				// Timed rollout steps: schedules only in this stack's group,
				// the step role passed only to EventBridge Scheduler, and
				// that role invoking only the renewal function.
				if strings.HasPrefix(a, "scheduler:") && resources != "["+stepSchedulesResource+"]" {
					bad("%s: %s on %s (only %s)", id, a, resources, stepSchedulesResource)
				}
				if a == "iam:PassRole" && (resources != "[StepSchedulerRole.Arn]" ||
					!strings.Contains(fmt.Sprint(s["Condition"]), "iam:PassedToService:scheduler.amazonaws.com")) {
					bad("%s: iam:PassRole on %s (only StepSchedulerRole.Arn, passed to scheduler.amazonaws.com)", id, resources)
				}
				probeInvoker := (id == "TrackerFunction" || id == "SweepWorkerFunction") && resources == "[ProbeFunction.Arn]" // outside probes (TestProbeFunction)
				if a == "lambda:InvokeFunction" && (id != "StepSchedulerInvokePolicy" || resources != "[RenewalFunction.Arn]") && !probeInvoker {
					bad("%s: lambda:InvokeFunction on %s (only the step role, on RenewalFunction.Arn; the tracker and the sweeper on ProbeFunction.Arn)", id, resources)
				}
				// S3: nodes read and the publisher writes the installer
				// objects, and nothing else touches S3.
				if strings.HasPrefix(a, "s3:") {
					onInstaller := resources == "[${InstallerBucket.Arn}/installer/*]"
					switch {
					case a == "s3:GetObject" && id == "NodeReadPolicy" && onInstaller:
					case a == "s3:PutObject" && id == "PublishInstallerFunction" && onInstaller:
					default:
						bad("%s: %s on %s (only nodes read, and the publisher writes, ${InstallerBucket.Arn}/installer/*)", id, a, resources)
					}
				}
			}
		}
	}
	if !sendScoped {
		bad("no tag-conditioned SendCommand statement")
	}
	return out
}

// The checker itself: each rule catches the statement it is for.
func TestPolicyCheckerCatches(t *testing.T) {
	const good = `
  Fine:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - {Effect: Allow, Action: ssm:SendCommand, Resource: "arn:aws:ssm:r:a:document/${InstallDocument}"}
          - Effect: Allow
            Action: ssm:SendCommand
            Resource: "arn:aws:ec2:r:a:instance/*"
            Condition: {StringLike: {"ssm:resourceTag/certferry": "*"}}
`
	tests := []struct{ name, stmt, want string }{
		{"star action", `{Effect: Allow, Action: "*", Resource: "arn:aws:s3:::x"}`, `wildcard action "*"`},
		{"service star", `{Effect: Allow, Action: "ssm:*", Resource: "arn:aws:s3:::x"}`, `wildcard action "ssm:*"`},
		{"write on star", `{Effect: Allow, Action: sns:Publish, Resource: "*"}`, "sns:Publish on Resource *"},
		{"send any document", `{Effect: Allow, Action: ssm:SendCommand, Resource: "arn:aws:ssm:r:a:document/AWS-RunShellScript"}`, "SendCommand on a document other than certferry's"},
		{"send untagged", `{Effect: Allow, Action: ssm:SendCommand, Resource: "arn:aws:ec2:r:a:instance/*"}`, "without an ssm:resourceTag condition"},
		{"send star", `{Effect: Allow, Action: ssm:SendCommand, Resource: "*"}`, "SendCommand on [*]"},
		{"secrets outside prefix", `{Effect: Allow, Action: secretsmanager:PutSecretValue, Resource: "arn:aws:secretsmanager:r:a:secret:*"}`, "outside the certferry/ prefix"},
		{"secrets prefix plus more", `{Effect: Allow, Action: secretsmanager:PutSecretValue, Resource: ["arn:aws:secretsmanager:r:a:secret:certferry/*", "arn:aws:secretsmanager:r:a:secret:prod/*"]}`, "outside the certferry/ prefix"},
		{"other table", `{Effect: Allow, Action: dynamodb:PutItem, Resource: "arn:aws:dynamodb:r:a:table/other"}`, "not the inventory table"},
		{"s3 write outside the publisher", `{Effect: Allow, Action: s3:PutObject, Resource: "${InstallerBucket.Arn}/installer/*"}`, "s3:PutObject on"},
		{"s3 read of the whole bucket", `{Effect: Allow, Action: s3:GetObject, Resource: "${InstallerBucket.Arn}/*"}`, "s3:GetObject on"},
		{"s3 delete", `{Effect: Allow, Action: s3:DeleteObject, Resource: "${InstallerBucket.Arn}/installer/*"}`, "s3:DeleteObject on"},
		{"s3 list", `{Effect: Allow, Action: s3:ListBucket, Resource: "${InstallerBucket.Arn}"}`, "s3:ListBucket on"},
		{"invoke any API", `{Effect: Allow, Action: execute-api:Invoke, Resource: "arn:aws:execute-api:r:a:*"}`, "execute-api:Invoke on"},
		{"schedules of any group", `{Effect: Allow, Action: scheduler:CreateSchedule, Resource: "arn:aws:scheduler:r:a:schedule/*"}`, "scheduler:CreateSchedule on"},
		{"schedule groups", `{Effect: Allow, Action: scheduler:DeleteScheduleGroup, Resource: "arn:aws:scheduler:r:a:schedule-group/${StepSchedules}"}`, "scheduler:DeleteScheduleGroup on"},
		{"pass any role", `{Effect: Allow, Action: iam:PassRole, Resource: "arn:aws:iam::a:role/*", Condition: {StringEquals: {"iam:PassedToService": scheduler.amazonaws.com}}}`, "iam:PassRole on"},
		{"pass the step role to anyone", `{Effect: Allow, Action: iam:PassRole, Resource: StepSchedulerRole.Arn}`, "iam:PassRole on"},
		{"invoke any function", `{Effect: Allow, Action: lambda:InvokeFunction, Resource: "arn:aws:lambda:r:a:function:*"}`, "lambda:InvokeFunction on"},
		{"manage the API", `{Effect: Allow, Action: execute-api:ManageConnections, Resource: "` + apiCallerResource + `"}`, "execute-api:ManageConnections on"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "Resources:" + good + `
  Bad:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Statement:
          - ` + tc.stmt + "\n"
			var tmpl map[string]any
			if err := yaml.Unmarshal([]byte(src), &tmpl); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(policyViolations(tmpl), "\n")
			if !strings.Contains(got, tc.want) {
				t.Fatalf("violations %q, want one with %q", got, tc.want)
			}
		})
	}
	var tmpl map[string]any
	if err := yaml.Unmarshal([]byte("Resources:"+good), &tmpl); err != nil {
		t.Fatal(err)
	}
	if v := policyViolations(tmpl); len(v) != 0 {
		t.Fatalf("a clean policy reported %v", v)
	}
}

// The renewal function hears every ACM event kind and the ACM Health
// events, without filters on detail fields real events may lack, and
// failed events end in a dead-letter queue.
func TestRenewalSubscriptions(t *testing.T) {
	_, tmpl := readTemplate(t)
	fn := res(t, tmpl, "RenewalFunction")["Properties"].(map[string]any)
	patterns := map[string]map[string]any{}
	for id, e := range fn["Events"].(map[string]any) {
		e := e.(map[string]any)
		if e["Type"] != "EventBridgeRule" {
			t.Errorf("%s: %v, want EventBridgeRule", id, e["Type"])
			continue
		}
		props := e["Properties"].(map[string]any)
		p := props["Pattern"].(map[string]any)
		patterns[fmt.Sprint(p["source"])] = p
		if dl, _ := props["DeadLetterConfig"].(map[string]any); fmt.Sprint(dl["Arn"]) != "EventsDLQ.Arn" { // yaml.v3 reads !GetAtt X.Arn as the string "X.Arn"
			t.Errorf("%s: rule dead-letter config %v", id, props["DeadLetterConfig"])
		}
	}
	acm := patterns["[aws.acm]"]
	if acm == nil {
		t.Fatal("no aws.acm rule")
	}
	for _, dt := range []string{"ACM Certificate Available", "ACM Certificate Renewal Action Required", "ACM Certificate Approaching Expiration", "ACM Certificate Expired",
		"ACM Certificate Revoked", "ACM Certificate Rotated"} {
		if !strings.Contains(fmt.Sprint(acm["detail-type"]), dt) {
			t.Errorf("aws.acm rule misses %q", dt)
		}
	}
	if acm["detail"] != nil {
		t.Errorf("aws.acm rule filters on detail fields: %v", acm["detail"])
	}
	health := patterns["[aws.health]"]
	if health == nil {
		t.Fatal("no aws.health rule")
	}
	d := health["detail"].(map[string]any)
	if fmt.Sprint(d["service"]) != "[ACM]" || !strings.Contains(fmt.Sprint(d["eventTypeCode"]), "AWS_ACM_RENEWAL_STATE_CHANGE") {
		t.Errorf("aws.health rule %v", health)
	}
	inv := fn["EventInvokeConfig"].(map[string]any)
	if inv["MaximumRetryAttempts"] == nil || fmt.Sprint(inv["DestinationConfig"]) == "" ||
		inv["DestinationConfig"].(map[string]any)["OnFailure"].(map[string]any)["Type"] != "SQS" {
		t.Errorf("async invocation config %v", inv)
	}
	if q := res(t, tmpl, "EventsDLQ"); q["Type"] != "AWS::SQS::Queue" {
		t.Errorf("dead-letter queue %v", q)
	}
}

// The tracker hears only certferry's document; the sweeper runs on the
// configurable schedule; alarms watch failures and expiry.
func TestTrackerSweeperAndAlarms(t *testing.T) {
	_, tmpl := readTemplate(t)
	tr := res(t, tmpl, "TrackerFunction")["Properties"].(map[string]any)
	ev := tr["Events"].(map[string]any)["CommandStatus"].(map[string]any)["Properties"].(map[string]any)["Pattern"].(map[string]any)
	if fmt.Sprint(ev["source"]) != "[aws.ssm]" || fmt.Sprint(ev["detail"].(map[string]any)["document-name"]) != "[InstallDocument]" ||
		!strings.Contains(fmt.Sprint(ev["detail-type"]), "EC2 Command Invocation Status-change Notification") ||
		!strings.Contains(fmt.Sprint(ev["detail-type"]), "EC2 Command Status-change Notification") {
		t.Errorf("tracker pattern %v", ev)
	}
	sw := res(t, tmpl, "SweeperFunction")["Properties"].(map[string]any)
	sched := sw["Events"].(map[string]any)["Schedule"].(map[string]any)["Properties"].(map[string]any)
	if sched["Schedule"] != "SweepSchedule" {
		t.Errorf("sweeper schedule %v, want the SweepSchedule parameter", sched["Schedule"])
	}
	if d := tmpl["Parameters"].(map[string]any)["SweepSchedule"].(map[string]any)["Default"]; d != "rate(1 day)" {
		t.Errorf("default schedule %v", d)
	}
	for id, metric := range map[string]string{"DeploymentFailuresAlarm": "DeploymentFailures", "DaysToExpiryAlarm": "DaysToExpiry"} {
		a := res(t, tmpl, id)["Properties"].(map[string]any)
		if a["Namespace"] != "certferry" || a["MetricName"] != metric || fmt.Sprint(a["AlarmActions"]) != "[AlertsTopic]" {
			t.Errorf("%s: %v", id, a)
		}
	}
}

// make fuzz runs every Fuzz function of the module.
func TestMakeFuzzListsEveryTarget(t *testing.T) {
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^FUZZ_TARGETS := (.*)$`).FindSubmatch(makefile)
	if m == nil {
		t.Fatal("no FUZZ_TARGETS in the Makefile")
	}
	listed := map[string]bool{}
	for _, f := range strings.Fields(string(m[1])) {
		listed[f] = true
	}
	found := 0
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(f \*testing\.F\)`)
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, fm := range fuzzFunc.FindAllSubmatch(src, -1) {
			found++
			key := filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, "../../"))) + ":" + string(fm[1])
			if !listed[key] {
				t.Errorf("%s is not in the Makefile's FUZZ_TARGETS", key)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found != len(listed) {
		t.Errorf("%d fuzz functions, %d listed", found, len(listed))
	}
}
