package samtemplate

import (
	"regexp"
	"testing"
)

// TestAlertEmailSubscription pins the optional AlertEmail parameter: an
// email subscription on the alerts topic exists only when an address is
// given, and the parameter's pattern takes an empty value or one address.
func TestAlertEmailSubscription(t *testing.T) {
	_, tmpl := readTemplate(t)
	sub := res(t, tmpl, "AlertEmailSubscription")
	if sub["Type"] != "AWS::SNS::Subscription" || sub["Condition"] != "HasAlertEmail" {
		t.Fatalf("AlertEmailSubscription = %v, want an AWS::SNS::Subscription under HasAlertEmail", sub)
	}
	p, _ := sub["Properties"].(map[string]any)
	if p["Protocol"] != "email" {
		t.Errorf("Protocol = %v, want email", p["Protocol"])
	}
	// readTemplate resolves the !Ref tag to the referenced name.
	if p["TopicArn"] != "AlertsTopic" {
		t.Errorf("TopicArn = %v, want Ref AlertsTopic", p["TopicArn"])
	}
	if p["Endpoint"] != "AlertEmail" {
		t.Errorf("Endpoint = %v, want Ref AlertEmail", p["Endpoint"])
	}
	params, _ := tmpl["Parameters"].(map[string]any)
	param, _ := params["AlertEmail"].(map[string]any)
	if param["Default"] != "" {
		t.Errorf("AlertEmail Default = %q, want empty (no subscription unless asked)", param["Default"])
	}
	pattern, _ := param["AllowedPattern"].(string)
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("AlertEmail AllowedPattern %q: %v", pattern, err)
	}
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"", true},
		{"ops@example.com", true},
		{"first.last+certs@sub.example.co.uk", true},
		{"ops@example", false},
		{"two words@example.com", false},
		{"a@b.com,c@d.com ", false},
		{"@example.com", false},
	} {
		if got := re.MatchString(tc.value); got != tc.ok {
			t.Errorf("AlertEmail pattern on %q = %v, want %v", tc.value, got, tc.ok)
		}
	}
}
