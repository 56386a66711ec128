// Package schedule puts certferry's timed rollout steps on EventBridge
// Scheduler: one one-time schedule per step (a maintenance window opens, a
// wave's pause ends, the expiry override's deadline, an approval reminder),
// which invokes the renewal function once with the step as an
// EventBridge-shaped event (Render; internal/events parses it back as
// KindRolloutStep). Delivery is at least once: whoever handles a step
// re-checks everything.
package schedule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/certferry/certferry/internal/spec"
)

// StepKind is what a step's time means.
type StepKind string

// Kinds of step.
const (
	KindWindow   StepKind = "window"   // a maintenance window opens
	KindPause    StepKind = "pause"    // a wave's pause ended
	KindDeadline StepKind = "deadline" // the expiry override: go now
	KindRemind   StepKind = "remind"   // remind the approvers
)

// Kinds lists every StepKind.
var Kinds = []StepKind{KindWindow, KindPause, KindDeadline, KindRemind}

// Valid reports whether k is one of Kinds.
func (k StepKind) Valid() bool {
	for _, x := range Kinds {
		if k == x {
			return true
		}
	}
	return false
}

// Step is one timed step of a name's rollout.
type Step struct {
	Name      string    `json:"name"`      // certificate name (spec.NamePattern)
	RolloutID string    `json:"rolloutId"` // RolloutIDPattern
	Kind      StepKind  `json:"step"`
	At        time.Time `json:"at"` // when it is due; kept to the second, in UTC
}

// RolloutIDPattern is what a rollout id may be: a short token that is safe
// in a log line, a DynamoDB attribute and a schedule's description.
var RolloutIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// Bounds on a step's time: at() takes a four-digit year.
var (
	minAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxAt = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// ErrInvalid marks a step that cannot be scheduled or acted upon.
var ErrInvalid = errors.New("invalid rollout step")

// Validate reports what is wrong with s, naming the field.
func (s Step) Validate() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("%w: no name", ErrInvalid)
	case !spec.NamePattern.MatchString(s.Name):
		return fmt.Errorf("%w: name must match %s", ErrInvalid, spec.NamePattern)
	case s.RolloutID == "":
		return fmt.Errorf("%w: no rolloutId", ErrInvalid)
	case !RolloutIDPattern.MatchString(s.RolloutID):
		return fmt.Errorf("%w: rolloutId must match %s", ErrInvalid, RolloutIDPattern)
	case s.Kind == "":
		return fmt.Errorf("%w: no step kind", ErrInvalid)
	case !s.Kind.Valid():
		return fmt.Errorf("%w: step kind must be one of %v", ErrInvalid, Kinds)
	case s.At.IsZero():
		return fmt.Errorf("%w: no time (at)", ErrInvalid)
	case s.At.Before(minAt) || s.At.After(maxAt):
		return fmt.Errorf("%w: time (at) must lie between %s and %s", ErrInvalid, minAt.Format(time.RFC3339), maxAt.Format(time.RFC3339))
	}
	return nil
}

// at is the step's time as it is named and delivered: UTC, to the second.
func (s Step) at() time.Time { return s.At.UTC().Truncate(time.Second) }

// maxNamePart is how much of the certificate name a schedule name shows:
// "cf-" + kind (at most 8) + "-" + name part + "-" + 16 hex digits <= 64.
const maxNamePart = 64 - len("cf-") - len("deadline") - 2 - 16

// ScheduleName is the step's schedule name: deterministic, unique per
// (name, rolloutId, kind, at to the second), at most 64 characters of
// [0-9A-Za-z_.-] ("CreateSchedule" (EventBridge Scheduler API Reference),
// Name: length 1-64, pattern ^[0-9a-zA-Z-_.]+$). It starts with the kind
// and as much of the name as fits, for a human reading the list; the last
// 16 hex digits are a SHA-256 of the whole step.
func (s Step) ScheduleName() string {
	h := sha256.Sum256([]byte(s.Name + "\x00" + s.RolloutID + "\x00" + string(s.Kind) + "\x00" + s.at().Format(time.RFC3339)))
	name := s.Name
	if len(name) > maxNamePart {
		name = name[:maxNamePart]
	}
	kind := string(s.Kind)
	if len(kind) > len("deadline") || !s.Kind.Valid() {
		kind = "step"
	}
	return "cf-" + kind + "-" + name + "-" + hex.EncodeToString(h[:8])
}

// The envelope of a delivered step: an EventBridge-shaped event, so that
// the renewal handler's dedupe marks (keyed by id) work unchanged.
const (
	Source     = "certferry"
	DetailType = "certferry Rollout Step"
)

// Payload is what a step's schedule delivers (its Target.Input).
type Payload struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	Source     string   `json:"source"`
	DetailType string   `json:"detail-type"`
	Time       string   `json:"time"`
	Resources  []string `json:"resources"`
	Detail     Detail   `json:"detail"`
}

// Detail is a delivered step's detail.
type Detail struct {
	Name      string   `json:"name"`
	RolloutID string   `json:"rolloutId"`
	Step      StepKind `json:"step"`
	At        string   `json:"at"` // RFC 3339, UTC, seconds
}

// MaxInputBytes bounds a rendered step. "Target" (EventBridge Scheduler
// API Reference): Input is "the text, or well-formed JSON, passed to the
// target" (the model sets no maximum); EventBridge Scheduler invokes a
// Lambda target asynchronously, and "Invoke" (Lambda API Reference): "For
// asynchronous invocations, the maximum payload size is 1 MB" (256 KB
// with the older InvokeAsync). A step is a few hundred bytes; the bound
// keeps a future field from growing it unnoticed, far below either.
const MaxInputBytes = 8 * 1024

// Render returns the step's Target.Input: the EventBridge-shaped event
// internal/events parses as KindRolloutStep, id = ScheduleName.
func Render(s Step) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	at := s.at().Format(time.RFC3339)
	b, err := json.Marshal(Payload{
		Version: "0", ID: s.ScheduleName(), Source: Source, DetailType: DetailType, Time: at, Resources: []string{},
		Detail: Detail{Name: s.Name, RolloutID: s.RolloutID, Step: s.Kind, At: at},
	})
	if err != nil {
		return nil, fmt.Errorf("render %s step of %s: %w", s.Kind, s.Name, err)
	}
	if len(b) > MaxInputBytes {
		return nil, fmt.Errorf("%w: rendered step of %d bytes (at most %d)", ErrInvalid, len(b), MaxInputBytes)
	}
	return b, nil
}

// FromDetail reads a delivered step's detail (every field a string, the
// time RFC 3339) and validates it.
func FromDetail(d Detail) (Step, error) {
	s := Step{Name: d.Name, RolloutID: d.RolloutID, Kind: d.Step}
	if d.At == "" {
		return Step{}, fmt.Errorf("%w: no time (at)", ErrInvalid)
	}
	t, err := time.Parse(time.RFC3339, d.At)
	if err != nil {
		return Step{}, fmt.Errorf("%w: time (at) is not RFC 3339", ErrInvalid)
	}
	s.At = t.UTC().Truncate(time.Second)
	if err := s.Validate(); err != nil {
		return Step{}, err
	}
	return s, nil
}
