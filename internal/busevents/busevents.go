// Package busevents is certferry's own events on EventBridge (source
// "certferry"): what other accounts, a central stack (central.yaml) and
// anyone's rules can follow. Four detail-types, each a Go type here, a JSON
// Schema in docs/schemas/ (JSONSchema Draft 4, a format EventBridge's Schema
// Registry accepts: "Creating an event schema in Amazon EventBridge") and a
// sample event in events/; a test keeps the three in step.
//
// The details carry names, ids, serials, ARNs, times and short error
// summaries only: never a passphrase, a key, a PFX or a keystore password.
package busevents

import (
	"time"

	"github.com/certferry/certferry/internal/events"
)

// Source is the "source" of every certferry event.
const Source = "certferry"

// The detail-types.
const (
	TypeDeploymentFinished = "certferry Deployment Finished"
	TypeNodeFailed         = "certferry Node Failed"
	TypeRenewalWaiting     = "certferry Renewal Waiting"
	TypeCertificateAtRisk  = "certferry Certificate At Risk"
)

// DetailTypes lists every detail-type certferry emits.
var DetailTypes = []string{TypeDeploymentFinished, TypeNodeFailed, TypeRenewalWaiting, TypeCertificateAtRisk}

// Detail is one event's detail; its DetailType names it on the bus.
type Detail interface {
	DetailType() string
}

// Counts are a deployment's nodes by how they ended.
type Counts struct {
	Installed int `json:"installed"`
	Failed    int `json:"failed"` // failed or rolled back (a deployment that timed out counts its silent nodes here)
	Pending   int `json:"pending"`
}

// Wave places a deployment in a waved rollout: wave Index (1-based) of Of.
type Wave struct {
	Index     int    `json:"index"`
	Of        int    `json:"of"`
	RolloutID string `json:"rolloutId,omitempty"`
}

// DeploymentFinished: a deployment (one command of one name) ended.
type DeploymentFinished struct {
	Name           string `json:"name"`
	DeploymentID   string `json:"deploymentId"`
	Outcome        string `json:"outcome"` // succeeded, partial, failed, superseded (every node found a newer deployment had replaced it; counts all 0)
	Counts         Counts `json:"counts"`
	Wave           *Wave  `json:"wave,omitempty"` // only for a waved rollout
	Serial         string `json:"serial"`
	CertificateARN string `json:"certificateArn,omitempty"`
	Trigger        string `json:"trigger"` // api, acm-event, health-event, sweep, …
	TimedOut       bool   `json:"timedOut,omitempty"`
}

// NodeFailed: one node failed to install (failed) or installed and put the
// previous certificate back (rolled_back).
type NodeFailed struct {
	Name         string `json:"name"`
	InstanceID   string `json:"instanceId"`
	State        string `json:"state"` // failed, rolled_back
	Error        string `json:"error"`
	DeploymentID string `json:"deploymentId"`
	Serial       string `json:"serial"`
}

// Renewal Waiting reasons.
const (
	WaitingWindow   = "window"   // outside every maintenance window
	WaitingApproval = "approval" // waiting for an approval
	WaitingHalted   = "halted"   // a rollout halted on failures
)

// RenewalWaiting: a renewal is held back: outside every maintenance
// window, waiting for an approval, or halted.
type RenewalWaiting struct {
	Name      string     `json:"name"`
	Reason    string     `json:"reason"` // window, approval, halted
	Since     time.Time  `json:"since"`
	GoesAt    *time.Time `json:"goesAt,omitempty"` // when known: the window opens, the expiry override goes
	Serial    string     `json:"serial"`
	RolloutID string     `json:"rolloutId,omitempty"`
	Detail    string     `json:"detail,omitempty"`
}

// Certificate At Risk reasons.
const (
	RiskExpiring          = "expiring"           // inside its renewal window and not renewed
	RiskRevoked           = "revoked"            // ACM reports the certificate revoked
	RiskRenewalIneligible = "renewal-ineligible" // ACM will not renew it on its own
	RiskRenewalFailed     = "renewal-failed"     // ACM's renewal failed or waits for validation
	RiskEmailValidation   = "email-validation"   // each renewal needs a person
	RiskGone              = "gone"               // the certificate no longer exists in ACM
	RiskUndeployable      = "undeployable"       // ACM holds a serial certferry cannot deploy
	RiskNodesExhausted    = "nodes-exhausted"    // nodes failed every attempt and are left alone
	RiskOther             = "other"              // anything else; detail says what
)

// RiskReasons lists every Certificate At Risk reason.
var RiskReasons = []string{RiskExpiring, RiskRevoked, RiskRenewalIneligible, RiskRenewalFailed, RiskEmailValidation,
	RiskGone, RiskUndeployable, RiskNodesExhausted, RiskOther}

// CertificateAtRisk: something may stop a certificate from renewing or
// reaching its nodes in time (one event per name and reason per sweep).
type CertificateAtRisk struct {
	Name     string     `json:"name"`
	Reason   string     `json:"reason"`
	NotAfter *time.Time `json:"notAfter,omitempty"`
	DaysLeft *int       `json:"daysLeft,omitempty"`
	Detail   string     `json:"detail"`
}

// DetailType implementations.
func (DeploymentFinished) DetailType() string { return TypeDeploymentFinished }
func (NodeFailed) DetailType() string         { return TypeNodeFailed }
func (RenewalWaiting) DetailType() string     { return TypeRenewalWaiting }
func (CertificateAtRisk) DetailType() string  { return TypeCertificateAtRisk }

// Text limits: error summaries as the inventory keeps them, details a
// little longer; both one line without control characters (events.Clean).
const (
	maxError  = 256
	maxDetail = 1024
)

// clean returns d with its free text made safe for a bus: one line, no
// control characters, bounded.
func clean(d Detail) Detail {
	switch x := d.(type) {
	case NodeFailed:
		x.Error = events.Clean(x.Error, maxError)
		return x
	case RenewalWaiting:
		x.Detail = events.Clean(x.Detail, maxDetail)
		return x
	case CertificateAtRisk:
		x.Detail = events.Clean(x.Detail, maxDetail)
		return x
	}
	return d
}

// WaitingReason maps a rollout phase (ROLLOUT.md §4, inventory.RolloutPhase:
// waiting_window, awaiting_approval, halted) to its Renewal Waiting reason;
// ok is false for phases that do not wait (rolling, paused, done,
// superseded). The engine sends RenewalWaiting when a rollout enters one.
func WaitingReason(phase string) (reason string, ok bool) {
	switch phase {
	case "waiting_window":
		return WaitingWindow, true
	case "awaiting_approval":
		return WaitingApproval, true
	case "halted":
		return WaitingHalted, true
	}
	return "", false
}
