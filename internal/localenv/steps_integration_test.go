//go:build integration

package localenv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/certferry/certferry/internal/app"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/renewal"
	"github.com/certferry/certferry/internal/schedule"
)

// The local rig end to end, on a clock the test moves: local up's
// settings, a step scheduled by the production scheduler (app.NewScheduler)
// through localenv.Proxy, and the StepFirer `local proxy` runs handing it,
// when due, to the real renewal handler (app.Renewal on moto through the
// proxy), which reads it as a rollout step; the schedule is then gone.
func TestStepReachesRenewalHandler(t *testing.T) {
	ctx := context.Background()
	moto, err := motoserver.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer moto.Stop()
	proxy, err := localenv.StartProxy(moto.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("x", "x", "")))
	if err != nil {
		t.Fatal(err)
	}
	awsCfg.BaseEndpoint = aws.String(proxy.URL)
	t.Chdir("../..") // local up reads ssm-documents/
	env, err := localenv.Up(ctx, awsCfg, localenv.DocumentFile)
	if err != nil {
		t.Fatal(err)
	}
	if !env.Config.Schedule.Configured() {
		t.Fatalf("local up on an emulator gave no schedule settings: %+v", env.Config)
	}
	proxy.Scheduler.CreateGroup(env.Config.Schedule.Group)

	now := time.Date(2027, 3, 6, 1, 0, 0, 0, time.UTC)
	proxy.Scheduler.Now = func() time.Time { return now }
	sch := app.NewScheduler(awsCfg, env.Config)
	sch.Now = proxy.Scheduler.Now
	st := schedule.Step{Name: "shop-web", RolloutID: "r-1", Kind: schedule.KindWindow, At: now.Add(time.Hour)}
	if err := sch.At(ctx, st); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	var outcomes []renewal.Outcome
	handler := app.Renewal(awsCfg, env.Config, app.Options{})
	f := &localenv.StepFirer{Schedules: proxy.Scheduler, Target: env.Config.Schedule.TargetARN, Log: &log,
		Handle: func(ctx context.Context, ev json.RawMessage) (any, error) {
			out, err := handler.Handle(ctx, ev)
			outcomes = append(outcomes, out)
			return out, err
		}}
	if ds := f.Tick(ctx, now.Add(59*time.Minute)); len(ds) != 0 {
		t.Fatalf("delivered before due: %+v", ds)
	}
	now = now.Add(time.Hour)
	ds := f.Tick(ctx, now)
	if len(ds) != 1 || ds[0].Err != nil {
		t.Fatalf("deliveries %+v\n%s", ds, log.String())
	}
	if len(outcomes) != 1 || outcomes[0].EventID != st.ScheduleName() || outcomes[0].Kind != "rollout-step" {
		t.Fatalf("the renewal handler answered %+v", outcomes)
	}
	if left := proxy.Scheduler.Schedules(); len(left) != 0 {
		t.Errorf("schedules left: %+v", left)
	}
	if !strings.Contains(log.String(), "step schedule "+st.ScheduleName()+" (window step of shop-web, rollout r-1) delivered (attempt 1)") {
		t.Errorf("log:\n%s", log.String())
	}
	if ds := f.Tick(ctx, now.Add(time.Second)); len(ds) != 0 {
		t.Errorf("delivered again: %+v", ds)
	}
}
