package samtemplate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// acm:RenewCertificate and acm:RevokeCertificate are the onboard
// function's alone (POST …/renewals and …/revocations: an operator acts),
// on the account's certificates in the stack's region; the onboard
// function may publish alerts (each action is announced with the
// caller's ARN) and has the topic in its environment.
func TestLifecycleActionsOnlyForTheAPI(t *testing.T) {
	_, tmpl := readTemplate(t)
	found := map[string]bool{}
	for id, stmts := range statements(tmpl) {
		for _, s := range stmts {
			for _, a := range asList(s["Action"]) {
				if a != "acm:RenewCertificate" && a != "acm:RevokeCertificate" {
					continue
				}
				if id != "OnboardFunction" {
					t.Errorf("%s may call %s; only the onboard function (the API) should", id, a)
				}
				if r := fmt.Sprint(s["Resource"]); !strings.Contains(r, ":acm:${AWS::Region}:${AWS::AccountId}:certificate/*") {
					t.Errorf("%s on %s, want the account's certificates in the region", a, r)
				}
				found[fmt.Sprint(a)] = true
			}
		}
	}
	for _, a := range []string{"acm:RenewCertificate", "acm:RevokeCertificate"} {
		if !found[a] {
			t.Errorf("the onboard function cannot call %s (AccessDenied)", a)
		}
	}
	props := res(t, tmpl, "OnboardFunction")["Properties"].(map[string]any)
	policies := fmt.Sprint(props["Policies"])
	if !strings.Contains(policies, "AlertsPolicy") {
		t.Errorf("the onboard function cannot publish alerts (policies %s)", policies)
	}
	alerts := res(t, tmpl, "AlertsPolicy")["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"].([]any)
	publishes := slices.ContainsFunc(alerts, func(s any) bool {
		m := s.(map[string]any)
		return slices.Contains(asList(m["Action"]), any("sns:Publish")) && strings.Contains(fmt.Sprint(m["Resource"]), "AlertsTopic")
	})
	if !publishes {
		t.Error("AlertsPolicy does not allow sns:Publish on the alerts topic")
	}
	globals := tmpl["Globals"].(map[string]any)["Function"].(map[string]any)["Environment"].(map[string]any)["Variables"].(map[string]any)
	if !strings.Contains(fmt.Sprint(globals["CERTFERRY_TOPIC_ARN"]), "AlertsTopic") {
		t.Errorf("CERTFERRY_TOPIC_ARN is %v, want the alerts topic for every function", globals["CERTFERRY_TOPIC_ARN"])
	}
	if env, ok := props["Environment"].(map[string]any); ok {
		if v, ok := env["Variables"].(map[string]any)["CERTFERRY_TOPIC_ARN"]; ok && !strings.Contains(fmt.Sprint(v), "AlertsTopic") {
			t.Errorf("the onboard function overrides CERTFERRY_TOPIC_ARN with %v", v)
		}
	}
}
