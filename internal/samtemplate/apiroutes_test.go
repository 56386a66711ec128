package samtemplate

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
)

// Every route internal/api serves has an Api event on the onboard
// function (API Gateway answers 403 "Missing Authentication Token" for a
// route it lacks), and no other.
func TestOnboardRoutes(t *testing.T) {
	_, tmpl := readTemplate(t)
	props := res(t, tmpl, "OnboardFunction")["Properties"].(map[string]any)
	var got []string
	for _, e := range props["Events"].(map[string]any) {
		e := e.(map[string]any)
		if e["Type"] != "Api" {
			continue
		}
		p := e["Properties"].(map[string]any)
		got = append(got, fmt.Sprint(p["Method"], " ", p["Path"]))
	}
	sort.Strings(got)
	want := []string{
		"DELETE /certificates/{name}", "GET /certificates", "GET /certificates/{name}", "GET /certificates/{name}/audit", "GET /nodes/{instanceId}",
		"POST /certificates", "POST /certificates/{name}/approvals", "POST /certificates/{name}/deployments",
		"POST /certificates/{name}/rebind", "POST /certificates/{name}/renewals", "POST /certificates/{name}/revocations",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("API events %v, want %v", got, want)
	}
}

// secretsmanager:DeleteSecret is the onboard function's alone (DELETE
// ?deleteSecret=true), under the certferry/ prefix (policyViolations
// checks the prefix of every Secrets Manager action).
func TestDeleteSecretOnlyForTheAPI(t *testing.T) {
	_, tmpl := readTemplate(t)
	found := false
	for id, stmts := range statements(tmpl) {
		for _, s := range stmts {
			for _, a := range asList(s["Action"]) {
				if a != "secretsmanager:DeleteSecret" {
					continue
				}
				if id != "OnboardFunction" {
					t.Errorf("%s may delete secrets; only the onboard function should", id)
				}
				if r := fmt.Sprint(s["Resource"]); !strings.Contains(r, ":secret:certferry/*") {
					t.Errorf("DeleteSecret on %s", r)
				}
				found = true
			}
		}
	}
	if !found {
		t.Fatal("the onboard function cannot delete secrets (DELETE ?deleteSecret=true would fail with AccessDenied)")
	}
}

// The table's indexes in template.yaml are the ones `certferry local up`
// creates (localenv.TableInput) and the inventory queries.
func TestTableIndexesMatchLocalenv(t *testing.T) {
	_, tmpl := readTemplate(t)
	table := res(t, tmpl, "InventoryTable")["Properties"].(map[string]any)
	describe := func(name string, keys []string, projType string, attrs []string) string {
		a := append([]string(nil), attrs...)
		sort.Strings(a)
		return fmt.Sprintf("%s keys=%v %s %v", name, keys, projType, a)
	}
	var fromTemplate []string
	for _, g := range table["GlobalSecondaryIndexes"].([]any) {
		g := g.(map[string]any)
		var keys []string
		for _, k := range g["KeySchema"].([]any) {
			k := k.(map[string]any)
			keys = append(keys, fmt.Sprint(k["AttributeName"], ":", k["KeyType"]))
		}
		p := g["Projection"].(map[string]any)
		var attrs []string
		for _, a := range asList(p["NonKeyAttributes"]) {
			attrs = append(attrs, fmt.Sprint(a))
		}
		fromTemplate = append(fromTemplate, describe(fmt.Sprint(g["IndexName"]), keys, fmt.Sprint(p["ProjectionType"]), attrs))
	}
	var fromLocal []string
	for _, g := range localenv.TableInput("t").GlobalSecondaryIndexes {
		var keys []string
		for _, k := range g.KeySchema {
			keys = append(keys, fmt.Sprint(aws.ToString(k.AttributeName), ":", k.KeyType))
		}
		fromLocal = append(fromLocal, describe(aws.ToString(g.IndexName), keys, string(g.Projection.ProjectionType), g.Projection.NonKeyAttributes))
	}
	sort.Strings(fromTemplate)
	sort.Strings(fromLocal)
	if !slices.Equal(fromTemplate, fromLocal) {
		t.Fatalf("template indexes:\n  %s\nlocal up's:\n  %s", strings.Join(fromTemplate, "\n  "), strings.Join(fromLocal, "\n  "))
	}
	if !slices.ContainsFunc(fromTemplate, func(s string) bool { return strings.HasPrefix(s, inventory.NodeIndex+" ") }) {
		t.Fatalf("no %s in the template", inventory.NodeIndex)
	}
	attrs := map[string]bool{}
	for _, a := range table["AttributeDefinitions"].([]any) {
		attrs[fmt.Sprint(a.(map[string]any)["AttributeName"])] = true
	}
	if !attrs["instanceId"] {
		t.Fatal("instanceId is not an attribute definition")
	}
}
