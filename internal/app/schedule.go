package app

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/schedule"
)

// NewScheduler returns the schedule.Scheduler for timed rollout steps on
// the EventBridge Scheduler client of awsCfg (AWS_ENDPOINT_URL, or
// AWS_ENDPOINT_URL_SCHEDULER, points it at a rig), or nil when cfg has no
// schedule settings (a rig without them: whoever uses it must then act at
// once or refuse, never drop the step). The renewal function's own target
// ARN ("self") is already resolved by config.Load.
func NewScheduler(awsCfg aws.Config, cfg config.Config) *schedule.Scheduler {
	if !cfg.Schedule.Configured() {
		return nil
	}
	return schedule.New(scheduler.NewFromConfig(awsCfg), schedule.Config{
		Group:         cfg.Schedule.Group,
		TargetARN:     cfg.Schedule.TargetARN,
		RoleARN:       cfg.Schedule.RoleARN,
		DeadLetterARN: cfg.Schedule.DeadLetterARN,
	})
}
