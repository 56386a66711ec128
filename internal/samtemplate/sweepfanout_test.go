package samtemplate

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/config"
)

// The sweep's fan-out as the template wires it: the schedule's function
// enqueues on SweepQueue (and may only send there), the worker consumes it
// through an event source mapping with partial batch responses and a
// concurrency cap, the queue's visibility timeout is six times the
// worker's timeout (AWS Lambda Developer Guide, "Creating and configuring
// an Amazon SQS event source mapping"), a redrive policy moves a message
// to SweepDLQ after SweepMaxReceiveCount receives, and an alarm watches it.
func TestSweepFanout(t *testing.T) {
	_, tmpl := readTemplate(t)
	params := tmpl["Parameters"].(map[string]any)
	for name, want := range map[string][3]int{
		"SweepMaxConcurrency":  {app.DefaultSweepConcurrency, 2, 1000},     // ScalingConfig MaximumConcurrency's range
		"SweepMaxReceiveCount": {app.DefaultSweepMaxReceiveCount, 1, 1000}, // RedrivePolicy maxReceiveCount's range
	} {
		p, _ := params[name].(map[string]any)
		if p == nil || p["Type"] != "Number" || fmt.Sprint(p["Default"]) != strconv.Itoa(want[0]) ||
			fmt.Sprint(p["MinValue"]) != strconv.Itoa(want[1]) || fmt.Sprint(p["MaxValue"]) != strconv.Itoa(want[2]) {
			t.Errorf("parameter %s = %v, want Number %v", name, p, want)
		}
	}

	worker := props(t, tmpl, "SweepWorkerFunction")
	ev := worker["Events"].(map[string]any)["SweepQueue"].(map[string]any)
	ep := ev["Properties"].(map[string]any)
	if ev["Type"] != "SQS" || fmt.Sprint(ep["Queue"]) != "SweepQueue.Arn" ||
		fmt.Sprint(ep["FunctionResponseTypes"]) != "[ReportBatchItemFailures]" ||
		fmt.Sprint(ep["BatchSize"]) != strconv.Itoa(app.SweepBatchSize) ||
		fmt.Sprint(ep["ScalingConfig"].(map[string]any)["MaximumConcurrency"]) != "SweepMaxConcurrency" {
		t.Errorf("worker event %v", ev)
	}
	vars := worker["Environment"].(map[string]any)["Variables"].(map[string]any)
	if fmt.Sprint(vars[config.EnvSweepConcurrency]) != "SweepMaxConcurrency" || fmt.Sprint(vars[config.EnvSweepMaxReceiveCount]) != "SweepMaxReceiveCount" {
		t.Errorf("worker environment %v: the pacing and the last-delivery record need the mapping's settings", vars)
	}

	q := props(t, tmpl, "SweepQueue")
	timeout, _ := strconv.Atoi(fmt.Sprint(worker["Timeout"]))
	vis, _ := strconv.Atoi(fmt.Sprint(q["VisibilityTimeout"]))
	if timeout == 0 || vis < 6*timeout || vis > 43200 {
		t.Errorf("sweep queue visibility timeout %d s, worker timeout %d s: want at least 6x (and SQS's 12 h at most)", vis, timeout)
	}
	rp := q["RedrivePolicy"].(map[string]any)
	if fmt.Sprint(rp["deadLetterTargetArn"]) != "SweepDLQ.Arn" || fmt.Sprint(rp["maxReceiveCount"]) != "SweepMaxReceiveCount" {
		t.Errorf("sweep queue redrive policy %v", rp)
	}
	dlq := props(t, tmpl, "SweepDLQ")
	if ret, _ := strconv.Atoi(fmt.Sprint(dlq["MessageRetentionPeriod"])); ret <= 345600 {
		t.Errorf("the dead-letter queue keeps messages %d s, not longer than the queue (a redriven message keeps its enqueue time)", ret)
	}
	alarm := props(t, tmpl, "SweepDLQAlarm")
	if alarm["MetricName"] != "ApproximateNumberOfMessagesVisible" || !strings.Contains(fmt.Sprint(alarm["Dimensions"]), "SweepDLQ.QueueName") ||
		fmt.Sprint(alarm["AlarmActions"]) != "[AlertsTopic]" {
		t.Errorf("sweep dead-letter alarm %v", alarm)
	}

	sched := props(t, tmpl, "SweeperFunction")
	if v := sched["Environment"].(map[string]any)["Variables"].(map[string]any)[config.EnvSweepQueueURL]; fmt.Sprint(v) != "SweepQueue" {
		t.Errorf("sweeper %s = %v, want !Ref SweepQueue", config.EnvSweepQueueURL, v)
	}
	if fmt.Sprint(sched["Policies"]) == "" || strings.Contains(fmt.Sprint(sched["Policies"]), "PipelinePolicy") {
		t.Errorf("the scheduled sweeper deploys nothing, yet has %v", sched["Policies"])
	}
}

// Least privilege for the queues: sqs:SendMessage on the sweep queue from
// the scheduled sweeper only, and nothing else sends to it or reads it in
// the template's own statements (the event source mapping's poller
// permissions come from SAM's SQS event, on that queue).
func TestSweepQueuePermissions(t *testing.T) {
	_, tmpl := readTemplate(t)
	found := false
	for id, stmts := range statements(tmpl) {
		for _, s := range stmts {
			res := fmt.Sprint(asList(s["Resource"]))
			for _, a := range asList(s["Action"]) {
				a := fmt.Sprint(a)
				if !strings.HasPrefix(a, "sqs:") {
					continue
				}
				switch {
				case id == "SweeperFunction" && a == "sqs:SendMessage" && res == "[SweepQueue.Arn]":
					found = true
				case id == "AlertsPolicy" && a == "sqs:SendMessage" && res == "[EventsDLQ.Arn]":
				case id == "StepSchedulerRole" && a == "sqs:SendMessage" && res == "[EventsDLQ.Arn]": // undeliverable steps (TestStepSchedulesIAM)
				default:
					t.Errorf("%s: %s on %s", id, a, res)
				}
			}
			if strings.Contains(res, "SweepQueue") && id != "SweeperFunction" {
				t.Errorf("%s reaches the sweep queue: %v", id, s)
			}
		}
	}
	if !found {
		t.Error("the scheduled sweeper cannot send to the sweep queue")
	}
}
