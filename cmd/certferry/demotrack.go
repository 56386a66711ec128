package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/agentrun"
	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/cli"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/document"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/renewal"
)

// demoRun is one demo's environment and what it printed.
type demoRun struct {
	out      io.Writer
	logw     io.Writer // JSON logs and metric lines
	aws      aws.Config
	cfg      config.Config
	api      *api.Handler
	nodesDir string
	nodes    map[string]*localenv.LocalNode
}

func (d *demoRun) say(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) }

func (d *demoRun) section(title string) { d.say("\n== %s", title) }

// answer is the part of an onboarding answer the demo follows.
type answer struct {
	Name, CommandID, Serial, FingerprintSha256 string
}

// request sends one API Gateway request to the API handler, printing the
// request (method, path, body) before its answer, both pretty and short.
func (d *demoRun) request(ctx context.Context, method, path, body, label string) (answer, error) {
	head := "> " + method + " " + path
	if label != "" {
		head += "   (" + label + ")"
	}
	d.say("\n%s", head)
	if body != "" && !strings.Contains(label, "again") {
		d.say("%s", indent(prettyJSON([]byte(body)), "  "))
	}
	resp, err := d.api.Handle(ctx, cli.ProxyRequest(method, path, []byte(body)))
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	var a answer
	_ = json.Unmarshal([]byte(resp.Body), &a)
	if strings.Contains(label, "again") && resp.StatusCode < 400 {
		d.say("< %d   (the first answer again: serial %s, command %s)", resp.StatusCode, a.Serial, a.CommandID)
	} else {
		d.say("< %d\n%s", resp.StatusCode, indent(prettyJSON([]byte(resp.Body)), "  "))
	}
	if resp.StatusCode >= 400 {
		return answer{}, fmt.Errorf("%s %s answered %d", method, path, resp.StatusCode)
	}
	return a, nil
}

// onboard posts an onboarding request and requires 202.
func (d *demoRun) onboard(ctx context.Context, label, body string) (answer, error) {
	a, err := d.request(ctx, "POST", "/certificates", body, label)
	if err == nil && a.CommandID == "" {
		err = fmt.Errorf("onboarding answered no command")
	}
	return a, err
}

// checkTargets shows which instances SSM resolved the tag target to.
func (d *demoRun) checkTargets(ctx context.Context, commandID string, tagged, untagged []string) error {
	out, err := ssm.NewFromConfig(d.aws).ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(commandID)})
	if err != nil || len(out.Commands) != 1 {
		return fmt.Errorf("read command %s: %v", commandID, err)
	}
	got := slices.Clone(out.Commands[0].InstanceIds)
	slices.Sort(got)
	d.say("\nSSM command %s targets tag:env=prod -> %s", commandID, strings.Join(got, ", "))
	for _, id := range untagged {
		if slices.Contains(got, id) {
			return fmt.Errorf("untagged instance %s was targeted", id)
		}
	}
	if len(got) != len(tagged) {
		return fmt.Errorf("command %s targets %v, want the tagged %v", commandID, got, tagged)
	}
	return nil
}

// deploy plays the nodes of one command: the name's local nginx (started
// on first use) runs the SSM document with the command's parameters
// through agent-run, then SSM's status events for each targeted instance
// and for the command go to the tracker, until the deployment finishes.
func (d *demoRun) deploy(ctx context.Context, name, commandID, domain string, quietSteps bool) error {
	ssmc := ssm.NewFromConfig(d.aws)
	cmds, err := ssmc.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String(commandID)})
	if err != nil || len(cmds.Commands) != 1 {
		return fmt.Errorf("read command %s: %v", commandID, err)
	}
	cmd := cmds.Commands[0]
	if d.nodes == nil {
		d.nodes = map[string]*localenv.LocalNode{}
	}
	node := d.nodes[name]
	if node == nil {
		if _, err := localenv.NginxBinary(); err != nil {
			return fmt.Errorf("%w (make deps installs it)", err)
		}
		server := domain
		if v := cmd.Parameters["ServerName"]; len(v) == 1 && v[0] != "" {
			server = v[0]
		}
		dir := filepath.Join(d.nodesDir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if node, err = localenv.StartLocalNode(dir, server); err != nil {
			return err
		}
		d.nodes[name] = node
	}
	run := map[string]string{}
	for k, v := range cmd.Parameters {
		run[k] = v[0]
	}
	for k, v := range localenv.InstallerParams(d.cfg.Installer) {
		if run[k] == "" { // the stack's values, when the sent command lacks them
			run[k] = v
		}
	}
	// The node here is not root's /etc/ssl and port 443: aim the install at
	// the local nginx's files, port and directory; everything else is the
	// sent command's.
	for k, v := range node.Params() {
		if k != "ServerName" && k != "ReloadService" || run[k] == "" {
			run[k] = v
		}
	}
	doc, err := agentrun.Load(localenv.DocumentFile)
	if err != nil {
		return err
	}
	var out strings.Builder
	agentDir, err := os.MkdirTemp(d.nodesDir, "agent-")
	if err != nil {
		return err
	}
	agent := &agentrun.Agent{
		Root: agentDir, Platform: "Linux", InstanceID: localenv.SampleInstanceID, Region: d.aws.Region,
		Env: node.EmulatorEnv(os.Getenv("AWS_ENDPOINT_URL"), d.aws.Region), S3: localenv.NewS3(d.aws), Stdout: &out, Stderr: &out,
	}
	res, err := agent.Run(ctx, doc, run)
	if err != nil {
		return fmt.Errorf("agent-run %s: %w", name, err)
	}
	install, _ := res.Step(document.StepLinux)
	result, perr := document.ParseResult(install.Stdout)
	if perr != nil {
		return fmt.Errorf("the installLinux step printed no result (exit %d):\n%s", install.ExitCode, out.String())
	}
	if !quietSteps {
		var steps []string
		for _, s := range res.Steps {
			steps = append(steps, s.Name+" "+string(s.Status))
		}
		d.say("\n%s (command %s): %s", name, commandID, strings.Join(steps, ", "))
		d.say("  (only this machine's build is published, so the other architecture's download finds no object)")
	} else {
		d.say("\n%s (command %s): the node runs the document again", name, commandID)
	}
	d.say("  %s%s", document.ResultPrefix, document.ResultLine(install.Stdout))
	served, err := node.Served(run["ExpectedFingerprint"], 10*time.Second)
	if err != nil {
		return err
	}
	if result.Status != document.StatusInstalled || served != run["ExpectedFingerprint"] {
		return fmt.Errorf("%s: the node reports %q and serves %s, want %s:\n%s", name, result.Status, served, run["ExpectedFingerprint"], out.String())
	}
	return d.track(ctx, name, cmd.InstanceIds, commandID, install.Stdout)
}

// track delivers SSM's "Success" events for each instance of a command,
// then the command's, to the tracker (which reads each node's output).
func (d *demoRun) track(ctx context.Context, name string, instances []string, commandID, stdout string) error {
	node := localenv.NodeOutput{Client: ssm.NewFromConfig(d.aws), Out: map[string]string{}}
	for _, id := range instances {
		node.Out[id] = stdout
	}
	tr := app.Tracker(d.aws, d.cfg, app.Options{SSM: node, Metrics: d.logw})
	type report struct{ file, instance string }
	var reports []report
	for _, id := range instances {
		reports = append(reports, report{"events/tracker-invocation-success.json", id})
	}
	reports = append(reports, report{"events/tracker-command-success.json", instances[0]})
	var states []string
	final := ""
	for i, rep := range reports {
		raw, err := os.ReadFile(rep.file)
		if err != nil {
			return err
		}
		b, err := localenv.StatusEvent(raw, commandID, rep.instance, d.cfg.Document, fmt.Sprintf("demo-%s-%d", commandID, i))
		if err != nil {
			return err
		}
		out, err := tr.Handle(ctx, b)
		if err != nil {
			return fmt.Errorf("tracker: %w", err)
		}
		if out.NodeState != "" {
			states = append(states, out.InstanceID+" "+string(out.NodeState))
		}
		if out.Deployment != "" {
			final = string(out.Deployment)
		}
	}
	inv := inventory.NewStore(dynamodb.NewFromConfig(d.aws), d.cfg.Table)
	c, err := inv.GetCert(ctx, name)
	if err != nil || c == nil {
		return fmt.Errorf("read %s: %v", name, err)
	}
	dep, err := inv.GetDeployment(ctx, name, c.LastDeploymentID)
	if err != nil || dep == nil {
		return fmt.Errorf("read %s's deployment: %v", name, err)
	}
	if dep.CommandID != commandID || dep.Outcome != inventory.OutcomeSucceeded {
		return fmt.Errorf("%s: deployment of command %s is %q after SSM's events (tracker said %q)", name, dep.CommandID, dep.Outcome, final)
	}
	d.say("  tracker, on SSM's status events: %s; deployment %s", strings.Join(states, ", "), dep.Outcome)
	return nil
}

// renewalEvent delivers one EventBridge event to the renewal handler.
func (d *demoRun) renewalEvent(ctx context.Context, label string, raw []byte, showDetail bool) (renewal.Outcome, error) {
	var ev struct {
		ID         string          `json:"id"`
		DetailType string          `json:"detail-type"`
		Resources  []string        `json:"resources"`
		Detail     json.RawMessage `json:"detail"`
	}
	_ = json.Unmarshal(raw, &ev)
	d.say("\n> %s: %q, id %s", label, ev.DetailType, ev.ID)
	if showDetail {
		d.say("  resources: %s\n  detail: %s", strings.Join(ev.Resources, ", "), indent(prettyJSON(ev.Detail), "  ")[2:])
	}
	out, err := app.Renewal(d.aws, d.cfg, app.Options{}).Handle(ctx, raw)
	if err != nil {
		return out, fmt.Errorf("renewal handler: %w", err)
	}
	b, _ := json.Marshal(out)
	d.say("< %s", indent(prettyJSON(b), "  ")[2:])
	return out, nil
}

// showAlerts prints what the SNS topic delivered to the demo's queue.
func (d *demoRun) showAlerts(ctx context.Context, api *sqs.Client, queue string) error {
	msgs, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		return fmt.Errorf("read alerts: %w", err)
	}
	if len(msgs.Messages) == 0 {
		return errors.New("no alert reached the subscribed queue")
	}
	for _, m := range msgs.Messages {
		d.say("\nThe SNS alert (CERTFERRY_NOTIFY_SUCCESS=true), read from a subscribed queue:\n%s", indent(aws.ToString(m.Body), "  | "))
	}
	return nil
}

// sweep runs the daily sweep once.
func (d *demoRun) sweep(ctx context.Context) error {
	h, err := app.LocalSweep(ctx, d.aws, d.cfg, app.Options{Nodes: localenv.EC2Nodes{API: ec2.NewFromConfig(d.aws)}, Metrics: d.logw})
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	rep, err := h.Run(ctx)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	d.say("\nThe daily sweep (nodes resolved with EC2 DescribeInstances here; the emulator has no DescribeInstanceInformation):")
	for _, n := range rep.Names {
		var what []string
		if n.Redeployed {
			what = append(what, "redeployed")
		}
		if len(n.Resent) > 0 {
			what = append(what, "resent to "+strings.Join(n.Resent, ", "))
		}
		if n.Deferred {
			what = append(what, "a deployment is still running; checked next sweep")
		}
		what = append(what, n.Risks...)
		if n.Error != "" {
			what = append(what, "error: "+n.Error)
		}
		if len(what) == 0 {
			what = append(what, "nothing to do")
		}
		days := ""
		if n.DaysToExpiry != nil {
			days = fmt.Sprintf(", %d days to expiry", *n.DaysToExpiry)
		}
		d.say("  %-13s serial %s%s: %s", n.Name, n.Serial, days, strings.Join(what, "; "))
	}
	return nil
}

func (d *demoRun) stopNodes() {
	for _, n := range d.nodes {
		n.Stop()
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}

// prettyJSON indents a JSON document keeping its key order, with lists of
// more than 3 entries cut to 2 and a count, and long strings shortened in
// the middle. Anything not JSON comes back as it is.
func prettyJSON(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var b strings.Builder
	if err := writeValue(&b, dec, ""); err != nil {
		return string(raw)
	}
	return b.String()
}

const (
	maxListed  = 3 // longer lists of values show listedWhen and a count
	listedWhen = 2
	maxStrLen  = 110
)

func writeValue(b *strings.Builder, dec *json.Decoder, pad string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		closeWith := "}"
		if t == '[' {
			closeWith = "]"
		}
		var items []string
		for dec.More() {
			var item strings.Builder
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				kb, _ := json.Marshal(k)
				item.Write(kb)
				item.WriteString(": ")
			}
			if err := writeValue(&item, dec, pad+"  "); err != nil {
				return err
			}
			items = append(items, item.String())
		}
		if _, err := dec.Token(); err != nil {
			return err
		}
		if t == '[' && len(items) > 1 && strings.HasPrefix(items[0], "{") {
			// A list of objects (nodes, deployments): the first and a count.
			items = append(items[:1], fmt.Sprintf("\"… %d more\"", len(items)-1))
		} else if t == '[' && len(items) > maxListed {
			more := len(items) - listedWhen
			items = append(items[:listedWhen], fmt.Sprintf("\"… %d more\"", more))
		}
		if len(items) == 0 {
			b.WriteString(string(t) + closeWith)
			return nil
		}
		// Short and flat: on one line (never the document's own object).
		if line := string(t) + strings.Join(items, ", ") + closeWith; (pad != "" || t == '[') && len(pad)+len(line) < 76 && !strings.Contains(line, "\n") {
			b.WriteString(line)
			return nil
		}
		b.WriteString(string(t) + "\n")
		for i, it := range items {
			b.WriteString(pad + "  " + it)
			if i < len(items)-1 {
				b.WriteString(",")
			}
			b.WriteString("\n")
		}
		b.WriteString(pad + closeWith)
	case string:
		if len(t) > maxStrLen {
			t = t[:maxStrLen-30] + "…" + t[len(t)-25:]
		}
		s, _ := json.Marshal(t)
		b.Write(s)
	default:
		s, _ := json.Marshal(t)
		b.Write(s)
	}
	return nil
}
