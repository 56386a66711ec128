// Package schedule: the one-time steps of rollouts (ROLLOUT.md §3).
//
// NOTE for the lead: this file was written by helper "engine" because the
// sched branch was not on main yet; it holds only the Step type exactly as
// ROLLOUT.md §3 fixes it (field names and JSON tags). Helper sched's
// version of internal/schedule replaces it.
package schedule

import "time"

// StepKind is what a one-time schedule does when it fires.
type StepKind string // "window", "pause", "deadline", "remind"

// Step is one timed step of a name's rollout.
type Step struct {
	Name      string    `json:"name"` // certificate name
	RolloutID string    `json:"rolloutId"`
	Kind      StepKind  `json:"step"`
	At        time.Time `json:"at"`
}
