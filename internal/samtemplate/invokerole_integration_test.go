//go:build integration

package samtemplate

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// resources is the SAM-translated template's resources (translate).
func resources(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for id, r := range translate(t, "pkg-invoke")["Resources"].(map[string]any) {
		out[id], _ = r.(map[string]any)
	}
	return out
}

// API callers need only execute-api:Invoke. With AWS_IAM auth SAM's default
// invoke role is CALLER_CREDENTIALS (the integration carries
// credentials arn:aws:iam::*:user/*, so API Gateway calls Lambda as the caller,
// who then also needs lambda:InvokeFunction). With InvokeRole NONE API Gateway
// invokes the function through the function's resource policy
// (AWS SAM "ApiAuth": InvokeRole; API Gateway "Set up a Lambda proxy
// integration": credentials).
func TestAPIInvokesLambdaWithItsOwnPermission(t *testing.T) {
	res := resources(t)
	api := res["Api"]
	if api == nil || api["Type"] != "AWS::ApiGateway::RestApi" {
		t.Fatalf("translated Api: %v", api)
	}
	body := api["Properties"].(map[string]any)["Body"].(map[string]any)
	// FunctionName Ref -> SourceArn suffixes (METHOD/path) the function allows API Gateway to invoke.
	allowed := map[string][]string{}
	for _, r := range res {
		if r["Type"] != "AWS::Lambda::Permission" {
			continue
		}
		p := r["Properties"].(map[string]any)
		if p["Principal"] != "apigateway.amazonaws.com" || p["Action"] != "lambda:InvokeFunction" {
			continue
		}
		fn := fmt.Sprint(p["FunctionName"].(map[string]any)["Ref"])
		src, _ := json.Marshal(p["SourceArn"])
		allowed[fn] = append(allowed[fn], string(src))
	}
	methods := 0
	for path, ops := range body["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			integ, _ := op.(map[string]any)["x-amazon-apigateway-integration"].(map[string]any)
			if integ == nil {
				continue
			}
			methods++
			where := strings.ToUpper(method) + " " + path
			if c, ok := integ["credentials"]; ok {
				t.Errorf("%s: integration credentials %v: API Gateway would invoke Lambda with the caller's credentials", where, c)
			}
			uri, _ := json.Marshal(integ["uri"])
			fn := ""
			if _, after, ok := strings.Cut(string(uri), "functions/${"); ok {
				fn, _, _ = strings.Cut(after, ".Arn}")
			}
			if fn == "" {
				t.Errorf("%s: integration uri %s names no function", where, uri)
				continue
			}
			// SAM writes path parameters as * in the permission's SourceArn.
			want := "/" + strings.ToUpper(method) + starParams(path) + `"`
			found := false
			for _, src := range allowed[fn] {
				if strings.Contains(src, want) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no AWS::Lambda::Permission lets apigateway.amazonaws.com invoke %s (want SourceArn ending %s; have %v)", where, fn, want, allowed[fn])
			}
		}
	}
	if methods == 0 {
		t.Fatal("translated API has no Lambda integrations")
	}
}

func starParams(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "{") {
			parts[i] = "*"
		}
	}
	return strings.Join(parts, "/")
}
