package config

import (
	"strings"
	"testing"
)

// CERTFERRY_EVENT_BUS: empty (the default bus), a bus name or a bus ARN;
// anything else fails at start-up.
func TestEventBus(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"", true},
		{"default", true},
		{"certferry-central", true},
		{"arn:aws:events:eu-west-1:111122223333:event-bus/certferry-central", true},
		{"arn:aws-us-gov:events:us-gov-west-1:111122223333:event-bus/default", true},
		{"bus with spaces", false},
		{"arn:aws:events:eu-west-1:1111:event-bus/x", false},
		{"arn:aws:sns:eu-west-1:111122223333:topic", false},
		{strings.Repeat("b", 257), false},
	} {
		env := map[string]string{EnvEventBus: tc.value}
		c, err := Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v, want ok=%v", tc.value, err, tc.ok)
		}
		if tc.ok && c.EventBus != tc.value {
			t.Errorf("%q: EventBus %q", tc.value, c.EventBus)
		}
	}
}
