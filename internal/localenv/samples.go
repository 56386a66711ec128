package localenv

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// Values the events/ samples carry, which `certferry invoke`, the demo, the
// tests and the benchmarks replace with the emulator's real ones.
const (
	SampleARN        = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	SampleCommandID  = "00000000-1111-2222-3333-444444444444"
	SampleInstanceID = "i-0123456789abcdef0"
	SampleDocument   = "certferry-install"
)

// StatusEvent returns an SSM status-change sample (events/tracker-*.json)
// for command on instance of document, with event id id; an empty value
// keeps the sample's.
func StatusEvent(raw []byte, command, instance, document, id string) ([]byte, error) {
	var pairs []string
	for sample, real := range map[string]string{SampleCommandID: command, SampleInstanceID: instance} {
		if real != "" {
			pairs = append(pairs, sample, real)
		}
	}
	if document != "" {
		pairs = append(pairs, fmt.Sprintf("%q", SampleDocument), fmt.Sprintf("%q", document))
	}
	out := []byte(strings.NewReplacer(pairs...).Replace(string(raw)))
	if id == "" {
		return out, nil
	}
	var ev map[string]any
	if err := json.Unmarshal(out, &ev); err != nil {
		return nil, fmt.Errorf("status sample: %w", err)
	}
	ev["id"] = id
	return json.Marshal(ev)
}

// NodeOutput answers the tracker's reads of node output for local Linux
// nodes running certferry's document (moto runs nothing, answers no output
// and invents one plugin): ListCommandInvocations with Details lists the
// steps installLinux (ran) and installWindows (skipped by its platform
// precondition, as SSM Agent reports it), and GetCommandInvocation answers
// installLinux's output (Out, by instance id) and, like AWS on a multi-step
// document, refuses a call without PluginName ("GetCommandInvocation",
// Systems Manager API Reference). ListCommands is the emulator's.
type NodeOutput struct {
	*ssm.Client
	Out map[string]string
}

// GetCommandInvocation answers a step's output on a node.
func (n NodeOutput) GetCommandInvocation(_ context.Context, in *ssm.GetCommandInvocationInput, _ ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	out := &ssm.GetCommandInvocationOutput{CommandId: in.CommandId, InstanceId: in.InstanceId, PluginName: in.PluginName,
		Status: ssmtypes.CommandInvocationStatusSuccess, StatusDetails: aws.String("Success")}
	switch aws.ToString(in.PluginName) {
	case "installLinux":
		out.StandardOutputContent = aws.String(n.Out[aws.ToString(in.InstanceId)])
	case "installWindows":
		out.StatusDetails = aws.String("Skipped")
	default:
		return nil, &smithy.GenericAPIError{Code: "InvalidPluginName", Message: "the document has more than one step: name one"}
	}
	return out, nil
}

// ListCommandInvocations lists a node's invocation with its two steps.
func (n NodeOutput) ListCommandInvocations(_ context.Context, in *ssm.ListCommandInvocationsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
	inv := ssmtypes.CommandInvocation{CommandId: in.CommandId, InstanceId: in.InstanceId, Status: ssmtypes.CommandInvocationStatusSuccess}
	if in.Details {
		inv.CommandPlugins = []ssmtypes.CommandPlugin{
			{Name: aws.String("installLinux"), Status: ssmtypes.CommandPluginStatusSuccess, StatusDetails: aws.String("Success")},
			{Name: aws.String("installWindows"), Status: ssmtypes.CommandPluginStatusSuccess, StatusDetails: aws.String("Skipped"),
				Output: aws.String(`Step execution skipped due to unsatisfied preconditions: '"StringEquals": [platformType, Windows]'. Step name: installWindows`)},
		}
	}
	return &ssm.ListCommandInvocationsOutput{CommandInvocations: []ssmtypes.CommandInvocation{inv}}, nil
}

// SubscribeQueue creates SQS queue name, subscribes it to the SNS topic and
// returns its URL, so alerts can be read back. raw asks for the bare
// message; otherwise each message is SNS's JSON notification (Subject,
// Message, …).
func SubscribeQueue(ctx context.Context, cfg aws.Config, topicARN, name string, raw bool) (string, error) {
	q := sqs.NewFromConfig(cfg)
	qu, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	qa, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: qu.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", fmt.Errorf("read queue %s: %w", name, err)
	}
	in := &sns.SubscribeInput{TopicArn: aws.String(topicARN), Protocol: aws.String("sqs"),
		Endpoint: aws.String(qa.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}
	if raw {
		in.Attributes = map[string]string{"RawMessageDelivery": "true"}
	}
	if _, err := sns.NewFromConfig(cfg).Subscribe(ctx, in); err != nil {
		return "", fmt.Errorf("subscribe queue %s: %w", name, err)
	}
	return aws.ToString(qu.QueueUrl), nil
}
