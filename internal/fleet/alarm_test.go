package fleet

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// A name with rollout.stopAlarm sends every command with SendCommand's
// AlarmConfiguration: exactly one alarm, IgnorePollAlarmFailure false;
// without it, no AlarmConfiguration at all (today's request).
func TestSendStopAlarm(t *testing.T) {
	tests := []struct {
		name  string
		alarm string
	}{
		{"no alarm", ""},
		{"stop alarm", "shop-web-5xx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &fakeSSM{}
			in := install("shop-web")
			in.SendID, in.StopAlarm = NewSendID(), tt.alarm
			if _, err := New(api, Options{Document: "doc"}).Send(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			ac := api.sent[0].AlarmConfiguration
			if tt.alarm == "" {
				if ac != nil {
					t.Fatalf("AlarmConfiguration %+v without a stop alarm", ac)
				}
				return
			}
			if ac == nil || len(ac.Alarms) != 1 || aws.ToString(ac.Alarms[0].Name) != tt.alarm || ac.IgnorePollAlarmFailure {
				t.Fatalf("AlarmConfiguration %+v, want exactly %q and IgnorePollAlarmFailure false", ac, tt.alarm)
			}
		})
	}
}

// The alarm is part of the install: a listed command with another (or no)
// alarm is never adopted, and the install key differs.
func TestFindComparesTheStopAlarm(t *testing.T) {
	in := install("shop-web")
	in.SendID, in.StopAlarm = NewSendID(), "shop-web-5xx"
	without := in
	without.StopAlarm = ""
	if InstallKey(in) == InstallKey(without) {
		t.Fatal("the stop alarm is not part of the install key")
	}
	c := listed(in, "certferry "+in.SendID+" shop-web serial x")
	f := New(&fakeSSM{commands: []ssmtypes.Command{c}}, Options{Document: "doc"})
	if got, err := f.Find(context.Background(), in, c.RequestedDateTime.Add(-1)); err != nil || got != nil {
		t.Fatalf("adopted %+v (%v) though the listed command has no alarm", got, err)
	}
	c.AlarmConfiguration = &ssmtypes.AlarmConfiguration{Alarms: []ssmtypes.Alarm{{Name: aws.String("shop-web-5xx")}}}
	f = New(&fakeSSM{commands: []ssmtypes.Command{c}}, Options{Document: "doc"})
	if got, err := f.Find(context.Background(), in, c.RequestedDateTime.Add(-1)); err != nil || got == nil {
		t.Fatalf("not adopted (%v) though alarm and send id match", err)
	}
}
