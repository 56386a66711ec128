//go:build integration

package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/certferry/certferry/internal/schedule"
)

var standInT0 = time.Date(2027, 3, 6, 2, 0, 0, 0, time.UTC)

func sdkClient(url string) *scheduler.Client {
	return scheduler.New(scheduler.Options{Region: StandInRegion, BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("x", "x", "")})
}

// Behind the rig, every Scheduler request the production code sends is
// checked against botocore's "scheduler" model before the stand-in answers
// it, and a request the model refuses never reaches the stand-in.
func TestSchedulerStandInBehindModelCheck(t *testing.T) {
	ctx := context.Background()
	rig := StartRigT(t)
	p, err := rig.NewFaultProxy()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	s, cfg := UseSchedulerStandIn(p, "certferry-rig")
	s.Now = func() time.Time { return standInT0.Add(-time.Hour) }
	cfg.DeadLetterARN = "arn:aws:sqs:us-east-1:123456789012:certferry-EventsDLQ-1"
	sch := s.Scheduler(p.URL, cfg)
	st := schedule.Step{Name: strings.Repeat("n", 63), RolloutID: "r-20270306T010000Z-0001", Kind: schedule.KindDeadline, At: standInT0}
	for range 2 {
		if err := sch.At(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	c := sdkClient(p.URL)
	if _, err := c.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(st.ScheduleName()), GroupName: aws.String(cfg.Group)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListSchedules(ctx, &scheduler.ListSchedulesInput{GroupName: aws.String(cfg.Group), MaxResults: aws.Int32(10)}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Fire(ctx, standInT0, func(context.Context, json.RawMessage) error { return nil })
	if n != 1 || err != nil {
		t.Fatalf("Fire = %d, %v", n, err)
	}
	if err := sch.Cancel(ctx, st); err != nil {
		t.Fatal(err)
	}
	checked := rig.Checked()
	for _, op := range []string{"scheduler.CreateSchedule", "scheduler.GetSchedule", "scheduler.ListSchedules", "scheduler.DeleteSchedule"} {
		if checked[op] == 0 {
			t.Errorf("%s not checked (checked: %v)", op, checked)
		}
	}
	if vs := rig.Violations(); len(vs) != 0 {
		t.Fatalf("the production calls broke the model: %v", vs)
	}

	// A description over the model's 512 characters is refused by the
	// model check (400 ValidationException) and the stand-in never sees it.
	s.Calls() // reset the count
	_, err = c.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name: aws.String("too-long-description"), GroupName: aws.String(cfg.Group), ScheduleExpression: aws.String("at(2027-03-07T00:00:00)"),
		Description:        aws.String(strings.Repeat("d", 513)),
		FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		Target:             &types.Target{Arn: aws.String(cfg.TargetARN), RoleArn: aws.String(cfg.RoleARN), Input: aws.String("{}")},
	})
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Fatalf("over-long description: %v", err)
	}
	if n := s.Calls()["CreateSchedule"]; n != 0 {
		t.Fatal("the stand-in answered a request the model refused")
	}
	vs := rig.TakeViolations()
	if len(vs) != 1 || vs[0].Operation != "CreateSchedule" || vs[0].Member != "Description" {
		t.Fatalf("violations %+v", vs)
	}
}
