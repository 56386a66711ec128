package samtemplate

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/certferry/certferry/internal/busevents"
)

// readCentral reads central.yaml (tags dropped, as readTemplate does: !Ref
// X reads "X", !GetAtt X.Arn "X.Arn", !Sub's string its text).
func readCentral(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../../central.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := yaml.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// ofType returns the ids of the resources of one type.
func ofType(tmpl map[string]any, typ string) []string {
	var ids []string
	for id, r := range tmpl["Resources"].(map[string]any) {
		if r.(map[string]any)["Type"] == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// The central bus admits the organization only, for events:PutEvents only.
func TestCentralBusPolicy(t *testing.T) {
	tmpl := readCentral(t)
	if ids := ofType(tmpl, "AWS::Events::EventBusPolicy"); fmt.Sprint(ids) != "[CentralBusPolicy]" {
		t.Fatalf("event bus policies %v, want exactly CentralBusPolicy", ids)
	}
	if buses := ofType(tmpl, "AWS::Events::EventBus"); fmt.Sprint(buses) != "[CentralBus]" {
		t.Fatalf("event buses %v", buses)
	}
	if p := res(t, tmpl, "CentralBus")["Properties"].(map[string]any); p["Policy"] != nil {
		t.Errorf("the bus carries its own Policy too: %v", p["Policy"])
	}
	for _, v := range busPolicyViolations(res(t, tmpl, "CentralBusPolicy")) {
		t.Error(v)
	}
	// The organization id is validated (Organizations' id pattern) and
	// has no default.
	p := tmpl["Parameters"].(map[string]any)["OrganizationId"].(map[string]any)
	if _, ok := p["Default"]; ok {
		t.Error("OrganizationId has a default")
	}
	re := regexp.MustCompile(p["AllowedPattern"].(string))
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"o-a1b2c3d4e5", true},
		{"o-abcdefghijklmnopqrstuvwxyz012345", true},
		{"", false},
		{"o-short", false},
		{"o-ABCDEFGHIJ", false},
		{"r-a1b2c3d4e5", false},
		{"o-a1b2c3d4e5 ", false},
		{"*", false},
		{"o-abcdefghijklmnopqrstuvwxyz0123456", false},
	} {
		if re.MatchString(tc.v) != tc.ok {
			t.Errorf("OrganizationId pattern on %q = %v, want %v", tc.v, !tc.ok, tc.ok)
		}
	}
}

// busPolicyViolations checks an AWS::Events::EventBusPolicy: one Allow
// statement, Principal "*" narrowed by exactly aws:PrincipalOrgID =
// OrganizationId, Action exactly events:PutEvents, on the central bus.
func busPolicyViolations(pol map[string]any) []string {
	var out []string
	props, _ := pol["Properties"].(map[string]any)
	if props["EventBusName"] != "CentralBus" {
		out = append(out, fmt.Sprintf("policy on bus %v, want CentralBus", props["EventBusName"]))
	}
	if props["Action"] != nil || props["Principal"] != nil || props["Condition"] != nil {
		out = append(out, "the policy uses the legacy Action/Principal/Condition properties besides Statement")
	}
	stmts := asList(props["Statement"])
	if len(stmts) != 1 {
		return append(out, fmt.Sprintf("%d statements, want 1", len(stmts)))
	}
	s, _ := stmts[0].(map[string]any)
	if s["Effect"] != "Allow" {
		out = append(out, fmt.Sprintf("Effect %v", s["Effect"]))
	}
	if acts := asList(s["Action"]); fmt.Sprint(acts) != "[events:PutEvents]" {
		out = append(out, fmt.Sprintf("actions %v, want only events:PutEvents", acts))
	}
	if s["NotAction"] != nil || s["NotPrincipal"] != nil || s["NotResource"] != nil {
		out = append(out, "a Not* element")
	}
	if fmt.Sprint(asList(s["Resource"])) != "[CentralBus.Arn]" {
		out = append(out, fmt.Sprintf("resource %v, want the central bus", s["Resource"]))
	}
	if s["Principal"] != "*" {
		out = append(out, fmt.Sprintf("principal %v, want * narrowed by the organization", s["Principal"]))
	}
	if c := fmt.Sprint(s["Condition"]); c != "map[StringEquals:map[aws:PrincipalOrgID:OrganizationId]]" {
		out = append(out, fmt.Sprintf("condition %s, want exactly StringEquals aws:PrincipalOrgID = the OrganizationId parameter", c))
	}
	return out
}

// The checker catches what it is for.
func TestBusPolicyCheckerCatches(t *testing.T) {
	good := `Properties:
  EventBusName: !Ref CentralBus
  StatementId: x
  Statement:
    Effect: Allow
    Principal: "*"
    Action: events:PutEvents
    Resource: !GetAtt CentralBus.Arn
    Condition: {StringEquals: {aws:PrincipalOrgID: !Ref OrganizationId}}
`
	for _, tc := range []struct{ name, from, to, want string }{
		{"every account", "    Condition: {StringEquals: {aws:PrincipalOrgID: !Ref OrganizationId}}\n", "", "want exactly StringEquals aws:PrincipalOrgID"},
		{"another condition key", "aws:PrincipalOrgID", "aws:SourceAccount", "want exactly StringEquals aws:PrincipalOrgID"},
		{"a second condition", "{StringEquals: {aws:PrincipalOrgID: !Ref OrganizationId}}", "{StringEquals: {aws:PrincipalOrgID: !Ref OrganizationId}, StringLike: {events:source: '*'}}", "want exactly"},
		{"more actions", "Action: events:PutEvents", "Action: [events:PutEvents, events:PutRule]", "want only events:PutEvents"},
		{"all actions", "Action: events:PutEvents", "Action: 'events:*'", "want only events:PutEvents"},
		{"deny turned allow", "Effect: Allow", "Effect: Deny", "Effect Deny"},
		{"another bus", "!GetAtt CentralBus.Arn", "'*'", "want the central bus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pol map[string]any
			if err := yaml.Unmarshal([]byte(strings.Replace(good, tc.from, tc.to, 1)), &pol); err != nil {
				t.Fatal(err)
			}
			got := strings.Join(busPolicyViolations(pol), "\n")
			if !strings.Contains(got, tc.want) {
				t.Fatalf("violations %q, want %q", got, tc.want)
			}
		})
	}
	var pol map[string]any
	if err := yaml.Unmarshal([]byte(good), &pol); err != nil {
		t.Fatal(err)
	}
	if v := busPolicyViolations(pol); len(v) != 0 {
		t.Fatalf("the good policy: %v", v)
	}
}

// The topic takes EventBridge's publish from the central rule only; the
// rule forwards every certferry event to the topic and the log group,
// without a RoleArn (resource-based targets).
func TestCentralTopicAndRule(t *testing.T) {
	tmpl := readCentral(t)
	if ids := ofType(tmpl, "AWS::SNS::TopicPolicy"); fmt.Sprint(ids) != "[CentralTopicPolicy]" {
		t.Fatalf("topic policies %v", ids)
	}
	tp := res(t, tmpl, "CentralTopicPolicy")["Properties"].(map[string]any)
	if fmt.Sprint(tp["Topics"]) != "[CentralTopic]" {
		t.Errorf("topic policy on %v", tp["Topics"])
	}
	stmts := asList(tp["PolicyDocument"].(map[string]any)["Statement"])
	if len(stmts) != 1 {
		t.Fatalf("topic policy statements %v", stmts)
	}
	s := stmts[0].(map[string]any)
	if s["Effect"] != "Allow" || fmt.Sprint(s["Principal"]) != "map[Service:events.amazonaws.com]" ||
		fmt.Sprint(asList(s["Action"])) != "[sns:Publish]" || s["Resource"] != "CentralTopic" ||
		fmt.Sprint(s["Condition"]) != "map[ArnEquals:map[aws:SourceArn:CentralRule.Arn]]" {
		t.Errorf("topic policy statement %v: want EventBridge's sns:Publish on CentralTopic from CentralRule only", s)
	}

	rule := res(t, tmpl, "CentralRule")["Properties"].(map[string]any)
	if rule["EventBusName"] != "CentralBus" || fmt.Sprint(rule["EventPattern"]) != "map[source:[certferry]]" {
		t.Errorf("central rule %v", rule)
	}
	var arns []string
	for _, tg := range asList(rule["Targets"]) {
		tg := tg.(map[string]any)
		arns = append(arns, fmt.Sprint(tg["Arn"]))
		if tg["RoleArn"] != nil {
			t.Errorf("target %v has a RoleArn (SNS and Logs targets use resource policies)", tg["Id"])
		}
	}
	if fmt.Sprint(arns) != "[CentralTopic CentralLogGroup.Arn]" {
		t.Errorf("central rule targets %v", arns)
	}
	// The topic's key lets EventBridge encrypt and nothing more.
	for _, st := range asList(res(t, tmpl, "CentralTopicKey")["Properties"].(map[string]any)["KeyPolicy"].(map[string]any)["Statement"]) {
		st := st.(map[string]any)
		if fmt.Sprint(st["Principal"]) == "map[Service:events.amazonaws.com]" &&
			fmt.Sprint(asList(st["Action"])) != "[kms:Decrypt kms:GenerateDataKey]" {
			t.Errorf("EventBridge may %v with the topic key", st["Action"])
		}
	}
	// The log group's resource policy: EventBridge writes this group only.
	doc := res(t, tmpl, "CentralLogGroupPolicy")["Properties"].(map[string]any)["PolicyDocument"].(string)
	var lp struct {
		Statement []struct {
			Effect    string
			Principal struct{ Service []string }
			Action    []string
			Resource  string
		}
	}
	if err := json.Unmarshal([]byte(doc), &lp); err != nil {
		t.Fatalf("log group policy is not JSON: %v", err)
	}
	if len(lp.Statement) != 1 || lp.Statement[0].Resource != "${CentralLogGroup.Arn}" ||
		fmt.Sprint(lp.Statement[0].Action) != "[logs:CreateLogStream logs:PutLogEvents]" {
		t.Errorf("log group policy %+v", lp)
	}
}

// central.yaml deploys side by side too, and its dashboard reads the
// detail-types and fields the schemas define.
func TestCentralNamesAndDashboard(t *testing.T) {
	tmpl := readCentral(t)
	for _, v := range namingViolations(tmpl) {
		t.Error(v)
	}
	body := res(t, tmpl, "CentralDashboard")["Properties"].(map[string]any)["DashboardBody"].(string)
	for _, dt := range busevents.DetailTypes {
		if !strings.Contains(body, `\"`+dt+`\"`) {
			t.Errorf("the dashboard has no query on %q", dt)
		}
	}
	props := schemaPaths(t)
	for _, m := range regexp.MustCompile(`\bdetail\.([A-Za-z.]+)`).FindAllStringSubmatch(body, -1) {
		if !props[m[1]] {
			t.Errorf("the dashboard reads detail.%s, which no certferry event schema has", m[1])
		}
	}
	if cfg := res(t, tmpl, "CentralDashboard")["Properties"].(map[string]any)["DashboardName"]; cfg != "${AWS::StackName}-${AWS::Region}" {
		t.Errorf("dashboard name %v", cfg)
	}
}

// schemaPaths are the detail properties of every certferry event schema,
// as dotted paths (counts.failed).
func schemaPaths(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	var walk func(prefix string, obj map[string]any)
	walk = func(prefix string, obj map[string]any) {
		props, _ := obj["properties"].(map[string]any)
		for k, v := range props {
			out[prefix+k] = true
			if sub, ok := v.(map[string]any); ok && sub["type"] == "object" {
				walk(prefix+k+".", sub)
			}
		}
	}
	files, _ := os.ReadDir("../../docs/schemas")
	for _, f := range files {
		raw, err := os.ReadFile("../../docs/schemas/" + f.Name())
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		for _, d := range s["definitions"].(map[string]any) {
			walk("", d.(map[string]any))
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d schema paths", len(out))
	}
	return out
}

// Every central.yaml parameter has a row in docs/stacksets.md's parameter
// table, and every output that page names exists.
func TestCentralDocumented(t *testing.T) {
	tmpl := readCentral(t)
	raw, err := os.ReadFile("../../docs/stacksets.md")
	if err != nil {
		t.Fatal(err)
	}
	md := string(raw)
	for p := range tmpl["Parameters"].(map[string]any) {
		if !regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(p) + "` \\|").MatchString(md) {
			t.Errorf("central.yaml parameter %s has no row in docs/stacksets.md", p)
		}
	}
	outputs := tmpl["Outputs"].(map[string]any)
	named := 0
	for _, m := range regexp.MustCompile("`(Central[A-Za-z]+)`").FindAllStringSubmatch(md, -1) {
		if strings.HasSuffix(m[1], "Arn") || strings.HasSuffix(m[1], "Name") || strings.HasSuffix(m[1], "Url") {
			named++
			if _, ok := outputs[m[1]]; !ok {
				if _, isParam := readTemplateParams(t)[m[1]]; !isParam {
					t.Errorf("docs/stacksets.md names %s, which is neither a central.yaml output nor a template.yaml parameter", m[1])
				}
			}
		}
	}
	if named < 4 {
		t.Errorf("docs/stacksets.md names only %d central outputs", named)
	}
}

func readTemplateParams(t *testing.T) map[string]any {
	t.Helper()
	_, tmpl := readTemplate(t)
	return tmpl["Parameters"].(map[string]any)
}
