package main

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sqsStandIn answers the sweep's SQS calls at 10 000 messages, where moto
// cannot keep up: moto's queue is a Python list that ReceiveMessage scans
// and DeleteMessage rebuilds on every call (moto/sqs/models.py), so each
// call costs time in proportion to the queue (measured here: 40 receive +
// delete pairs of 5 took 25 s at 1 000 messages). SQS's calls do not grow
// with the queue.
//
// It does what the Amazon SQS API Reference documents for the calls the
// sweep makes, in the AWS JSON 1.0 protocol the SDK speaks (X-Amz-Target
// "AmazonSQS.<Operation>"):
//
//   - "CreateQueue": the URL of a queue by name; the same name and
//     attributes answer the existing queue.
//   - "SendMessageBatch": at most 10 entries (the model check refuses
//     more), each answered with a MessageId and the MD5 of its body, which
//     the SDK checks.
//   - "ReceiveMessage": at most MaxNumberOfMessages visible messages, each
//     hidden for the queue's VisibilityTimeout (or the request's) under a
//     new receipt handle, with MD5OfBody and the system attributes
//     asked for (ApproximateReceiveCount, SentTimestamp,
//     ApproximateFirstReceiveTimestamp); a message received
//     maxReceiveCount times moves to the RedrivePolicy's dead-letter queue
//     when it would be received again ("Using dead-letter queues", SQS
//     Developer Guide).
//   - "DeleteMessageBatch": deletes by receipt handle; an unknown handle
//     fails its entry (ReceiptHandleIsInvalid).
//   - "ChangeMessageVisibility": a timeout of 0 makes the message visible
//     at once.
//   - "GetQueueAttributes": QueueArn, VisibilityTimeout, RedrivePolicy,
//     ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
//     ApproximateNumberOfMessagesDelayed (exact here, approximate in SQS).
//
// Anything else is refused with a message, never answered wrongly. Requests
// reach it behind the bench proxy's AWS model check (botocore's sqs
// model), as every call does.
type sqsStandIn struct {
	mu     sync.Mutex
	region string
	now    func() time.Time
	queues map[string]*standInQueue // by URL
	seq    int
}

type standInQueue struct {
	name, url, arn string
	attrs          map[string]string
	visible        []*standInMessage
	inFlight       map[string]*standInMessage // by receipt handle
}

type standInMessage struct {
	id, body    string
	receives    int
	sent, first time.Time
	hiddenUntil time.Time
	handle      string
}

const sqsTarget = "AmazonSQS."

func newSQSStandIn(region string) *sqsStandIn {
	return &sqsStandIn{region: region, now: time.Now, queues: map[string]*standInQueue{}}
}

// layer answers SQS's requests and sends every other one on to next.
func (s *sqsStandIn) layer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.Header.Get("X-Amz-Target")
		if !strings.HasPrefix(target, sqsTarget) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			sqsError(w, http.StatusBadRequest, "InvalidParameterValue", err.Error())
			return
		}
		var in map[string]any
		if err := json.Unmarshal(body, &in); err != nil {
			sqsError(w, http.StatusBadRequest, "InvalidParameterValue", "request is not JSON")
			return
		}
		s.serve(w, r.Host, strings.TrimPrefix(target, sqsTarget), in)
	})
}

func sqsError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Query-Error", code+";Sender")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func sqsReply(w http.ResponseWriter, out any) {
	b, err := json.Marshal(out)
	if err != nil {
		sqsError(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_, _ = w.Write(b)
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (s *sqsStandIn) serve(w http.ResponseWriter, host, op string, in map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == "CreateQueue" {
		s.createQueue(w, host, in)
		return
	}
	url, _ := in["QueueUrl"].(string)
	q := s.queues[url]
	if q == nil {
		sqsError(w, http.StatusBadRequest, "QueueDoesNotExist", "The specified queue does not exist.")
		return
	}
	switch op {
	case "GetQueueAttributes":
		s.release(q)
		sqsReply(w, map[string]any{"Attributes": q.attributes(in)})
	case "SendMessageBatch":
		entries, _ := in["Entries"].([]any)
		var ok []map[string]string
		for _, e := range entries {
			m, _ := e.(map[string]any)
			id, _ := m["Id"].(string)
			body, _ := m["MessageBody"].(string)
			s.seq++
			msg := &standInMessage{id: fmt.Sprintf("%08d-0000-4000-8000-%012d", s.seq, s.seq), body: body, sent: s.now()}
			q.visible = append(q.visible, msg)
			ok = append(ok, map[string]string{"Id": id, "MessageId": msg.id, "MD5OfMessageBody": md5Hex(body)})
		}
		sqsReply(w, map[string]any{"Successful": ok, "Failed": []any{}})
	case "ReceiveMessage":
		s.receive(w, q, in)
	case "DeleteMessageBatch":
		entries, _ := in["Entries"].([]any)
		ok, failed := []map[string]string{}, []map[string]any{}
		for _, e := range entries {
			m, _ := e.(map[string]any)
			id, _ := m["Id"].(string)
			handle, _ := m["ReceiptHandle"].(string)
			if _, found := q.inFlight[handle]; !found {
				failed = append(failed, map[string]any{"Id": id, "Code": "ReceiptHandleIsInvalid", "Message": "The input receipt handle is invalid.", "SenderFault": true})
				continue
			}
			delete(q.inFlight, handle)
			ok = append(ok, map[string]string{"Id": id})
		}
		sqsReply(w, map[string]any{"Successful": ok, "Failed": failed})
	case "ChangeMessageVisibility":
		handle, _ := in["ReceiptHandle"].(string)
		msg, found := q.inFlight[handle]
		if !found {
			sqsError(w, http.StatusBadRequest, "ReceiptHandleIsInvalid", "The input receipt handle is invalid.")
			return
		}
		timeout, _ := in["VisibilityTimeout"].(float64)
		msg.hiddenUntil = s.now().Add(time.Duration(timeout) * time.Second)
		if timeout == 0 {
			delete(q.inFlight, handle)
			q.visible = append(q.visible, msg)
		}
		sqsReply(w, map[string]any{})
	default:
		sqsError(w, http.StatusBadRequest, "InvalidAction", "certferry-bench's SQS stand-in does not answer "+op)
	}
}

func (s *sqsStandIn) createQueue(w http.ResponseWriter, host string, in map[string]any) {
	name, _ := in["QueueName"].(string)
	attrs := map[string]string{"VisibilityTimeout": "30", "MessageRetentionPeriod": "345600"}
	if a, ok := in["Attributes"].(map[string]any); ok {
		for k, v := range a {
			attrs[k], _ = v.(string)
		}
	}
	url := "http://" + host + "/123456789012/" + name
	if q := s.queues[url]; q != nil {
		for k, v := range attrs {
			if q.attrs[k] != v {
				sqsError(w, http.StatusBadRequest, "QueueNameExists", "A queue already exists with the same name and a different value for attribute "+k)
				return
			}
		}
	} else {
		s.queues[url] = &standInQueue{name: name, url: url, arn: "arn:aws:sqs:" + s.region + ":123456789012:" + name, attrs: attrs,
			inFlight: map[string]*standInMessage{}}
	}
	sqsReply(w, map[string]string{"QueueUrl": url})
}

// release makes the messages whose visibility timeout ended visible again.
func (s *sqsStandIn) release(q *standInQueue) {
	now := s.now()
	for h, m := range q.inFlight {
		if !now.Before(m.hiddenUntil) {
			delete(q.inFlight, h)
			q.visible = append(q.visible, m)
		}
	}
}

func (s *sqsStandIn) receive(w http.ResponseWriter, q *standInQueue, in map[string]any) {
	s.release(q)
	max := 1
	if n, ok := in["MaxNumberOfMessages"].(float64); ok {
		max = int(n)
	}
	timeout, _ := strconv.Atoi(q.attrs["VisibilityTimeout"])
	if v, ok := in["VisibilityTimeout"].(float64); ok {
		timeout = int(v)
	}
	maxReceives, dlq := q.redrive(s)
	now := s.now()
	var out []map[string]any
	for len(out) < max && len(q.visible) > 0 {
		m := q.visible[0]
		q.visible = q.visible[1:]
		if dlq != nil && m.receives >= maxReceives {
			dlq.visible = append(dlq.visible, m)
			continue
		}
		m.receives++
		if m.first.IsZero() {
			m.first = now
		}
		s.seq++
		m.handle = fmt.Sprintf("%s#%d", m.id, s.seq)
		m.hiddenUntil = now.Add(time.Duration(timeout) * time.Second)
		q.inFlight[m.handle] = m
		out = append(out, map[string]any{"MessageId": m.id, "ReceiptHandle": m.handle, "MD5OfBody": md5Hex(m.body), "Body": m.body,
			"Attributes": map[string]string{
				"ApproximateReceiveCount":          strconv.Itoa(m.receives),
				"SentTimestamp":                    strconv.FormatInt(m.sent.UnixMilli(), 10),
				"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.first.UnixMilli(), 10),
				"SenderId":                         "AIDABENCH",
			}})
	}
	sqsReply(w, map[string]any{"Messages": out})
}

// redrive is the queue's RedrivePolicy: maxReceiveCount and the
// dead-letter queue (nil: none).
func (q *standInQueue) redrive(s *sqsStandIn) (int, *standInQueue) {
	var p struct {
		Target string `json:"deadLetterTargetArn"`
		Max    any    `json:"maxReceiveCount"`
	}
	if json.Unmarshal([]byte(q.attrs["RedrivePolicy"]), &p) != nil {
		return 0, nil
	}
	n, _ := strconv.Atoi(fmt.Sprint(p.Max))
	for _, d := range s.queues {
		if d.arn == p.Target {
			return n, d
		}
	}
	return 0, nil
}

func (q *standInQueue) attributes(in map[string]any) map[string]string {
	all := map[string]string{
		"QueueArn":                              q.arn,
		"ApproximateNumberOfMessages":           strconv.Itoa(len(q.visible)),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(len(q.inFlight)),
		"ApproximateNumberOfMessagesDelayed":    "0",
	}
	for k, v := range q.attrs {
		all[k] = v
	}
	names, _ := in["AttributeNames"].([]any)
	out := map[string]string{}
	for _, n := range names {
		name, _ := n.(string)
		if name == "All" {
			return all
		}
		if v, ok := all[name]; ok {
			out[name] = v
		}
	}
	return out
}
