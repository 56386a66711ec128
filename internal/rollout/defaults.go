package rollout

import (
	"fmt"
	"time"

	"github.com/certferry/certferry/internal/spec"
)

// The window math is helper spec's internal/window (ROLLOUT.md §2); until
// it is on this branch these refuse windows and give the documented
// default margin.
// TODO(engine): window.Next / window.Margin once main has internal/window.
func defaultWindows(ws []spec.MaintenanceWindow, t time.Time) (bool, time.Time, error) {
	return false, time.Time{}, fmt.Errorf("no window math wired (internal/window)")
}

func defaultMargin(lifetime time.Duration, overrideDays *int) time.Duration {
	if overrideDays != nil {
		return time.Duration(*overrideDays) * 24 * time.Hour
	}
	return max(7*24*time.Hour, lifetime/10)
}
