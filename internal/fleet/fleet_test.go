package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/certferry/certferry/internal/spec"
)

// fakeSSM lists the commands it holds and records what was sent.
type fakeSSM struct {
	commands []ssmtypes.Command
	sent     []*ssm.SendCommandInput
}

func (f *fakeSSM) SendCommand(_ context.Context, in *ssm.SendCommandInput, _ ...func(*ssm.Options)) (*ssm.SendCommandOutput, error) {
	f.sent = append(f.sent, in)
	return &ssm.SendCommandOutput{Command: &ssmtypes.Command{CommandId: aws.String("cmd-sent")}}, nil
}

func (f *fakeSSM) ListCommands(context.Context, *ssm.ListCommandsInput, ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	return &ssm.ListCommandsOutput{Commands: f.commands}, nil
}

func install(name string) Install {
	port := 443
	sp := spec.Spec{Name: name, Targets: []spec.Target{{Key: "tag:env", Values: []string{"prod"}}}}
	sp.Linux.VerifyPort = &port
	return Install{Spec: sp, SecretID: "certferry/" + name, Region: "us-east-1", Serial: strings.Repeat("ab", 20)}
}

func listed(in Install, comment string) ssmtypes.Command {
	return ssmtypes.Command{
		CommandId: aws.String("cmd-" + comment), DocumentName: aws.String("doc"), Parameters: New(nil, Options{Document: "doc"}).parameters(in),
		Targets: []ssmtypes.Target{{Key: aws.String("tag:env"), Values: []string{"prod"}}}, Comment: aws.String(comment),
		Status: ssmtypes.CommandStatusSuccess, RequestedDateTime: aws.Time(time.Now()),
	}
}

func TestFindAdoptsOnlyTheCommandCarryingTheSendID(t *testing.T) {
	in := install("shop-web")
	in.SendID = NewSendID()
	other := NewSendID()
	tests := []struct {
		name    string
		listed  []ssmtypes.Command
		sendID  string
		wantCmd string
	}{
		{"earlier run's command, same parameters", []ssmtypes.Command{listed(in, "certferry "+other+" shop-web serial x")}, in.SendID, ""},
		{"pre-send-id comment, same parameters", []ssmtypes.Command{listed(in, "certferry shop-web serial x")}, in.SendID, ""},
		{"this run's command", []ssmtypes.Command{
			listed(in, "certferry "+other+" shop-web serial x"), listed(in, "certferry "+in.SendID+" shop-web serial x"),
		}, in.SendID, "cmd-certferry " + in.SendID + " shop-web serial x"},
		{"no send id: nothing adopted", []ssmtypes.Command{listed(in, "certferry "+in.SendID+" shop-web serial x")}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New(&fakeSSM{commands: tc.listed}, Options{Document: "doc"})
			q := in
			q.SendID = tc.sendID
			got, err := f.Find(context.Background(), q, time.Now().Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantCmd == "" && got != nil:
				t.Fatalf("adopted %s, want nothing", got.ID)
			case tc.wantCmd != "" && (got == nil || got.ID != tc.wantCmd):
				t.Fatalf("adopted %v, want %s", got, tc.wantCmd)
			}
		})
	}
}

// The Comment carries the send id first and stays within SendCommand's
// limit of 100 characters (SSM API model: Comment max 100), whatever the
// name's length.
func TestSendCommentCarriesTheSendID(t *testing.T) {
	api := &fakeSSM{}
	f := New(api, Options{Document: "doc"})
	in := install(strings.Repeat("n", 63))
	if _, err := f.Send(context.Background(), in); err == nil {
		t.Fatal("Send without a send id: no error")
	}
	in.SendID = NewSendID()
	if _, err := f.Send(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	c := aws.ToString(api.sent[0].Comment)
	if len(c) > 100 || sendIDOf(c) != in.SendID {
		t.Fatalf("comment %q (%d bytes): want the send id within 100 bytes", c, len(c))
	}
}
