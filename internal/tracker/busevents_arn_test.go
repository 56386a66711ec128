package tracker

import (
	"context"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/busevents"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
)

// withCert is the fake store that also answers GetCert (the inventory
// does), for the certificate ARN of Deployment Finished.
type withCert struct {
	*fakeStore
	cert *inventory.Cert
}

func (w withCert) GetCert(context.Context, string) (*inventory.Cert, error) { return w.cert, nil }

// Deployment Finished names the certificate the deployment sent: the
// name's bound ARN while META still holds the deployment's certificate,
// none when the name has moved on (a rebind to another ARN, a newer
// deployment) - never another certificate's ARN beside this serial.
func TestDeploymentFinishedARNIsTheDeployedOne(t *testing.T) {
	const arnNow = "arn:aws:acm:us-east-1:123456789012:certificate/22222222-2222-3333-4444-555555555555"
	for _, tc := range []struct {
		name        string
		fingerprint string
		want        string
	}{
		{name: "still the deployed certificate", fingerprint: fp, want: arnNow},
		{name: "rebound and redeployed since", fingerprint: "AA:BB", want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{ref: &inventory.CommandRef{CommandID: cmdID, Name: "shop-web", DeploymentID: "d1"},
				dep: &inventory.Deployment{ID: "d1", Serial: "0c", Fingerprint: fp, InstanceIDs: []string{nodeID}, Trigger: inventory.TriggerACM,
					Outcome: inventory.OutcomeInProgress, Counts: map[inventory.NodeState]int{inventory.NodeInstalled: 1}}}
			cert := &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: arnNow}, Fingerprint: tc.fingerprint}
			tr := New(withCert{st, cert}, &fakeSSM{stdout: result("installed", fp), status: "Success"}, &fakeAlerts{}, nil,
				Config{Document: "certferry-install", ReadBackoff: time.Nanosecond})
			bus := &fakeBus{}
			tr.WithEvents(bus)
			if _, err := tr.Handle(context.Background(), sample(t, "tracker-invocation-success.json", "Success")); err != nil {
				t.Fatal(err)
			}
			if len(bus.sent) != 1 {
				t.Fatalf("sent %v", bus.sent)
			}
			if got := bus.sent[0].(busevents.DeploymentFinished).CertificateARN; got != tc.want {
				t.Fatalf("certificateArn %q, want %q", got, tc.want)
			}
		})
	}
}
