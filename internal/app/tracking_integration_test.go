//go:build integration

package app

// Deployment tracking and the sweep on moto, the tracker driven by the
// status events in events/ (ids swapped for the real command and nodes).
//
// SSM is moto behind the SSM stand-in (testkit.SSMStandIn, see newSSMRig):
// SendCommand records exactly the nodes each command targets, the nodes'
// results are read per step as AWS answers them (ListCommandInvocations
// with Details, GetCommandInvocation with the step name), and the sweep
// resolves its targets with the production fleet.Resolver on the
// stand-in's DescribeInstanceInformation (moto has none). Each node's
// output is what r.out holds when the first status event of a command is
// handled: SSM has the results before it sends any event, whatever order
// the events arrive in.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"

	"github.com/certferry/certferry/internal/document"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/sweeper"
	"github.com/certferry/certferry/internal/testkit"
	"github.com/certferry/certferry/internal/tracker"
)

type trackRig struct {
	*ssmRig
	// out.Out is what each node prints, by instance id. out also answers
	// as SSM for a tracker built on it (localenv.NodeOutput, on the
	// emulator without the stand-in), as some suites do.
	out    localenv.NodeOutput
	posted map[string]bool // command/instance results given to the stand-in
}

func newTrackRig(t *testing.T) *trackRig { return newTrackRigOn(t, moto) }

// newTrackRigOn is newTrackRig on server.
func newTrackRigOn(t *testing.T, server *motoserver.Server) *trackRig {
	r := newSSMRigOn(t, server)
	return &trackRig{ssmRig: r, out: localenv.NodeOutput{Client: ssm.NewFromConfig(r.direct), Out: map[string]string{}}, posted: map[string]bool{}}
}

// launch starts n tagged Linux EC2 instances that SSM manages.
func (r *trackRig) launch(n int, tags map[string]string) []string {
	r.t.Helper()
	ids := r.ssmRig.launch(n, tags)
	r.manage(ids, tags)
	return ids
}

func (r *trackRig) manage(ids []string, tags map[string]string) {
	for _, id := range ids {
		r.nodes.Register(testkit.SSMNode{InstanceID: id, Platform: "Linux", Tags: tags})
	}
}

// settle gives SSM the result of every node of command whose output is
// known: Success when it reports installed or unchanged, else Failed.
func (r *trackRig) settle(command string) {
	r.t.Helper()
	targets, _ := r.nodes.Targets(command)
	for _, id := range targets {
		out, ok := r.out.Out[id]
		if !ok || r.posted[command+"/"+id] {
			continue
		}
		if !r.nodes.Known(id) { // launched by a shared helper: a Linux node
			r.nodes.Register(testkit.SSMNode{InstanceID: id, Platform: "Linux"})
		}
		res := testkit.NodeResult{Status: "Failed", ResponseCode: 1, Stdout: out}
		if p, err := document.ParseResult(out); err == nil && (p.Status == document.StatusInstalled || p.Status == document.StatusUnchanged) {
			res.Status, res.ResponseCode = "Success", 0
		}
		r.postResult(command, id, res)
		r.posted[command+"/"+id] = true
	}
}

// status reads events/<file> for command and instance.
func (r *trackRig) status(file, command, instance string) json.RawMessage {
	r.t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", file))
	if err != nil {
		r.t.Fatal(err)
	}
	b, err := localenv.StatusEvent(raw, command, instance, r.cfg.Document, fmt.Sprintf("%s-%s-%d", filepath.Base(file)[:8], instance, time.Now().UnixNano()))
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

func (r *trackRig) track(file, command, instance string) tracker.Outcome {
	r.t.Helper()
	r.settle(command)
	return r.mustTrack(file, command, instance)
}

func (r *trackRig) node(name, id string) inventory.Node {
	r.t.Helper()
	n := r.nodeRecord(name, id)
	if n == nil {
		r.t.Fatalf("node %s not recorded", id)
	}
	return *n
}

func resultLine(status, fingerprint, serial, detail string) string {
	res := document.Result{Status: document.Status(status), Fingerprint: fingerprint, Serial: serial, Reload: "done", Verify: "ok", Detail: detail}
	return "fetching bundle\ninstalling\n" + res.Line() + "\n"
}

// A 3-node deployment where one node rolls back ends partial with one SNS
// message naming that node; the sweep then sends to that node only; a node
// tagged later is picked up by the next sweep, and only it; duplicate and
// out-of-order events leave the right final state.
func TestTrackerAndSweep(t *testing.T) {
	t.Parallel()
	r := newTrackRig(t)
	nodes := r.launch(3, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	if status, ans := r.post(onboardBody(arn, "shop-web")); status != 202 {
		t.Fatalf("onboard: %d %v", status, ans)
	}
	c := r.cert("shop-web")
	cmd1 := c.LastCommandID
	good := resultLine("installed", c.Fingerprint, c.Serial, "installed shop-web")
	r.out.Out[nodes[0]], r.out.Out[nodes[1]] = good, good
	r.out.Out[nodes[2]] = resultLine("rolled_back", c.Fingerprint, c.Serial, "handshake on 127.0.0.1:443 served another certificate")

	// Out of order: the command's status first, an in-progress note, then
	// the invocations, one of them twice.
	if o := r.track("tracker-command-failed.json", cmd1, nodes[0]); o.Status != tracker.StatusRecorded {
		t.Fatalf("command status: %+v", o)
	}
	if o := r.track("tracker-invocation-in-progress.json", cmd1, nodes[0]); o.Status != tracker.StatusIgnored {
		t.Fatalf("in progress: %+v", o)
	}
	r.track("tracker-invocation-success.json", cmd1, nodes[0])
	if o := r.track("tracker-invocation-success.json", cmd1, nodes[0]); o.Status != tracker.StatusStale {
		t.Fatalf("duplicate: %+v", o)
	}
	r.track("tracker-invocation-success.json", cmd1, nodes[1])
	last := r.track("tracker-invocation-failed.json", cmd1, nodes[2])
	if last.Deployment != inventory.OutcomePartial || last.AlertID == "" {
		t.Fatalf("last invocation: %+v, want the deployment finished partial with an alert", last)
	}
	if o := r.track("tracker-command-failed.json", cmd1, nodes[0]); o.Deployment != "" {
		t.Fatalf("a second command event finished the deployment again: %+v", o)
	}
	if o := r.track("tracker-invocation-in-progress.json", cmd1, nodes[1]); o.Status != tracker.StatusIgnored {
		t.Fatalf("late in-progress: %+v", o)
	}
	for i, want := range []inventory.NodeState{inventory.NodeInstalled, inventory.NodeInstalled, inventory.NodeRolledBack} {
		n := r.node("shop-web", nodes[i])
		if n.State != want || n.DeploymentID != c.LastDeploymentID {
			t.Fatalf("node %d: %+v, want %s", i, n, want)
		}
		if want == inventory.NodeInstalled && (n.Serial != c.Serial || n.Unverified) {
			t.Fatalf("installed node %+v", n)
		}
	}
	if n := r.node("shop-web", nodes[2]); n.Failures != 1 || !strings.Contains(n.Error, "served another certificate") {
		t.Fatalf("failed node %+v", n)
	}
	dep, _ := r.inv.GetDeployment(r.ctx, "shop-web", c.LastDeploymentID)
	if dep.Outcome != inventory.OutcomePartial || dep.Counts["installed"] != 2 || dep.Counts["rolled_back"] != 1 || dep.Counts["pending"] != 0 {
		t.Fatalf("deployment %+v", dep)
	}
	msgs := r.alerts()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, nodes[2]) || strings.Contains(msgs[0].Message, nodes[0]) ||
		!strings.Contains(msgs[0].Message, "served another certificate") || !strings.Contains(msgs[0].Subject, "partial") {
		t.Fatalf("alerts %+v", msgs)
	}

	// The sweep sends to the failed node only.
	before := r.counts()
	rep, sent := r.sweepSent(sweeper.Config{RetryBackoff: time.Nanosecond})
	if got := r.counts(); len(sent) != 1 || got.versions != before.versions {
		t.Fatalf("sweep sent %d commands, versions %d -> %d: want one command and no export", len(sent), before.versions, got.versions)
	}
	if !slices.Equal(sent[0].Instances, []string{nodes[2]}) || !slices.Equal(rep.Names[0].Resent, []string{nodes[2]}) {
		t.Fatalf("sweep sent to %v (report %+v), want only %s", sent[0].Instances, rep.Names[0], nodes[2])
	}
	cmd2 := sent[0].ID
	if n := r.node("shop-web", nodes[2]); n.State != inventory.NodePending || n.LastCommandID != cmd2 || n.Failures != 1 {
		t.Fatalf("resent node %+v", n)
	}

	// A late duplicate of the first deployment's failure does not move the
	// node back; the resend's success installs it; a late success of the old
	// command changes nothing either.
	if o := r.track("tracker-invocation-failed.json", cmd1, nodes[2]); o.Status != tracker.StatusStale {
		t.Fatalf("late failure of the old command: %+v", o)
	}
	r.out.Out[nodes[2]] = good
	if o := r.track("tracker-invocation-success.json", cmd2, nodes[2]); o.Deployment != inventory.OutcomeSucceeded || o.AlertID != "" {
		t.Fatalf("resend: %+v, want succeeded without an alert", o)
	}
	if o := r.track("tracker-invocation-success.json", cmd1, nodes[2]); o.Status != tracker.StatusStale {
		t.Fatalf("late success of the old command: %+v", o)
	}
	if n := r.node("shop-web", nodes[2]); n.State != inventory.NodeInstalled || n.LastCommandID != cmd2 || n.Failures != 0 {
		t.Fatalf("node after resend %+v", n)
	}

	// A node tagged after the deployment: the next sweep sends to it only.
	late := r.launch(1, map[string]string{"env": "prod"})
	if _, sent := r.sweepSent(sweeper.Config{}); len(sent) != 1 || !slices.Equal(sent[0].Instances, late) {
		t.Fatalf("sweep sent %+v, want one command to only the new node %v", sent, late)
	}
	// Nothing left to do (the new node is pending in a live deployment):
	// the next sweep sends nothing.
	before = r.counts()
	if _, sent := r.sweepSent(sweeper.Config{}); len(sent) != 0 || r.counts().versions != before.versions {
		t.Fatalf("idle sweep sent %+v", sent)
	}
	if n := len(r.alerts()); n != 0 {
		t.Fatalf("%d alerts after a successful resend", n)
	}
}

// A renewal no event announced: the sweep deploys it.
func TestSweepDeploysMissedRenewal(t *testing.T) {
	t.Parallel()
	r := newTrackRig(t)
	arn, tagged, renewed, _ := r.onboardedBeforeRenewal("shop-web")
	r.manage(tagged, map[string]string{"env": "prod"})
	before := r.counts()
	rep, sent := r.sweepSent(sweeper.Config{})
	if got := r.counts(); got.versions != before.versions+1 || len(sent) != 1 {
		t.Fatalf("sweep: %d commands, versions %d -> %d: want one new version and one command", len(sent), before.versions, got.versions)
	}
	if !rep.Names[0].Redeployed || r.cert("shop-web").Serial != renewed {
		t.Fatalf("report %+v", rep.Names[0])
	}
	if !slices.Equal(slices.Sorted(slices.Values(sent[0].Instances)), slices.Sorted(slices.Values(tagged))) {
		t.Fatalf("sent to %v, want %v", sent[0].Instances, tagged)
	}
	d, _ := r.inv.Describe(r.ctx, "shop-web")
	if last := d.Deployments[len(d.Deployments)-1]; last.Trigger != "sweep" {
		t.Fatalf("trigger %s", last.Trigger)
	}
	_ = arn
}

// A deployment SSM never finished is closed as failed after its timeout,
// with one alert, and its nodes are retried.
func TestSweepClosesStuckDeployments(t *testing.T) {
	t.Parallel()
	r := newTrackRig(t)
	nodes := r.launch(2, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	if status, _ := r.post(onboardBody(arn, "shop-web")); status != 202 {
		t.Fatal("onboard")
	}
	c := r.cert("shop-web")
	r.out.Out[nodes[0]] = resultLine("installed", c.Fingerprint, c.Serial, "ok")
	r.track("tracker-invocation-success.json", c.LastCommandID, nodes[0])
	// The sweep runs a second later on its clock: createdAt has second
	// precision, so the deployment is then past its 1 ms timeout.
	later := func() time.Time { return time.Now().Add(time.Second) }
	rep, sent := r.sweepSent(sweeper.Config{DeploymentTimeout: time.Millisecond, RetryBackoff: time.Nanosecond, Now: later})
	if len(rep.Names[0].Stuck) != 1 {
		t.Fatalf("report %+v", rep.Names[0])
	}
	dep, _ := r.inv.GetDeployment(r.ctx, "shop-web", c.LastDeploymentID)
	if dep.Outcome != inventory.OutcomePartial {
		t.Fatalf("stuck deployment %+v", dep)
	}
	// The silent node never reported (tag targets list nodes only as they
	// report): the sweep sends it the install as a node without a record.
	if len(sent) != 1 || !slices.Equal(sent[0].Instances, []string{nodes[1]}) {
		t.Fatalf("retry sent %+v", sent)
	}
	if n := r.node("shop-web", nodes[1]); n.State != inventory.NodePending || n.LastCommandID != sent[0].ID {
		t.Fatalf("silent node after the sweep: %+v", n)
	}
	msgs := r.alerts()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "SSM sent no final status") || !strings.Contains(msgs[0].Subject, "partial") {
		t.Fatalf("alerts %+v", msgs)
	}
}

// sweepSent runs one sweep and returns its report and the SendCommand
// it made, with the nodes each targets as SSM recorded them.
func (r *trackRig) sweepSent(cfg sweeper.Config) (sweeper.Report, []ssmCommand) {
	r.t.Helper()
	var sent []ssmCommand
	awsCfg := r.aws.Copy()
	awsCfg.APIOptions = append(awsCfg.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("recordSendCommand",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				req, ok := in.Parameters.(*ssm.SendCommandInput)
				if res, _ := out.Result.(*ssm.SendCommandOutput); ok && err == nil && res != nil && res.Command != nil {
					instances, _ := r.nodes.Targets(aws.ToString(res.Command.CommandId))
					sent = append(sent, ssmCommand{ID: aws.ToString(res.Command.CommandId), Document: aws.ToString(req.DocumentName),
						Instances: instances, Parameters: req.Parameters})
				}
				return out, md, err
			}), middleware.After)
	})
	// The whole fan-out in process: enqueue on a queue at moto, drain it
	// through the worker (fleet.Resolver on the stand-in).
	h, err := LocalSweep(r.ctx, awsCfg, r.cfg, Options{Sweep: cfg, SweepPacing: -1})
	if err != nil {
		r.t.Fatal(err)
	}
	rep, err := h.Run(r.ctx)
	if err != nil {
		r.t.Fatalf("sweep: %v (%+v)", err, rep)
	}
	b, _ := json.Marshal(rep)
	keep("handler outcome", string(b))
	return rep, sent
}
