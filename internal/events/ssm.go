package events

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/certferry/certferry/internal/spec"
)

// SSM status-change events certferry's tracker reads.
const (
	SourceSSM              = "aws.ssm"
	DetailInvocationStatus = "EC2 Command Invocation Status-change Notification"
	DetailCommandStatus    = "EC2 Command Status-change Notification"
)

// Status is one SSM status-change event: of one node's invocation
// (InstanceID set) or of the whole command.
type Status struct {
	ID         string
	Invocation bool
	CommandID  string
	Document   string
	InstanceID string
	Status     string // as SSM spells it: Success, Failed, TimedOut, …
}

var (
	commandIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	statusPattern    = regexp.MustCompile(`^[A-Za-z]{1,32}$`)
)

// Final reports whether an SSM status is final for an invocation or
// command (nothing follows it).
func Final(status string) bool {
	switch status {
	case "Success", "Failed", "TimedOut", "Cancelled", "DeliveryTimedOut", "ExecutionTimedOut",
		"Undeliverable", "Terminated", "Incomplete", "AccessDenied", "RateExceeded":
		return true
	}
	return false
}

// ParseStatus reads an SSM status-change event; ok is false for events of
// other sources or detail types, which callers acknowledge. An event of the
// right type without a command id, or an invocation without its instance
// id, is malformed.
func ParseStatus(raw []byte) (Status, bool, error) {
	env, d, err := readEnvelope(raw)
	if err != nil {
		return Status{}, false, err
	}
	s := Status{ID: string(env.ID)}
	if err := checkID(s.ID); err != nil {
		return Status{}, false, err
	}
	if string(env.Source) != SourceSSM {
		return s, false, nil
	}
	switch string(env.DetailType) {
	case DetailInvocationStatus:
		s.Invocation = true
	case DetailCommandStatus:
	default:
		return s, false, nil
	}
	s.CommandID = strings.ToLower(text(d, "command-id"))
	s.Document = Clean(text(d, "document-name"), 256)
	s.InstanceID = strings.ToLower(text(d, "instance-id"))
	if st := text(d, "status"); statusPattern.MatchString(st) {
		s.Status = st
	}
	switch {
	case !commandIDPattern.MatchString(s.CommandID):
		return Status{}, false, fmt.Errorf("%w: %s event %s has no SSM command id", ErrMalformed, env.DetailType, s.ID)
	case s.Invocation && !spec.InstanceIDPattern.MatchString(s.InstanceID):
		return Status{}, false, fmt.Errorf("%w: invocation event %s has no instance id", ErrMalformed, s.ID)
	case s.Status == "":
		return Status{}, false, fmt.Errorf("%w: %s event %s has no status", ErrMalformed, env.DetailType, s.ID)
	}
	return s, true, nil
}
