//go:build integration

package busevents

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/testkit"
)

// What the emitter sends reaches a rule on the account's default bus that
// matches source certferry (as central.yaml's forwarding rule does) and
// its SQS target, in the shape the schemas describe: moto serves
// EventBridge PutEvents, rules and SQS targets, behind the rig's check of
// every request against botocore's events and sqs models.
func TestEventsArriveThroughARule(t *testing.T) {
	rig := testkit.StartRigT(t)
	ctx := context.Background()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("eu-west-1"), awsconfig.WithBaseEndpoint(rig.URL),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	eb, q := eventbridge.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	queue, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("certferry-events")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("certferry-all"),
		EventPattern: aws.String(`{"source":["certferry"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("certferry-all"),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		t.Fatal(err)
	}
	// Another source on the same bus: the rule must not pass it on.
	if _, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		Source: aws.String("other.app"), DetailType: aws.String("Other"), Detail: aws.String(`{}`)}}}); err != nil {
		t.Fatal(err)
	}

	var m bytes.Buffer
	e := New(eb, "", metrics.New(&m))
	since := time.Date(2026, 11, 24, 14, 3, 9, 0, time.UTC)
	days := 24
	details := []Detail{
		DeploymentFinished{Name: "shop-web", DeploymentID: "2026-11-23T08:10:00.123Z#c1", Outcome: "partial",
			Counts: Counts{Installed: 9, Failed: 1}, Wave: &Wave{Index: 2, Of: 3}, Serial: "5f3a", Trigger: "acm-event",
			CertificateARN: "arn:aws:acm:eu-west-1:123456789012:certificate/9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b"},
		NodeFailed{Name: "shop-web", InstanceID: "i-0123456789abcdef0", State: "rolled_back", Error: "nginx -t failed",
			DeploymentID: "2026-11-23T08:10:00.123Z#c1", Serial: "5f3a"},
		RenewalWaiting{Name: "payments-api", Reason: WaitingWindow, Since: since, GoesAt: &since, Serial: "0a77"},
		CertificateAtRisk{Name: "legacy-portal", Reason: RiskEmailValidation, NotAfter: &since, DaysLeft: &days, Detail: "EMAIL validation"},
	}
	if res := e.Emit(ctx, details...); res.Sent != 4 || res.NotSent != 0 {
		t.Fatalf("emit %+v; metrics %s", res, m.String())
	}

	got := map[string][]byte{}
	for range 20 {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: queue.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range out.Messages {
			var ev struct {
				DetailType string `json:"detail-type"`
				Source     string `json:"source"`
			}
			body := []byte(aws.ToString(msg.Body))
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Fatalf("message %s: %v", body, err)
			}
			if ev.Source != Source {
				t.Errorf("the rule passed on an event from %q", ev.Source)
			}
			got[ev.DetailType] = body
		}
		if len(got) == len(kinds) {
			break
		}
	}
	var types []string
	for k := range got {
		types = append(types, k)
	}
	sort.Strings(types)
	if len(got) != len(kinds) {
		t.Fatalf("arrived %v, want the four detail-types", types)
	}
	for _, k := range kinds {
		body := got[k.detailType]
		// moto (5.2) leaves "account" out of the events it delivers; AWS
		// always sets it ("Amazon EventBridge events": the envelope's
		// account, the 12-digit account that sent the event). The schemas
		// keep it required, so it is filled in here, and only here.
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatal(err)
		}
		if _, ok := ev["account"]; !ok {
			ev["account"] = "123456789012"
			body, _ = json.Marshal(ev)
		}
		if err := validate(compile(t, k.file), body); err != nil {
			t.Errorf("%s as delivered does not validate: %v\n%s", k.detailType, err, body)
		}
	}
	fmt.Println("certferry events delivered through a rule:", types)
}
