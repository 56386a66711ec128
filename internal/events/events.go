// Package events reads the EventBridge events certferry reacts to: ACM's
// certificate events, AWS Health's ACM renewal events, and certferry's own
// timed rollout steps (KindRolloutStep, delivered by EventBridge Scheduler
// in an EventBridge-shaped envelope, internal/schedule). A step is parsed
// strictly (certferry wrote it): a missing or malformed field is
// ErrMalformed.
//
// Parsing is tolerant by design. Real events differ from the documented
// samples (`"InUse": true` and `"InUse": "TRUE"` both occur; numbers arrive
// as strings), so a field of an unexpected type is read as absent rather than
// failing the event, and unknown fields are ignored. Only an event that
// cannot be acted upon at all is an error (ErrMalformed): not a JSON object,
// no id, source or detail-type, or a kind certferry handles that names no
// ACM certificate. Such an error makes the Lambda invocation fail, so the
// event ends in the function's dead-letter queue instead of vanishing.
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/schedule"
)

// ErrMalformed marks an event certferry cannot act upon.
var ErrMalformed = errors.New("malformed event")

// Kind is what an event means to certferry.
type Kind string

// Kinds of event. Available, Rotated and Renewed lead to a deployment when
// ACM's serial changed; Revoked to a deployment of a newer serial if ACM has
// one, and an alert; the others lead to an alert.
const (
	KindAvailable         Kind = "certificate-available"
	KindActionRequired    Kind = "renewal-action-required"
	KindApproachingExpiry Kind = "approaching-expiration"
	KindExpired           Kind = "expired"
	KindRevoked           Kind = "certificate-revoked"
	KindRotated           Kind = "certificate-rotated"
	KindRenewed           Kind = "health-renewal-completed"
	KindRenewalProblem    Kind = "health-renewal-problem"
	// KindRolloutStep is one of certferry's own timed rollout steps,
	// delivered by its EventBridge Scheduler schedule (schedule.Render):
	// Event.Step says which. It names no certificate.
	KindRolloutStep Kind = "rollout-step"
	KindUnknown     Kind = "unknown"
)

// Event sources, detail types and Health codes certferry handles.
const (
	SourceACM    = "aws.acm"
	SourceHealth = "aws.health"

	DetailAvailable         = "ACM Certificate Available"
	DetailActionRequired    = "ACM Certificate Renewal Action Required"
	DetailApproachingExpiry = "ACM Certificate Approaching Expiration"
	DetailExpired           = "ACM Certificate Expired"
	DetailRevoked           = "ACM Certificate Revoked"
	// DetailRotated has no documented detail (the EventBridge reference
	// lists the event, the ACM User Guide gives no structure): only the
	// envelope and resources are relied upon.
	DetailRotated = "ACM Certificate Rotated"
	DetailHealth  = "AWS Health Event"

	HealthRenewalStateChange = "AWS_ACM_RENEWAL_STATE_CHANGE"
	HealthRenewalFailure     = "AWS_ACM_RENEWAL_FAILURE"
	HealthCAACheckFailure    = "CAA_CHECK_FAILURE"
)

// Limits on what an event may carry. EventBridge caps an event at 256 KB;
// these keep one event from fanning out without bound or flooding an alert.
const (
	MaxIDLength     = 256
	MaxCertificates = 100
	MaxTextLength   = 2048
)

// Event is the part of an event certferry uses.
type Event struct {
	ID         string
	Source     string
	DetailType string
	Account    string
	Region     string
	Time       time.Time // zero when absent or unreadable
	Kind       Kind
	// CertificateARNs are the ACM certificates the event names, in order,
	// without duplicates.
	CertificateARNs []string

	// ACM detail fields (absent ones stay zero / nil).
	Action           string // ISSUANCE, RENEWAL, IMPORT, REIMPORT
	CertificateType  string // AMAZON_ISSUED, PRIVATE, IMPORTED
	CommonName       string
	ValidationMethod string // DNS, EMAIL, HTTP
	RenewalReason    string // RenewalStatusReason
	DaysToExpiry     *int
	ExpiresAt        time.Time
	InUse            *bool
	Exported         *bool

	// Health detail fields.
	HealthEventARN string
	HealthCode     string
	Description    string // latestDescription, trimmed to MaxTextLength

	// Step is the rollout step of a KindRolloutStep event (nil otherwise).
	Step *schedule.Step
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]*$`)

// checkID accepts an EventBridge event id: every event certferry reads has
// one, and it keys the event's dedupe mark.
func checkID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: no id", ErrMalformed)
	case len(id) > MaxIDLength || !idPattern.MatchString(id):
		return fmt.Errorf("%w: id is not an EventBridge event id (letters, digits and ._:/- up to %d characters)", ErrMalformed, MaxIDLength)
	}
	return nil
}

// envelope is the EventBridge envelope, every field tolerant.
type envelope struct {
	ID         flexString      `json:"id"`
	Source     flexString      `json:"source"`
	DetailType flexString      `json:"detail-type"`
	Account    flexString      `json:"account"`
	Region     flexString      `json:"region"`
	Time       flexString      `json:"time"`
	Resources  flexStrings     `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// readEnvelope decodes raw, which must be a JSON object, and its detail
// (empty unless an object).
func readEnvelope(raw []byte) (envelope, map[string]json.RawMessage, error) {
	var env envelope
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return env, nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return env, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var detail map[string]json.RawMessage
	if len(env.Detail) > 0 && bytes.TrimSpace(env.Detail)[0] == '{' {
		_ = json.Unmarshal(env.Detail, &detail) // a detail of another type reads as empty
	}
	return env, detail, nil
}

// Parse reads one EventBridge event. See the package comment for what is an
// error and what is tolerated.
func Parse(raw []byte) (Event, error) {
	env, detail, err := readEnvelope(raw)
	if err != nil {
		return Event{}, err
	}
	e := Event{
		ID: string(env.ID), Source: string(env.Source), DetailType: string(env.DetailType),
		Account: Clean(string(env.Account), 64), Region: Clean(string(env.Region), 64),
	}
	if err := checkID(e.ID); err != nil {
		return Event{}, err
	}
	if e.Source == "" || e.DetailType == "" {
		return Event{}, fmt.Errorf("%w: event %s has no source or detail-type", ErrMalformed, e.ID)
	}
	e.Source, e.DetailType = Clean(e.Source, 128), Clean(e.DetailType, 128)
	if t, err := time.Parse(time.RFC3339, string(env.Time)); err == nil {
		e.Time = t.UTC()
	}
	e.Kind = kindOf(e.Source, e.DetailType)
	if e.Kind == KindRolloutStep {
		st, err := readStep(env.Detail)
		if err != nil {
			return Event{}, fmt.Errorf("%w: rollout step %s: %v", ErrMalformed, e.ID, err)
		}
		e.Step = &st
		return e, nil
	}
	arns := []string(env.Resources)
	switch e.Kind {
	case KindAvailable, KindActionRequired, KindApproachingExpiry, KindExpired, KindRevoked, KindRotated:
		e.readACM(detail)
	case KindUnknown:
		if e.Source == SourceHealth && e.DetailType == DetailHealth {
			arns = append(arns, e.readHealth(detail)...)
		}
	}
	if e.Kind == KindUnknown {
		return e, nil
	}
	for _, a := range arns {
		if certs.ARNPattern.MatchString(a) && !slices.Contains(e.CertificateARNs, a) {
			e.CertificateARNs = append(e.CertificateARNs, a)
		}
	}
	switch {
	case len(e.CertificateARNs) == 0:
		return Event{}, fmt.Errorf("%w: %s event %s names no ACM certificate in resources", ErrMalformed, e.Kind, e.ID)
	case len(e.CertificateARNs) > MaxCertificates:
		return Event{}, fmt.Errorf("%w: %s event %s names %d certificates (at most %d)", ErrMalformed, e.Kind, e.ID, len(e.CertificateARNs), MaxCertificates)
	}
	return e, nil
}

func kindOf(source, detailType string) Kind {
	if source == schedule.Source && detailType == schedule.DetailType {
		return KindRolloutStep
	}
	if source != SourceACM {
		return KindUnknown
	}
	switch detailType {
	case DetailAvailable:
		return KindAvailable
	case DetailActionRequired:
		return KindActionRequired
	case DetailApproachingExpiry:
		return KindApproachingExpiry
	case DetailExpired:
		return KindExpired
	case DetailRevoked:
		return KindRevoked
	case DetailRotated:
		return KindRotated
	}
	return KindUnknown
}

func (e *Event) readACM(d map[string]json.RawMessage) {
	e.Action = strings.ToUpper(word(d, "Action"))
	e.CertificateType = strings.ToUpper(word(d, "CertificateType"))
	e.CommonName = Clean(text(d, "CommonName"), 256)
	e.ValidationMethod = strings.ToUpper(word(d, "DomainValidationMethod"))
	e.RenewalReason = strings.ToUpper(word(d, "RenewalStatusReason"))
	e.DaysToExpiry = number(d, "DaysToExpiry")
	if t, err := time.Parse(time.RFC3339, text(d, "CertificateExpirationDate")); err == nil {
		e.ExpiresAt = t.UTC()
	}
	e.InUse = boolean(d, "InUse")
	e.Exported = boolean(d, "Exported")
}

// readStep reads a rollout step's detail strictly: certferry wrote it
// (schedule.Render), so every field is a string of its own grammar and
// anything else is malformed.
func readStep(raw json.RawMessage) (schedule.Step, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return schedule.Step{}, errors.New("detail is not an object")
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(raw, &d); err != nil {
		return schedule.Step{}, errors.New("detail is not an object")
	}
	var det schedule.Detail
	for _, f := range []struct {
		key string
		to  *string
	}{{"name", &det.Name}, {"rolloutId", &det.RolloutID}, {"step", (*string)(&det.Step)}, {"at", &det.At}} {
		v, ok := d[f.key]
		if !ok {
			continue // FromDetail names what is missing
		}
		if err := json.Unmarshal(v, f.to); err != nil {
			return schedule.Step{}, fmt.Errorf("detail field %s is not a string", f.key)
		}
	}
	return schedule.FromDetail(det)
}

// readHealth classifies an AWS Health event about ACM and returns the
// certificate ARNs it names outside resources (affected entities).
func (e *Event) readHealth(d map[string]json.RawMessage) []string {
	if !strings.EqualFold(text(d, "service"), "ACM") {
		return nil
	}
	e.HealthCode = strings.ToUpper(word(d, "eventTypeCode"))
	e.HealthEventARN = Clean(text(d, "eventArn"), 512)
	var descs []struct {
		Language flexString `json:"language"`
		Latest   flexString `json:"latestDescription"`
	}
	if raw, ok := d["eventDescription"]; ok {
		_ = json.Unmarshal(raw, &descs)
	}
	for _, x := range descs {
		if l := string(x.Language); l == "" || strings.HasPrefix(strings.ToLower(l), "en") {
			e.Description = Clean(string(x.Latest), MaxTextLength)
			break
		}
	}
	if e.Description == "" && len(descs) > 0 {
		e.Description = Clean(string(descs[0].Latest), MaxTextLength)
	}
	switch e.HealthCode {
	case HealthRenewalStateChange:
		if RenewalCompleted(e.Description) {
			e.Kind = KindRenewed
		} else {
			e.Kind = KindRenewalProblem
		}
	case HealthRenewalFailure, HealthCAACheckFailure:
		e.Kind = KindRenewalProblem
	default:
		return nil
	}
	var entities []struct {
		Value flexString `json:"entityValue"`
	}
	if raw, ok := d["affectedEntities"]; ok {
		_ = json.Unmarshal(raw, &entities)
	}
	var arns []string
	for _, x := range entities {
		arns = append(arns, string(x.Value))
	}
	return arns
}

var (
	completedText = regexp.MustCompile(`(?i)\b(has|have|was|were)\s+(been\s+)?(successfully\s+)?(completed|renewed)\b|\brenewal\b[^.]{0,80}\b(completed|succeeded|successful)\b|\bsuccessfully\s+renewed\b`)
	problemText   = regexp.MustCompile(`(?i)\b(unable|failed|failure|fail|could\s+not|cannot|can't|not\s+(been\s+)?(renewed|completed)|action\s+(is\s+)?required|must\s+(act|take\s+action))\b`)
)

// RenewalCompleted reports whether a Health description says the renewal
// completed. Any sign of a problem wins: an alert too many is better than a
// failed renewal nobody hears of.
func RenewalCompleted(description string) bool {
	return completedText.MatchString(description) && !problemText.MatchString(description)
}

// Trigger returns the deployment trigger recorded for the event's kind.
func (e Event) Trigger() inventory.Trigger {
	if e.Source == SourceHealth {
		return inventory.TriggerHealth
	}
	return inventory.TriggerACM
}

// Deploys reports whether the event's kind leads to a deployment (when
// ACM's serial changed) and nothing else; Revoked deploys a newer serial
// and alerts; the other known kinds lead to an alert.
func (e Event) Deploys() bool {
	return e.Kind == KindAvailable || e.Kind == KindRotated || e.Kind == KindRenewed
}

// flexString reads a JSON string, number or boolean as text; anything else
// (object, array, null) as empty.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	*f = ""
	var s string
	if json.Unmarshal(b, &s) == nil {
		*f = flexString(s)
		return nil
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9' || b[0] == 't' || b[0] == 'f') && string(b) != "null" {
		*f = flexString(b)
	}
	return nil
}

// flexStrings reads a list of strings, or one string, ignoring elements of
// other types.
type flexStrings []string

func (f *flexStrings) UnmarshalJSON(b []byte) error {
	*f = nil
	var list []json.RawMessage
	if json.Unmarshal(b, &list) != nil {
		list = []json.RawMessage{b}
	}
	for _, x := range list {
		var s string
		if json.Unmarshal(x, &s) == nil && s != "" {
			*f = append(*f, s)
		}
	}
	return nil
}

func text(d map[string]json.RawMessage, k string) string {
	var f flexString
	if raw, ok := d[k]; ok {
		_ = f.UnmarshalJSON(raw)
	}
	return strings.TrimSpace(string(f))
}

var wordPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// word reads an enum-like field; anything that is not a short word is absent.
func word(d map[string]json.RawMessage, k string) string {
	if s := text(d, k); wordPattern.MatchString(s) {
		return s
	}
	return ""
}

func number(d map[string]json.RawMessage, k string) *int {
	s := text(d, k)
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= -1e6 && f <= 1e6 {
		n := int(f)
		return &n
	}
	return nil
}

func boolean(d map[string]json.RawMessage, k string) *bool {
	switch strings.ToLower(text(d, k)) {
	case "true", "yes", "1":
		b := true
		return &b
	case "false", "no", "0":
		b := false
		return &b
	}
	return nil
}

// Clean makes outside text (event fields, a node's output) safe to log,
// store and show: control characters become spaces, and text longer than
// n bytes is cut on a rune boundary to at most n bytes, the last three of
// them "…". certferry's one rule for such text (the tracker's error
// summaries use it too).
func Clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	cut := max(n-len(ellipsis), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

const ellipsis = "…"
