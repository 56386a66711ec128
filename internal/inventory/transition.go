package inventory

import (
	"errors"
	"fmt"
	"time"
)

// Report is what one node's finished invocation says.
type Report struct {
	InstanceID  string
	State       NodeState // installed, failed, rolled_back or superseded
	Serial      string    // set when installed
	Fingerprint string    // set when installed
	Error       string
	Unverified  bool
}

// ErrStale reports a status event that must not be applied: the node has
// already moved on to a newer deployment, or already holds this
// deployment's final state (a duplicate event).
var ErrStale = errors.New("status event is stale or a duplicate")

// CountsDelta is a change to a deployment's node counts: by how much each
// state's count goes up (or down).
type CountsDelta map[NodeState]int

// NextNode is the rule of a node report, without I/O: from the node as
// read (nil when it has none yet), the deployment and command the report
// belongs to (ref) and the report, it gives the node's next NODE item and
// the change to ref's deployment's counts.
//
//   - A report of a deployment older than the node's, or of the node's own
//     deployment once the node left pending there (a duplicate), is
//     ErrStale: nothing changes.
//   - The node takes the report's state, error and unverified mark, ref's
//     command and deployment, and now as its update time.
//   - What the node has installed (serial, fingerprint) changes only with
//     an install; a failure keeps the previous ones.
//   - Failures counts consecutive failed installs: an install resets it, a
//     failure or rollback adds one to what the node carried.
//   - A superseded report (the node did nothing: a newer deployment had
//     replaced the certificate) changes neither what the node has
//     installed, nor its failures, nor its unverified mark.
//   - Counts: +1 to the new state; -1 to pending when the node was pending
//     in this very deployment (a node the deployment did not list, as with
//     tag targets, was never counted pending there).
//
// A report whose state is not final (installed, failed, rolled_back,
// superseded) is an error.
func NextNode(prev *Node, ref CommandRef, r Report, now time.Time) (Node, CountsDelta, error) {
	switch r.State {
	case NodeInstalled, NodeFailed, NodeRolledBack, NodeSuperseded:
	default:
		return Node{}, nil, fmt.Errorf("report of %s on %s: %q is not a final node state", ref.Name, r.InstanceID, r.State)
	}
	if prev != nil && (prev.DeploymentID > ref.DeploymentID ||
		prev.DeploymentID == ref.DeploymentID && prev.State != NodePending) {
		return Node{}, nil, ErrStale
	}
	n := Node{
		PK: CertKey(ref.Name), SK: nodePfx + r.InstanceID, InstanceID: r.InstanceID,
		LastCommandID: ref.CommandID, DeploymentID: ref.DeploymentID, State: r.State, Error: r.Error,
		Unverified: r.Unverified, UpdatedAt: now,
	}
	if prev != nil {
		n.Serial, n.Fingerprint, n.Failures = prev.Serial, prev.Fingerprint, prev.Failures
	}
	switch r.State {
	case NodeInstalled:
		n.Serial, n.Fingerprint, n.Failures = r.Serial, r.Fingerprint, 0
	case NodeSuperseded:
		if prev != nil {
			n.Unverified = prev.Unverified
		}
	default:
		n.Failures++
	}
	delta := CountsDelta{r.State: 1}
	if prev != nil && prev.DeploymentID == ref.DeploymentID { // pending there: anything else was stale
		delta[NodePending]--
	}
	return n, delta, nil
}
