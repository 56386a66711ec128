//go:build integration

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/schedule"
)

// TestLocalUpSeed: before `local up`, a local path says to run it; `local up
// --seed` then prints exports for an exportable public certificate, a
// private-CA certificate and two tagged instances that exist as described.
func TestLocalUpSeed(t *testing.T) {
	ctx := context.Background()
	moto, err := motoserver.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer moto.Stop()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": moto.URL, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_SESSION_TOKEN": "",
		"CERTFERRY_TABLE": "certferry-inventory", "CERTFERRY_DOCUMENT": "certferry-install",
	} {
		t.Setenv(k, v)
	}
	t.Chdir("../..")
	err = invoke(ctx, "onboard", "events/onboard-get-list.json", "", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "run `certferry local up`") {
		t.Fatalf("invoke before local up: %v, want the advice to run `certferry local up`", err)
	}

	var out bytes.Buffer
	if err := local(ctx, []string{"up", "--seed"}, &out, io.Discard); err != nil {
		t.Fatalf("local up --seed: %v", err)
	}
	exports := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^export (\w+)=("[^"]*"|\S*)`).FindAllStringSubmatch(out.String(), -1) {
		exports[m[1]] = strings.Trim(m[2], `"`)
	}
	for _, k := range []string{"AWS_ENDPOINT_URL", "CERTFERRY_TABLE", "CERT_ARN", "PRIVATE_CERT_ARN", "PRIVATE_CA_ARN", "INSTANCE_IDS"} {
		if exports[k] == "" {
			t.Errorf("local up --seed exports no %s:\n%s", k, out.String())
		}
	}
	cfg, err := loadAWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api := acm.NewFromConfig(cfg)
	for _, tc := range []struct{ arn, typ, export string }{
		{exports["CERT_ARN"], "AMAZON_ISSUED", "ENABLED"},
		{exports["PRIVATE_CERT_ARN"], "PRIVATE", ""},
	} {
		d, err := api.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: aws.String(tc.arn)})
		if err != nil {
			t.Fatalf("describe %s: %v", tc.arn, err)
		}
		if string(d.Certificate.Type) != tc.typ || string(d.Certificate.Status) != "ISSUED" || tc.export != "" && string(d.Certificate.Options.Export) != tc.export {
			t.Errorf("%s: %s %s, want %s ISSUED (export %q)", tc.arn, d.Certificate.Type, d.Certificate.Status, tc.typ, tc.export)
		}
	}
	ids := strings.Fields(exports["INSTANCE_IDS"])
	inst, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil || len(ids) != 2 {
		t.Fatalf("instances %v: %v", ids, err)
	}
	for _, r := range inst.Reservations {
		for _, i := range r.Instances {
			tagged := false
			for _, tag := range i.Tags {
				tagged = tagged || aws.ToString(tag.Key) == "env" && aws.ToString(tag.Value) == "prod"
			}
			if !tagged {
				t.Errorf("instance %s is not tagged env=prod", aws.ToString(i.InstanceId))
			}
		}
	}
	// Now the local path runs.
	if err := invoke(ctx, "onboard", "events/onboard-get-list.json", "", io.Discard); err != nil {
		t.Errorf("invoke after local up: %v", err)
	}

	// `local proxy`: the ACM stand-ins in front of this moto. An onboarding
	// through it exports the certificate, a RenewCertificate through it
	// renews it, and the proxy delivers the event to the renewal handler.
	for k, v := range exports {
		t.Setenv(k, v)
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var pout, perr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- local(pctx, []string{"proxy"}, &pout, &perr) }()
	var proxyURL string
	for proxyURL == "" {
		select {
		case err := <-done:
			t.Fatalf("local proxy ended: %v\n%s", err, perr.String())
		case <-time.After(100 * time.Millisecond):
			if m := regexp.MustCompile(`export AWS_ENDPOINT_URL=(\S+)`).FindStringSubmatch(pout.String()); m != nil {
				proxyURL = m[1]
			}
		}
	}
	t.Setenv("AWS_ENDPOINT_URL", proxyURL)

	// Timed rollout steps: local up exported the schedule settings, the
	// proxy serves Scheduler with that group. A step scheduled through it
	// as the engine schedules one (app.NewScheduler on the handlers'
	// configuration) is listed by `local schedules` with its due time and
	// announced by the proxy; cancelled, it is gone. (Firing when due, on
	// an injected clock: internal/localenv TestStepFirer*.)
	for _, k := range config.ScheduleSettings {
		if exports[k] == "" {
			t.Errorf("local up exports no %s:\n%s", k, out.String())
		}
	}
	if !strings.Contains(perr.String(), "EventBridge Scheduler stand-in on "+proxyURL) {
		t.Errorf("the proxy does not say it fires timed steps:\n%s", perr.String())
	}
	hcfg, err := config.Load(os.LookupEnv, app.RenewalRequired...)
	if err != nil {
		t.Fatalf("local up's settings: %v", err)
	}
	scfg, err := loadAWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sch := app.NewScheduler(scfg, hcfg)
	if sch == nil {
		t.Fatal("no scheduler on local up's settings")
	}
	st := schedule.Step{Name: "shop-web", RolloutID: "r-local", Kind: schedule.KindPause, At: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}
	if err := sch.At(ctx, st); err != nil {
		t.Fatalf("schedule a step through the proxy: %v", err)
	}
	// The schedule is set for the step's time on a whole minute
	// (schedule.When: Scheduler's 60-second precision).
	due := sch.When(st).Format(time.RFC3339)
	var list bytes.Buffer
	if err := local(ctx, []string{"schedules"}, &list, io.Discard); err != nil {
		t.Fatalf("local schedules: %v", err)
	}
	for _, want := range []string{due, "pause step of shop-web, rollout r-local", st.ScheduleName(), "ENABLED"} {
		if !strings.Contains(list.String(), want) {
			t.Errorf("local schedules does not show %q:\n%s", want, list.String())
		}
	}
	announced := time.After(time.Minute)
	for !strings.Contains(perr.String(), "step schedule "+st.ScheduleName()+" pending: pause step of shop-web, rollout r-local, due "+due) {
		select {
		case <-announced:
			t.Fatalf("the proxy did not announce the step:\n%s", perr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := sch.Cancel(ctx, st); err != nil {
		t.Fatal(err)
	}
	list.Reset()
	if err := local(ctx, []string{"schedules"}, &list, io.Discard); err != nil || !strings.Contains(list.String(), "no pending steps in schedule group "+hcfg.Schedule.Group) {
		t.Errorf("local schedules after the cancel: %v\n%s", err, list.String())
	}

	var answer bytes.Buffer
	if err := invoke(ctx, "onboard", "events/onboard-post.json", exports["CERT_ARN"], &answer); err != nil || !strings.Contains(answer.String(), `\"commandId\"`) {
		t.Fatalf("onboard through the proxy: %v\n%s", err, answer.String())
	}
	pcfg, err := loadAWS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acm.NewFromConfig(pcfg).RenewCertificate(ctx, &acm.RenewCertificateInput{CertificateArn: aws.String(exports["CERT_ARN"])}); err != nil {
		t.Fatalf("renew through local proxy: %v", err)
	}
	deadline := time.After(time.Minute)
	for !strings.Contains(perr.String(), `renewal event delivered`) {
		select {
		case <-deadline:
			t.Fatalf("local proxy delivered no renewal event:\n%s", perr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !strings.Contains(perr.String(), `"deployed":[{"name":`) {
		t.Errorf("the renewal handler deployed nothing: %s", perr.String())
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("local proxy ended with %v", err)
	}
}
