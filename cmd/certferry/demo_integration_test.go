//go:build integration

package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/acm"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/schedule"
)

// lockedBuffer is the demo's stdout, read while the demo writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemo runs `certferry demo --keep` end to end: the renewal reaches
// nginx (a new serial served, ACM's), the output holds no JSON log line and
// no unfinished state, and the kept environment works from elsewhere: ACM
// through the printed endpoint shows the renewed certificate, and a
// RenewCertificate sent there is delivered to the renewal handler, which
// deploys it; a timed rollout step scheduled there fires when due.
func TestDemo(t *testing.T) {
	// The demo sets these for itself; restore them afterwards.
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, os.Getenv(k))
	}
	t.Chdir("../..") // the demo reads ssm-documents/ and events/ from the repository root
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() { done <- demo(ctx, []string{"--keep"}, &out, &errOut) }()

	deadline := time.After(8 * time.Minute)
	for !strings.Contains(out.String(), "SSM's events go to the tracker).") {
		select {
		case err := <-done:
			t.Fatalf("the demo ended before keeping its environment: %v\n%s\nstderr:\n%s", err, out.String(), errOut.String())
		case <-deadline:
			t.Fatalf("the demo did not reach --keep within 8 minutes:\n%s", out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	text := out.String()

	// The renewal reached nginx: before and after differ, and after is
	// the serial ACM now reports.
	m := regexp.MustCompile(`(?m)^  serial\s+([0-9a-f]+)\s+([0-9a-f]+)$`).FindStringSubmatch(text)
	if m == nil || m[1] == m[2] {
		t.Fatalf("no before/after serial served by nginx (or the same):\n%s", text)
	}
	if !strings.Contains(text, "nginx serves the renewed certificate") {
		t.Errorf("the demo does not say nginx serves the renewed certificate")
	}
	// Quiet: the handlers' JSON logs and metric lines went to the file it
	// names, none to the story.
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, `"level":`) || strings.Contains(line, `"_aws"`) || strings.HasPrefix(strings.TrimSpace(line), `{"time"`) {
			t.Errorf("a log or metric line in the demo's output: %s", line)
		}
	}
	logPath := regexp.MustCompile(`logs\s+(\S+\.log)`).FindStringSubmatch(text)
	if logPath == nil {
		t.Fatal("the demo names no log file")
	}
	logs, err := os.ReadFile(logPath[1])
	if err != nil || !strings.Contains(string(logs), `"msg":"renewed certificate deployed"`) {
		t.Errorf("the log file %s lacks the handlers' logs (%v)", logPath[1], err)
	}
	os.Remove(logPath[1])
	for _, bad := range []string{"in_progress", "deferredForLiveDeployment", "Drift"} {
		if strings.Contains(text, bad) {
			t.Errorf("the demo's output shows an unfinished state %q", bad)
		}
	}
	for _, want := range []string{"== Summary", "== Next steps", "export AWS_ENDPOINT_URL=", "export CERTFERRY_TABLE=", "export CERTFERRY_DOCUMENT=", "succeeded (acm-event)", "> EventBridge delivers it to the renewal handler", "The SNS alert"} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}

	// From "another shell": the printed environment.
	endpoint := regexp.MustCompile(`export AWS_ENDPOINT_URL=(\S+)`).FindStringSubmatch(text)[1]
	arn := regexp.MustCompile(`shop\.example\.com\s+public.*\s(arn:aws:acm:\S+)`).FindStringSubmatch(text)
	if arn == nil {
		t.Fatalf("no shop.example.com ARN in the output")
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"), awsconfig.WithBaseEndpoint(endpoint),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "demo", SecretAccessKey: "demo"}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	api := acm.NewFromConfig(cfg)
	d, err := api.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn[1])})
	if err != nil {
		t.Fatalf("describe through the kept endpoint: %v", err)
	}
	if s, _ := certs.NormalizeSerial(aws.ToString(d.Certificate.Serial)); s != m[2] {
		t.Errorf("ACM through the kept endpoint reports serial %s; nginx serves %s", s, m[2])
	}
	if _, err := api.RenewCertificate(ctx, &acm.RenewCertificateInput{CertificateArn: aws.String(arn[1])}); err != nil {
		t.Fatalf("renew through the kept endpoint (certferry exported the last renewal, so it is eligible): %v", err)
	}
	d, err = api.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(arn[1])})
	if err != nil {
		t.Fatal(err)
	}
	second, _ := certs.NormalizeSerial(aws.ToString(d.Certificate.Serial))
	if second == m[2] {
		t.Fatalf("the renewal through the kept endpoint kept serial %s", second)
	}
	// The kept demo plays EventBridge and the nodes: the renewal reaches
	// nginx.
	delivered := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), "now serves serial "+second) {
		select {
		case err := <-done:
			t.Fatalf("the demo ended: %v\n%s", err, out.String())
		case <-delivered:
			t.Fatalf("the kept demo did not deliver the renewal event:\n%s", out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}

	// The kept demo plays EventBridge Scheduler too, on the real clock
	// (fireSteps, shared with `local proxy`): a step scheduled through the
	// printed environment, as the rollout engine schedules a pause's end
	// (app.NewScheduler on the printed settings), is announced and, when
	// due, delivered to the renewal handler, which steps the rollout.
	exports := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^export (\w+)=(\S*)$`).FindAllStringSubmatch(text, -1) {
		exports[m[1]] = m[2]
	}
	hcfg, err := config.Load(func(k string) (string, bool) { v, ok := exports[k]; return v, ok }, app.RenewalRequired...)
	if err != nil {
		t.Fatalf("the kept environment's settings: %v", err)
	}
	sch := app.NewScheduler(cfg, hcfg)
	if sch == nil {
		t.Fatalf("the kept environment exports no schedule settings:\n%s", text)
	}
	if !strings.Contains(text, "Timed rollout steps of schedule group "+hcfg.Schedule.Group+" go to the renewal handler when due") {
		t.Errorf("the kept demo does not say it fires timed steps")
	}
	st := schedule.Step{Name: "shop-web", RolloutID: "r-kept", Kind: schedule.KindPause, At: time.Now().UTC()}
	if err := sch.At(ctx, st); err != nil {
		t.Fatalf("schedule a step through the kept endpoint: %v", err)
	}
	fired := time.After(4 * time.Minute) // due on the whole minute after MinLead (schedule.When)
	for !strings.Contains(out.String(), "step schedule "+st.ScheduleName()+" (pause step of shop-web, rollout r-kept) delivered (attempt 1)") {
		select {
		case err := <-done:
			t.Fatalf("the demo ended: %v\n%s", err, out.String())
		case <-fired:
			t.Fatalf("the kept demo did not fire the step:\n%s", out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The renewal handler ran the step: the engine found no such rollout
	// of shop-web (the demo's names roll out without waves).
	if !regexp.MustCompile(`step schedule ` + regexp.QuoteMeta(st.ScheduleName()) + ` \(.*\) delivered \(attempt 1\): .*"kind":"rollout-step".*"reason":"rollout no longer current"`).MatchString(out.String()) {
		t.Errorf("the step's delivery does not show the renewal handler's answer:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "step schedule "+st.ScheduleName()+" pending: pause step of shop-web, rollout r-kept") {
		t.Errorf("the kept demo did not announce the step before firing it:\n%s", out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("the demo ended with %v after Ctrl-C", err)
	}
}
