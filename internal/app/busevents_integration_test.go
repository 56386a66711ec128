//go:build integration

package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/sweeper"
)

// certferry's events as the functions send them (app.Tracker and
// app.Sweeper, production wiring) reach a rule on the default bus: a node
// that rolled back sends Node Failed, the deployment it ends sends
// Deployment Finished once, and a sweep that finds the certificate gone
// from ACM sends Certificate At Risk.
func TestBusEventsFromTrackerAndSweep(t *testing.T) {
	t.Parallel()
	r := newTrackRig(t)
	r.tracker = Tracker(r.aws, r.cfg, Options{Metrics: io.Discard})
	name := fmt.Sprintf("bus-%d", time.Now().UnixNano()%1e12)
	queue := eventsFor(t, r.rig, name)

	nodes := r.launch(2, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	if status, ans := r.post(onboardBody(arn, name)); status != 202 {
		t.Fatalf("onboard: %d %v", status, ans)
	}
	c := r.cert(name)
	r.out.Out[nodes[0]] = resultLine("installed", c.Fingerprint, c.Serial, "installed")
	r.out.Out[nodes[1]] = resultLine("rolled_back", c.Fingerprint, c.Serial, "nginx -t failed")
	r.track("tracker-command-failed.json", c.LastCommandID, nodes[0])
	r.track("tracker-invocation-success.json", c.LastCommandID, nodes[0])
	if o := r.track("tracker-invocation-failed.json", c.LastCommandID, nodes[1]); o.Deployment != inventory.OutcomePartial {
		t.Fatalf("last report %+v", o)
	}
	// A duplicate report finishes nothing again, and sends nothing.
	r.track("tracker-invocation-failed.json", c.LastCommandID, nodes[1])

	if _, err := acm.NewFromConfig(r.aws).DeleteCertificate(r.ctx, &acm.DeleteCertificateInput{CertificateArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	r.sweepSent(sweeper.Config{RetryBackoff: time.Nanosecond})

	got := receiveEvents(t, r.rig, queue)
	if len(got[busevents.TypeNodeFailed]) != 1 || len(got[busevents.TypeDeploymentFinished]) != 1 || len(got[busevents.TypeCertificateAtRisk]) != 1 {
		t.Fatalf("events %v", eventCounts(got))
	}
	var nf busevents.NodeFailed
	strict(t, got[busevents.TypeNodeFailed][0], &nf)
	if nf.Name != name || nf.InstanceID != nodes[1] || nf.State != "rolled_back" || nf.DeploymentID != c.LastDeploymentID || nf.Serial != c.Serial || nf.Error == "" {
		t.Errorf("node failed %+v", nf)
	}
	var df busevents.DeploymentFinished
	strict(t, got[busevents.TypeDeploymentFinished][0], &df)
	if df.Name != name || df.Outcome != "partial" || df.Counts != (busevents.Counts{Installed: 1, Failed: 1}) || df.CertificateARN != arn ||
		df.Trigger != "api" || df.DeploymentID != c.LastDeploymentID || df.Serial != c.Serial {
		t.Errorf("deployment finished %+v", df)
	}
	var ar busevents.CertificateAtRisk
	strict(t, got[busevents.TypeCertificateAtRisk][0], &ar)
	if ar.Name != name || ar.Reason != busevents.RiskGone || ar.Detail == "" {
		t.Errorf("at risk %+v", ar)
	}
}

// eventsFor puts a rule on the default bus for certferry's events about
// one name (parallel tests share the emulator's bus) with an SQS target.
func eventsFor(t *testing.T, r *rig, name string) string {
	t.Helper()
	eb, q := eventbridge.NewFromConfig(r.aws), sqs.NewFromConfig(r.aws)
	queue, err := q.CreateQueue(r.ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := q.GetQueueAttributes(r.ctx, &sqs.GetQueueAttributesInput{QueueUrl: queue.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	pattern := fmt.Sprintf(`{"source":["certferry"],"detail":{"name":[%q]}}`, name)
	if _, err := eb.PutRule(r.ctx, &eventbridge.PutRuleInput{Name: aws.String(name), EventPattern: aws.String(pattern)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(r.ctx, &eventbridge.PutTargetsInput{Rule: aws.String(name),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		t.Fatal(err)
	}
	return aws.ToString(queue.QueueUrl)
}

// receiveEvents reads the queue until three reads in a row find nothing
// (so an extra event would show), by detail-type, each event's detail.
func receiveEvents(t *testing.T, r *rig, queue string) map[string][]json.RawMessage {
	t.Helper()
	q := sqs.NewFromConfig(r.aws)
	got := map[string][]json.RawMessage{}
	empty := 0
	for empty < 3 {
		out, err := q.ReceiveMessage(r.ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			empty++ // three empty reads end it, whether want came or not
		}
		for _, m := range out.Messages {
			var ev struct {
				DetailType string          `json:"detail-type"`
				Source     string          `json:"source"`
				Detail     json.RawMessage `json:"detail"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil || ev.Source != busevents.Source {
				t.Fatalf("message %s: %v", aws.ToString(m.Body), err)
			}
			keep("bus event", aws.ToString(m.Body)) // the leak check reads it: no secret in an event
			got[ev.DetailType] = append(got[ev.DetailType], ev.Detail)
		}
	}
	return got
}

func eventCounts(got map[string][]json.RawMessage) map[string]int {
	out := map[string]int{}
	for k, v := range got {
		out[k] = len(v)
	}
	return out
}

// strict decodes a detail with no field the Go type lacks.
func strict(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}
