package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The SQS stand-in, through the SDK's own client (which checks the MD5 of
// every body sent and received): batches, visibility, receive counts,
// deletes, and the redrive policy's move to the dead-letter queue.
func TestSQSStandIn(t *testing.T) {
	ctx := context.Background()
	s := newSQSStandIn("us-east-1")
	srv := httptest.NewServer(s.layer(http.NotFoundHandler()))
	defer srv.Close()
	q := sqs.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		})})
	dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("dlq")})
	if err != nil {
		t.Fatal(err)
	}
	arn, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{"QueueArn"}})
	if err != nil {
		t.Fatal(err)
	}
	redrive := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"2"}`, arn.Attributes["QueueArn"])
	main, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("main"), Attributes: map[string]string{"RedrivePolicy": redrive}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("main"), Attributes: map[string]string{"VisibilityTimeout": "5"}}); err == nil {
		t.Fatal("CreateQueue with other attributes answered the existing queue; SQS refuses it (QueueNameExists)")
	}
	count := func(url *string) (int, int) {
		t.Helper()
		a, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url, AttributeNames: []sqstypes.QueueAttributeName{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		v, _ := strconv.Atoi(a.Attributes["ApproximateNumberOfMessages"])
		h, _ := strconv.Atoi(a.Attributes["ApproximateNumberOfMessagesNotVisible"])
		return v, h
	}
	for b := range 2 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for i := range 6 {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(fmt.Sprintf(`{"name":"n%d"}`, b*6+i))})
		}
		out, err := q.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: main.QueueUrl, Entries: entries})
		if err != nil || len(out.Successful) != 6 {
			t.Fatalf("send: %v %+v", err, out)
		}
	}
	got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: main.QueueUrl, MaxNumberOfMessages: 5, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}})
	if err != nil || len(got.Messages) != 5 || got.Messages[0].Attributes["ApproximateReceiveCount"] != "1" {
		t.Fatalf("receive: %v %+v", err, got)
	}
	if v, h := count(main.QueueUrl); v != 7 || h != 5 {
		t.Fatalf("after receiving 5 of 12: %d visible, %d in flight", v, h)
	}
	var del []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range got.Messages[:4] {
		del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
	}
	del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String("bad"), ReceiptHandle: aws.String("no-such-handle")})
	d, err := q.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: main.QueueUrl, Entries: del})
	if err != nil || len(d.Successful) != 4 || len(d.Failed) != 1 || aws.ToString(d.Failed[0].Code) != "ReceiptHandleIsInvalid" {
		t.Fatalf("delete: %v %+v", err, d)
	}
	// The fifth goes back at once, and is received again (count 2); a
	// third receive moves it to the dead-letter queue instead.
	last := got.Messages[4]
	for receive := 2; receive <= 3; receive++ {
		if _, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: main.QueueUrl, ReceiptHandle: last.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
		var seen *sqstypes.Message
		for {
			r, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: main.QueueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Messages) == 0 {
				break
			}
			for i := range r.Messages {
				if aws.ToString(r.Messages[i].MessageId) == aws.ToString(last.MessageId) {
					seen = &r.Messages[i]
				}
			}
		}
		if receive == 2 {
			if seen == nil || seen.Attributes["ApproximateReceiveCount"] != "2" {
				t.Fatalf("second receive: %+v", seen)
			}
			last = *seen
			continue
		}
		if seen != nil {
			t.Fatalf("a message received maxReceiveCount times was received again: %+v", seen)
		}
	}
	if v, _ := count(dlq.QueueUrl); v != 1 {
		t.Fatalf("dead-letter queue holds %d, want the one message", v)
	}
}
