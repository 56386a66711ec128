// Package backoff holds what certferry's bounded retries share: the wait
// between two attempts, which ends early when the context does.
package backoff

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx is done, and then answers ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
