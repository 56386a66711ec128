// Package notify publishes certferry's alerts to the SNS topic: one message
// per alert, readable by a person (mail, chat) and carrying message
// attributes for filtering subscriptions.
package notify

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/certferry/certferry/internal/inventory"
)

// MaxNodesListed bounds the nodes listed per name in one message; SNS takes
// at most 256 KB and a person reads far less.
const MaxNodesListed = 50

// MaxMessageBytes is the budget of one published alert: message, subject
// and attributes. SNS takes 262,144 bytes in all ("Amazon SNS message
// size": 256 KB including message attributes); the margin covers the
// attributes' encoding.
const MaxMessageBytes = 250_000

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
	// NodesUnknown: the name's nodes were not read (inventory error, or
	// the name was deleted meanwhile), so Nodes says nothing, not "none".
	NodesUnknown bool
	// Targets describes the name's targets (e.g. "tag:env=prod"), said
	// when no node has reported yet: tag targets list no node until
	// SSM reports one.
	Targets string
	// Which qualifies Nodes when they are a selection, e.g. "that did
	// not install": the line then counts only those.
	Which string
}

// NameFrom is the Name line of name as the inventory describes it: its
// deployed serial, targets and nodes. d nil (the inventory could not be
// read) or without a certificate (the name was deleted meanwhile): nodes
// unknown.
func NameFrom(name string, d *inventory.Detail) Name {
	entry := Name{Name: name}
	if d == nil || d.Cert == nil {
		entry.NodesUnknown = true
		return entry
	}
	entry.Serial = d.Cert.Serial
	entry.Targets = TargetsText(d.Cert.Targets)
	for _, nd := range d.Nodes {
		entry.Nodes = append(entry.Nodes, Node{InstanceID: nd.InstanceID, State: string(nd.State), Serial: nd.Serial, Error: nd.Error})
	}
	return entry
}

// nodesText (after the name) says how many nodes a name has, or why none is listed.
func (n Name) nodesText() string {
	switch {
	case n.Which != "":
		return fmt.Sprintf(" with %d node(s) %s", len(n.Nodes), n.Which)
	case n.NodesUnknown:
		return ": nodes unknown (not read from the inventory)"
	case len(n.Nodes) == 0 && n.Targets != "":
		return ": no node has reported yet (targets " + clip(n.Targets, 512) + ")"
	case len(n.Nodes) == 0:
		return ": no node has reported yet"
	}
	return fmt.Sprintf(" on %d node(s)", len(n.Nodes))
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

// Text renders the message body within MaxMessageBytes (less room for
// the subject and attributes): the title, the certificate, the advice and
// the event id always; facts, names and nodes as long as they fit, then a
// "… and N more" line.
func (a Alert) Text() string {
	budget := MaxMessageBytes - 1024
	var head strings.Builder
	fmt.Fprintf(&head, "%s\n\n", clip(a.Title, 512))
	if a.CertificateARN != "" {
		fmt.Fprintf(&head, "Certificate: %s\n", clip(a.CertificateARN, 512))
	}
	if a.Domain != "" {
		fmt.Fprintf(&head, "Domain:      %s\n", clip(a.Domain, 512))
	}
	if a.NotAfter != "" {
		fmt.Fprintf(&head, "Expires:     %s\n", clip(a.NotAfter, 64))
	}
	if a.DaysToExpiry != nil {
		fmt.Fprintf(&head, "Days to expiry: %d\n", *a.DaysToExpiry)
	}
	var tail strings.Builder
	if len(a.Advice) > 0 {
		tail.WriteString("\nWhat to do:\n")
		for _, s := range a.Advice {
			fmt.Fprintf(&tail, "  * %s\n", clip(s, 2048))
		}
	}
	if a.EventID != "" {
		fmt.Fprintf(&tail, "\nEventBridge event: %s\n", clip(a.EventID, 256))
	}
	// Lines are added while they fit, keeping room for one summary line.
	const summaryRoom = 256
	// Facts take at most 32 KB, so that the names and nodes, which the
	// alert is about, always have room.
	facts := &budgeted{left: 32 * 1024}
	for i, f := range a.Facts {
		if !facts.add(fmt.Sprintf("- %s\n", clip(f, 1024))) {
			facts.b.WriteString(fmt.Sprintf("- … and %d more facts\n", len(a.Facts)-i))
			break
		}
	}
	body := &budgeted{left: budget - head.Len() - facts.b.Len() - tail.Len() - summaryRoom}
	head.WriteString(facts.b.String())
	if len(a.Names) > 0 {
		body.add(fmt.Sprintf("\ncertferry names bound to it (%d):\n", len(a.Names)))
	names:
		for i, n := range a.Names {
			if !body.add(fmt.Sprintf("  %s (deployed serial %s)%s\n", n.Name, clip(cmp.Or(n.Serial, "none"), 128), n.nodesText())) {
				body.summary = moreNames(a.Names[i:])
				break
			}
			for j, nd := range n.Nodes {
				if j == MaxNodesListed {
					body.add(fmt.Sprintf("    … and %d more (GET /certificates/%s lists them all)\n", len(n.Nodes)-j, n.Name))
					break
				}
				if !body.add(nodeLine(nd)) {
					body.summary = fmt.Sprintf("    … and %d more nodes of %s (GET /certificates/%s lists them all)\n", len(n.Nodes)-j, n.Name, n.Name) +
						moreNames(a.Names[i+1:])
					break names
				}
			}
		}
	}
	return head.String() + body.b.String() + body.summary + tail.String()
}

// budgeted collects lines while they fit in left bytes.
type budgeted struct {
	b       strings.Builder
	left    int
	summary string
}

func (t *budgeted) add(line string) bool {
	if len(line) > t.left {
		return false
	}
	t.left -= len(line)
	t.b.WriteString(line)
	return true
}

func nodeLine(nd Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "    %s  %s", clip(nd.InstanceID, 64), clip(nd.State, 32))
	if nd.Serial != "" {
		fmt.Fprintf(&b, "  serial %s", clip(nd.Serial, 128))
	}
	if nd.Error != "" {
		fmt.Fprintf(&b, "  error: %s", clip(nd.Error, 256))
	}
	b.WriteString("\n")
	return b.String()
}

// moreNames summarises the names that did not fit.
func moreNames(rest []Name) string {
	if len(rest) == 0 {
		return ""
	}
	nodes := 0
	for _, n := range rest {
		nodes += len(n.Nodes)
	}
	return fmt.Sprintf("  … and %d more names with %d reported node(s) (GET /certificates lists them)\n", len(rest), nodes)
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
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
