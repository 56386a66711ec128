package samtemplate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// certferry's own events: only the functions that emit them may
// events:PutEvents, only on this account's default bus in this region and
// only with source certferry; the forwarding role, only on the central bus.
func TestEventsPermission(t *testing.T) {
	_, tmpl := readTemplate(t)
	found := false
	for id, stmts := range statements(tmpl) {
		for _, s := range stmts {
			for _, a := range asList(s["Action"]) {
				if !strings.HasPrefix(fmt.Sprint(a), "events:") {
					continue
				}
				res := fmt.Sprint(asList(s["Resource"]))
				switch {
				case id == "AlertsPolicy" && a == "events:PutEvents":
					found = true
					if res != "[arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default]" {
						t.Errorf("AlertsPolicy puts events on %s, want this account's default bus", res)
					}
					cond, _ := s["Condition"].(map[string]any)
					eq, _ := cond["StringEquals"].(map[string]any)
					if len(cond) != 1 || eq["events:source"] != "certferry" {
						t.Errorf("AlertsPolicy PutEvents condition %v, want StringEquals events:source certferry", s["Condition"])
					}
				case id == "CentralForwardRole" && a == "events:PutEvents":
					if res != "[CentralEventBusArn]" {
						t.Errorf("CentralForwardRole puts events on %s, want the CentralEventBusArn parameter", res)
					}
				default:
					t.Errorf("%s: %s on %s (only AlertsPolicy and CentralForwardRole put events)", id, a, res)
				}
			}
		}
	}
	if !found {
		t.Fatal("no events:PutEvents for certferry's events")
	}
	// The emitters hold AlertsPolicy: renewal (the engine's Renewal
	// Waiting), tracker (Deployment Finished, Node Failed), sweeper
	// (Certificate At Risk, and the deployments it concludes).
	for _, fn := range []string{"RenewalFunction", "TrackerFunction", "SweeperFunction"} {
		p := res(t, tmpl, fn)["Properties"].(map[string]any)
		if !slices.ContainsFunc(asList(p["Policies"]), func(v any) bool { return v == "AlertsPolicy" }) {
			t.Errorf("%s lacks AlertsPolicy (events:PutEvents)", fn)
		}
	}
}

// The optional forward to central.yaml's bus: a rule on the default bus
// for source certferry, its target the CentralEventBusArn with a role only
// EventBridge of this account assumes, all under HasCentralEventBus.
func TestCentralForward(t *testing.T) {
	_, tmpl := readTemplate(t)
	params := tmpl["Parameters"].(map[string]any)
	p := params["CentralEventBusArn"].(map[string]any)
	if p["Default"] != "" {
		t.Errorf("CentralEventBusArn default %v, want empty", p["Default"])
	}
	re := regexp.MustCompile(p["AllowedPattern"].(string))
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"", true},
		{"arn:aws:events:eu-west-1:111122223333:event-bus/certferry-central", true},
		{"arn:aws-us-gov:events:us-gov-west-1:111122223333:event-bus/default", true},
		{"arn:aws-eusc:events:eusc-de-east-1:111122223333:event-bus/certferry", true},
		{"arn:aws:events:eu-west-1:111122223333:rule/certferry", false},
		{"arn:aws:sqs:eu-west-1:111122223333:queue", false},
		{"arn:aws:events:eu-west-1:1111:event-bus/x", false},
		{"certferry-central", false},
		{"arn:aws:events:eu-west-1:111122223333:event-bus/a b", false},
	} {
		if re.MatchString(tc.v) != tc.ok {
			t.Errorf("CentralEventBusArn pattern on %q = %v, want %v", tc.v, !tc.ok, tc.ok)
		}
	}
	cond := fmt.Sprint(tmpl["Conditions"].(map[string]any)["HasCentralEventBus"])
	if cond != "[[CentralEventBusArn ]]" { // !Not [!Equals [!Ref CentralEventBusArn, ""]], tags dropped
		t.Errorf("HasCentralEventBus = %s", cond)
	}
	rule := res(t, tmpl, "CentralForwardRule")
	rp := rule["Properties"].(map[string]any)
	if rule["Type"] != "AWS::Events::Rule" || rule["Condition"] != "HasCentralEventBus" || rp["EventBusName"] != "default" ||
		fmt.Sprint(rp["EventPattern"]) != "map[source:[certferry]]" {
		t.Errorf("CentralForwardRule %v", rule)
	}
	targets := asList(rp["Targets"])
	if len(targets) != 1 {
		t.Fatalf("CentralForwardRule targets %v", targets)
	}
	tg := targets[0].(map[string]any)
	if tg["Arn"] != "CentralEventBusArn" || tg["RoleArn"] != "CentralForwardRole.Arn" ||
		fmt.Sprint(tg["DeadLetterConfig"]) != "map[Arn:EventsDLQ.Arn]" {
		t.Errorf("CentralForwardRule target %v", tg)
	}
	role := res(t, tmpl, "CentralForwardRole")
	if role["Condition"] != "HasCentralEventBus" {
		t.Errorf("CentralForwardRole condition %v", role["Condition"])
	}
	trust := role["Properties"].(map[string]any)["AssumeRolePolicyDocument"].(map[string]any)
	stmts := asList(trust["Statement"])
	if len(stmts) != 1 {
		t.Fatalf("trust %v", trust)
	}
	st := stmts[0].(map[string]any)
	if fmt.Sprint(st["Principal"]) != "map[Service:events.amazonaws.com]" || st["Action"] != "sts:AssumeRole" ||
		fmt.Sprint(st["Condition"]) != "map[StringEquals:map[aws:SourceAccount:AWS::AccountId]]" {
		t.Errorf("CentralForwardRole trust %v", st)
	}
	if out := tmpl["Outputs"].(map[string]any)["CentralEventBusArn"].(map[string]any); out["Condition"] != "HasCentralEventBus" {
		t.Errorf("CentralEventBusArn output %v", out)
	}
}

// nameProps are the properties that give a resource an explicit physical
// name, by type, and how far the name must be unique: "account" names are
// one namespace for every region of an account (IAM; CloudWatch
// dashboards), "global" ones for every account (S3 buckets), "region"
// ones per account and region.
var nameProps = map[string]struct{ prop, scope string }{
	"AWS::IAM::Role":                      {"RoleName", "account"},
	"AWS::IAM::ManagedPolicy":             {"ManagedPolicyName", "account"},
	"AWS::IAM::InstanceProfile":           {"InstanceProfileName", "account"},
	"AWS::IAM::User":                      {"UserName", "account"},
	"AWS::IAM::Group":                     {"GroupName", "account"},
	"AWS::CloudWatch::Dashboard":          {"DashboardName", "account"},
	"AWS::S3::Bucket":                     {"BucketName", "global"},
	"AWS::SSM::Document":                  {"Name", "region"},
	"AWS::SSM::Parameter":                 {"Name", "region"},
	"AWS::Logs::LogGroup":                 {"LogGroupName", "region"},
	"AWS::KMS::Alias":                     {"AliasName", "region"},
	"AWS::SNS::Topic":                     {"TopicName", "region"},
	"AWS::SQS::Queue":                     {"QueueName", "region"},
	"AWS::DynamoDB::Table":                {"TableName", "region"},
	"AWS::Lambda::Function":               {"FunctionName", "region"},
	"AWS::Serverless::Function":           {"FunctionName", "region"},
	"AWS::Serverless::Api":                {"Name", "region"},
	"AWS::Events::Rule":                   {"Name", "region"},
	"AWS::Events::EventBus":               {"Name", "region"},
	"AWS::Scheduler::ScheduleGroup":       {"Name", "region"},
	"AWS::Scheduler::Schedule":            {"Name", "region"},
	"AWS::CloudWatch::Alarm":              {"AlarmName", "region"},
	"AWS::SecretsManager::Secret":         {"Name", "region"},
	"AWS::StepFunctions::StateMachine":    {"StateMachineName", "region"},
	"AWS::SQS::QueuePolicy":               {"", ""},
	"AWS::ApiGateway::RestApi":            {"", ""}, // names need not be unique
	"AWS::Lambda::LayerVersion":           {"LayerName", "region"},
	"AWS::EC2::SecurityGroup":             {"GroupName", "region"},
	"AWS::Serverless::StateMachine":       {"Name", "region"},
	"AWS::CloudFormation::CustomResource": {"", ""},
	"AWS::Logs::ResourcePolicy":           {"PolicyName", "region"},
	"AWS::Events::EventBusPolicy":         {"", ""}, // StatementId: per bus
	"AWS::SNS::TopicPolicy":               {"", ""},
	"AWS::SNS::Subscription":              {"", ""},
	"AWS::KMS::Key":                       {"", ""},
	"AWS::IAM::Policy":                    {"", ""}, // PolicyName: an inline policy, per role
	"AWS::Lambda::Alias":                  {"", ""}, // Name: per function
	"AWS::Lambda::Version":                {"", ""},
	"AWS::Lambda::Permission":             {"", ""},
	"AWS::Lambda::EventInvokeConfig":      {"", ""},
	"AWS::ApiGateway::Stage":              {"", ""}, // StageName: per API
	"AWS::ApiGateway::Deployment":         {"", ""},
}

// namingViolations lists every explicitly named resource of a template
// whose name would collide when the template is deployed as several
// stacks, in several regions of one account, or in several accounts
// (StackSets): every name carries the stack (AWS::StackName or
// AWS::StackId), account-wide names the region too, global names the
// account and the region.
func namingViolations(tmpl map[string]any) []string {
	var out []string
	resources, _ := tmpl["Resources"].(map[string]any)
	for id, r := range resources {
		r, _ := r.(map[string]any)
		typ := fmt.Sprint(r["Type"])
		np, known := nameProps[typ]
		props, _ := r["Properties"].(map[string]any)
		if !known {
			// A type this table does not know: any property called *Name
			// holding a literal is suspect.
			for k, v := range props {
				if strings.HasSuffix(k, "Name") && k != "DisplayName" && k != "StageName" && k != "EventBusName" {
					if s, ok := v.(string); ok && !strings.Contains(s, "AWS::") {
						out = append(out, fmt.Sprintf("%s (%s): %s %q: add the type to nameProps and give it the stack", id, typ, k, s))
					}
				}
			}
			continue
		}
		if np.prop == "" {
			continue
		}
		v, ok := props[np.prop]
		if !ok {
			continue // a generated name: unique
		}
		name := fmt.Sprint(v) // !Sub's string, !Join's and !Ref's parts: every pseudo parameter shows
		if !strings.Contains(name, "AWS::StackName") && !strings.Contains(name, "AWS::StackId") {
			out = append(out, fmt.Sprintf("%s: %s %s lacks the stack (AWS::StackName or AWS::StackId)", id, np.prop, name))
		}
		if (np.scope == "account" || np.scope == "global") && !strings.Contains(name, "AWS::Region") {
			out = append(out, fmt.Sprintf("%s: %s %s lacks the region (%s names are one namespace for every region of an account)", id, np.prop, name, typ))
		}
		if np.scope == "global" && !strings.Contains(name, "AWS::AccountId") {
			out = append(out, fmt.Sprintf("%s: %s %s lacks the account (%s names are global)", id, np.prop, name, typ))
		}
	}
	return out
}

// StackSets-ready: the same template as many stacks, in many regions and
// accounts, collides nowhere.
func TestNoNameCollides(t *testing.T) {
	_, tmpl := readTemplate(t)
	for _, v := range namingViolations(tmpl) {
		t.Error(v)
	}
}

// The naming check catches what it is for.
func TestNamingCheckCatches(t *testing.T) {
	for _, tc := range []struct{ name, res, want string }{
		{"role without region", "Type: AWS::IAM::Role\n    Properties: {RoleName: !Sub '${AWS::StackName}-forward'}", "lacks the region"},
		{"fixed role name", "Type: AWS::IAM::Role\n    Properties: {RoleName: certferry-forward}", "lacks the stack"},
		{"dashboard without region", "Type: AWS::CloudWatch::Dashboard\n    Properties: {DashboardName: !Ref AWS::StackName}", "lacks the region"},
		{"bucket without account", "Type: AWS::S3::Bucket\n    Properties: {BucketName: !Sub '${AWS::StackName}-${AWS::Region}'}", "lacks the account"},
		{"fixed schedule group", "Type: AWS::Scheduler::ScheduleGroup\n    Properties: {Name: certferry}", "lacks the stack"},
		{"fixed log group", "Type: AWS::Logs::LogGroup\n    Properties: {LogGroupName: /certferry/central}", "lacks the stack"},
		{"unknown type", "Type: AWS::Foo::Bar\n    Properties: {BarName: fixed}", "add the type to nameProps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tmpl map[string]any
			if err := yaml.Unmarshal([]byte("Resources:\n  X:\n    "+tc.res+"\n"), &tmpl); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(namingViolations(tmpl), "\n")
			if !strings.Contains(got, tc.want) {
				t.Fatalf("violations %q, want %q", got, tc.want)
			}
		})
	}
	var ok map[string]any
	if err := yaml.Unmarshal([]byte(`Resources:
  R: {Type: AWS::IAM::Role, Properties: {RoleName: !Sub '${AWS::StackName}-${AWS::Region}-forward'}}
  B: {Type: AWS::S3::Bucket, Properties: {BucketName: !Sub '${AWS::StackName}-${AWS::AccountId}-${AWS::Region}'}}
  D: {Type: AWS::SSM::Document, Properties: {Name: !Join ["-", ["certferry-install", !Select [2, !Split ["/", !Ref "AWS::StackId"]]]]}}
  G: {Type: AWS::S3::Bucket}
`), &ok); err != nil {
		t.Fatal(err)
	}
	if v := namingViolations(ok); len(v) != 0 {
		t.Fatalf("clean names reported: %v", v)
	}
}
