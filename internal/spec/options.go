package spec

// Per-name rollout and lifecycle options (issue 14). Every field is
// optional; a spec without them behaves as before: one command to every
// target, no gate on renewals, no outside probe.

// Approval values.
const (
	ApprovalNone     = ""         // renewals go without a person
	ApprovalRequired = "required" // renewal deployments wait for POST …/approvals
)

// Rollout says how a deployment reaches the nodes: in cumulative waves
// (shares of the nodes resolved when the rollout starts: "1" is one node,
// "25%" a quarter, the last wave must be "100%"), with a pause between
// waves, and one CloudWatch alarm that stops the command (SendCommand's
// AlarmConfiguration takes exactly one alarm).
type Rollout struct {
	Waves        []string `json:"waves,omitempty" dynamodbav:"waves,omitempty"`
	PauseMinutes int      `json:"pauseMinutes,omitempty" dynamodbav:"pauseMinutes,omitempty"`
	StopAlarm    string   `json:"stopAlarm,omitempty" dynamodbav:"stopAlarm,omitempty"`
}

// Waved reports whether the rollout has waves (more than one step).
func (r *Rollout) Waved() bool { return r != nil && len(r.Waves) > 0 }

// MaintenanceWindow is a weekly window in a time zone during which renewal
// deployments may start: days (Mon … Sun), start and end as "HH:MM" (an end
// at or before the start crosses midnight), an IANA time zone.
type MaintenanceWindow struct {
	Days     []string `json:"days" dynamodbav:"days"`
	Start    string   `json:"start" dynamodbav:"start"`
	End      string   `json:"end" dynamodbav:"end"`
	Timezone string   `json:"timezone" dynamodbav:"timezone"`
}

// Gated reports whether renewals of the spec wait for a window or an
// approval.
func (s *Spec) Gated() bool {
	return len(s.MaintenanceWindows) > 0 || s.Approval == ApprovalRequired
}
