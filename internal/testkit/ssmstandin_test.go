package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/certferry/certferry/internal/agentrun"
)

// fakeMoto answers SendCommand and ListCommands as moto does: a command
// lists every EC2 instance it knows when sent with InstanceIds, the
// tag-matching ones with Targets.
func fakeMoto(t *testing.T, ec2All, ec2Tagged []string) *httptest.Server {
	t.Helper()
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		switch r.Header.Get("X-Amz-Target") {
		case "AmazonSSM.SendCommand":
			n++
			ids := ec2All
			if in["Targets"] != nil {
				ids = ec2Tagged
			}
			writeJSON(w, 200, mustJSON(map[string]any{"Command": map[string]any{
				"CommandId": fmt.Sprintf("00000000-0000-4000-8000-%012d", n), "DocumentName": in["DocumentName"],
				"InstanceIds": ids, "TargetCount": len(ids), "Status": "Pending"}}))
		case "AmazonSSM.ListCommands":
			writeJSON(w, 200, mustJSON(map[string]any{"Commands": []any{map[string]any{
				"CommandId": in["CommandId"], "InstanceIds": ec2All, "TargetCount": len(ec2All), "Status": "Success"}}}))
		default:
			writeJSON(w, 400, []byte(`{"__type":"UnknownOperationException"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// fourSteps is a document with a download and an install step per
// platform, each with a platformType precondition.
func fourSteps() []agentrun.Step {
	var steps []agentrun.Step
	for _, s := range []struct{ name, platform string }{
		{"downloadLinux", "Linux"}, {"installLinux", "Linux"}, {"downloadWindows", "Windows"}, {"installWindows", "Windows"},
	} {
		steps = append(steps, agentrun.Step{Action: "aws:runShellScript", Name: s.name,
			Precondition: map[string][]string{"StringEquals": {"platformType", s.platform}}})
	}
	return steps
}

const (
	linuxNode   = "i-0aaaaaaaaaaaaaaa1"
	windowsNode = "mi-0bbbbbbbbbbbbbbb2"
	otherNode   = "i-0ccccccccccccccc3"
)

func standInClient(t *testing.T, s *SSMStandIn, ec2All, ec2Tagged []string) *ssm.Client {
	t.Helper()
	p, err := NewFaultProxy(fakeMoto(t, ec2All, ec2Tagged).URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	s.Plug(p)
	return ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "t", SecretAccessKey: "t"}, nil
		}), RetryMaxAttempts: 3}) // the SDK's standard retries: a connection the loaded machine drops is retried, as in production
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// SendCommand records and answers exactly the nodes a command targets.
func TestSSMStandInSendCommandTargets(t *testing.T) {
	s := NewSSMStandIn(fourSteps())
	s.Register(SSMNode{InstanceID: linuxNode, Tags: map[string]string{"env": "prod"}},
		SSMNode{InstanceID: windowsNode, Platform: "Windows", Tags: map[string]string{"env": "prod"}},
		SSMNode{InstanceID: otherNode, Tags: map[string]string{"env": "test"}})
	api := standInClient(t, s, []string{linuxNode, otherNode}, []string{linuxNode})
	ctx := context.Background()

	byID, err := api.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("certferry-install"), InstanceIds: []string{linuxNode}})
	if err != nil {
		t.Fatal(err)
	}
	if got := byID.Command.InstanceIds; !slices.Equal(got, []string{linuxNode}) {
		t.Fatalf("answer lists %v, want only the instance sent to (moto lists every instance)", got)
	}
	if got, _ := s.Targets(aws.ToString(byID.Command.CommandId)); !slices.Equal(got, []string{linuxNode}) {
		t.Fatalf("recorded %v", got)
	}
	lc, err := api.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: byID.Command.CommandId})
	if err != nil || len(lc.Commands) != 1 || !slices.Equal(lc.Commands[0].InstanceIds, []string{linuxNode}) || lc.Commands[0].TargetCount != 1 ||
		lc.Commands[0].Status != ssmtypes.CommandStatusInProgress {
		t.Fatalf("ListCommands %+v %v", lc, err)
	}

	byTag, err := api.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("certferry-install"),
		Targets: []ssmtypes.Target{{Key: aws.String("tag:env"), Values: []string{"prod"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(byTag.Command.InstanceIds) != 0 || byTag.Command.TargetCount != 0 {
		t.Fatalf("tag targets answered %v/%d, want none yet (SSM resolves them after the call)", byTag.Command.InstanceIds, byTag.Command.TargetCount)
	}
	if got, _ := s.Targets(aws.ToString(byTag.Command.CommandId)); !slices.Equal(got, []string{linuxNode, windowsNode}) {
		t.Fatalf("tag targets resolved to %v, want the EC2 match and the hybrid node", got)
	}
	if err := s.Post(aws.ToString(byID.Command.CommandId), otherNode, NodeResult{}); err == nil {
		t.Fatal("posted a result for a node the command does not target")
	}
}

// GetCommandInvocation and ListCommandInvocations answer per step: the
// platform's steps run, the other platform's are skipped as SSM Agent
// reports them; PluginName is required; output is truncated as AWS does.
func TestSSMStandInInvocations(t *testing.T) {
	s := NewSSMStandIn(fourSteps())
	s.Register(SSMNode{InstanceID: linuxNode}, SSMNode{InstanceID: windowsNode, Platform: "Windows"})
	api := standInClient(t, s, nil, nil)
	ctx := context.Background()
	sent, err := api.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("certferry-install"), InstanceIds: []string{linuxNode, windowsNode}})
	if err != nil {
		t.Fatal(err)
	}
	id := sent.Command.CommandId

	// Not finished yet: in progress, no output.
	g, err := api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: id, InstanceId: aws.String(linuxNode), PluginName: aws.String("installLinux")})
	if err != nil || g.Status != ssmtypes.CommandInvocationStatusInProgress || aws.ToString(g.StandardOutputContent) != "" {
		t.Fatalf("before the result: %+v %v", g, err)
	}

	long := strings.Repeat("x", 30000) + "\nCERTFERRY_RESULT {}\n"
	if err := s.Post(aws.ToString(id), linuxNode, NodeResult{Status: "Success", Stdout: long}); err != nil {
		t.Fatal(err)
	}
	if err := s.Post(aws.ToString(id), windowsNode, NodeResult{Status: "Failed", Stdout: "ok\n", Stderr: "boom", ResponseCode: 1}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, plugin, code string }{
		{"no PluginName on a multi-step document", "", "InvalidPluginName"},
		{"plugin type instead of step name", "aws:runShellScript", "InvalidPluginName"},
	} {
		_, err := api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: id, InstanceId: aws.String(linuxNode), PluginName: aws.String(tc.plugin)})
		if errCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	_, err = api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: id, InstanceId: aws.String(otherNode), PluginName: aws.String("installLinux")})
	if errCode(err) != "InvocationDoesNotExist" {
		t.Errorf("node not in the command: %v", err)
	}

	tests := []struct {
		node, step, status, details, stdout string
		code                                int32
	}{
		{linuxNode, "downloadLinux", "Success", "Success", "", 0},
		{linuxNode, "installLinux", "Success", "Success", long[:StdoutLimit-len(OutputTruncated)] + OutputTruncated, 0},
		{linuxNode, "installWindows", "Success", "Skipped", "", 0},
		{windowsNode, "installWindows", "Failed", "Failed", "ok\n", 1},
		{windowsNode, "installLinux", "Success", "Skipped", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.node+"/"+tc.step, func(t *testing.T) {
			g, err := api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: id, InstanceId: aws.String(tc.node), PluginName: aws.String(tc.step)})
			if err != nil {
				t.Fatal(err)
			}
			if string(g.Status) != tc.status || aws.ToString(g.StatusDetails) != tc.details || aws.ToString(g.StandardOutputContent) != tc.stdout ||
				g.ResponseCode != tc.code || aws.ToString(g.PluginName) != tc.step {
				t.Fatalf("got %s/%s code %d plugin %s stdout %d chars", g.Status, aws.ToString(g.StatusDetails), g.ResponseCode,
					aws.ToString(g.PluginName), len(aws.ToString(g.StandardOutputContent)))
			}
		})
	}
	g, err = api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: id, InstanceId: aws.String(linuxNode), PluginName: aws.String("installLinux")})
	if err != nil {
		t.Fatal(err)
	}
	if len(aws.ToString(g.StandardOutputContent)) != StdoutLimit ||
		strings.Contains(aws.ToString(g.StandardOutputContent), "CERTFERRY_RESULT") {
		t.Fatalf("24,000-character limit: the beginning is kept and a last line beyond it is lost")
	}

	l, err := api.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{CommandId: id, InstanceId: aws.String(windowsNode), Details: true})
	if err != nil || len(l.CommandInvocations) != 1 {
		t.Fatalf("ListCommandInvocations %+v %v", l, err)
	}
	inv := l.CommandInvocations[0]
	var names []string
	for _, p := range inv.CommandPlugins {
		names = append(names, aws.ToString(p.Name)+"="+aws.ToString(p.StatusDetails))
	}
	if want := []string{"downloadLinux=Skipped", "installLinux=Skipped", "downloadWindows=Success", "installWindows=Failed"}; !slices.Equal(names, want) {
		t.Fatalf("plugins %v, want %v", names, want)
	}
	if inv.Status != ssmtypes.CommandInvocationStatusFailed || !strings.HasPrefix(aws.ToString(inv.CommandPlugins[0].Output), SkippedPrefix+`: '"StringEquals": [platformType, Linux]'. Step name: downloadLinux`) ||
		aws.ToString(inv.CommandPlugins[3].Output) != "ok\n\n----------ERROR-------\nboom" {
		t.Fatalf("invocation %s, outputs %q / %q", inv.Status, aws.ToString(inv.CommandPlugins[0].Output), aws.ToString(inv.CommandPlugins[3].Output))
	}
	l, _ = api.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{CommandId: id, InstanceId: aws.String(linuxNode), Details: true})
	if out := aws.ToString(l.CommandInvocations[0].CommandPlugins[1].Output); len(out) != PluginOutputLimit || !strings.HasSuffix(out, "---Output truncated---") {
		t.Fatalf("plugin output %d characters, want at most %d", len(out), PluginOutputLimit)
	}
	l, _ = api.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{CommandId: id})
	if len(l.CommandInvocations) != 2 || len(l.CommandInvocations[0].CommandPlugins) != 0 {
		t.Fatalf("without Details: %+v", l.CommandInvocations)
	}
	lc, _ := api.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: id})
	if lc.Commands[0].Status != ssmtypes.CommandStatusFailed || lc.Commands[0].TargetCount != 2 || lc.Commands[0].ErrorCount != 1 {
		t.Fatalf("ListCommands after the results: %+v", lc.Commands[0])
	}
}

// Eventual consistency: after a result is posted, the first calls answer
// as if the invocation did not exist.
func TestSSMStandInLag(t *testing.T) {
	s := NewSSMStandIn(fourSteps())
	s.Register(SSMNode{InstanceID: linuxNode})
	s.SetLag(2)
	api := standInClient(t, s, nil, nil)
	ctx := context.Background()
	sent, err := api.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("certferry-install"), InstanceIds: []string{linuxNode}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Post(aws.ToString(sent.Command.CommandId), linuxNode, NodeResult{Stdout: "done\n"}); err != nil {
		t.Fatal(err)
	}
	l, err := api.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{CommandId: sent.Command.CommandId, InstanceId: aws.String(linuxNode), Details: true})
	if err != nil || len(l.CommandInvocations) != 0 {
		t.Fatalf("first call: %+v %v, want no invocation yet", l, err)
	}
	in := &ssm.GetCommandInvocationInput{CommandId: sent.Command.CommandId, InstanceId: aws.String(linuxNode), PluginName: aws.String("installLinux")}
	if _, err := api.GetCommandInvocation(ctx, in); errCode(err) != "InvocationDoesNotExist" {
		t.Fatalf("second call: %v", err)
	}
	if g, err := api.GetCommandInvocation(ctx, in); err != nil || aws.ToString(g.StandardOutputContent) != "done\n" {
		t.Fatalf("third call: %+v %v", g, err)
	}
}

// DescribeInstanceInformation: filters, bounds, paging, EC2 and hybrid
// nodes.
func TestSSMStandInDescribeInstanceInformation(t *testing.T) {
	s := NewSSMStandIn(fourSteps())
	for i := range 12 {
		n := SSMNode{InstanceID: fmt.Sprintf("i-%017x", i), Tags: map[string]string{"env": "prod"}}
		if i%3 == 0 {
			n.InstanceID, n.Platform = fmt.Sprintf("mi-%017x", i), "Windows"
		}
		if i == 5 {
			n.PingStatus = "ConnectionLost"
		}
		s.Register(n)
	}
	api := standInClient(t, s, nil, nil)
	ctx := context.Background()
	describe := func(in *ssm.DescribeInstanceInformationInput) ([]ssmtypes.InstanceInformation, int, error) {
		var all []ssmtypes.InstanceInformation
		pages := 0
		p := ssm.NewDescribeInstanceInformationPaginator(api, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, pages, err
			}
			pages++
			all = append(all, page.InstanceInformationList...)
		}
		return all, pages, nil
	}
	all, pages, err := describe(&ssm.DescribeInstanceInformationInput{})
	if err != nil || len(all) != 12 || pages != 2 {
		t.Fatalf("default page size 10: %d nodes in %d pages, %v", len(all), pages, err)
	}
	if all[0].ResourceType != ssmtypes.ResourceTypeEc2Instance || all[11].ResourceType != ssmtypes.ResourceTypeManagedInstance ||
		all[11].PlatformType != ssmtypes.PlatformTypeWindows {
		t.Fatalf("first %+v last %+v", all[0], all[11])
	}
	got, _, err := describe(&ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(50), Filters: []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("PingStatus"), Values: []string{"Online"}}, {Key: aws.String("PlatformType"), Values: []string{"Linux"}}}})
	if err != nil || len(got) != 7 {
		t.Fatalf("Online Linux nodes: %d, %v", len(got), err)
	}
	got, _, err = describe(&ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(5), Filters: []ssmtypes.InstanceInformationStringFilter{
		{Key: aws.String("tag:env"), Values: []string{"prod"}}}})
	if err != nil || len(got) != 12 {
		t.Fatalf("tag filter: %d, %v", len(got), err)
	}
	for _, tc := range []struct {
		name string
		in   *ssm.DescribeInstanceInformationInput
		code string
	}{
		{"MaxResults below 5", &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(4)}, "ValidationException"},
		{"MaxResults above 50", &ssm.DescribeInstanceInformationInput{MaxResults: aws.Int32(51)}, "ValidationException"},
		{"tag filter with another filter", &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
			{Key: aws.String("tag:env"), Values: []string{"prod"}}, {Key: aws.String("PingStatus"), Values: []string{"Online"}}}}, "InvalidFilterKey"},
		{"unknown key", &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
			{Key: aws.String("PlatformTypes"), Values: []string{"Linux"}}}}, "InvalidFilterKey"},
		{"unknown node id", &ssm.DescribeInstanceInformationInput{Filters: []ssmtypes.InstanceInformationStringFilter{
			{Key: aws.String("InstanceIds"), Values: []string{"i-0ffffffffffffffff"}}}}, "InvalidInstanceId"},
		{"bad token", &ssm.DescribeInstanceInformationInput{NextToken: aws.String("x")}, "InvalidNextToken"},
	} {
		if _, err := api.DescribeInstanceInformation(ctx, tc.in); errCode(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}

// A command sent with an AlarmConfiguration runs while its alarm is OK or
// INSUFFICIENT_DATA; once SSM reads it in ALARM the command is stopped:
// the invocations that had not ended are Cancelled (final), the command
// is Cancelled with the alarm in TriggeredAlarms, and no later result is
// taken. An alarm already in ALARM stops the command when it is sent; one
// SSM cannot read stops it unless IgnorePollAlarmFailure.
func TestSSMStandInStopAlarm(t *testing.T) {
	s := NewSSMStandIn(fourSteps())
	s.Register(SSMNode{InstanceID: linuxNode}, SSMNode{InstanceID: otherNode})
	state := map[string]string{"shop-5xx": "OK"}
	s.AlarmState = func(name string) (string, error) {
		st, ok := state[name]
		if !ok {
			return "", fmt.Errorf("alarm %s not found", name)
		}
		return st, nil
	}
	api := standInClient(t, s, []string{linuxNode, otherNode}, nil)
	ctx := context.Background()
	send := func(alarm string, ignore bool) string {
		t.Helper()
		out, err := api.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("certferry-install"), InstanceIds: []string{linuxNode, otherNode},
			AlarmConfiguration: &ssmtypes.AlarmConfiguration{Alarms: []ssmtypes.Alarm{{Name: aws.String(alarm)}}, IgnorePollAlarmFailure: ignore}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Command.CommandId)
	}
	id := send("shop-5xx", false)
	if got := s.PollAlarms(); len(got) != 0 {
		t.Fatalf("alarm OK stopped %v", got)
	}
	if err := s.Post(id, linuxNode, NodeResult{Status: "Success"}); err != nil {
		t.Fatal(err)
	}
	state["shop-5xx"] = "ALARM"
	if got := s.PollAlarms(); !slices.Equal(got[id], []string{otherNode}) {
		t.Fatalf("alarm in ALARM cancelled %v, want only the node that had not ended", got)
	}
	if err := s.Post(id, otherNode, NodeResult{Status: "Success"}); err == nil {
		t.Fatal("a cancelled invocation took a result")
	}
	lc, err := api.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id)})
	if err != nil || len(lc.Commands) != 1 {
		t.Fatalf("ListCommands %+v %v", lc, err)
	}
	c := lc.Commands[0]
	if c.Status != ssmtypes.CommandStatusCancelled || len(c.TriggeredAlarms) != 1 || aws.ToString(c.TriggeredAlarms[0].Name) != "shop-5xx" ||
		c.AlarmConfiguration == nil || aws.ToString(c.AlarmConfiguration.Alarms[0].Name) != "shop-5xx" {
		t.Fatalf("command %+v", c)
	}
	inv, err := api.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{CommandId: aws.String(id), InstanceId: aws.String(otherNode)})
	if err != nil || len(inv.CommandInvocations) != 1 || inv.CommandInvocations[0].Status != ssmtypes.CommandInvocationStatusCancelled {
		t.Fatalf("cancelled invocation %+v %v", inv, err)
	}
	// Already in ALARM when sent: stopped at once.
	id2 := send("shop-5xx", false)
	lc, _ = api.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(id2)})
	if lc.Commands[0].Status != ssmtypes.CommandStatusCancelled || len(s.PollAlarms()[id2]) != 0 {
		t.Fatalf("sent while in ALARM: %s", lc.Commands[0].Status)
	}
	// Unreadable alarm: stopped, unless IgnorePollAlarmFailure.
	stopped := send("missing", false)
	kept := send("missing", true)
	lc, _ = api.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(stopped)})
	if lc.Commands[0].Status != ssmtypes.CommandStatusCancelled {
		t.Fatalf("unreadable alarm: %s", lc.Commands[0].Status)
	}
	if len(s.PollAlarms()[kept]) != 0 {
		t.Fatal("IgnorePollAlarmFailure: the command was stopped")
	}
}

// A node that left SSM (terminated, deregistered) after a command went to
// it: a SendCommand naming it among InstanceIds fails whole with
// InvalidInstanceId and sends nothing to any node of the call
// ("SendCommand", Systems Manager API Reference, InvalidInstanceId); the
// same call without it goes; DescribeInstanceInformation by its id fails;
// tag targets no longer select it; the command it had still answers.
func TestSSMStandInSendCommandRefusesNodeGone(t *testing.T) {
	s := NewSSMStandIn(fourSteps())
	prod := map[string]string{"env": "prod"}
	s.Register(SSMNode{InstanceID: linuxNode, Tags: prod}, SSMNode{InstanceID: otherNode, Tags: prod},
		SSMNode{InstanceID: windowsNode, Platform: "Windows", PingStatus: "ConnectionLost"})
	api := standInClient(t, s, []string{linuxNode, otherNode}, []string{linuxNode, otherNode})
	ctx := context.Background()
	send := func(ids ...string) (*ssm.SendCommandOutput, error) {
		return api.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("certferry-install"), InstanceIds: ids})
	}
	before, err := send(linuxNode, otherNode, windowsNode)
	if err != nil {
		t.Fatalf("send to managed nodes (one ConnectionLost, a valid state): %v", err)
	}
	s.Calls()
	s.Deregister(otherNode)

	out, err := send(linuxNode, otherNode)
	if errCode(err) != "InvalidInstanceId" || out != nil || !strings.Contains(err.Error(), otherNode) {
		t.Fatalf("send naming a node gone: %+v %v, want InvalidInstanceId", out, err)
	}
	if c := s.Calls(); c["AmazonSSM.SendCommand"] != 0 || c[RefusedSends] != 1 {
		t.Fatalf("calls %v: want one refused send and no command recorded", c)
	}
	if _, err := send(otherNode); errCode(err) != "InvalidInstanceId" {
		t.Fatalf("send to the gone node alone: %v", err)
	}
	rest, err := send(linuxNode)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Targets(aws.ToString(rest.Command.CommandId)); !slices.Equal(got, []string{linuxNode}) {
		t.Fatalf("the rest went to %v", got)
	}

	if _, err := api.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{
		Filters: []ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: []string{otherNode}}}}); errCode(err) != "InvalidInstanceId" {
		t.Fatalf("DescribeInstanceInformation of the gone node: %v", err)
	}
	byTag, err := api.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("certferry-install"),
		Targets: []ssmtypes.Target{{Key: aws.String("tag:env"), Values: []string{"prod"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Targets(aws.ToString(byTag.Command.CommandId)); !slices.Equal(got, []string{linuxNode}) {
		t.Fatalf("tag targets resolved to %v, want the gone node left out (the emulator's EC2 still lists it)", got)
	}

	// The invocation it had before it left still answers.
	cmd := aws.ToString(before.Command.CommandId)
	if err := s.Post(cmd, otherNode, NodeResult{Status: "Success", Stdout: "ok"}); err != nil {
		t.Fatal(err)
	}
	inv, err := api.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(cmd), InstanceId: aws.String(otherNode),
		PluginName: aws.String("installLinux")})
	if err != nil || inv.Status != ssmtypes.CommandInvocationStatusSuccess {
		t.Fatalf("invocation of the gone node: %+v %v", inv, err)
	}

	s.Register(SSMNode{InstanceID: otherNode, Tags: prod}) // back (registered again)
	if _, err := send(linuxNode, otherNode); err != nil {
		t.Fatalf("send after the node registered again: %v", err)
	}
}
