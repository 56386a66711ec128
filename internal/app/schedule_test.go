package app

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/schedule"
)

func TestNewScheduler(t *testing.T) {
	if s := NewScheduler(aws.Config{Region: "us-east-1"}, config.Config{}); s != nil {
		t.Fatalf("a scheduler without settings: %+v", s)
	}
	sc := config.Schedule{Group: "certferry-prod", RoleARN: "arn:aws:iam::123456789012:role/r",
		TargetARN: "arn:aws:lambda:us-east-1:123456789012:function:f", DeadLetterARN: "arn:aws:sqs:us-east-1:123456789012:q"}
	s := NewScheduler(aws.Config{Region: "us-east-1"}, config.Config{Schedule: sc})
	want := schedule.Config{Group: sc.Group, TargetARN: sc.TargetARN, RoleARN: sc.RoleARN, DeadLetterARN: sc.DeadLetterARN}
	if s == nil || s.Config() != want {
		t.Fatalf("scheduler %+v, want config %+v", s, want)
	}
}
