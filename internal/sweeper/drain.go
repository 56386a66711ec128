package sweeper

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/certferry/certferry/internal/backoff"
)

// drainQueue is what the local drain asks SQS.
type drainQueue interface {
	sender
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

var _ drainQueue = (*sqs.Client)(nil)

// Local runs a whole sweep in one process, through the same code as the
// stack: Fanout.Start enqueues the run's messages on the queue, then the
// drain receives them in batches and hands each batch to Worker.Handle,
// as Lambda's SQS event source mapping would: the messages the partial
// batch response does not name are deleted, the ones it names are made
// visible again at once (the mapping leaves them until their visibility
// timeout ends: the only shortcut, so that a local run does not wait),
// and SQS's redrive policy moves a message received maxReceiveCount times
// to the dead-letter queue on the next receive.
type Local struct {
	Fanout *Fanout
	Worker *Worker
	Queue  drainQueue
	// QueueURL is the sweep queue; QueueARN only fills the events'
	// eventSourceARN.
	QueueURL, QueueARN, Region string
	BatchSize                  int // messages per worker invocation (default 5, the template's BatchSize)
}

// Run sweeps every name: a new run (runID), drained to the end.
func (l *Local) Run(ctx context.Context, runID string) (Report, error) {
	if _, err := l.Fanout.Start(ctx, runID); err != nil {
		return Report{RunID: runID, Names: []NameReport{}}, err
	}
	return l.Drain(ctx, runID)
}

// Drain hands the queue's messages to the worker until the queue is
// empty, and reports run runID's names and alert.
func (l *Local) Drain(ctx context.Context, runID string) (Report, error) {
	rep := Report{RunID: runID, Names: []NameReport{}}
	batch := l.BatchSize
	if batch == 0 {
		batch = 5
	}
	dead := map[string]bool{}
	for idle := 0; ; {
		out, err := l.Queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(l.QueueURL),
			MaxNumberOfMessages:         int32(batch),
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
			WaitTimeSeconds:             0,
		})
		if err != nil {
			return rep, fmt.Errorf("receive sweep messages: %w", err)
		}
		if len(out.Messages) == 0 {
			left, err := l.inQueue(ctx)
			if err != nil {
				return rep, err
			}
			if left == 0 {
				break
			}
			// SQS's counts are approximate and a short receive may miss
			// messages (Amazon SQS API Reference "ReceiveMessage": short
			// polling samples a subset of servers): look again, a while.
			if idle++; idle > 20 {
				return rep, fmt.Errorf("drain sweep queue: %d messages stay in flight", left)
			}
			if err := backoff.Sleep(ctx, 100*time.Millisecond); err != nil {
				return rep, err
			}
			continue
		}
		idle = 0
		msgs := make([]events.SQSMessage, 0, len(out.Messages))
		for _, m := range out.Messages {
			attrs := map[string]string{}
			for k, v := range m.Attributes {
				attrs[k] = v
			}
			msgs = append(msgs, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), Attributes: attrs, EventSource: "aws:sqs", EventSourceARN: l.QueueARN, AWSRegion: l.Region})
		}
		resp, reports := l.Worker.handle(ctx, msgs)
		rep.Names = append(rep.Names, reports...)
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range msgs {
			if !failed[m.MessageId] {
				del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.ReceiptHandle)})
				continue
			}
			if n, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"]); n >= l.Worker.cfg.MaxReceiveCount {
				var msg Message
				_ = json.Unmarshal([]byte(m.Body), &msg)
				dead[msg.Name] = true
			}
			if _, err := l.Queue.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(l.QueueURL),
				ReceiptHandle: aws.String(m.ReceiptHandle), VisibilityTimeout: 0}); err != nil {
				return rep, fmt.Errorf("return a failed sweep message to the queue: %w", err)
			}
		}
		if len(del) > 0 {
			out, err := l.Queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(l.QueueURL), Entries: del})
			if err != nil {
				return rep, fmt.Errorf("delete swept messages: %w", err)
			}
			if len(out.Failed) > 0 {
				return rep, fmt.Errorf("delete swept messages: %s: %s", aws.ToString(out.Failed[0].Code), aws.ToString(out.Failed[0].Message))
			}
		}
	}
	for name := range dead {
		rep.DeadLettered = append(rep.DeadLettered, name)
	}
	run, err := l.Fanout.runs.Get(ctx, runID)
	if err != nil {
		return rep, err
	}
	if run != nil {
		rep.AlertID = run.AlertID
	}
	return rep, nil
}

// inQueue is the queue's visible plus in-flight messages.
func (l *Local) inQueue(ctx context.Context) (int, error) {
	out, err := l.Queue.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(l.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, fmt.Errorf("read the sweep queue's depth: %w", err)
	}
	total := 0
	for _, k := range []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		v, _ := strconv.Atoi(out.Attributes[string(k)])
		total += v
	}
	return total, nil
}
