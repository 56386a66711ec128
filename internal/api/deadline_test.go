package api

import (
	"context"
	"testing"
	"time"
)

// One deadline for the whole request: Budget, or the invocation's deadline
// less Reserve when that comes first.
func TestRequestContextDeadline(t *testing.T) {
	tests := []struct {
		name       string
		invocation time.Duration // 0: no deadline
		want       time.Duration
	}{
		{"no invocation deadline", 0, Budget},
		{"the function's 29 s timeout", 29 * time.Second, Budget},
		{"a shorter invocation", 10 * time.Second, 10*time.Second - Reserve},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			start := time.Now()
			if tc.invocation > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithDeadline(ctx, start.Add(tc.invocation))
				defer cancel()
			}
			rctx, cancel := requestContext(ctx)
			defer cancel()
			dl, ok := rctx.Deadline()
			if !ok {
				t.Fatal("no deadline")
			}
			// The deadline is computed from the clock read inside
			// requestContext: it lies within [start+want, now+want].
			if got := dl.Sub(start); got < tc.want || got > time.Since(start)+tc.want {
				t.Fatalf("deadline %v after the start, want %v", got, tc.want)
			}
		})
	}
}
