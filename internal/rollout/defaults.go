package rollout

import "github.com/certferry/certferry/internal/window"

// The window math (ROLLOUT.md §2): when a window opens next, and the
// expiry override's margin.
var (
	defaultWindows WindowFunc = window.Next
	defaultMargin  MarginFunc = window.Margin
)
