// Package fleet sends certferry's SSM document to the target nodes and finds
// the command a run already sent, so that a retried deployment never sends
// twice. A command is found by the send id certferry generated before
// sending it (carried in SendCommand's Comment), never by its parameters
// alone: an earlier run's command with the same parameters is not this
// run's.
package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/certferry/certferry/internal/spec"
)

type ssmAPI interface {
	SendCommand(ctx context.Context, in *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	ListCommands(ctx context.Context, in *ssm.ListCommandsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
}

var _ ssmAPI = (*ssm.Client)(nil)

// Options tune how SSM rolls a command out.
type Options struct {
	Document       string // name or ARN of certferry's SSM document
	MaxConcurrency string // default "25%"
	MaxErrors      string // default "25%"
	TimeoutSeconds int32  // delivery timeout, default 600
	// Installer is where the stack published the node installer; every
	// command carries it (the document downloads and checks the binary).
	Installer Installer
}

// DefaultInstallerKeyPrefix is the stack's installer key prefix.
const DefaultInstallerKeyPrefix = "installer/"

// Installer locates the published node installer: the objects are
// <KeyPrefix><sha256>/certferry-node (Linux) and .../certferry-node.exe
// (Windows) in Bucket (NODE-CONTRACT.md "Layout").
type Installer struct {
	Bucket             string
	KeyPrefix          string
	SHA256LinuxAmd64   string
	SHA256LinuxArm64   string
	SHA256WindowsAmd64 string
}

// Fleet sends install commands.
type Fleet struct {
	api  ssmAPI
	opts Options
}

// New returns a Fleet; zero fields in opts take their defaults.
func New(api ssmAPI, opts Options) *Fleet {
	if opts.MaxConcurrency == "" {
		opts.MaxConcurrency = "25%"
	}
	if opts.MaxErrors == "" {
		opts.MaxErrors = "25%"
	}
	if opts.TimeoutSeconds == 0 {
		opts.TimeoutSeconds = 600
	}
	if opts.Installer.KeyPrefix == "" {
		opts.Installer.KeyPrefix = DefaultInstallerKeyPrefix
	}
	return &Fleet{api: api, opts: opts}
}

// Install is one install order: which bundle, where, checked against what.
type Install struct {
	Spec                spec.Spec // validated, defaults applied
	SecretID            string    // secret name or ARN the node reads
	Region              string
	ServerName          string // SNI for the check (spec's, or derived from the domain)
	ExpectedFingerprint string
	Serial              string
	// Only, when set, replaces the spec's targets with these instances (the
	// sweep's resends to particular nodes).
	Only []string
	// SendID links the command to the deployment that sends it: generated
	// by the caller and recorded before Send, carried in the Comment, and
	// the only thing Find adopts a command by (NewSendID).
	SendID string
	// AllowedPrefixes are the directories the node may write under (the
	// list the spec was checked against); nil lets the node use its default.
	AllowedPrefixes []string
	// StopAlarm, when set, is the CloudWatch alarm that stops the command
	// (the name's rollout.stopAlarm): SendCommand's AlarmConfiguration.
	StopAlarm string
}

// sendIDPattern is the shape of a send id: 32 lowercase hex digits.
var sendIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// NewSendID returns a fresh random send id.
func NewSendID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// InstallKey identifies what an install sends (document parameters and
// targets), so that a recorded send id is reused only for the same install.
func InstallKey(in Install) string {
	var targets any = in.Spec.Targets
	if ids := in.Instances(); ids != nil {
		targets = sorted(ids)
	}
	b, _ := json.Marshal(struct {
		P map[string][]string
		T any
		A string `json:",omitempty"`
	}{Parameters(in), targets, in.StopAlarm})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Instances returns the instance ids the install targets, or nil for tag
// targets (SSM resolves those).
func (in Install) Instances() []string {
	if len(in.Only) > 0 {
		return in.Only
	}
	return in.Spec.InstanceIDs()
}

// ErrInstancesRefused: SSM refused a SendCommand by InstanceIds with
// InvalidInstanceId, so nothing was sent to any of them ("SendCommand",
// Systems Manager API Reference; the error's documentation in the SSM API
// model: the node is not registered with SSM any more, or is
// Shutting-down or Terminated, or the caller may not reach it). Which id
// it was the answer does not say in a documented way: Resolver.Unmanaged
// asks DescribeInstanceInformation one id at a time.
var ErrInstancesRefused = errors.New("SSM refused the instance ids (InvalidInstanceId): nothing was sent")

// Command is a sent (or found) SSM command.
type Command struct {
	ID          string
	InstanceIDs []string // as SSM reports them; empty for tag targets on real SSM
	TargetCount int
}

// Parameters are the document parameters of an install: references and
// install options only, never certificate or key material. Paths a format
// does not use go as "" (NODE-CONTRACT.md "Document parameters").
func Parameters(in Install) map[string][]string {
	l := in.Spec.Linux
	port := 0
	if l.VerifyPort != nil {
		port = *l.VerifyPort
	}
	return map[string][]string{
		"SecretId":            {in.SecretID},
		"CertName":            {in.Spec.Name},
		"Format":              {l.EffectiveFormat()},
		"CertPath":            {l.CertPath},
		"KeyPath":             {l.KeyPath},
		"ChainPath":           {l.ChainPath},
		"KeystorePath":        {l.KeystorePath},
		"Owner":               {l.Owner},
		"Group":               {l.Group},
		"CertMode":            {l.CertMode},
		"KeyMode":             {l.KeyMode},
		"ReloadService":       {l.ReloadService},
		"VerifyPort":          {strconv.Itoa(port)},
		"VerifyAddress":       {l.VerifyAddress},
		"ServerName":          {in.ServerName},
		"Starttls":            {l.Starttls},
		"AllowedPrefixes":     {strings.Join(in.AllowedPrefixes, ":")},
		"ExpectedFingerprint": {in.ExpectedFingerprint},
		"Region":              {in.Region},
		"CertStore":           {in.Spec.Windows.Store},
		"IisSite":             {in.Spec.Windows.IISSite},
	}
}

// parameters are the install's Parameters plus where the node finds the
// installer.
func (f *Fleet) parameters(in Install) map[string][]string {
	p := Parameters(in)
	i := f.opts.Installer
	p["InstallerBucket"] = []string{i.Bucket}
	p["InstallerKeyPrefix"] = []string{i.KeyPrefix}
	p["InstallerSha256LinuxAmd64"] = []string{i.SHA256LinuxAmd64}
	p["InstallerSha256LinuxArm64"] = []string{i.SHA256LinuxArm64}
	p["InstallerSha256WindowsAmd64"] = []string{i.SHA256WindowsAmd64}
	return p
}

// Send runs the document on the install's targets. The install's SendID
// (required) goes into the command's Comment.
func (f *Fleet) Send(ctx context.Context, in Install) (Command, error) {
	if !sendIDPattern.MatchString(in.SendID) {
		return Command{}, fmt.Errorf("send command for %s: send id %q is not 32 hex digits", in.Spec.Name, in.SendID)
	}
	req := &ssm.SendCommandInput{
		DocumentName:   aws.String(f.opts.Document),
		Parameters:     f.parameters(in),
		MaxConcurrency: aws.String(f.opts.MaxConcurrency),
		MaxErrors:      aws.String(f.opts.MaxErrors),
		TimeoutSeconds: aws.Int32(f.opts.TimeoutSeconds),
		Comment:        aws.String(comment(in)),
	}
	if in.StopAlarm != "" {
		// "SendCommand" / AlarmConfiguration (Systems Manager API
		// Reference): Alarms holds exactly one alarm (the model's
		// AlarmList: min 1, max 1); IgnorePollAlarmFailure false, so a
		// command whose alarm cannot be read does not run blind.
		req.AlarmConfiguration = &ssmtypes.AlarmConfiguration{
			Alarms:                 []ssmtypes.Alarm{{Name: aws.String(in.StopAlarm)}},
			IgnorePollAlarmFailure: false,
		}
	}
	if ids := in.Instances(); ids != nil {
		req.InstanceIds = ids
	} else {
		for _, t := range in.Spec.Targets {
			req.Targets = append(req.Targets, ssmtypes.Target{Key: aws.String(t.Key), Values: t.Values})
		}
	}
	out, err := f.api.SendCommand(ctx, req)
	if err != nil && req.InstanceIds != nil && IsNotManaged(err) {
		// "SendCommand" (Systems Manager API Reference): InvalidInstanceId
		// fails the whole call: no node of it got the command.
		return Command{}, fmt.Errorf("send command for %s to %d instance(s): %w: %w", in.Spec.Name, len(req.InstanceIds), ErrInstancesRefused, err)
	}
	if err != nil {
		return Command{}, fmt.Errorf("send command for %s to %s: %w", in.Spec.Name, describeTargets(in.Spec.Targets), err)
	}
	return fromSDK(out.Command), nil
}

// Find returns the command sent since since that carries the install's
// SendID in its Comment, for the same install (same document, parameters
// and targets) and not cancelled, or nil. Without a SendID nothing is
// adopted.
func (f *Fleet) Find(ctx context.Context, in Install, since time.Time) (*Command, error) {
	if !sendIDPattern.MatchString(in.SendID) {
		return nil, nil
	}
	want := f.parameters(in)
	p := ssm.NewListCommandsPaginator(f.api, &ssm.ListCommandsInput{
		Filters: []ssmtypes.CommandFilter{
			{Key: ssmtypes.CommandFilterKeyDocumentName, Value: aws.String(f.opts.Document)},
			{Key: ssmtypes.CommandFilterKeyInvokedAfter, Value: aws.String(since.UTC().Format(time.RFC3339))},
		},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list commands of %s: %w", f.opts.Document, err)
		}
		for i := range page.Commands {
			c := &page.Commands[i]
			if aws.ToString(c.DocumentName) != f.opts.Document || c.Status == ssmtypes.CommandStatusCancelled ||
				c.Status == ssmtypes.CommandStatusCancelling {
				continue
			}
			if c.RequestedDateTime != nil && c.RequestedDateTime.Before(since) {
				continue
			}
			if sendIDOf(aws.ToString(c.Comment)) != in.SendID ||
				!maps.EqualFunc(c.Parameters, want, slices.Equal) || !sameTargets(c, in) || alarmOf(c) != in.StopAlarm {
				continue
			}
			cmd := fromSDK(c)
			return &cmd, nil
		}
	}
	return nil, nil
}

func sameTargets(c *ssmtypes.Command, in Install) bool {
	sp := in.Spec
	if ids := in.Instances(); ids != nil {
		return len(c.Targets) == 0 && slices.Equal(sorted(c.InstanceIds), sorted(ids))
	}
	if len(c.Targets) != len(sp.Targets) {
		return false
	}
	for i, t := range c.Targets {
		if aws.ToString(t.Key) != sp.Targets[i].Key || !slices.Equal(t.Values, sp.Targets[i].Values) {
			return false
		}
	}
	return true
}

// alarmOf is the stop alarm a listed command carries, or "".
func alarmOf(c *ssmtypes.Command) string {
	if c.AlarmConfiguration == nil || len(c.AlarmConfiguration.Alarms) == 0 {
		return ""
	}
	return aws.ToString(c.AlarmConfiguration.Alarms[0].Name)
}

func sorted(xs []string) []string { return slices.Sorted(slices.Values(xs)) }

func fromSDK(c *ssmtypes.Command) Command {
	if c == nil {
		return Command{}
	}
	return Command{ID: aws.ToString(c.CommandId), InstanceIDs: c.InstanceIds, TargetCount: int(c.TargetCount)}
}

// commentPrefix starts every Comment certferry writes; the send id follows.
const commentPrefix = "certferry "

// comment is "certferry <send id> <name> serial <serial>", cut at 100
// bytes, SendCommand's limit for Comment (the SSM API model: Comment max
// 100). The send id comes first so that it always fits (10 + 32 bytes).
func comment(in Install) string {
	s := commentPrefix + in.SendID + " " + in.Spec.Name + " serial " + in.Serial
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// sendIDOf returns the send id a certferry Comment carries, or "".
func sendIDOf(c string) string {
	rest, ok := strings.CutPrefix(c, commentPrefix)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, " ")
	if !sendIDPattern.MatchString(id) {
		return ""
	}
	return id
}

func describeTargets(ts []spec.Target) string {
	if len(ts) == 1 {
		return fmt.Sprintf("%s=%v", ts[0].Key, ts[0].Values)
	}
	return fmt.Sprintf("%d targets", len(ts))
}
