package notify

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/certferry/certferry/internal/inventory"
)

type fakeSNS struct{ in *sns.PublishInput }

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.in = in
	return &sns.PublishOutput{MessageId: new(string)}, nil
}

// publishedBytes counts what SNS counts against its 256 KB limit: the
// message, the subject and every message attribute's name, type and value
// ("Amazon SNS message size": 262,144 bytes including attributes).
func publishedBytes(in *sns.PublishInput) int {
	n := len(*in.Message) + len(*in.Subject)
	for k, v := range in.MessageAttributes {
		n += len(k) + len(*v.DataType) + len(*v.StringValue)
	}
	return n
}

// An alert on a huge fleet stays within SNS's limit: names and nodes are
// listed up to a budget, then summarised as "… and N more", and the advice
// is always there.
func TestAlertStaysWithinSNSLimit(t *testing.T) {
	big := make([]Node, 20_000)
	for i := range big {
		big[i] = Node{InstanceID: fmt.Sprintf("i-%017x", i), State: "failed", Serial: strings.Repeat("ab", 20),
			Error: strings.Repeat("handshake served another certificate; ", 20)}
	}
	many := []Name{{Name: "huge-fleet", Serial: "0b", Nodes: big}}
	for i := range 3000 {
		many = append(many, Name{Name: fmt.Sprintf("name-%04d", i), Serial: "0b", Nodes: big[:60]})
	}
	var facts []string
	for i := range 500 {
		facts = append(facts, fmt.Sprintf("fact %d: %s", i, strings.Repeat("x", 900)))
	}
	for _, tc := range []struct {
		name  string
		names []Name
		facts []string
	}{
		{"one name on 20,000 nodes", many[:1], nil},
		{"3,001 names", many, nil},
		{"long facts", many[:2], facts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := Alert{Kind: "certificate-revoked", Title: "shop.example.com was revoked", CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/x",
				Names: tc.names, Facts: tc.facts, Advice: []string{"Request a replacement certificate."}, EventID: "ev-1"}
			f := &fakeSNS{}
			if _, err := NewPublisher(f, "arn:aws:sns:us-east-1:123456789012:t").Publish(context.Background(), a); err != nil {
				t.Fatal(err)
			}
			if n := publishedBytes(f.in); n > MaxMessageBytes {
				t.Fatalf("published %d bytes, over the %d budget (SNS takes 262,144)", n, MaxMessageBytes)
			}
			text := *f.in.Message
			for _, want := range []string{"Request a replacement certificate.", "EventBridge event: ev-1", "… and", tc.names[0].Name} {
				if !strings.Contains(text, want) {
					t.Errorf("message lacks %q", want)
				}
			}
			if len(tc.names) > 1 && !strings.Contains(text, fmt.Sprintf("certferry names bound to it (%d)", len(tc.names))) {
				t.Error("message does not give the number of names")
			}
		})
	}
}

// NameFrom: an inventory that could not be read or a name deleted
// meanwhile leave the nodes unknown (not "none"); otherwise the deployed
// serial, the targets and every node with its state and error.
func TestNameFrom(t *testing.T) {
	cert := &inventory.Cert{Serial: "0a:0b"}
	cert.Targets = tagTarget
	for _, tc := range []struct {
		name string
		d    *inventory.Detail
		want Name
	}{
		{"inventory not read", nil, Name{Name: "shop-web", NodesUnknown: true}},
		{"deleted meanwhile", &inventory.Detail{}, Name{Name: "shop-web", NodesUnknown: true}},
		{"no node yet", &inventory.Detail{Cert: cert}, Name{Name: "shop-web", Serial: "0a:0b", Targets: "tag:env=prod"}},
		{"nodes", &inventory.Detail{Cert: cert, Nodes: []inventory.Node{
			{InstanceID: "i-1", State: inventory.NodeInstalled, Serial: "0a:0b"},
			{InstanceID: "i-2", State: inventory.NodeFailed, Error: "reload failed"},
		}}, Name{Name: "shop-web", Serial: "0a:0b", Targets: "tag:env=prod", Nodes: []Node{
			{InstanceID: "i-1", State: "installed", Serial: "0a:0b"},
			{InstanceID: "i-2", State: "failed", Error: "reload failed"},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NameFrom("shop-web", tc.d); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("NameFrom = %+v, want %+v", got, tc.want)
			}
		})
	}
}
