package testkit

// SSM stand-in: Run Command and fleet answers as AWS documents them, where
// moto is silent (ListCommandInvocations, DescribeInstanceInformation) or
// differs (GetCommandInvocation invents one plugin, SendCommand with
// InstanceIds lists every instance). Each behaviour names the page it
// follows; ssmstandin_test.go pins each one.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certferry/certferry/internal/agentrun"
)

// Limits SSM documents and SSM Agent apply to command output.
const (
	// StdoutLimit: "GetCommandInvocation" (Systems Manager API Reference):
	// StandardOutputContent is "the first 24,000 characters written by the
	// plugin to stdout". SSM Agent keeps the beginning and ends it with
	// "--output truncated--" (agent/framework/processor/executer/iohandler
	// DefaultOutputConfig, pluginutil.StringPrefix).
	StdoutLimit = 24000
	// StderrLimit: same page, "the first 8,000 characters written by the
	// plugin to stderr".
	StderrLimit = 8000
	// PluginOutputLimit: "ListCommandInvocations" / CommandPlugin
	// (Systems Manager API Reference): Output at most 2,500 characters
	// (SSM Agent iohandler.MaximumPluginOutputSize, TruncateOutput).
	PluginOutputLimit = 2500
	// OutputTruncated is what SSM Agent appends to truncated output.
	OutputTruncated = "--output truncated--"
	// SkippedPrefix starts the output SSM Agent reports for a step whose
	// precondition does not hold (agent/framework/runpluginutil:
	// "Step execution skipped due to unsatisfied preconditions: '…'. Step
	// name: …"); the step's status is Skipped, its code 0, and the agent
	// counts it as a success ("Skipped is a form of success",
	// contracts/aggregator.go).
	SkippedPrefix = "Step execution skipped due to unsatisfied preconditions"
)

// SSMNode is a managed node the stand-in knows: an EC2 instance (i-) or a
// hybrid-activated server (mi-).
type SSMNode struct {
	InstanceID string
	Platform   string // PlatformType: Linux | Windows | MacOS
	PingStatus string // Online (default) | ConnectionLost | Inactive
	Tags       map[string]string
}

// resourceType is "DescribeInstanceInformation" / InstanceInformation
// ResourceType: EC2Instance for i-, ManagedInstance for hybrid mi- nodes.
func (n SSMNode) resourceType() string {
	if strings.HasPrefix(n.InstanceID, "mi-") {
		return "ManagedInstance"
	}
	return "EC2Instance"
}

// NodeResult is what a node reports for a command: the invocation's final
// status and what the platform's last step (installLinux/installWindows)
// printed. Steps overrides single steps by name.
type NodeResult struct {
	Status       string // Success, Failed, TimedOut, …
	Stdout       string
	Stderr       string
	ResponseCode int
	Steps        map[string]StepResult
}

// StepResult is one step's own outcome.
type StepResult struct {
	Status         string
	Stdout, Stderr string
	ResponseCode   int
}

// SSMStandIn answers SSM's Run Command and managed-node reads from the
// nodes it was given and the results a test posts.
type SSMStandIn struct {
	mu    sync.Mutex
	steps []agentrun.Step
	nodes map[string]SSMNode
	// gone are the nodes Deregister took away (terminated, deregistered):
	// no longer managed, kept only so that the commands sent to them
	// before still answer per their platform.
	gone     map[string]SSMNode
	commands map[string]*standInCommand
	lag      int
	calls    map[string]int
	// AlarmState reads a CloudWatch alarm's state (OK | ALARM |
	// INSUFFICIENT_DATA) for commands sent with an AlarmConfiguration; an
	// error is an alarm SSM cannot read. Nil: such commands are refused.
	AlarmState func(name string) (string, error)
}

type standInCommand struct {
	id, document string
	instances    []string // exactly the nodes the command targets
	byIDs        bool     // sent with InstanceIds (not Targets)
	requested    time.Time
	results      map[string]*postedResult
	// alarm is the command's AlarmConfiguration (one alarm), ignorePoll
	// its IgnorePollAlarmFailure; triggered is set once the alarm stopped
	// the command (PollAlarms).
	alarm      string
	ignorePoll bool
	triggered  string
}

type postedResult struct {
	NodeResult
	at     time.Time
	misses int // calls answered "does not exist yet" so far
}

// NewSSMStandIn returns a stand-in for commands of a document with steps
// (agentrun.Load(...).MainSteps).
func NewSSMStandIn(steps []agentrun.Step) *SSMStandIn {
	return &SSMStandIn{steps: steps, nodes: map[string]SSMNode{}, gone: map[string]SSMNode{}, commands: map[string]*standInCommand{}, calls: map[string]int{}}
}

// Register adds or replaces managed nodes.
func (s *SSMStandIn) Register(nodes ...SSMNode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range nodes {
		if n.PingStatus == "" {
			n.PingStatus = "Online"
		}
		if n.Platform == "" {
			n.Platform = "Linux"
		}
		s.nodes[n.InstanceID] = n
		delete(s.gone, n.InstanceID)
	}
}

// Deregister takes managed nodes away, as terminating an EC2 instance or
// deregistering a hybrid node does: DescribeInstanceInformation no longer
// lists them (InvalidInstanceId when asked by id), tag targets no longer
// select them, and a SendCommand naming one in InstanceIds is refused
// whole (sent). Commands sent to them before keep their invocations.
func (s *SSMStandIn) Deregister(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if n, ok := s.nodes[id]; ok {
			s.gone[id] = n
			delete(s.nodes, id)
		}
	}
}

// node is a registered node, or one deregistered since (its platform
// still decides how the invocations it had answer).
func (s *SSMStandIn) node(id string) (SSMNode, bool) {
	if n, ok := s.nodes[id]; ok {
		return n, true
	}
	n, ok := s.gone[id]
	return n, ok
}

// Known reports whether a node is registered.
func (s *SSMStandIn) Known(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.nodes[id]
	return ok
}

// SetLag makes the first n GetCommandInvocation / ListCommandInvocations
// calls for an invocation, after its result is posted, answer as if it did
// not exist yet. "GetCommandInvocation" (Systems Manager API Reference):
// "The Run Command API follows an eventual consistency model … the result
// of an API command you run that affects your resources might not be
// immediately visible to all subsequent commands you run"; the operation
// lists InvocationDoesNotExist among its errors.
func (s *SSMStandIn) SetLag(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = n
}

// Calls returns the calls the stand-in answered or corrected, by operation
// (AmazonSSM.X), and resets the count.
func (s *SSMStandIn) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = map[string]int{}
	return c
}

// Targets returns the instances command id targets as recorded at send
// time, and whether the stand-in saw it.
func (s *SSMStandIn) Targets(id string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commands[id]
	if !ok {
		return nil, false
	}
	return slices.Clone(c.instances), true
}

// Post records a node's result for a command, as SSM Agent reports it when
// the invocation ends (when SSM emits the invocation's status event). The
// instance must be one the command targets and a registered node.
func (s *SSMStandIn) Post(commandID, instanceID string, r NodeResult) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.commands[commandID]
	if !ok {
		return fmt.Errorf("ssm stand-in: no command %s", commandID)
	}
	if !slices.Contains(c.instances, instanceID) {
		return fmt.Errorf("ssm stand-in: command %s does not target %s", commandID, instanceID)
	}
	if _, ok := s.node(instanceID); !ok {
		return fmt.Errorf("ssm stand-in: node %s is not registered (its platform decides which steps run)", instanceID)
	}
	if r.Status == "" {
		r.Status = "Success"
	}
	if prev, ok := c.results[instanceID]; ok && c.triggered != "" {
		return fmt.Errorf("ssm stand-in: command %s was stopped by alarm %s; %s ended %s", commandID, c.alarm, instanceID, prev.Status)
	}
	c.results[instanceID] = &postedResult{NodeResult: r, at: time.Now()}
	return nil
}

// PollAlarms does what SSM does for commands sent with an
// AlarmConfiguration while they run: it reads each alarm, and a command
// whose alarm is in ALARM (or cannot be read, unless
// IgnorePollAlarmFailure) is stopped: every invocation that has not ended
// ends Cancelled, the command is Cancelled and lists the alarm in
// TriggeredAlarms. "AlarmConfiguration" (Systems Manager API Reference):
// Alarms holds exactly one alarm; "When this value is true, your
// automation or command continues to run in cases where we can't retrieve
// alarm status information from CloudWatch. In cases where we
// successfully retrieve an alarm status of OK or INSUFFICIENT_DATA, the
// automation or command continues to run" (so ALARM stops it); "Command"
// (same reference): TriggeredAlarms, "the CloudWatch alarm that was
// invoked by the command"; Cancelled is a final invocation status
// ("Understanding command statuses", Systems Manager User Guide).
// It returns the instances whose invocation it cancelled, by command.
func (s *SSMStandIn) PollAlarms() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for id, c := range s.commands {
		if cancelled := s.pollLocked(c); len(cancelled) > 0 {
			out[id] = cancelled
		}
	}
	return out
}

func (s *SSMStandIn) pollLocked(c *standInCommand) []string {
	if c.alarm == "" || c.triggered != "" || len(c.results) == len(c.instances) {
		return nil
	}
	state, err := "", fmt.Errorf("no alarm reader")
	if s.AlarmState != nil {
		state, err = s.AlarmState(c.alarm)
	}
	switch {
	case err != nil && c.ignorePoll, err == nil && state != "ALARM":
		return nil
	case err != nil:
		state = "UNKNOWN"
	}
	c.triggered = state
	var cancelled []string
	for _, inst := range c.instances {
		if _, ok := c.results[inst]; !ok {
			c.results[inst] = &postedResult{NodeResult: NodeResult{Status: "Cancelled", ResponseCode: -1}, at: time.Now()}
			cancelled = append(cancelled, inst)
		}
	}
	return cancelled
}

// Plug puts the stand-in into p: SendCommand and ListCommands go to the
// emulator and come back corrected; GetCommandInvocation,
// ListCommandInvocations and DescribeInstanceInformation are answered by
// the stand-in (after p's faults, like any answer).
func (s *SSMStandIn) Plug(p *FaultProxy) {
	p.Use(s.Layer)
	p.Answer("AmazonSSM.GetCommandInvocation", s.getCommandInvocation)
	p.Answer("AmazonSSM.ListCommandInvocations", s.listCommandInvocations)
	p.Answer("AmazonSSM.DescribeInstanceInformation", s.describeInstanceInformation)
}

// Layer corrects the emulator's SendCommand and ListCommands answers.
func (s *SSMStandIn) Layer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		if op != "AmazonSSM.SendCommand" && op != "AmazonSSM.ListCommands" {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		if op == "AmazonSSM.SendCommand" {
			if status, resp, refused := s.refuse(body); refused {
				writeJSON(w, status, resp)
				return
			}
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		resp := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			if op == "AmazonSSM.SendCommand" {
				resp = s.sent(body, resp)
			} else {
				resp = s.listed(resp)
			}
		}
		for k, v := range rec.Header() {
			if k != "X-Amz-Crc32" && k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		writeJSON(w, rec.Code, resp)
	})
}

// RefusedSends is the key Calls counts SendCommand calls under that the
// stand-in refused (nothing sent).
const RefusedSends = "AmazonSSM.SendCommand (refused)"

// refuse answers a SendCommand whose InstanceIds name a node that is not a
// managed node (never registered, or deregistered since) the way SSM
// does: the whole call fails with InvalidInstanceId and no command is
// created for any node of it. "SendCommand" (Systems Manager API
// Reference) lists InvalidInstanceId among its errors, and the SSM API
// model documents it: "The following problems can cause this exception:
// … SSM Agent isn't registered with the SSM endpoint … The managed node
// isn't in a valid state. Valid states are: Running, Pending, Stopped, and
// Stopping. Invalid states are: Shutting-down and Terminated." An error
// answer carries no Command, so nothing of the call runs. A registered
// node is accepted whatever its PingStatus (a stopped instance is valid:
// its invocation waits for the delivery timeout). The message names the
// ids as AWS's does ("Instances [[i-…]] not in a valid state for account
// …", as reported against the service); certferry never parses it.
func (s *SSMStandIn) refuse(body []byte) (int, []byte, bool) {
	var in struct{ InstanceIds []string }
	if json.Unmarshal(body, &in) != nil {
		return 0, nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad []string
	for _, id := range in.InstanceIds {
		if _, ok := s.nodes[id]; !ok {
			bad = append(bad, id)
		}
	}
	if len(bad) == 0 {
		return 0, nil, false
	}
	s.calls[RefusedSends]++
	status, resp := awsError("InvalidInstanceId", fmt.Sprintf("Instances [[%s]] not in a valid state for account 123456789012", strings.Join(bad, ", ")))
	return status, resp, true
}

type wireTarget struct {
	Key    string
	Values []string
}

// sent records a command with exactly the instances it targets and
// corrects the emulator's answer. "SendCommand" (Systems Manager API
// Reference): InstanceIds are "the IDs of the managed nodes where the
// command should run" (moto adds every EC2 instance when Targets is
// empty); with Targets, SSM resolves the nodes after the call ("Run
// commands at scale", Systems Manager User Guide), so the answer lists no
// instance and TargetCount is 0 until the command runs.
func (s *SSMStandIn) sent(reqBody, respBody []byte) []byte {
	var in struct {
		DocumentName       string
		InstanceIds        []string
		Targets            []wireTarget
		AlarmConfiguration *struct {
			Alarms                 []struct{ Name string }
			IgnorePollAlarmFailure bool
		}
	}
	var out map[string]map[string]any
	if json.Unmarshal(reqBody, &in) != nil || json.Unmarshal(respBody, &out) != nil || out["Command"] == nil {
		return respBody
	}
	cmd := out["Command"]
	id, _ := cmd["CommandId"].(string)
	var motoIDs []string
	if l, ok := cmd["InstanceIds"].([]any); ok {
		for _, v := range l {
			if s, ok := v.(string); ok {
				motoIDs = append(motoIDs, s)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["AmazonSSM.SendCommand"]++
	c := &standInCommand{id: id, document: in.DocumentName, requested: time.Now(), results: map[string]*postedResult{}}
	if len(in.InstanceIds) > 0 {
		c.instances, c.byIDs = slices.Clone(in.InstanceIds), true
		cmd["InstanceIds"], cmd["TargetCount"] = in.InstanceIds, len(in.InstanceIds)
	} else {
		c.instances = s.resolve(in.Targets, motoIDs)
		cmd["InstanceIds"], cmd["TargetCount"] = []string{}, 0
	}
	if ac := in.AlarmConfiguration; ac != nil && len(ac.Alarms) == 1 {
		c.alarm, c.ignorePoll = ac.Alarms[0].Name, ac.IgnorePollAlarmFailure
		cmd["AlarmConfiguration"] = map[string]any{"Alarms": []any{map[string]any{"Name": c.alarm}}, "IgnorePollAlarmFailure": c.ignorePoll}
	}
	s.commands[id] = c
	s.pollLocked(c) // an alarm already in ALARM stops the command at once
	b, err := json.Marshal(out)
	if err != nil {
		return respBody
	}
	return b
}

// resolve returns the nodes tag targets select: the emulator's resolution
// against EC2 tags, plus registered nodes (hybrid mi- nodes are not in EC2)
// whose tags match every target (targets are ANDed, values ORed: "Run
// commands at scale", Systems Manager User Guide).
func (s *SSMStandIn) resolve(targets []wireTarget, fromEC2 []string) []string {
	ids := slices.Clone(fromEC2)
	for _, t := range targets {
		if t.Key == "InstanceIds" {
			ids = append(ids, t.Values...)
		}
	}
	for id, n := range s.nodes {
		if matchesTags(n, targets) {
			ids = append(ids, id)
		}
	}
	// A deregistered node is no managed node: tags never select it, even
	// while the emulator's EC2 still has the instance.
	ids = slices.DeleteFunc(ids, func(id string) bool { _, gone := s.gone[id]; return gone })
	slices.Sort(ids)
	return slices.Compact(ids)
}

func matchesTags(n SSMNode, targets []wireTarget) bool {
	tagged := false
	for _, t := range targets {
		key, ok := strings.CutPrefix(t.Key, "tag:")
		if !ok {
			if t.Key == "tag-key" {
				for _, k := range t.Values {
					if _, has := n.Tags[k]; !has {
						return false
					}
				}
				tagged = true
			}
			continue
		}
		v, has := n.Tags[key]
		if !has || !slices.Contains(t.Values, v) {
			return false
		}
		tagged = true
	}
	return tagged
}

// listed corrects the emulator's ListCommands answer for the commands the
// stand-in knows: InstanceIds as sent, TargetCount the nodes targeted, and
// the status from the results posted ("ListCommands", "Understanding
// command statuses": a command is Success when every invocation succeeded,
// Failed when any failed, In Progress before).
func (s *SSMStandIn) listed(respBody []byte) []byte {
	var out map[string]any
	if json.Unmarshal(respBody, &out) != nil {
		return respBody
	}
	list, _ := out["Commands"].([]any)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["AmazonSSM.ListCommands"]++
	for _, item := range list {
		m, _ := item.(map[string]any)
		id, _ := m["CommandId"].(string)
		c, ok := s.commands[id]
		if !ok {
			continue
		}
		ids := []string{}
		if c.byIDs {
			ids = c.instances
		}
		done, failed := 0, 0
		for _, r := range c.results {
			done++
			if r.Status != "Success" {
				failed++
			}
		}
		m["InstanceIds"], m["CompletedCount"], m["ErrorCount"] = ids, done, failed
		if c.alarm != "" {
			m["AlarmConfiguration"] = map[string]any{"Alarms": []any{map[string]any{"Name": c.alarm}}, "IgnorePollAlarmFailure": c.ignorePoll}
		}
		if c.triggered != "" {
			m["TriggeredAlarms"] = []any{map[string]any{"Name": c.alarm, "State": c.triggered}}
		}
		switch {
		case c.triggered != "":
			m["Status"], m["StatusDetails"], m["TargetCount"] = "Cancelled", "Cancelled", len(c.instances)
		case done < len(c.instances):
			m["Status"], m["StatusDetails"] = "InProgress", "InProgress"
			if !c.byIDs {
				m["TargetCount"] = 0 // not known before the command finishes resolving
			} else {
				m["TargetCount"] = len(c.instances)
			}
		case failed > 0:
			m["Status"], m["StatusDetails"], m["TargetCount"] = "Failed", "Failed", len(c.instances)
		default:
			m["Status"], m["StatusDetails"], m["TargetCount"] = "Success", "Success", len(c.instances)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return respBody
	}
	return b
}

// stepRuns reports whether step runs on platform: a platformType
// precondition that names another platform skips it ("Document syntax
// reference" / precondition, Systems Manager User Guide: "StringEquals":
// ["platformType", "Windows"]).
func stepRuns(st agentrun.Step, platform string) bool {
	args := st.Precondition["StringEquals"]
	if len(args) != 2 {
		return true
	}
	want := args[1]
	if args[1] == "platformType" {
		want = args[0]
	}
	return strings.EqualFold(want, platform)
}

// pluginResult is one step's answer for a node.
type pluginResult struct {
	Name, Status, StatusDetails string
	Stdout, Stderr, Output      string
	ResponseCode                int
	Skipped                     bool
}

// plugins returns each step's result for a node: the steps whose
// precondition names another platform are skipped as SSM Agent reports
// them; the node's output belongs to the last step that runs on its
// platform; earlier steps that run succeeded without output unless the
// result says otherwise.
func (s *SSMStandIn) plugins(node SSMNode, r NodeResult) []pluginResult {
	last := -1
	for i, st := range s.steps {
		if stepRuns(st, node.Platform) {
			last = i
		}
	}
	var out []pluginResult
	for i, st := range s.steps {
		p := pluginResult{Name: st.Name}
		switch sr, own := r.Steps[st.Name]; {
		case !stepRuns(st, node.Platform):
			// The service's plugin statuses have no Skipped
			// (CommandPluginStatus enum); the agent counts it as success.
			p.Status, p.StatusDetails, p.Skipped = "Success", "Skipped", true
			p.Output = fmt.Sprintf(`%s: '"StringEquals": [%s]'. Step name: %s`, SkippedPrefix,
				strings.Join(st.Precondition["StringEquals"], ", "), st.Name)
		case own:
			p.Status, p.Stdout, p.Stderr, p.ResponseCode = sr.Status, sr.Stdout, sr.Stderr, sr.ResponseCode
		case i == last:
			p.Status, p.Stdout, p.Stderr, p.ResponseCode = r.Status, r.Stdout, r.Stderr, r.ResponseCode
		default:
			p.Status = "Success"
		}
		if p.Status == "" {
			p.Status = "Success"
		}
		if p.StatusDetails == "" {
			p.StatusDetails = statusDetails(p.Status)
		}
		if !p.Skipped {
			p.Output = truncateOutput(p.Stdout, p.Stderr, PluginOutputLimit)
		}
		p.Stdout = stringPrefix(p.Stdout, StdoutLimit)
		p.Stderr = stringPrefix(p.Stderr, StderrLimit)
		out = append(out, p)
	}
	return out
}

// statusDetails spells a status as StatusDetails does ("Understanding
// command statuses": "Execution Timed Out", "Delivery Timed Out").
func statusDetails(status string) string {
	switch status {
	case "TimedOut", "ExecutionTimedOut":
		return "Execution Timed Out"
	case "DeliveryTimedOut":
		return "Delivery Timed Out"
	}
	return status
}

// apiStatus maps a final status to the CommandInvocationStatus enum
// (Pending | InProgress | Delayed | Success | Cancelled | TimedOut | Failed
// | Cancelling); the finer ones stay in StatusDetails.
func apiStatus(status string) string {
	switch status {
	case "ExecutionTimedOut", "DeliveryTimedOut":
		return "TimedOut"
	case "Undeliverable", "Terminated":
		return "Failed"
	}
	return status
}

// stringPrefix keeps the beginning of s within limit characters, ending
// with OutputTruncated, as SSM Agent's pluginutil.StringPrefix does.
func stringPrefix(s string, limit int) string {
	if len(s) < limit {
		return s
	}
	return s[:limit-len(OutputTruncated)] + OutputTruncated
}

// truncateOutput is the plugin's Output: stdout, then stderr under an
// error title, within capacity characters (SSM Agent iohandler
// TruncateOutput).
func truncateOutput(stdout, stderr string, capacity int) string {
	const errTitle, truncOut, truncErr = "\n----------ERROR-------\n", "\n---Output truncated---", "\n---Error truncated----"
	title := ""
	if stderr != "" {
		title = errTitle
	}
	avail := capacity - len(title)
	switch {
	case len(stdout)+len(stderr) < avail:
		return stdout + title + stderr
	case len(stdout) > avail/2 && len(stderr) > avail/2:
		n := (avail - len(truncErr) - len(truncOut)) / 2
		return stdout[:n] + truncOut + title + stderr[:n] + truncErr
	case len(stdout) <= avail/2:
		return stdout + title + stderr[:avail-len(truncErr)-len(stdout)] + truncErr
	}
	return stdout[:avail-len(truncOut)-len(stderr)] + truncOut + title + stderr
}

// awsError is a JSON-protocol error answer.
func awsError(code, msg string) (int, []byte) {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	return http.StatusBadRequest, b
}

func answer(v any) (int, []byte) {
	b, err := json.Marshal(v)
	if err != nil {
		return http.StatusInternalServerError, []byte(`{"__type":"InternalServerError","message":"stand-in"}`)
	}
	return http.StatusOK, b
}

// visible reports whether a posted result can be read yet, counting the
// call against the configured lag.
func (s *SSMStandIn) visible(r *postedResult) bool {
	if r.misses < s.lag {
		r.misses++
		return false
	}
	return true
}

// getCommandInvocation: "GetCommandInvocation" (Systems Manager API
// Reference): "If the document contains more than one step, you must
// specify the name of the step … not the name of a plugin like
// aws:RunShellScript" (else InvalidPluginName); one answer per step with
// its own status and output; StandardOutputContent the first 24,000
// characters; InvocationDoesNotExist when the command and node match no
// invocation (also, for a while, after it ended: eventual consistency).
func (s *SSMStandIn) getCommandInvocation(body []byte) (int, []byte) {
	var in struct{ CommandId, InstanceId, PluginName string }
	if err := json.Unmarshal(body, &in); err != nil {
		return awsError("ValidationException", err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["AmazonSSM.GetCommandInvocation"]++
	c, ok := s.commands[in.CommandId]
	if !ok {
		return awsError("InvalidCommandId", "")
	}
	if !slices.Contains(c.instances, in.InstanceId) {
		return awsError("InvocationDoesNotExist", "The command ID and instance ID you specified did not match any invocations.")
	}
	step := -1
	for i, st := range s.steps {
		if st.Name == in.PluginName {
			step = i
		}
	}
	switch {
	case in.PluginName == "" && len(s.steps) == 1:
		step = 0
	case in.PluginName == "":
		return awsError("InvalidPluginName", "Document has more than one step: specify the step name as PluginName.")
	case step < 0:
		return awsError("InvalidPluginName", "")
	}
	ans := map[string]any{
		"CommandId": c.id, "InstanceId": in.InstanceId, "DocumentName": c.document, "DocumentVersion": "$DEFAULT",
		"PluginName": s.steps[step].Name, "ResponseCode": -1, "Status": "InProgress", "StatusDetails": "InProgress",
		"StandardOutputContent": "", "StandardErrorContent": "", "StandardOutputUrl": "", "StandardErrorUrl": "",
		"ExecutionStartDateTime": "", "ExecutionEndDateTime": "", "ExecutionElapsedTime": "",
	}
	r, ok := c.results[in.InstanceId]
	if ok && !s.visible(r) {
		return awsError("InvocationDoesNotExist", "The command ID and instance ID you specified did not match any invocations.")
	}
	if !ok {
		return answer(ans)
	}
	n, _ := s.node(in.InstanceId)
	p := s.plugins(n, r.NodeResult)[step]
	ans["Status"], ans["StatusDetails"], ans["ResponseCode"] = apiStatus(p.Status), p.StatusDetails, p.ResponseCode
	ans["StandardOutputContent"], ans["StandardErrorContent"] = p.Stdout, p.Stderr
	ans["ExecutionStartDateTime"] = c.requested.UTC().Format(time.RFC3339)
	ans["ExecutionEndDateTime"] = r.at.UTC().Format(time.RFC3339)
	ans["ExecutionElapsedTime"] = fmt.Sprintf("PT%.3fS", r.at.Sub(c.requested).Seconds())
	return answer(ans)
}

// listCommandInvocations: "ListCommandInvocations" (Systems Manager API
// Reference): one invocation per targeted node; with Details, each
// invocation's CommandPlugins (Name = step name, Status, StatusDetails,
// ResponseCode, Output at most 2,500 characters); MaxResults 1–50,
// NextToken paging.
func (s *SSMStandIn) listCommandInvocations(body []byte) (int, []byte) {
	var in struct {
		CommandId, InstanceId, NextToken string
		Details                          bool
		MaxResults                       *int
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return awsError("ValidationException", err.Error())
	}
	max := 50
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 50 {
			return awsError("ValidationException", "MaxResults must be between 1 and 50")
		}
		max = *in.MaxResults
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["AmazonSSM.ListCommandInvocations"]++
	var ids []string
	for id := range s.commands {
		if in.CommandId == "" || id == in.CommandId {
			ids = append(ids, id)
		}
	}
	if in.CommandId != "" && len(ids) == 0 {
		return awsError("InvalidCommandId", "")
	}
	slices.Sort(ids)
	var all []map[string]any
	for _, id := range ids {
		c := s.commands[id]
		for _, inst := range c.instances {
			if in.InstanceId != "" && inst != in.InstanceId {
				continue
			}
			inv := map[string]any{"CommandId": c.id, "InstanceId": inst, "DocumentName": c.document, "DocumentVersion": "$DEFAULT",
				"RequestedDateTime": float64(c.requested.Unix()), "Status": "InProgress", "StatusDetails": "InProgress", "CommandPlugins": []any{}}
			r, ok := c.results[inst]
			if ok && !s.visible(r) {
				continue // eventual consistency: not listed yet
			}
			if ok {
				inv["Status"], inv["StatusDetails"] = apiStatus(r.Status), statusDetails(r.Status)
				if in.Details {
					var plugins []any
					n, _ := s.node(inst)
					for _, p := range s.plugins(n, r.NodeResult) {
						plugins = append(plugins, map[string]any{"Name": p.Name, "Status": apiStatus(p.Status), "StatusDetails": p.StatusDetails,
							"ResponseCode": p.ResponseCode, "Output": p.Output, "ResponseStartDateTime": float64(c.requested.Unix()),
							"ResponseFinishDateTime": float64(r.at.Unix())})
					}
					inv["CommandPlugins"] = plugins
				}
			}
			all = append(all, inv)
		}
	}
	start, err := pageToken(in.NextToken, len(all))
	if err != nil {
		return awsError("InvalidNextToken", "")
	}
	end := min(start+max, len(all))
	out := map[string]any{"CommandInvocations": append([]map[string]any{}, all[start:end]...)}
	if end < len(all) {
		out["NextToken"] = "standin-" + strconv.Itoa(end)
	}
	return answer(out)
}

func pageToken(tok string, n int) (int, error) {
	if tok == "" {
		return 0, nil
	}
	rest, ok := strings.CutPrefix(tok, "standin-")
	i, err := strconv.Atoi(rest)
	if !ok || err != nil || i < 0 || i > n {
		return 0, fmt.Errorf("bad token %q", tok)
	}
	return i, nil
}

// describeInstanceInformation: "DescribeInstanceInformation" (Systems
// Manager API Reference): Filters keys ActivationIds | AgentVersion |
// AssociationStatus | IamRole | InstanceIds | PingStatus | PlatformType |
// ResourceType | SourceIds | SourceTypes | tag-key | tag:{keyname};
// "Tag filters can't be combined with other filter types"; Values 1–100;
// MaxResults 5–50, default 10, NextToken paging; "If you specify a node ID
// that isn't valid or a node that you don't own, you receive an error".
func (s *SSMStandIn) describeInstanceInformation(body []byte) (int, []byte) {
	var in struct {
		Filters []struct {
			Key    string
			Values []string
		}
		InstanceInformationFilterList []any
		MaxResults                    *int
		NextToken                     string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return awsError("ValidationException", err.Error())
	}
	max := 10
	if in.MaxResults != nil {
		if *in.MaxResults < 5 || *in.MaxResults > 50 {
			return awsError("ValidationException", "MaxResults must be between 5 and 50")
		}
		max = *in.MaxResults
	}
	if len(in.InstanceInformationFilterList) > 0 && len(in.Filters) > 0 {
		return awsError("ValidationException", "InstanceInformationFilterList and Filters cannot be combined")
	}
	tags, others := false, false
	for _, f := range in.Filters {
		if len(f.Values) < 1 || len(f.Values) > 100 {
			return awsError("InvalidInstanceInformationFilterValue", "a filter takes 1 to 100 values")
		}
		switch {
		case strings.HasPrefix(f.Key, "tag:") || f.Key == "tag-key":
			tags = true
		case slices.Contains([]string{"ActivationIds", "AgentVersion", "AssociationStatus", "IamRole", "InstanceIds", "PingStatus",
			"PlatformType", "ResourceType", "SourceIds", "SourceTypes"}, f.Key):
			others = true
		default:
			return awsError("InvalidFilterKey", "unknown filter key "+f.Key)
		}
	}
	if tags && others {
		// The page says these cannot be combined; the exact error code is
		// not documented.
		return awsError("InvalidFilterKey", "Tag filters can't be combined with other filter types")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["AmazonSSM.DescribeInstanceInformation"]++
	var ids []string
	for id := range s.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var list []map[string]any
	for _, f := range in.Filters {
		if f.Key == "InstanceIds" {
			for _, v := range f.Values {
				if _, ok := s.nodes[v]; !ok {
					return awsError("InvalidInstanceId", "Instance Id "+v+" is not valid or not a managed node")
				}
			}
		}
	}
	for _, id := range ids {
		n := s.nodes[id]
		if !nodeMatches(n, in.Filters) {
			continue
		}
		list = append(list, map[string]any{"InstanceId": id, "PingStatus": n.PingStatus, "PlatformType": n.Platform,
			"PlatformName": n.Platform, "ResourceType": n.resourceType(), "AgentVersion": "3.3.2746.0", "IsLatestVersion": true,
			"LastPingDateTime": float64(time.Now().Unix())})
	}
	start, err := pageToken(in.NextToken, len(list))
	if err != nil {
		return awsError("InvalidNextToken", "")
	}
	end := min(start+max, len(list))
	out := map[string]any{"InstanceInformationList": append([]map[string]any{}, list[start:end]...)}
	if end < len(list) {
		out["NextToken"] = "standin-" + strconv.Itoa(end)
	}
	return answer(out)
}

// nodeMatches applies the filters: every filter must hold, any of its
// values.
func nodeMatches(n SSMNode, filters []struct {
	Key    string
	Values []string
}) bool {
	for _, f := range filters {
		var have []string
		switch f.Key {
		case "InstanceIds":
			have = []string{n.InstanceID}
		case "PingStatus":
			have = []string{n.PingStatus}
		case "PlatformType":
			have = []string{n.Platform}
		case "ResourceType":
			have = []string{n.resourceType()}
		case "tag-key":
			for k := range n.Tags {
				have = append(have, k)
			}
		default:
			if key, ok := strings.CutPrefix(f.Key, "tag:"); ok {
				if v, has := n.Tags[key]; has {
					have = []string{v}
				}
			}
		}
		if !slices.ContainsFunc(have, func(h string) bool { return slices.Contains(f.Values, h) }) {
			return false
		}
	}
	return true
}
