// Package notify publishes certferry's alerts to the SNS topic: one message
// per alert, readable by a person (mail, chat) and carrying message
// attributes for filtering subscriptions.
package notify

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// MaxNodesListed bounds the nodes listed per name in one message; SNS takes
// at most 256 KB and a person reads far less.
const MaxNodesListed = 50

// Node is one node that carries (or should carry) a certificate.
type Node struct {
	InstanceID string
	State      string
	Serial     string
	Error      string
}

// Name is one certferry name bound to the certificate, with its nodes.
type Name struct {
	Name   string
	Serial string // the serial certferry deployed
	Nodes  []Node
}

// Alert is one message.
type Alert struct {
	Kind           string // machine-readable kind, e.g. renewal-action-required
	Title          string // one line, becomes the SNS subject
	CertificateARN string
	Domain         string
	NotAfter       string // RFC3339, when known
	DaysToExpiry   *int
	Names          []Name
	Facts          []string // what certferry knows (event text, ACM status)
	Advice         []string // what the operator should do
	EventID        string
}

// Text renders the message body.
func (a Alert) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", a.Title)
	if a.CertificateARN != "" {
		fmt.Fprintf(&b, "Certificate: %s\n", a.CertificateARN)
	}
	if a.Domain != "" {
		fmt.Fprintf(&b, "Domain:      %s\n", a.Domain)
	}
	if a.NotAfter != "" {
		fmt.Fprintf(&b, "Expires:     %s\n", a.NotAfter)
	}
	if a.DaysToExpiry != nil {
		fmt.Fprintf(&b, "Days to expiry: %d\n", *a.DaysToExpiry)
	}
	for _, f := range a.Facts {
		fmt.Fprintf(&b, "- %s\n", f)
	}
	if len(a.Names) > 0 {
		fmt.Fprintf(&b, "\ncertferry names bound to it (%d):\n", len(a.Names))
	}
	for _, n := range a.Names {
		fmt.Fprintf(&b, "  %s (deployed serial %s) on %d node(s)\n", n.Name, cmp.Or(n.Serial, "none"), len(n.Nodes))
		for i, nd := range n.Nodes {
			if i == MaxNodesListed {
				fmt.Fprintf(&b, "    … and %d more (GET /certificates/%s lists them all)\n", len(n.Nodes)-i, n.Name)
				break
			}
			fmt.Fprintf(&b, "    %s  %s", nd.InstanceID, nd.State)
			if nd.Serial != "" {
				fmt.Fprintf(&b, "  serial %s", nd.Serial)
			}
			if nd.Error != "" {
				fmt.Fprintf(&b, "  error: %s", nd.Error)
			}
			b.WriteString("\n")
		}
	}
	if len(a.Advice) > 0 {
		b.WriteString("\nWhat to do:\n")
		for _, s := range a.Advice {
			fmt.Fprintf(&b, "  * %s\n", s)
		}
	}
	if a.EventID != "" {
		fmt.Fprintf(&b, "\nEventBridge event: %s\n", a.EventID)
	}
	return b.String()
}

// Subject is the SNS subject: ASCII, one line, at most 99 characters
// ("Publish", Amazon SNS API Reference: "less than 100 characters long").
func (a Alert) Subject() string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return ' '
		}
		return r
	}, "certferry: "+a.Title)
	if len(s) > 99 {
		s = s[:96] + "..."
	}
	return s
}

type snsAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ snsAPI = (*sns.Client)(nil)

// Publisher sends alerts to one topic.
type Publisher struct {
	api   snsAPI
	topic string
}

// NewPublisher returns a Publisher on topicARN.
func NewPublisher(api snsAPI, topicARN string) *Publisher {
	return &Publisher{api: api, topic: topicARN}
}

// Publish sends one message and returns its SNS message id.
func (p *Publisher) Publish(ctx context.Context, a Alert) (string, error) {
	attrs := map[string]snstypes.MessageAttributeValue{
		"kind": {DataType: aws.String("String"), StringValue: aws.String(a.Kind)},
	}
	if a.CertificateARN != "" {
		attrs["certificateArn"] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(a.CertificateARN)}
	}
	out, err := p.api.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(p.topic), Subject: aws.String(a.Subject()), Message: aws.String(a.Text()),
		MessageAttributes: attrs,
	})
	if err != nil {
		return "", fmt.Errorf("publish %s alert for %s: %w", a.Kind, a.CertificateARN, err)
	}
	return aws.ToString(out.MessageId), nil
}
