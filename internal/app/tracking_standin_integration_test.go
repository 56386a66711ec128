//go:build integration

package app

// The tracker on moto with the SSM stand-in (testkit.SSMStandIn) between
// them: SendCommand records exactly the nodes it targets, and the
// invocations answer per step as AWS does (PluginName required on
// certferry's two-step document, the other platform's step skipped,
// InvocationDoesNotExist for a while after the status event).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/certferry/certferry/internal/agentrun"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/metrics"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/testkit"
	"github.com/certferry/certferry/internal/tracker"
)

type ssmRig struct {
	*renewalRig
	nodes   *testkit.SSMStandIn
	tracker *tracker.Tracker
	inv     *inventory.Store
	direct  aws.Config // straight to the emulator, without the stand-in
}

// newSSMRig puts the SSM stand-in in front of the emulator for every call
// the API, the renewal handler and the tracker make.
func newSSMRig(t *testing.T) *ssmRig { return newSSMRigOn(t, moto) }

// newSSMRigOn is newSSMRig on server.
func newSSMRigOn(t *testing.T, server *motoserver.Server) *ssmRig {
	r := newRenewalRigOn(t, server)
	d, err := agentrun.Load(filepath.Join("..", "..", localenv.DocumentFile))
	if err != nil {
		t.Fatal(err)
	}
	nodes := testkit.NewSSMStandIn(d.MainSteps)
	proxy, err := testkit.NewFaultProxy(aws.ToString(r.aws.BaseEndpoint))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	nodes.Plug(proxy)
	direct := r.aws
	cfg := r.aws.Copy()
	cfg.BaseEndpoint = aws.String(proxy.URL)
	// The loaded options (awsconfig.WithBaseEndpoint) are a config source
	// each client re-reads, which would win over BaseEndpoint.
	cfg.ConfigSources = nil
	r.aws, r.handler, r.renewal = cfg, Onboard(cfg, r.cfg, Options{}), Renewal(cfg, r.cfg, Options{})
	inv := inventory.NewStore(r.ddb, r.cfg.Table)
	tr := tracker.New(inv, ssm.NewFromConfig(cfg), notify.NewPublisher(sns.NewFromConfig(cfg), r.cfg.TopicARN), metrics.New(io.Discard),
		tracker.Config{Document: r.cfg.Document, ReadBackoff: time.Millisecond})
	return &ssmRig{renewalRig: r, nodes: nodes, tracker: tr, inv: inv, direct: direct}
}

func (r *ssmRig) handleStatus(file, command, instance string) (tracker.Outcome, error) {
	r.t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", file))
	if err != nil {
		r.t.Fatal(err)
	}
	ev, err := localenv.StatusEvent(raw, command, instance, r.cfg.Document, fmt.Sprintf("standin-%s-%d", instance, time.Now().UnixNano()))
	if err != nil {
		r.t.Fatal(err)
	}
	out, err := r.tracker.Handle(r.ctx, ev)
	b, _ := json.Marshal(out)
	keep("handler outcome", string(b))
	return out, err
}

func (r *ssmRig) mustTrack(file, command, instance string) tracker.Outcome {
	r.t.Helper()
	out, err := r.handleStatus(file, command, instance)
	if err != nil {
		r.t.Fatalf("tracker on %s for %s: %v", file, instance, err)
	}
	return out
}

func (r *ssmRig) postResult(command, instance string, res testkit.NodeResult) {
	r.t.Helper()
	if err := r.nodes.Post(command, instance, res); err != nil {
		r.t.Fatal(err)
	}
}

// onboardOneLinuxNode launches one EC2 instance tagged env=prod, known to
// SSM as a Linux node, and onboards shop-web to it: the node and the
// certificate item as onboarding left them.
func (r *ssmRig) onboardOneLinuxNode() (string, *inventory.Cert) {
	r.t.Helper()
	tags := map[string]string{"env": "prod"}
	ids := r.launch(1, tags)
	r.nodes.Register(testkit.SSMNode{InstanceID: ids[0], Platform: "Linux", Tags: tags})
	if status, ans := r.post(onboardBody(r.exportable("shop.example.com"), "shop-web")); status != 202 {
		r.t.Fatalf("onboard: %d %v", status, ans)
	}
	return ids[0], r.cert("shop-web")
}

func (r *ssmRig) nodeRecord(name, id string) *inventory.Node {
	r.t.Helper()
	n, err := r.inv.GetNode(r.ctx, name, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}

// A Linux EC2 node, a Windows EC2 node and a hybrid (mi-) Linux node: each
// node's result is read from the step that ran on its platform, and the
// reason of the one that rolled back is kept. Before the fix the tracker
// asked for the output without a step name, which AWS refuses on a
// multi-step document: every success became "installed, unverified" and
// the rollback lost its reason.
func TestTrackerReadsEachPlatformsStep(t *testing.T) {
	t.Parallel()
	r := newSSMRig(t)
	tags := map[string]string{"env": "prod"}
	ec2 := r.launch(2, tags)
	hybrid := "mi-0123456789abcdef1"
	r.nodes.Register(testkit.SSMNode{InstanceID: ec2[0], Platform: "Linux", Tags: tags},
		testkit.SSMNode{InstanceID: ec2[1], Platform: "Windows", Tags: tags},
		testkit.SSMNode{InstanceID: hybrid, Platform: "Linux", Tags: tags})
	if status, ans := r.post(onboardBody(r.exportable("shop.example.com"), "shop-web")); status != 202 {
		t.Fatalf("onboard: %d %v", status, ans)
	}
	c := r.cert("shop-web")
	want := slices.Sorted(slices.Values([]string{ec2[0], ec2[1], hybrid}))
	if got, _ := r.nodes.Targets(c.LastCommandID); !slices.Equal(got, want) {
		t.Fatalf("command targets %v, want %v", got, want)
	}
	good := resultLine("installed", c.Fingerprint, c.Serial, "installed shop-web")
	r.postResult(c.LastCommandID, ec2[0], testkit.NodeResult{Status: "Success", Stdout: good})
	r.postResult(c.LastCommandID, ec2[1], testkit.NodeResult{Status: "Success", Stdout: good})
	r.postResult(c.LastCommandID, hybrid, testkit.NodeResult{Status: "Failed", ResponseCode: 1, Stderr: "certferry: handshake failed\n",
		Stdout: resultLine("rolled_back", c.Fingerprint, c.Serial, "handshake on 127.0.0.1:443 served another certificate")})
	for _, id := range want {
		file := "tracker-invocation-success.json"
		if id == hybrid {
			file = "tracker-invocation-failed.json"
		}
		if o := r.mustTrack(file, c.LastCommandID, id); o.Status != tracker.StatusRecorded {
			t.Fatalf("%s: %+v", id, o)
		}
	}
	for _, id := range ec2 {
		if n := r.nodeRecord("shop-web", id); n == nil || n.State != inventory.NodeInstalled || n.Unverified || n.Serial != c.Serial {
			t.Fatalf("node %s: %+v, want installed and verified", id, n)
		}
	}
	if n := r.nodeRecord("shop-web", hybrid); n == nil || n.State != inventory.NodeRolledBack || !strings.Contains(n.Error, "served another certificate") {
		t.Fatalf("hybrid node %+v, want rolled_back with the node's reason", n)
	}
	o := r.mustTrack("tracker-command-failed.json", c.LastCommandID, ec2[0])
	dep, _ := r.inv.GetDeployment(r.ctx, "shop-web", c.LastDeploymentID)
	if o.Deployment != inventory.OutcomePartial || dep.Counts["installed"] != 2 || dep.Counts["rolled_back"] != 1 {
		t.Fatalf("command status: %+v, deployment %+v", o, dep)
	}
}

// SSM shows an invocation only a while after its status event: the
// tracker reads again, then fails the event (Lambda retries it) without
// writing anything, and the retry records the verified result.
func TestTrackerWaitsForInvocation(t *testing.T) {
	t.Parallel()
	r := newSSMRig(t)
	id, c := r.onboardOneLinuxNode()
	r.postResult(c.LastCommandID, id, testkit.NodeResult{Status: "Success", Stdout: resultLine("installed", c.Fingerprint, c.Serial, "ok")})

	r.nodes.SetLag(5) // more than the tracker's 4 reads per event
	out, err := r.handleStatus("tracker-invocation-success.json", c.LastCommandID, id)
	if !errors.Is(err, tracker.ErrInvocationNotVisible) {
		t.Fatalf("first delivery: %+v %v, want ErrInvocationNotVisible", out, err)
	}
	if n := r.nodeRecord("shop-web", id); n != nil && n.State != inventory.NodePending {
		t.Fatalf("node after an unreadable invocation: %+v, want nothing written", n)
	}
	if o := r.mustTrack("tracker-invocation-success.json", c.LastCommandID, id); o.Status != tracker.StatusRecorded {
		t.Fatalf("retry: %+v", o)
	}
	if n := r.nodeRecord("shop-web", id); n == nil || n.State != inventory.NodeInstalled || n.Unverified {
		t.Fatalf("node after the retry: %+v, want installed and verified", n)
	}
}

// A command sent by instance ids runs on exactly those nodes: a status
// for another instance changes nothing (moto lists every instance in such
// a command; the stand-in does as AWS does).
func TestTrackerIgnoresInstanceNotInCommand(t *testing.T) {
	t.Parallel()
	r := newSSMRig(t)
	ids := r.launch(2, map[string]string{"env": "prod"})
	r.nodes.Register(testkit.SSMNode{InstanceID: ids[0]}, testkit.SSMNode{InstanceID: ids[1]})
	body := fmt.Sprintf(`{"certificateArn": %q, "name": "shop-web", "targets": [{"key": "InstanceIds", "values": [%q]}]}`,
		r.exportable("shop.example.com"), ids[0])
	if status, ans := r.post(body); status != 202 {
		t.Fatalf("onboard: %d %v", status, ans)
	}
	c := r.cert("shop-web")
	if got, _ := r.nodes.Targets(c.LastCommandID); !slices.Equal(got, ids[:1]) {
		t.Fatalf("command targets %v, want %v", got, ids[:1])
	}
	if o := r.mustTrack("tracker-invocation-success.json", c.LastCommandID, ids[1]); o.Status != tracker.StatusIgnored {
		t.Fatalf("status of an instance not in the command: %+v", o)
	}
	if n := r.nodeRecord("shop-web", ids[1]); n != nil {
		t.Fatalf("recorded %+v for an instance not in the command", n)
	}
	r.postResult(c.LastCommandID, ids[0], testkit.NodeResult{Status: "Success", Stdout: resultLine("installed", c.Fingerprint, c.Serial, "ok")})
	if o := r.mustTrack("tracker-invocation-success.json", c.LastCommandID, ids[0]); o.Deployment != inventory.OutcomeSucceeded {
		t.Fatalf("the targeted node: %+v", o)
	}
	dep, _ := r.inv.GetDeployment(r.ctx, "shop-web", c.LastDeploymentID)
	if dep.Counts["installed"] != 1 || dep.Counts["failed"] != 0 {
		t.Fatalf("deployment counts %v", dep.Counts)
	}
}

// A Linux node downloads both architectures' builds; when the other
// architecture's download fails, SSM reports the invocation Failed
// although installLinux succeeded ("Understanding command statuses"). The
// tracker reads installLinux's own status and result line through the
// real SDK: the node is installed and verified, the deployment succeeds.
func TestTrackerTrustsTheInstallStepOverAFailedDownload(t *testing.T) {
	t.Parallel()
	r := newSSMRig(t)
	id, c := r.onboardOneLinuxNode()
	r.postResult(c.LastCommandID, id, testkit.NodeResult{Status: "Failed", ResponseCode: 1, Steps: map[string]testkit.StepResult{
		"downloadLinuxArm64": {Status: "Failed", ResponseCode: 1, Stderr: "failed to download file reliably\n"},
		"installLinux":       {Status: "Success", Stdout: resultLine("installed", c.Fingerprint, c.Serial, "installed shop-web")},
	}})
	if o := r.mustTrack("tracker-invocation-failed.json", c.LastCommandID, id); o.Status != tracker.StatusRecorded || o.NodeState != inventory.NodeInstalled {
		t.Fatalf("invocation: %+v, want installed recorded", o)
	}
	if n := r.nodeRecord("shop-web", id); n == nil || n.State != inventory.NodeInstalled || n.Unverified || n.Serial != c.Serial {
		t.Fatalf("node %+v, want installed and verified", n)
	}
	if o := r.mustTrack("tracker-command-failed.json", c.LastCommandID, id); o.Deployment != inventory.OutcomeSucceeded {
		t.Fatalf("command status: %+v, want the deployment succeeded", o)
	}
}
