//go:build integration

package app

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/certferry/certferry/internal/sweeper"
)

// sweepAlerts drains the alerts queue and returns the sweep's reports.
func (r *renewalRig) sweepAlerts() []alertMessage {
	return r.drainAlerts(func(n alertMessage) bool { return strings.HasPrefix(n.Subject, "certferry: sweep:") })
}

// One failing name does not block the others, on moto's SQS and DynamoDB:
// DescribeCertificate fails for one name on every delivery, so its message
// fails in each partial batch response and SQS's redrive policy moves it to
// the dead-letter queue after maxReceiveCount (3) receives; the other names
// are swept once each; the run's one alert names the failed name. A
// duplicate delivery of a swept name's message afterwards changes nothing:
// no second sweep, no second count, no second alert.
func TestSweepFanoutFailingNameDoesNotBlockTheOthers(t *testing.T) {
	t.Parallel()
	r := newTrackRig(t)
	r.launch(2, map[string]string{"env": "prod"})
	arns := map[string]string{}
	for _, name := range []string{"shop-a", "shop-b", "shop-c"} {
		arns[name] = r.exportable(name + ".example.com")
		if status, ans := r.post(onboardBody(arns[name], name)); status != 202 {
			t.Fatalf("onboard %s: %d %v", name, status, ans)
		}
	}
	r.sweepAlerts() // whatever onboarding published

	var mu sync.Mutex
	described := map[string]int{}
	awsCfg := r.aws.Copy()
	awsCfg.APIOptions = append(awsCfg.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("failOneName",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if req, ok := in.Parameters.(*acm.DescribeCertificateInput); ok {
					arn := aws.ToString(req.CertificateArn)
					mu.Lock()
					described[arn]++
					mu.Unlock()
					if arn == arns["shop-b"] {
						return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("injected: DescribeCertificate unavailable")
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
	h, err := LocalSweep(r.ctx, awsCfg, r.cfg, Options{SweepPacing: -1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := h.Run(r.ctx)
	if err != nil {
		t.Fatalf("sweep: %v (%+v)", err, rep)
	}
	b, _ := json.Marshal(rep)
	keep("handler outcome", string(b))
	if !slices.Equal(rep.DeadLettered, []string{"shop-b"}) {
		t.Fatalf("dead-lettered %v, want [shop-b]", rep.DeadLettered)
	}
	var swept []string
	for _, n := range rep.Names {
		if n.Error == "" {
			swept = append(swept, n.Name)
		}
	}
	sort.Strings(swept)
	if !slices.Equal(swept, []string{"shop-a", "shop-c"}) {
		t.Fatalf("swept %v (report %+v)", swept, rep.Names)
	}
	for name, arn := range arns {
		want := 1
		if name == "shop-b" {
			want = 3
		}
		if described[arn] != want {
			t.Errorf("%s described %d times, want %d", name, described[arn], want)
		}
	}
	_, dlqName := SweepQueueNames(r.cfg.Table)
	dlq, err := r.sqs.GetQueueUrl(r.ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(dlqName)})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := r.sqs.ReceiveMessage(r.ctx, &sqs.ReceiveMessageInput{QueueUrl: dlq.QueueUrl, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	var body sweeper.Message
	if len(dead.Messages) != 1 || json.Unmarshal([]byte(aws.ToString(dead.Messages[0].Body)), &body) != nil || body.Name != "shop-b" || body.RunID != rep.RunID {
		t.Fatalf("dead-letter queue holds %+v, want shop-b's message of run %s", dead.Messages, rep.RunID)
	}
	alerts := r.sweepAlerts()
	if len(alerts) != 1 || rep.AlertID == "" || !strings.Contains(alerts[0].Message, "shop-b") ||
		!strings.Contains(alerts[0].Message, "failed on each of 3 deliveries") || !strings.Contains(alerts[0].Message, "injected: DescribeCertificate unavailable") {
		t.Fatalf("alerts %+v (report alert %q), want one naming shop-b's failure", alerts, rep.AlertID)
	}

	// A duplicate delivery of shop-a's message.
	runs := sweeper.NewRuns(dynamodb.NewFromConfig(r.aws), r.cfg.Table)
	before, err := runs.Get(r.ctx, rep.RunID)
	if err != nil || before == nil || before.Done != 3 || before.Total != 3 || before.AlertID != rep.AlertID {
		t.Fatalf("run %+v, %v", before, err)
	}
	dup, _ := json.Marshal(sweeper.Message{Name: "shop-a", RunID: rep.RunID})
	if _, err := r.sqs.SendMessage(r.ctx, &sqs.SendMessageInput{QueueUrl: aws.String(h.Local.QueueURL), MessageBody: aws.String(string(dup))}); err != nil {
		t.Fatal(err)
	}
	again, err := h.Local.Drain(r.ctx, rep.RunID)
	if err != nil || len(again.Names) != 0 {
		t.Fatalf("duplicate drained: %+v, %v", again, err)
	}
	after, _ := runs.Get(r.ctx, rep.RunID)
	if described[arns["shop-a"]] != 1 || after.Done != 3 || len(r.sweepAlerts()) != 0 {
		t.Fatalf("a duplicate delivery changed something: described %d, run %+v", described[arns["shop-a"]], after)
	}
}

// The run records' conditions on DynamoDB (moto): one count per name, a
// failure replaced by a later success without a second count, one alert
// claim at a time and none once settled, and the last worker's claim only
// once every name has a result.
func TestSweepRunRecords(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	runs := sweeper.NewRuns(dynamodb.NewFromConfig(r.aws), r.cfg.Table)
	now := time.Now()
	run, created, err := runs.Begin(r.ctx, "run-1", 2, now)
	if err != nil || !created || run.Total != 2 {
		t.Fatalf("begin: %+v %v %v", run, created, err)
	}
	if _, created, err := runs.Begin(r.ctx, "run-1", 5, now); err != nil || created {
		t.Fatalf("second begin created %v, %v", created, err)
	}
	if id, err := runs.Latest(r.ctx); err != nil || id != "run-1" {
		t.Fatalf("latest %q %v", id, err)
	}
	if err := runs.ClaimAlert(r.ctx, "run-1", true, now, time.Minute); !errors.Is(err, sweeper.ErrClaimed) {
		t.Fatalf("complete claim on an incomplete run: %v", err)
	}
	failed := sweeper.NameResult{Report: sweeper.NameReport{Name: "a", Error: "boom"}, Attempts: 3}
	if got, err := runs.Record(r.ctx, "run-1", failed, now); err != nil || got == nil || got.Done != 1 {
		t.Fatalf("first record: %+v %v", got, err)
	}
	ok := sweeper.NameResult{Report: sweeper.NameReport{Name: "a", Serial: "0c"}, Attempts: 1}
	for range 2 {
		if got, err := runs.Record(r.ctx, "run-1", ok, now); err != nil || got != nil {
			t.Fatalf("later record counted: %+v %v", got, err)
		}
	}
	if res, err := runs.Result(r.ctx, "run-1", "a"); err != nil || res == nil || res.Failed() || res.Report.Serial != "0c" {
		t.Fatalf("result %+v %v: want the success in place of the failure", res, err)
	}
	if got, err := runs.Record(r.ctx, "run-1", sweeper.NameResult{Report: sweeper.NameReport{Name: "b"}}, now); err != nil || got == nil || !got.Complete() {
		t.Fatalf("last record: %+v %v", got, err)
	}
	if err := runs.ClaimAlert(r.ctx, "run-1", true, now, time.Minute); err != nil {
		t.Fatalf("claim: %v", err)
	}
	if err := runs.ClaimAlert(r.ctx, "run-1", false, now, time.Minute); !errors.Is(err, sweeper.ErrClaimed) {
		t.Fatalf("second claim within the lease: %v", err)
	}
	if err := runs.ClaimAlert(r.ctx, "run-1", false, now.Add(2*time.Minute), time.Minute); err != nil {
		t.Fatalf("claim after the lease: %v", err)
	}
	if err := runs.SettleAlert(r.ctx, "run-1", "msg-1", now); err != nil {
		t.Fatal(err)
	}
	if err := runs.ClaimAlert(r.ctx, "run-1", false, now.Add(time.Hour), time.Minute); !errors.Is(err, sweeper.ErrClaimed) {
		t.Fatalf("claim after settling: %v", err)
	}
	results, err := runs.Results(r.ctx, "run-1")
	if err != nil || len(results) != 2 {
		t.Fatalf("results %+v %v", results, err)
	}
}
