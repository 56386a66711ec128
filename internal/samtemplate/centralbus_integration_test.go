//go:build integration

package samtemplate

import (
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/testkit/awsmodel"
)

// shapeRows map template parameters whose value reaches a nested member of
// an AWS request (no top-level member for paramRows) to that member's
// shape; an empty value is never sent (the parameter's Condition).
var shapeRows = map[string]struct{ service, shape, member string }{
	// CentralForwardRule (AWS::Events::Rule, under HasCentralEventBus) →
	// EventBridge PutTargets Targets[].Arn (shape TargetArn).
	"CentralEventBusArn": {"events", "TargetArn", "Targets.member.Arn"},
}

// busCandidates are event bus ARNs and near misses.
func busCandidates() []string {
	out := []string{"", "x", "default"}
	for _, name := range []string{"default", "certferry-central", "a.b_c-d", strings.Repeat("b", 256), strings.Repeat("b", 257), "with space", "x/y"} {
		for _, prefix := range []string{
			"arn:aws:events:eu-west-1:111122223333:event-bus/",
			"arn:aws-us-gov:events:us-gov-west-1:111122223333:event-bus/",
			"arn:aws-cn:events:cn-north-1:111122223333:event-bus/",
			"arn:aws:events:eu-west-1:1111:event-bus/",
			"arn:aws:sqs:eu-west-1:111122223333:",
			"arn:aws:events:eu-west-1:111122223333:rule/",
		} {
			out = append(out, prefix+name)
		}
	}
	return append(out, "arn:aws:events:eu-west-1:111122223333:event-bus/"+strings.Repeat("b", 1600))
}

// checkWithinShape: every non-empty value the parameter's AllowedPattern
// and MaxLength accept, the member's shape accepts.
func checkWithinShape(t *testing.T, name, pattern string, p map[string]any) {
	t.Helper()
	row := shapeRows[name]
	m, err := awsmodel.Load(row.service)
	if err != nil {
		t.Fatal(err)
	}
	shape, ok := m.Shapes[row.shape]
	if !ok {
		t.Fatalf("%s model has no shape %s", row.service, row.shape)
	}
	allowed, err := awsmodel.CompilePattern(pattern)
	if err != nil {
		t.Fatal(err)
	}
	maxLen, _ := p["MaxLength"].(int)
	accepted := 0
	for _, v := range busCandidates() {
		if v == "" || !allowed.Match(v) || maxLen > 0 && len(v) > maxLen {
			continue
		}
		accepted++
		if vs := m.Validate(shape, v, row.member); len(vs) > 0 {
			t.Errorf("%s's AllowedPattern accepts %q, which %s %s refuses: %s", name, v, row.service, row.shape, vs[0].Message)
		}
	}
	if accepted < 2 {
		t.Errorf("%s's AllowedPattern accepts only %d candidates: the check proves little", name, accepted)
	}
}
