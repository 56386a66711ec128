//go:build integration

package app

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/certferry/certferry/internal/inventory"
)

// TestOnboardChecksStopAlarm: on moto's CloudWatch (behind the model
// check), onboarding with rollout.stopAlarm naming an alarm that exists
// (PutMetricAlarm) is accepted and stored; a name with no
// such alarm is a 400 on rollout.stopAlarm that writes nothing, whether
// the name is new or an update of an onboarded one (whose spec keeps its
// alarm).
func TestOnboardChecksStopAlarm(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	r.launch(1, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	if _, err := NewCloudWatch(r.aws).PutMetricAlarm(r.ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String("shop-5xx"), Namespace: aws.String("Shop"), MetricName: aws.String("5xx"), Statistic: cwtypes.StatisticSum,
		Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(1), ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
	}); err != nil {
		t.Fatal(err)
	}
	body := func(name, alarm string) string {
		return strings.Replace(onboardBody(arn, name), `"name":`, fmt.Sprintf(`"rollout": {"stopAlarm": %q}, "name":`, alarm), 1)
	}
	refused := func(t *testing.T, b string, alarm string) {
		t.Helper()
		before := r.counts()
		status, ans := r.post(b)
		e, _ := ans["error"].(map[string]any)
		want := fmt.Sprintf(`rollout.stopAlarm: CloudWatch alarm %q not found in us-east-1`, alarm)
		if msg, _ := e["message"].(string); status != 400 || e["code"] != "ValidationError" || e["field"] != "rollout.stopAlarm" || !strings.HasPrefix(msg, want) {
			t.Fatalf("got %d %v, want 400 ValidationError on rollout.stopAlarm: %s", status, ans, want)
		}
		if after := r.counts(); after != before {
			t.Fatalf("a refused request wrote: %+v -> %+v", before, after)
		}
	}

	t.Run("new name, missing alarm", func(t *testing.T) {
		refused(t, body("shop-web", "shop-5xz"), "shop-5xz")
		if c, err := inventory.NewStore(r.ddb, r.cfg.Table).GetCert(r.ctx, "shop-web"); err != nil || c != nil {
			t.Fatalf("inventory holds %+v %v", c, err)
		}
	})
	t.Run("existing alarm", func(t *testing.T) {
		if status, ans := r.post(body("shop-web", "shop-5xx")); status != 202 {
			t.Fatalf("%d %v", status, ans)
		}
		// moto keeps no AlarmConfiguration (the stand-in's test,
		// TestRolloutStopAlarmStopsIt, checks the command carries it).
		c, err := inventory.NewStore(r.ddb, r.cfg.Table).GetCert(r.ctx, "shop-web")
		if err != nil || c == nil || c.Rollout == nil || c.Rollout.StopAlarm != "shop-5xx" || len(r.commands()) != 1 {
			t.Fatalf("stored %+v %v, %d commands; want the stop alarm shop-5xx and one command", c, err, len(r.commands()))
		}
	})
	t.Run("update to a missing alarm", func(t *testing.T) {
		refused(t, body("shop-web", "shop-4xx"), "shop-4xx")
		c, err := inventory.NewStore(r.ddb, r.cfg.Table).GetCert(r.ctx, "shop-web")
		if err != nil || c == nil || c.Rollout == nil || c.Rollout.StopAlarm != "shop-5xx" {
			t.Fatalf("stored spec %+v %v, want its stop alarm shop-5xx kept", c, err)
		}
	})
}
