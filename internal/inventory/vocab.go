package inventory

import "time"

// The inventory's vocabulary: every state, outcome, status and trigger the
// table stores and the API shows. Each is a named string type whose values
// are written as they are spelled here (DynamoDB S values, JSON strings);
// the spelling is a contract (design.md, "Inventory").

// NodeState is a NODE item's state.
type NodeState string

// Node states.
const (
	NodePending    NodeState = "pending"
	NodeInstalled  NodeState = "installed"
	NodeFailed     NodeState = "failed"
	NodeRolledBack NodeState = "rolled_back"
	// NodeSuperseded: the node ran the deployment's command after a newer
	// deployment had replaced its certificate in the bundle, and did
	// nothing (the installer's result status "superseded"). Neither
	// installed nor failed: what the node holds and its failure count are
	// as before, and the newer deployment's command (or the sweep) brings
	// it the current certificate. (Not the rollout phase of the same name,
	// RolloutPhase PhaseSuperseded.)
	NodeSuperseded NodeState = "superseded"
)

// NodeStates are every node state, in the order counts are shown.
var NodeStates = []NodeState{NodePending, NodeInstalled, NodeFailed, NodeRolledBack, NodeSuperseded}

// Outcome is a deployment's outcome.
type Outcome string

// Deployment outcomes. Every outcome but OutcomeInProgress is final.
const (
	OutcomeInProgress Outcome = "in_progress"
	OutcomeSucceeded  Outcome = "succeeded"
	OutcomePartial    Outcome = "partial"
	OutcomeFailed     Outcome = "failed"
	// OutcomeSuperseded: every node that reported was superseded (a newer
	// deployment replaced the certificate before the nodes ran this one),
	// none installed or failed: nothing to alert on.
	OutcomeSuperseded Outcome = "superseded"
)

// Final reports whether o ends a deployment.
func (o Outcome) Final() bool {
	return o == OutcomeSucceeded || o == OutcomePartial || o == OutcomeFailed || o == OutcomeSuperseded
}

// CertStatus is a certificate name's (META item's) status.
type CertStatus string

// Certificate statuses.
const (
	StatusOnboarding CertStatus = "onboarding" // stored, first deployment not committed yet
	StatusActive     CertStatus = "active"
	// StatusDeleting: DELETE /certificates/{name} began; the name is no
	// longer distributed and its items are being removed.
	StatusDeleting CertStatus = "deleting"
)

// Trigger is what started a deployment.
type Trigger string

// Deployment triggers.
const (
	TriggerAPI    Trigger = "api"
	TriggerACM    Trigger = "acm-event"
	TriggerHealth Trigger = "health-event"
	TriggerSweep  Trigger = "sweep"
)

// EventState is an EVENT dedupe marker's state.
type EventState string

// Event dedupe marker states.
const (
	EventProcessing EventState = "processing"
	EventDone       EventState = "done"
)

// FormatTime is the stored (and shown) form of a time: RFC 3339, with the
// fraction of a second only when there is one; "" for the zero time. The
// store's own timestamps are whole seconds in UTC ("2026-11-23T12:00:00Z").
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}
