//go:build integration

package samtemplate

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// ApiCallerPolicy holds exactly what a caller needs: execute-api:Invoke on
// every route of this stack's API in its deployed stage (API Gateway
// "Control access to a REST API with IAM permissions": arn:partition:
// execute-api:region:account-id:api-id/stage/METHOD/resource-path), and on
// no other API or stage. Read on the SAM-translated template, so the routes
// are the ones API Gateway gets.
func TestApiCallerPolicy(t *testing.T) {
	tmpl := translatedOnce(t)
	res := tmpl["Resources"].(map[string]any)
	pol, _ := res["ApiCallerPolicy"].(map[string]any)
	if pol == nil || pol["Type"] != "AWS::IAM::ManagedPolicy" {
		t.Fatalf("ApiCallerPolicy: %v", pol)
	}
	stmts := asList(pol["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"])
	if len(stmts) != 1 {
		t.Fatalf("ApiCallerPolicy has %d statements, want 1", len(stmts))
	}
	s := stmts[0].(map[string]any)
	if s["Effect"] != "Allow" || fmt.Sprint(asList(s["Action"])) != "[execute-api:Invoke]" || s["Condition"] != nil || s["NotResource"] != nil || s["NotAction"] != nil {
		t.Fatalf("statement %v", s)
	}
	sub, _ := s["Resource"].(map[string]any)["Fn::Sub"].(string)
	if sub != apiCallerResource {
		t.Fatalf("resource %v, want %s", s["Resource"], apiCallerResource)
	}
	stage := ""
	for _, r := range res {
		r := r.(map[string]any)
		if r["Type"] == "AWS::ApiGateway::Stage" {
			stage = fmt.Sprint(r["Properties"].(map[string]any)["StageName"])
		}
	}
	pseudo := map[string]string{"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
	pattern := subEval(t, tmpl, sub, pseudo) // ${Api} -> <Api>
	arn := func(api, stage, method, path string) string {
		return "arn:aws:execute-api:us-east-1:123456789012:" + api + "/" + stage + "/" + method + path
	}
	body := res["Api"].(map[string]any)["Properties"].(map[string]any)["Body"].(map[string]any)
	routes := 0
	for path, ops := range body["paths"].(map[string]any) {
		concrete := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "shop-web")
		for method := range ops.(map[string]any) {
			if strings.HasPrefix(method, "x-") {
				continue
			}
			routes++
			m := strings.ToUpper(method)
			if !iamMatch(pattern, arn("<Api>", stage, m, concrete)) {
				t.Errorf("%s %s: a caller with ApiCallerPolicy may not invoke it (%s)", m, path, pattern)
			}
			if iamMatch(pattern, arn("otherapi123", stage, m, concrete)) || iamMatch(pattern, arn("<Api>", stage+"x", m, concrete)) {
				t.Errorf("%s %s: ApiCallerPolicy also reaches another API or stage", m, path)
			}
		}
	}
	if routes < 5 {
		t.Fatalf("only %d routes in the translated API", routes)
	}
	out, _ := tmpl["Outputs"].(map[string]any)["ApiCallerPolicyArn"].(map[string]any)
	if v, _ := json.Marshal(out["Value"]); string(v) != `{"Ref":"ApiCallerPolicy"}` {
		t.Errorf("ApiCallerPolicyArn output %s", out)
	}
}
