package tracker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

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
	finished  []string
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
func (f *fakeStore) FinishDeployment(_ context.Context, _, _, outcome string) (bool, error) {
	f.finished = append(f.finished, outcome)
	return true, nil
}
func (f *fakeStore) Describe(context.Context, string) (*inventory.Detail, error) {
	return &inventory.Detail{}, nil
}

type fakeSSM struct {
	stdout, stderr string
	err            error
	calls          int
}

func (f *fakeSSM) GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return &ssm.GetCommandInvocationOutput{StandardOutputContent: aws.String(f.stdout), StandardErrorContent: aws.String(f.stderr)}, nil
}
func (f *fakeSSM) ListCommands(context.Context, *ssm.ListCommandsInput, ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
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
	return "log line\n" + document.Result{Status: status, Fingerprint: fingerprint, Serial: "0c", Detail: status + " detail"}.Line() + "\n"
}

// What a finished invocation makes of a node: the event's status decides
// failure, the CERTFERRY_RESULT line decides what was installed.
func TestInvocationReports(t *testing.T) {
	tests := []struct {
		name       string
		status     string
		stdout     string
		stderr     string
		outErr     error
		want       string
		unverified bool
		errHas     string
		readsOut   bool
	}{
		{name: "installed, fingerprint matches", status: "Success", stdout: result("installed", fp), want: "installed", readsOut: true},
		{name: "unchanged counts as installed", status: "Success", stdout: result("unchanged", strings.ToLower(fp)), want: "installed", readsOut: true},
		{name: "fingerprint differs", status: "Success", stdout: result("installed", "00:11"), want: "failed", errHas: "node reports fingerprint 00:11", readsOut: true},
		{name: "success without result line", status: "Success", stdout: "output truncated...", want: "installed", unverified: true, readsOut: true},
		{name: "success, output unavailable", status: "Success", outErr: errors.New("InvocationDoesNotExist"), want: "installed", unverified: true, readsOut: true},
		{name: "failed with rollback", status: "Failed", stdout: result("rolled_back", fp), want: "rolled_back", errHas: "rolled_back: rolled_back detail", readsOut: true},
		{name: "failed with stderr", status: "Failed", stderr: "line one\nopenssl: bad decrypt\n", want: "failed", errHas: "openssl: bad decrypt", readsOut: true},
		{name: "timed out", status: "TimedOut", want: "failed", errHas: "SSM reports TimedOut"},
		{name: "undeliverable", status: "Undeliverable", want: "failed", errHas: "SSM reports Undeliverable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{ref: &inventory.CommandRef{CommandID: cmdID, Name: "shop-web", DeploymentID: "d1"},
				dep: &inventory.Deployment{ID: "d1", Serial: "0c", Fingerprint: fp, InstanceIDs: []string{nodeID, "i-other"},
					Outcome: inventory.OutcomeInProgress, Counts: map[string]int{}}}
			api := &fakeSSM{stdout: tc.stdout, stderr: tc.stderr, err: tc.outErr}
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
		status string
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
		counts  map[string]int
		outcome string
		alert   bool
	}{
		{map[string]int{"installed": 3}, inventory.OutcomeSucceeded, false},
		{map[string]int{"installed": 2, "failed": 1}, inventory.OutcomePartial, true},
		{map[string]int{"installed": 2, "rolled_back": 1}, inventory.OutcomePartial, true},
		{map[string]int{"failed": 2, "rolled_back": 1}, inventory.OutcomeFailed, true},
		{map[string]int{}, inventory.OutcomeFailed, true}, // no node matched
	}
	// Timed out: silent nodes count as failed.
	for _, tc := range []struct {
		dep     inventory.Deployment
		outcome string
	}{
		{inventory.Deployment{Counts: map[string]int{"installed": 2}, CommandStatus: "Success", Expected: 3}, inventory.OutcomePartial},
		{inventory.Deployment{Counts: map[string]int{"installed": 2}, InstanceIDs: []string{"i-1", "i-2"}}, inventory.OutcomeSucceeded},
		{inventory.Deployment{Counts: map[string]int{"installed": 2}}, inventory.OutcomePartial}, // tag targets, SSM never finished
		{inventory.Deployment{Counts: map[string]int{}}, inventory.OutcomeFailed},
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
