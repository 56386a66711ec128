package sweeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/certferry/certferry/internal/inventory"
)

func (f *fakeStore) GetCert(_ context.Context, name string) (*inventory.Cert, error) {
	if f.detail.Cert == nil || f.detail.Cert.Name != name {
		return nil, nil
	}
	c := *f.detail.Cert
	return &c, nil
}

// fakeRuns keeps runs in memory with the conditions Runs puts on
// DynamoDB: one count per name, one alert claim at a time.
type fakeRuns struct {
	mu      sync.Mutex
	runs    map[string]*Run
	results map[string]map[string]NameResult
	latest  string
}

var _ runStore = (*fakeRuns)(nil)

func newFakeRuns() *fakeRuns {
	return &fakeRuns{runs: map[string]*Run{}, results: map[string]map[string]NameResult{}}
}

func (f *fakeRuns) Begin(_ context.Context, id string, total int, now time.Time) (Run, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.runs[id]; ok {
		return *r, false, nil
	}
	f.runs[id] = &Run{ID: id, Total: total, StartedAt: now}
	f.results[id] = map[string]NameResult{}
	f.latest = id
	return *f.runs[id], true, nil
}
func (f *fakeRuns) Latest(context.Context) (string, error) { return f.latest, nil }
func (f *fakeRuns) Get(_ context.Context, id string) (*Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.runs[id]; ok {
		c := *r
		return &c, nil
	}
	return nil, nil
}
func (f *fakeRuns) Result(_ context.Context, id, name string) (*NameResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.results[id][name]; ok {
		return &r, nil
	}
	return nil, nil
}
func (f *fakeRuns) Record(_ context.Context, id string, res NameResult, _ time.Time) (*Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	run, ok := f.runs[id]
	if !ok {
		return nil, nil
	}
	prev, had := f.results[id][res.Report.Name]
	switch {
	case !had:
		f.results[id][res.Report.Name] = res
		run.Done++
		c := *run
		return &c, nil
	case prev.Failed() && !res.Failed():
		f.results[id][res.Report.Name] = res
	}
	return nil, nil
}
func (f *fakeRuns) Results(_ context.Context, id string) ([]NameResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []NameResult
	for _, r := range f.results[id] {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Report.Name < out[j].Report.Name })
	return out, nil
}
func (f *fakeRuns) ClaimAlert(_ context.Context, id string, complete bool, now time.Time, lease time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.runs[id]
	if !ok || r.Alerted() || (r.AlertClaimUntil != 0 && r.AlertClaimUntil >= now.Unix()) || (complete && !r.Complete()) {
		return ErrClaimed
	}
	r.AlertClaimUntil = now.Add(lease).Unix()
	return nil
}
func (f *fakeRuns) SettleAlert(_ context.Context, id, alertID string, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.runs[id]
	r.AlertedAt, r.AlertID, r.AlertClaimUntil = now, alertID, 0
	return nil
}
func (f *fakeRuns) MarkEnqueued(_ context.Context, id string, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[id].EnqueuedAt = now
	return nil
}
func (f *fakeRuns) ReleaseAlert(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[id].AlertClaimUntil = 0
	return nil
}

// fakeSQS is one standard queue with a redrive policy, in memory: a
// message received maxReceive times moves to the dead-letter queue on the
// next receive (Amazon SQS Developer Guide, "Using dead-letter queues in
// Amazon SQS": maxReceiveCount). refuse makes SendMessageBatch fail the
// entries of a name that many times (senderFault: not retriable).
type fakeSQS struct {
	maxReceive  int
	msgs        []*fakeMsg
	dlq         []*fakeMsg
	seq         int
	batches     [][]string // bodies per SendMessageBatch call
	refuse      map[string]int
	senderFault map[string]bool
	callErr     int // SendMessageBatch calls that fail whole
}

type fakeMsg struct {
	id, body, handle string
	received         int
	visible          bool
}

var _ drainQueue = (*fakeSQS)(nil)

func (q *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if len(in.Entries) > maxBatchEntries {
		return nil, fmt.Errorf("AWS.SimpleQueueService.TooManyEntriesInBatchRequest: %d entries", len(in.Entries))
	}
	if q.callErr > 0 {
		q.callErr--
		return nil, errors.New("connection reset")
	}
	out := &sqs.SendMessageBatchOutput{}
	var bodies []string
	for _, e := range in.Entries {
		body := aws.ToString(e.MessageBody)
		bodies = append(bodies, body)
		var msg Message
		_ = json.Unmarshal([]byte(body), &msg)
		name := msg.Name
		if q.senderFault[name] {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InvalidMessageContents"), SenderFault: true})
			continue
		}
		if q.refuse[name] > 0 {
			q.refuse[name]--
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again")})
			continue
		}
		q.seq++
		q.msgs = append(q.msgs, &fakeMsg{id: "m-" + strconv.Itoa(q.seq), body: body, visible: true})
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + strconv.Itoa(q.seq))})
	}
	q.batches = append(q.batches, bodies)
	return out, nil
}

func (q *fakeSQS) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	out := &sqs.ReceiveMessageOutput{}
	var keep []*fakeMsg
	for _, m := range q.msgs {
		if m.visible && q.maxReceive > 0 && m.received >= q.maxReceive {
			q.dlq = append(q.dlq, m)
			continue
		}
		keep = append(keep, m)
		if m.visible && len(out.Messages) < int(in.MaxNumberOfMessages) {
			m.received++
			m.visible = false
			q.seq++
			m.handle = "rh-" + strconv.Itoa(q.seq)
			out.Messages = append(out.Messages, sqstypes.Message{MessageId: aws.String(m.id), ReceiptHandle: aws.String(m.handle),
				Body: aws.String(m.body), Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.received)}})
		}
	}
	q.msgs = keep
	return out, nil
}

func (q *fakeSQS) byHandle(h string) *fakeMsg {
	for _, m := range q.msgs {
		if m.handle == h {
			return m
		}
	}
	return nil
}

func (q *fakeSQS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	for _, e := range in.Entries {
		m := q.byHandle(aws.ToString(e.ReceiptHandle))
		var keep []*fakeMsg
		for _, x := range q.msgs {
			if x != m {
				keep = append(keep, x)
			}
		}
		q.msgs = keep
	}
	return &sqs.DeleteMessageBatchOutput{}, nil
}

func (q *fakeSQS) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if m := q.byHandle(aws.ToString(in.ReceiptHandle)); m != nil && in.VisibilityTimeout == 0 {
		m.visible = true
	}
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (q *fakeSQS) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	vis, not := 0, 0
	for _, m := range q.msgs {
		if m.visible {
			vis++
		} else {
			not++
		}
	}
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
		"ApproximateNumberOfMessages": strconv.Itoa(vis), "ApproximateNumberOfMessagesNotVisible": strconv.Itoa(not)}}, nil
}

// localSweep runs a whole sweep of s's names through the fan-out: the
// scheduled side enqueues on an in-memory queue, the drain hands the
// batches to the worker.
func localSweep(s *Sweeper, st interface {
	certLister
	certGetter
}, pub publisher, runs *fakeRuns, q *fakeSQS, runID string) (Report, error) {
	noSleep := func(context.Context, time.Duration) error { return nil }
	l := &Local{
		Fanout:   NewFanout(st, runs, q, pub, s.metrics, FanoutConfig{QueueURL: "q", Now: s.now, Sleep: noSleep}),
		Worker:   NewWorker(s, st, runs, pub, s.metrics, WorkerConfig{MaxReceiveCount: q.maxReceive, Now: s.now, Sleep: noSleep}),
		Queue:    q,
		QueueURL: "q",
	}
	return l.Run(context.Background(), runID)
}

func receiveAll() *sqs.ReceiveMessageInput {
	return &sqs.ReceiveMessageInput{QueueUrl: aws.String("q"), MaxNumberOfMessages: 10}
}
