package tracker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/certferry/certferry/internal/agentrun"
	"github.com/certferry/certferry/internal/document"
	"github.com/certferry/certferry/internal/events"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/notify"
)

const (
	fp     = "AB:CD:EF"
	cmdID  = localenv.SampleCommandID
	nodeID = localenv.SampleInstanceID
)

type fakeStore struct {
	ref       *inventory.CommandRef
	dep       *inventory.Deployment
	reports   []inventory.Report
	finished  []inventory.Outcome
	statusSet string
}

func (f *fakeStore) GetCommandRef(context.Context, string) (*inventory.CommandRef, error) {
	return f.ref, nil
}
func (f *fakeStore) GetDeployment(context.Context, string, string) (*inventory.Deployment, error) {
	return f.dep, nil
}
func (f *fakeStore) GetNode(context.Context, string, string) (*inventory.Node, error) {
	return nil, nil
}
func (f *fakeStore) RecordReport(_ context.Context, _ inventory.CommandRef, _ *inventory.Node, r inventory.Report) error {
	f.reports = append(f.reports, r)
	return nil
}
func (f *fakeStore) SetCommandStatus(_ context.Context, _, _, status string, _ int) error {
	f.statusSet = status
	return nil
}
func (f *fakeStore) FinishDeployment(_ context.Context, _, _ string, outcome inventory.Outcome) (bool, error) {
	f.finished = append(f.finished, outcome)
	return true, nil
}
func (f *fakeStore) Describe(context.Context, string) (*inventory.Detail, error) {
	return &inventory.Detail{}, nil
}

// fakeSSM answers as AWS does for certferry's two-platform document: one
// invocation per node whose CommandPlugins are installLinux and
// installWindows, the other platform's step skipped by its precondition;
// GetCommandInvocation requires PluginName ("GetCommandInvocation",
// Systems Manager API Reference). It once answered any call with the
// output, as moto does; that let the tracker read no step at all.
type fakeSSM struct {
	stdout, stderr string
	err            error  // GetCommandInvocation fails with it
	status         string // the invocation's status (default Success)
	platform       string // the node's platform (default Linux)
	notVisible     int    // this many reads find no invocation first
	calls          int    // GetCommandInvocation calls
	lists          int
	plugins        []string // PluginName of each GetCommandInvocation
	// failedDownload names a download step of the real five-step document
	// that failed; the invocation is then Failed whatever installStatus
	// (the install step's own status, default Success) says.
	failedDownload, installStatus string
	listCommandsErr               error // ListCommands fails with it
	// plainSkips: ListCommandInvocations shows a skipped step as a plain
	// success (StatusDetails Success, no output), another spelling the
	// service might use (its CommandPluginStatus has no Skipped).
	plainSkips bool
}

func (f *fakeSSM) GetCommandInvocation(_ context.Context, in *ssm.GetCommandInvocationInput, _ ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	f.calls++
	f.plugins = append(f.plugins, aws.ToString(in.PluginName))
	if f.err != nil {
		return nil, f.err
	}
	if in.PluginName == nil {
		return nil, &smithy.GenericAPIError{Code: "InvalidPluginName"}
	}
	if aws.ToString(in.PluginName) != "install"+f.os() {
		return &ssm.GetCommandInvocationOutput{Status: ssmtypes.CommandInvocationStatusSuccess, StatusDetails: aws.String("Skipped")}, nil
	}
	return &ssm.GetCommandInvocationOutput{StandardOutputContent: aws.String(f.stdout), StandardErrorContent: aws.String(f.stderr)}, nil
}

func (f *fakeSSM) os() string { return cmpOr(f.platform, "Linux") }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (f *fakeSSM) ListCommandInvocations(_ context.Context, in *ssm.ListCommandInvocationsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error) {
	f.lists++
	if !in.Details {
		return nil, errors.New("the tracker must ask for Details (CommandPlugins)")
	}
	if f.notVisible > 0 {
		f.notVisible--
		return &ssm.ListCommandInvocationsOutput{}, nil
	}
	status := cmpOr(f.status, "Success")
	if f.failedDownload != "" {
		return &ssm.ListCommandInvocationsOutput{CommandInvocations: []ssmtypes.CommandInvocation{{
			CommandId: in.CommandId, InstanceId: in.InstanceId, Status: ssmtypes.CommandInvocationStatusFailed, CommandPlugins: f.documentSteps(),
		}}}, nil
	}
	var plugins []ssmtypes.CommandPlugin
	for _, os := range []string{"Linux", "Windows"} {
		p := ssmtypes.CommandPlugin{Name: aws.String("install" + os), Status: ssmtypes.CommandPluginStatus(status), StatusDetails: aws.String(status)}
		if os != f.os() {
			p.Status, p.StatusDetails = ssmtypes.CommandPluginStatusSuccess, aws.String("Skipped")
			p.Output = aws.String("Step execution skipped due to unsatisfied preconditions: '\"StringEquals\": [platformType, " + os + "]'. Step name: install" + os)
			if f.plainSkips {
				p.StatusDetails, p.Output = aws.String("Success"), nil
			}
		}
		plugins = append(plugins, p)
	}
	return &ssm.ListCommandInvocationsOutput{CommandInvocations: []ssmtypes.CommandInvocation{{
		CommandId: in.CommandId, InstanceId: in.InstanceId, Status: ssmtypes.CommandInvocationStatus(status), CommandPlugins: plugins,
	}}}, nil
}

// documentSteps are the CommandPlugins of certferry's five-step document
// on a node of f's platform: the other platform's steps skipped, the step
// failedDownload Failed (code 1), the install step installStatus.
func (f *fakeSSM) documentSteps() []ssmtypes.CommandPlugin {
	var out []ssmtypes.CommandPlugin
	for _, step := range []struct{ name, os string }{
		{"downloadLinuxAmd64", "Linux"}, {"downloadLinuxArm64", "Linux"}, {"installLinux", "Linux"},
		{"downloadWindowsAmd64", "Windows"}, {"installWindows", "Windows"},
	} {
		p := ssmtypes.CommandPlugin{Name: aws.String(step.name), Status: ssmtypes.CommandPluginStatusSuccess, StatusDetails: aws.String("Success")}
		switch {
		case step.os != f.os():
			p.StatusDetails = aws.String("Skipped")
			p.Output = aws.String("Step execution skipped due to unsatisfied preconditions: '\"StringEquals\": [platformType, " + step.os + "]'. Step name: " + step.name)
		case step.name == f.failedDownload:
			p.Status, p.StatusDetails, p.ResponseCode = ssmtypes.CommandPluginStatusFailed, aws.String("Failed"), 1
			p.Output = aws.String("----------ERROR-------\nfailed to download file reliably")
		case step.name == "install"+f.os():
			st := cmpOr(f.installStatus, "Success")
			p.Status, p.StatusDetails = ssmtypes.CommandPluginStatus(st), aws.String(st)
		}
		out = append(out, p)
	}
	return out
}

func (f *fakeSSM) ListCommands(context.Context, *ssm.ListCommandsInput, ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	if f.listCommandsErr != nil {
		return nil, f.listCommandsErr
	}
	return &ssm.ListCommandsOutput{Commands: []ssmtypes.Command{{CommandId: aws.String(cmdID), TargetCount: 1}}}, nil
}

type fakeAlerts struct{ sent []notify.Alert }

func (f *fakeAlerts) Publish(_ context.Context, a notify.Alert) (string, error) {
	f.sent = append(f.sent, a)
	return "m-1", nil
}

func sample(t *testing.T, name, status string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if status != "" {
		s = strings.Replace(s, `"status": "Success"`, `"status": "`+status+`"`, 1)
	}
	return []byte(s)
}

func result(status, fingerprint string) string {
	return resultWith(status, fingerprint, status+" detail")
}

func resultWith(status, fingerprint, detail string) string {
	return "log line\n" + document.Result{Status: document.Status(status), Fingerprint: fingerprint, Serial: "0c", Detail: detail}.Line() + "\n"
}

// superseded is the installer's detail of a command a newer deployment
// replaced.
const superseded = "superseded: the bundle holds 11:22 but this command installs AB:CD:EF (a newer deployment supersedes it)"

// What a finished invocation makes of a node: the event's status decides
// failure, the CERTFERRY_RESULT line decides what was installed.
func TestInvocationReports(t *testing.T) {
	tests := []struct {
		name       string
		status     string
		stdout     string
		stderr     string
		outErr     error
		want       inventory.NodeState
		unverified bool
		errHas     string
		readsOut   bool
	}{
		{name: "installed, fingerprint matches", status: "Success", stdout: result("installed", fp), want: "installed", readsOut: true},
		{name: "unchanged counts as installed", status: "Success", stdout: result("unchanged", strings.ToLower(fp)), want: "installed", readsOut: true},
		{name: "fingerprint differs", status: "Success", stdout: result("installed", "00:11"), want: "failed", errHas: "node reports fingerprint 00:11", readsOut: true},
		{name: "success without result line", status: "Success", stdout: "output truncated...", want: "installed", unverified: true, readsOut: true},
		{name: "success, output unavailable", status: "Success", outErr: &smithy.GenericAPIError{Code: "AccessDeniedException"}, want: "installed", unverified: true, readsOut: true},
		{name: "failed with rollback", status: "Failed", stdout: result("rolled_back", fp), want: "rolled_back", errHas: "rolled_back: rolled_back detail", readsOut: true},
		{name: "failed with stderr", status: "Failed", stderr: "line one\nopenssl: bad decrypt\n", want: "failed", errHas: "openssl: bad decrypt", readsOut: true},
		{name: "superseded: status superseded, exit 0", status: "Success", stdout: resultWith("superseded", "", superseded),
			want: "superseded", errHas: superseded, readsOut: true},
		{name: "superseded: an older installer's failed, exit 1", status: "Failed", stdout: resultWith("failed", "", superseded),
			want: "superseded", errHas: superseded, readsOut: true},
		{name: "superseded: an older installer's, after recovering a killed run", status: "Failed",
			stdout: resultWith("failed", "", "recovered: rolled back an interrupted run of 11:22 (killed at phase written); "+superseded),
			want:   "superseded", errHas: "; " + superseded, readsOut: true},
		{name: "superseded status whatever SSM says", status: "Failed", stdout: resultWith("superseded", "", superseded),
			want: "superseded", errHas: superseded, readsOut: true},
		{name: "failed for another reason stays failed", status: "Failed", stdout: resultWith("failed", "", "bundle refused, nothing written: chain does not verify"),
			want: "failed", errHas: "chain does not verify", readsOut: true},
		{name: "timed out", status: "TimedOut", want: "failed", errHas: "SSM reports TimedOut"},
		{name: "undeliverable", status: "Undeliverable", want: "failed", errHas: "SSM reports Undeliverable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{ref: &inventory.CommandRef{CommandID: cmdID, Name: "shop-web", DeploymentID: "d1"},
				dep: &inventory.Deployment{ID: "d1", Serial: "0c", Fingerprint: fp, InstanceIDs: []string{nodeID, "i-other"},
					Outcome: inventory.OutcomeInProgress, Counts: map[inventory.NodeState]int{}}}
			api := &fakeSSM{stdout: tc.stdout, stderr: tc.stderr, err: tc.outErr, status: tc.status}
			tr := New(st, api, &fakeAlerts{}, nil, Config{Document: "certferry-install"})
			out, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", tc.status))
			if err != nil {
				t.Fatal(err)
			}
			if len(st.reports) != 1 {
				t.Fatalf("outcome %+v, reports %v", out, st.reports)
			}
			r := st.reports[0]
			if r.State != tc.want || r.Unverified != tc.unverified || !strings.Contains(r.Error, tc.errHas) {
				t.Fatalf("report %+v, want %s unverified=%v error~%q", r, tc.want, tc.unverified, tc.errHas)
			}
			if r.State == "installed" && (r.Serial != "0c" || r.Fingerprint != fp) {
				t.Fatalf("installed without serial/fingerprint: %+v", r)
			}
			if (api.calls > 0) != tc.readsOut {
				t.Fatalf("output read %d times", api.calls)
			}
		})
	}
}

func TestIgnoredAndRejected(t *testing.T) {
	known := &inventory.CommandRef{CommandID: cmdID, Name: "shop-web", DeploymentID: "d1"}
	tests := []struct {
		name   string
		raw    []byte
		ref    *inventory.CommandRef
		status Status
		fails  bool
	}{
		{name: "not final", raw: sample(t, "tracker-invocation-in-progress.json", ""), ref: known, status: "ignored"},
		{name: "unknown command", raw: sample(t, "tracker-invocation-success.json", ""), status: "ignored"},
		{name: "another document", raw: []byte(strings.Replace(string(sample(t, "tracker-invocation-success.json", "")), "certferry-install", "AWS-RunShellScript", 1)), ref: known, status: "ignored"},
		{name: "another source", raw: []byte(`{"id":"x1","source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{}}`), ref: known, status: "ignored"},
		{name: "no command id", raw: []byte(strings.Replace(string(sample(t, "tracker-invocation-success.json", "")), cmdID, "", 1)), ref: known, status: "rejected", fails: true},
		{name: "hostile instance id", raw: []byte(strings.Replace(string(sample(t, "tracker-invocation-success.json", "")), `"instance-id": "`+nodeID, `"instance-id": "i-0; rm -rf /`, 1)), ref: known, status: "rejected", fails: true},
		{name: "hostile event id", raw: []byte(strings.Replace(string(sample(t, "tracker-invocation-success.json", "")), "3b2c1d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d", "x; rm -rf /", 1)), ref: known, status: "rejected", fails: true},
		{name: "not JSON", raw: []byte(`garbage`), status: "rejected", fails: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{ref: tc.ref, dep: &inventory.Deployment{ID: "d1", Outcome: inventory.OutcomeInProgress}}
			out, err := New(st, &fakeSSM{}, &fakeAlerts{}, nil, Config{Document: "certferry-install"}).Handle(context.Background(), tc.raw)
			if (err != nil) != tc.fails || out.Status != tc.status {
				t.Fatalf("%+v, %v", out, err)
			}
			if tc.fails && !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			if len(st.reports) != 0 || st.statusSet != "" {
				t.Fatalf("acted: %v %q", st.reports, st.statusSet)
			}
		})
	}
}

// Outcomes from counts, and one alert only when nodes failed.
func TestConclude(t *testing.T) {
	tests := []struct {
		counts  map[inventory.NodeState]int
		outcome inventory.Outcome
		alert   bool
	}{
		{map[inventory.NodeState]int{"installed": 3}, inventory.OutcomeSucceeded, false},
		{map[inventory.NodeState]int{"installed": 2, "failed": 1}, inventory.OutcomePartial, true},
		{map[inventory.NodeState]int{"installed": 2, "rolled_back": 1}, inventory.OutcomePartial, true},
		{map[inventory.NodeState]int{"failed": 2, "rolled_back": 1}, inventory.OutcomeFailed, true},
		{map[inventory.NodeState]int{}, inventory.OutcomeFailed, true}, // no node matched
		// Superseded nodes are neither installed nor failed.
		{map[inventory.NodeState]int{"superseded": 2}, inventory.OutcomeSuperseded, false},
		{map[inventory.NodeState]int{"installed": 2, "superseded": 1}, inventory.OutcomeSucceeded, false},
		{map[inventory.NodeState]int{"installed": 1, "failed": 1, "superseded": 1}, inventory.OutcomePartial, true},
		{map[inventory.NodeState]int{"failed": 1, "superseded": 1}, inventory.OutcomeFailed, true},
	}
	// Timed out: silent nodes count as failed.
	for _, tc := range []struct {
		dep     inventory.Deployment
		outcome inventory.Outcome
	}{
		{inventory.Deployment{Counts: map[inventory.NodeState]int{"installed": 2}, CommandStatus: "Success", Expected: 3}, inventory.OutcomePartial},
		{inventory.Deployment{Counts: map[inventory.NodeState]int{"installed": 2}, InstanceIDs: []string{"i-1", "i-2"}}, inventory.OutcomeSucceeded},
		{inventory.Deployment{Counts: map[inventory.NodeState]int{"installed": 2}}, inventory.OutcomePartial}, // tag targets, SSM never finished
		{inventory.Deployment{Counts: map[inventory.NodeState]int{}}, inventory.OutcomeFailed},
		// Superseded nodes reported: they are not silent.
		{inventory.Deployment{Counts: map[inventory.NodeState]int{"installed": 1, "superseded": 1}, CommandStatus: "Success", Expected: 2}, inventory.OutcomeSucceeded},
		{inventory.Deployment{Counts: map[inventory.NodeState]int{"superseded": 2}, CommandStatus: "Success", Expected: 2}, inventory.OutcomeSuperseded},
		{inventory.Deployment{Counts: map[inventory.NodeState]int{"superseded": 1}, CommandStatus: "Success", Expected: 2}, inventory.OutcomeFailed},
	} {
		st := &fakeStore{}
		dep := tc.dep
		dep.ID, dep.Outcome = "d1", inventory.OutcomeInProgress
		out, err := New(st, &fakeSSM{}, &fakeAlerts{}, nil, Config{}).Conclude(context.Background(), "shop-web", &dep, true, Outcome{})
		if err != nil || out.Deployment != tc.outcome {
			t.Errorf("timed out %+v: %+v %v, want %s", tc.dep, out, err, tc.outcome)
		}
	}
	for _, tc := range tests {
		st := &fakeStore{}
		alerts := &fakeAlerts{}
		dep := &inventory.Deployment{ID: "d1", Counts: tc.counts, Outcome: inventory.OutcomeInProgress}
		out, err := New(st, &fakeSSM{}, alerts, nil, Config{}).Conclude(context.Background(), "shop-web", dep, false, Outcome{})
		if err != nil || out.Deployment != tc.outcome || len(st.finished) != 1 || st.finished[0] != tc.outcome {
			t.Errorf("%v: %+v %v finished %v", tc.counts, out, err, st.finished)
		}
		if (len(alerts.sent) == 1) != tc.alert || len(alerts.sent) > 1 {
			t.Errorf("%v: %d alerts", tc.counts, len(alerts.sent))
		}
	}
}

func trackerFor(api *fakeSSM, instances ...string) (*Tracker, *fakeStore) {
	st := &fakeStore{ref: &inventory.CommandRef{CommandID: cmdID, Name: "shop-web", DeploymentID: "d1"},
		dep: &inventory.Deployment{ID: "d1", Serial: "0c", Fingerprint: fp, InstanceIDs: instances,
			Outcome: inventory.OutcomeInProgress, Counts: map[inventory.NodeState]int{}}}
	return New(st, api, &fakeAlerts{}, nil, Config{Document: "certferry-install", ReadBackoff: time.Nanosecond}), st
}

// The result line is read from the step that ran on the node's platform,
// named as GetCommandInvocation requires on a multi-step document.
func TestReadsTheStepThatRan(t *testing.T) {
	for _, platform := range []string{"Linux", "Windows"} {
		t.Run(platform, func(t *testing.T) {
			api := &fakeSSM{stdout: result("installed", fp), platform: platform}
			tr, st := trackerFor(api, nodeID)
			if _, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", "")); err != nil {
				t.Fatal(err)
			}
			if r := st.reports[0]; r.State != inventory.NodeInstalled || r.Unverified {
				t.Fatalf("report %+v, want installed and verified", r)
			}
			if want := []string{"install" + platform}; !slices.Equal(api.plugins, want) || api.lists != 1 {
				t.Fatalf("read plugins %q after %d lists, want %q after 1", api.plugins, api.lists, want)
			}
		})
	}
}

// A Linux node downloads both architectures' builds; when the other
// architecture's download fails, SSM reports the invocation (and its event)
// Failed although installLinux ran and succeeded ("Understanding command
// statuses": an invocation fails when any plugin's code is not zero). The
// node's state is the install step's result line, not the overall status.
func TestFailedDownloadStepDoesNotHideTheInstallResult(t *testing.T) {
	tests := []struct {
		name, platform, failed, installStatus, stdout string
		want                                          inventory.NodeState
		errHas                                        string
	}{
		{name: "other arch download failed, installed", platform: "Linux", failed: "downloadLinuxArm64",
			stdout: result("installed", fp), want: inventory.NodeInstalled},
		{name: "other arch download failed, unchanged", platform: "Linux", failed: "downloadLinuxAmd64",
			stdout: result("unchanged", fp), want: inventory.NodeInstalled},
		{name: "other arch download failed, install step failed too", platform: "Linux", failed: "downloadLinuxArm64",
			installStatus: "Failed", stdout: result("rolled_back", fp), want: inventory.NodeRolledBack, errHas: "rolled_back"},
		{name: "own download failed, install step reports it", platform: "Linux", failed: "downloadLinuxAmd64",
			installStatus: "Failed", stdout: result("failed", ""), want: inventory.NodeFailed, errHas: "failed: failed detail"},
		{name: "installed, but another fingerprint", platform: "Linux", failed: "downloadLinuxArm64",
			stdout: result("installed", "00:11"), want: inventory.NodeFailed, errHas: "node reports fingerprint 00:11"},
		{name: "windows download failed", platform: "Windows", failed: "downloadWindowsAmd64",
			installStatus: "Failed", stdout: result("failed", ""), want: inventory.NodeFailed, errHas: "failed: failed detail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeSSM{stdout: tc.stdout, platform: tc.platform, status: "Failed", failedDownload: tc.failed, installStatus: tc.installStatus}
			tr, st := trackerFor(api, nodeID)
			if _, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", "Failed")); err != nil {
				t.Fatal(err)
			}
			if len(st.reports) != 1 {
				t.Fatalf("reports %v", st.reports)
			}
			r := st.reports[0]
			if r.State != tc.want || r.Unverified || !strings.Contains(r.Error, tc.errHas) {
				t.Fatalf("report %+v, want %s error~%q", r, tc.want, tc.errHas)
			}
			if r.State == inventory.NodeInstalled && (r.Serial != "0c" || r.Fingerprint != fp || r.Error != "") {
				t.Fatalf("installed report %+v", r)
			}
			if want := []string{"install" + tc.platform}; !slices.Equal(api.plugins, want) {
				t.Fatalf("read plugins %q, want %q", api.plugins, want)
			}
		})
	}
}

// A read SSM throttles (or fails on its side) during a large rollout wave
// is not a missing result: the event fails so that Lambda delivers it
// again later, and nothing is written. Before, the node was recorded
// "installed, unverified" (and the sweep sent the install again to every
// such node), or a failure lost its reason.
func TestThrottledReadIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		err          error
	}{
		{"throttled, success", "Success", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}},
		{"throttled, failed", "Failed", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}},
		{"internal error", "Success", &smithy.GenericAPIError{Code: "InternalServerError"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeSSM{stdout: result("installed", fp), err: tc.err, status: tc.status}
			tr, st := trackerFor(api, nodeID)
			out, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", tc.status))
			if err == nil || len(st.reports) != 0 {
				t.Fatalf("outcome %+v, error %v, reports %v: want the event failed and nothing written", out, err, st.reports)
			}
		})
	}
}

// A command sent to tag targets lists its nodes only in SSM's TargetCount:
// when ListCommands cannot say (throttled), the command's final status is
// not recorded with 0 expected nodes (which concluded the deployment at
// once, "failed: no managed node matched", while nodes were still
// reporting); the event fails and Lambda delivers it again.
func TestCommandStatusWithoutTargetCountIsRetried(t *testing.T) {
	api := &fakeSSM{listCommandsErr: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}}
	tr, st := trackerFor(api) // tag targets: no instance ids
	out, err := tr.Handle(context.Background(), sample(t, "tracker-command-success.json", ""))
	if err == nil || st.statusSet != "" || len(st.finished) != 0 {
		t.Fatalf("outcome %+v, error %v, status set %q, finished %v: want the event failed and nothing written", out, err, st.statusSet, st.finished)
	}
	// Sent by instance ids, the command's nodes are known without SSM.
	tr, st = trackerFor(api, nodeID)
	if _, err := tr.Handle(context.Background(), sample(t, "tracker-command-success.json", "")); err != nil || st.statusSet != "Success" {
		t.Fatalf("instance-id command: %v, status set %q", err, st.statusSet)
	}
}

// Should the service show the other platform's skipped step as a plain
// success without output, the tracker still finds the step that ran: the
// one whose output holds the result line. Before, such an event failed
// ("none of the steps ran") on every delivery and ended in the DLQ.
func TestSkippedStepWithoutMarkers(t *testing.T) {
	for _, platform := range []string{"Linux", "Windows"} {
		t.Run(platform, func(t *testing.T) {
			api := &fakeSSM{stdout: result("installed", fp), platform: platform, plainSkips: true}
			tr, st := trackerFor(api, nodeID)
			if _, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", "")); err != nil {
				t.Fatal(err)
			}
			if r := st.reports[0]; r.State != inventory.NodeInstalled || r.Unverified {
				t.Fatalf("report %+v, want installed and verified", r)
			}
		})
	}
}

// An invocation SSM does not show yet is read again (bounded), and when it
// stays invisible the event fails (Lambda retries it) with nothing written:
// never "installed, unverified" because of eventual consistency.
func TestInvocationNotVisibleYet(t *testing.T) {
	api := &fakeSSM{stdout: result("installed", fp), notVisible: 2}
	tr, st := trackerFor(api, nodeID)
	if _, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", "")); err != nil {
		t.Fatal(err)
	}
	if r := st.reports[0]; r.State != inventory.NodeInstalled || r.Unverified || api.lists != 3 {
		t.Fatalf("report %+v after %d reads", r, api.lists)
	}

	for _, status := range []string{"Success", "Failed"} {
		api = &fakeSSM{stdout: result("installed", fp), notVisible: 100, status: status}
		tr, st = trackerFor(api, nodeID)
		out, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", status))
		if !errors.Is(err, ErrInvocationNotVisible) || out.Status != "retry" {
			t.Fatalf("%s: %+v %v, want ErrInvocationNotVisible", status, out, err)
		}
		if len(st.reports) != 0 || api.lists != 4 || api.calls != 0 {
			t.Fatalf("%s: wrote %v after %d reads (%d output reads), want nothing after 4", status, st.reports, api.lists, api.calls)
		}
	}
}

// A status for an instance the command was not sent to (by instance ids)
// changes nothing and asks SSM nothing.
func TestInstanceNotInCommandIgnored(t *testing.T) {
	api := &fakeSSM{stdout: result("installed", fp)}
	tr, st := trackerFor(api, "i-0aaaaaaaaaaaaaaaa", "mi-0bbbbbbbbbbbbbbbb")
	out, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", ""))
	if err != nil || out.Status != "ignored" || out.Reason != "instance not in the command" {
		t.Fatalf("%+v %v", out, err)
	}
	if len(st.reports) != 0 || api.lists+api.calls != 0 {
		t.Fatalf("wrote %v, %d SSM calls", st.reports, api.lists+api.calls)
	}
}

// The steps the tracker reads are the document's result steps, one per
// platform (a contract: design.md).
func TestResultStepsInDocument(t *testing.T) {
	d, err := agentrun.Load(filepath.Join("..", "..", "ssm-documents", "certferry-install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ step, platform string }{{"installLinux", "Linux"}, {"installWindows", "Windows"}} {
		i := slices.IndexFunc(d.MainSteps, func(s agentrun.Step) bool { return s.Name == want.step })
		if i < 0 || !slices.Equal(d.MainSteps[i].Precondition["StringEquals"], []string{"platformType", want.platform}) {
			t.Errorf("document has no step %s with precondition platformType %s", want.step, want.platform)
		}
	}
	if !slices.Equal(ResultSteps, []string{"installLinux", "installWindows"}) {
		t.Errorf("ResultSteps %v", ResultSteps)
	}
}

type fakeAdvancer struct{ calls []string }

func (f *fakeAdvancer) Advance(_ context.Context, name string) error {
	f.calls = append(f.calls, name)
	return nil
}

// A deployment of a rollout: its conclusion hands over to the rollout
// (which alerts once, on halt) instead of the per-deployment alert; a
// conclusion another delivery won looks at the rollout again (Advance
// changes nothing twice); a deployment outside a rollout alerts as before
// and advances nothing.
func TestConcludeHandsRolloutDeploymentsToTheRollout(t *testing.T) {
	failed := map[inventory.NodeState]int{"failed": 1}
	for _, tc := range []struct {
		name      string
		rolloutID string
		won       bool
		advances  int
		alerts    int
	}{
		{"rollout deployment", "r1", true, 1, 0},
		{"rollout deployment finished by another delivery", "r1", false, 1, 0},
		{"plain deployment", "", true, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &wonStore{won: tc.won}
			alerts, adv := &fakeAlerts{}, &fakeAdvancer{}
			dep := &inventory.Deployment{ID: "d1", Counts: failed, Outcome: inventory.OutcomeInProgress, RolloutID: tc.rolloutID, Wave: 1, Waves: 3}
			if _, err := New(st, &fakeSSM{}, alerts, nil, Config{}).WithRollouts(adv).Conclude(context.Background(), "shop-web", dep, false, Outcome{}); err != nil {
				t.Fatal(err)
			}
			if len(adv.calls) != tc.advances || len(alerts.sent) != tc.alerts {
				t.Fatalf("advances %v, alerts %d; want %d and %d", adv.calls, len(alerts.sent), tc.advances, tc.alerts)
			}
		})
	}
	// Without an advancer (nil-safe) a rollout deployment concludes silently.
	dep := &inventory.Deployment{ID: "d1", Counts: failed, Outcome: inventory.OutcomeInProgress, RolloutID: "r1"}
	if _, err := New(&fakeStore{}, &fakeSSM{}, &fakeAlerts{}, nil, Config{}).Conclude(context.Background(), "shop-web", dep, false, Outcome{}); err != nil {
		t.Fatal(err)
	}
}

type wonStore struct {
	fakeStore
	won bool
}

func (f *wonStore) FinishDeployment(context.Context, string, string, inventory.Outcome) (bool, error) {
	return f.won, nil
}
