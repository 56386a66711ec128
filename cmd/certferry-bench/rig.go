package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/middleware"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/testkit"
)

// counter counts the AWS calls certferry's SDK clients make, by
// Service.Operation, as the SDK sends them (retries not counted).
type counter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *counter) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("certferryBenchCount",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.mu.Lock()
			c.calls[awsmiddleware.GetServiceID(ctx)+"."+awsmiddleware.GetOperationName(ctx)]++
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// take returns the counts since the last take.
func (c *counter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = map[string]int{}
	return out
}

func total(calls map[string]int, match func(string) bool) int {
	n := 0
	for op, k := range calls {
		if match == nil || match(op) {
			n += k
		}
	}
	return n
}

func opsList(calls map[string]int) string {
	var ops []string
	for op, k := range calls {
		ops = append(ops, fmt.Sprintf("%s×%d", op, k))
	}
	sort.Strings(ops)
	return strings.Join(ops, " ")
}

// rig is a fresh moto state with certferry's resources, SDK clients that
// count their calls, and the SSM stand-in between them and moto.
type rig struct {
	ctx   context.Context
	aws   aws.Config // through the proxy, counted
	setup aws.Config // straight to moto, not counted (fixtures)
	cfg   config.Config
	count *counter
	proxy *testkit.FaultProxy
	ssm   *ssmStandIn
}

// modelRig is the checked rig run starts; every bench proxy is guarded by
// its model check.
var modelRig *testkit.Rig

func newRig(ctx context.Context, moto *motoserver.Server) (*rig, error) {
	if err := moto.Reset(ctx); err != nil {
		return nil, err
	}
	setup, err := sdkConfig(ctx, moto.URL)
	if err != nil {
		return nil, err
	}
	env, err := localenv.Up(ctx, setup, localenv.DocumentFile)
	if err != nil {
		return nil, err
	}
	// The bench's own proxy (its SSM stand-in answers) sits in front of the
	// emulator behind the same model check, so answered requests are
	// checked too.
	proxy, err := modelRig.NewFaultProxy()
	if err != nil {
		return nil, err
	}
	r := &rig{ctx: ctx, setup: setup, cfg: env.Config, count: &counter{calls: map[string]int{}}, proxy: proxy}
	r.aws, err = sdkConfig(ctx, proxy.URL)
	if err != nil {
		return nil, err
	}
	r.aws.APIOptions = append(r.aws.APIOptions, r.count.middleware)
	r.ssm = &ssmStandIn{commands: map[string]int{}}
	return r, nil
}

func (r *rig) close() { r.proxy.Close() }

func sdkConfig(ctx context.Context, endpoint string) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"), awsconfig.WithRetryMaxAttempts(5),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "bench", SecretAccessKey: "bench"}, nil
		})))
	if err != nil {
		return aws.Config{}, err
	}
	cfg.BaseEndpoint = aws.String(endpoint)
	return cfg, nil
}

// ssmStandIn answers SSM calls in real SSM's shape where moto lacks the API
// or cannot keep up at fleet scale.
type ssmStandIn struct {
	mu       sync.Mutex
	n        int
	commands map[string]int // command id → target count
	output   string         // what nodes print (GetCommandInvocation)
	groups   map[string][]string
}

// sendCommand returns at once, as real SSM does for tag targets: no
// instance list, targets resolved later.
func (s *ssmStandIn) sendCommand(targets int) func([]byte) (int, []byte) {
	return func(body []byte) (int, []byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.n++
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", time.Now().Unix()&0xffffffff, s.n)
		s.commands[id] = targets
		var in struct {
			DocumentName string
			Parameters   map[string][]string
		}
		_ = json.Unmarshal(body, &in)
		b, _ := json.Marshal(map[string]any{"Command": map[string]any{
			"CommandId": id, "DocumentName": in.DocumentName, "Parameters": in.Parameters, "Status": "Pending",
			"InstanceIds": []string{}, "TargetCount": 0, "RequestedDateTime": float64(time.Now().Unix()),
		}})
		return 200, b
	}
}

func (s *ssmStandIn) listCommands(body []byte) (int, []byte) {
	var in struct{ CommandId string }
	_ = json.Unmarshal(body, &in)
	s.mu.Lock()
	defer s.mu.Unlock()
	cmds := []any{}
	if n, ok := s.commands[in.CommandId]; ok {
		cmds = append(cmds, map[string]any{"CommandId": in.CommandId, "Status": "Success", "TargetCount": n, "CompletedCount": n})
	}
	b, _ := json.Marshal(map[string]any{"Commands": cmds})
	return 200, b
}

// getCommandInvocation answers the installLinux step's output. As AWS on
// a multi-step document ("GetCommandInvocation", Systems Manager API
// Reference), it refuses a call without the step name.
func (s *ssmStandIn) getCommandInvocation(body []byte) (int, []byte) {
	var in struct{ CommandId, InstanceId, PluginName string }
	_ = json.Unmarshal(body, &in)
	if in.PluginName != "installLinux" && in.PluginName != "installWindows" {
		return 400, []byte(`{"__type":"InvalidPluginName","message":"name the step: the document has more than one"}`)
	}
	out, details := s.output, "Success"
	if in.PluginName == "installWindows" {
		out, details = "", "Skipped"
	}
	b, _ := json.Marshal(map[string]any{"CommandId": in.CommandId, "InstanceId": in.InstanceId, "PluginName": in.PluginName,
		"Status": "Success", "StatusDetails": details, "ResponseCode": 0, "StandardOutputContent": out})
	return 200, b
}

// listCommandInvocations answers the asked node's invocation with its two
// steps, the Windows one skipped by its precondition as SSM Agent reports
// it ("ListCommandInvocations" with Details; the full emulation is
// testkit.SSMStandIn).
func (s *ssmStandIn) listCommandInvocations(body []byte) (int, []byte) {
	var in struct{ CommandId, InstanceId string }
	_ = json.Unmarshal(body, &in)
	plugins := []any{
		map[string]any{"Name": "installLinux", "Status": "Success", "StatusDetails": "Success", "ResponseCode": 0},
		map[string]any{"Name": "installWindows", "Status": "Success", "StatusDetails": "Skipped", "ResponseCode": 0,
			"Output": `Step execution skipped due to unsatisfied preconditions: '"StringEquals": [platformType, Windows]'. Step name: installWindows`},
	}
	b, _ := json.Marshal(map[string]any{"CommandInvocations": []any{map[string]any{"CommandId": in.CommandId, "InstanceId": in.InstanceId,
		"Status": "Success", "StatusDetails": "Success", "CommandPlugins": plugins}}})
	return 200, b
}

// describeInstanceInformation answers from groups: the nodes whose tag
// (the filter's tag:<key>=<value>) is set, all online.
func (s *ssmStandIn) describeInstanceInformation(body []byte) (int, []byte) {
	var in struct {
		Filters []struct {
			Key    string
			Values []string
		}
	}
	_ = json.Unmarshal(body, &in)
	var ids []string
	for _, f := range in.Filters {
		if strings.HasPrefix(f.Key, "tag:") {
			for _, v := range f.Values {
				ids = append(ids, s.groups[f.Key+"="+v]...)
			}
		}
	}
	slices.Sort(ids)
	list := []any{}
	for _, id := range ids {
		list = append(list, map[string]any{"InstanceId": id, "PingStatus": "Online", "ResourceType": "EC2Instance"})
	}
	b, _ := json.Marshal(map[string]any{"InstanceInformationList": list})
	return 200, b
}

// standInCommands routes SendCommand and ListCommands to the stand-in.
func (r *rig) standInCommands(targets int) {
	r.proxy.Answer("AmazonSSM.SendCommand", r.ssm.sendCommand(targets))
	r.proxy.Answer("AmazonSSM.ListCommands", r.ssm.listCommands)
	r.proxy.Answer("AmazonSSM.GetCommandInvocation", r.ssm.getCommandInvocation)
	r.proxy.Answer("AmazonSSM.ListCommandInvocations", r.ssm.listCommandInvocations)
}

// realCommands sends SendCommand, ListCommands, GetCommandInvocation and
// ListCommandInvocations to moto again.
func (r *rig) realCommands() {
	for _, op := range []string{"AmazonSSM.SendCommand", "AmazonSSM.ListCommands", "AmazonSSM.GetCommandInvocation", "AmazonSSM.ListCommandInvocations"} {
		r.proxy.Answer(op, nil)
	}
}

func percentile(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return float64(s[i].Microseconds()) / 1000
}
