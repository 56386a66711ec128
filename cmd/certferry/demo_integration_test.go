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

	"github.com/certferry/certferry/internal/certs"
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
// deploys it.
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
	cancel()
	if err := <-done; err != nil {
		t.Errorf("the demo ended with %v after Ctrl-C", err)
	}
}
