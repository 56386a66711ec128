package sweeper

import (
	"io"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/metrics"
)

// TestFanoutAndWorkerDefaults: the settings both configurations share get
// the same defaults (sharedDefaults), the others keep theirs, and a value
// given is kept.
func TestFanoutAndWorkerDefaults(t *testing.T) {
	m := metrics.New(io.Discard)
	f := NewFanout(nil, nil, nil, nil, m, FanoutConfig{})
	w := NewWorker(nil, nil, nil, nil, m, WorkerConfig{})
	for _, tc := range []struct {
		name        string
		maxAttempts int
		now         func() time.Time
		sleep       bool
	}{
		{"fanout", f.cfg.MaxAttempts, f.cfg.Now, f.cfg.Sleep != nil},
		{"worker", w.cfg.MaxAttempts, w.cfg.Now, w.cfg.Sleep != nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.maxAttempts != 3 || tc.now == nil || !tc.sleep {
				t.Fatalf("defaults: maxAttempts %d, now set %v, sleep set %v", tc.maxAttempts, tc.now != nil, tc.sleep)
			}
		})
	}
	if f.cfg.SendAttempts != 4 || f.cfg.Backoff != 200*time.Millisecond || w.cfg.MaxReceiveCount != 3 {
		t.Fatalf("own defaults: sendAttempts %d, backoff %s, maxReceiveCount %d", f.cfg.SendAttempts, f.cfg.Backoff, w.cfg.MaxReceiveCount)
	}
	if f.alert.maxAttempts != 3 || w.alert.maxAttempts != 3 {
		t.Fatalf("alerter attempts: fanout %d, worker %d", f.alert.maxAttempts, w.alert.maxAttempts)
	}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := NewWorker(nil, nil, nil, nil, m, WorkerConfig{MaxAttempts: 5, Now: func() time.Time { return at }})
	if g.cfg.MaxAttempts != 5 || !g.cfg.Now().Equal(at) || g.alert.maxAttempts != 5 {
		t.Fatalf("given values replaced: %+v", g.cfg)
	}
}
