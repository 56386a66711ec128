package testkit

import (
	"github.com/certferry/certferry/internal/schedule"
	"github.com/certferry/certferry/internal/schedulerstandin"
)

// The EventBridge Scheduler stand-in lives in internal/schedulerstandin (so
// that the local rig serves it without linking this package); these names
// keep the rig's vocabulary.

// SchedulerStandIn is the Scheduler stand-in (schedulerstandin.StandIn),
// with Plug for the rig's FaultProxy.
type SchedulerStandIn struct{ *schedulerstandin.StandIn }

// StandInSchedule is one schedule the stand-in holds.
type StandInSchedule = schedulerstandin.Schedule

// StandInAccount and StandInRegion are the account and Region of the
// stand-in's ARNs, and of the role and target SchedulerConfig returns.
const (
	StandInAccount = schedulerstandin.Account
	StandInRegion  = schedulerstandin.Region
)

// NewSchedulerStandIn returns a stand-in holding the "default" group and
// groups.
func NewSchedulerStandIn(groups ...string) *SchedulerStandIn {
	return &SchedulerStandIn{schedulerstandin.New(groups...)}
}

// IsSchedulerRequest reports whether r is signed for EventBridge Scheduler.
var IsSchedulerRequest = schedulerstandin.IsRequest

// UseSchedulerStandIn mounts a Scheduler stand-in on p (a FaultProxy, e.g.
// Rig.NewFaultProxy, so the model check sees every request first) holding
// group, and returns it with the schedule.Config for that group. A test
// then builds the production scheduler with
// app.NewScheduler(awsCfg pointed at p.URL, cfg with Schedule set) or
// stand.Scheduler(p.URL, cfg), sets the scheduler's Now to the stand-in's
// clock, and plays Scheduler with stand.Fire(ctx, now, deliver).
func UseSchedulerStandIn(p *FaultProxy, group string) (*SchedulerStandIn, schedule.Config) {
	s := NewSchedulerStandIn(group)
	s.Plug(p)
	return s, s.SchedulerConfig(group)
}

// Plug puts the stand-in into p: requests signed for the scheduler service
// are answered by it (after p's guard, the rig's model check), the rest go
// on to the emulator.
func (s *SchedulerStandIn) Plug(p *FaultProxy) { p.Use(s.Layer) }
