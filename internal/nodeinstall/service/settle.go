package service

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// pidSource yields a service's main process id: read from a pid file each
// time (it may be rewritten by a reload), or fixed (systemd's MainPID).
type pidSource struct {
	file  string
	fixed int
}

func (s pidSource) pid() int {
	if s.file == "" {
		return s.fixed
	}
	raw, err := os.ReadFile(s.file)
	if err != nil || len(raw) > 4096 {
		return 0
	}
	// HAProxy without master-worker lists one pid per process; the first is enough.
	fields := strings.Fields(string(raw))
	if len(fields) == 0 {
		return 0
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// generation is what changes when a server has reloaded: its pid file is
// rewritten (Apache writes it on each successful generation), its main
// process changes (a re-exec under a new pid), or it has new children
// (nginx's and HAProxy's new workers).
type generation struct {
	pid      int
	pidMtime time.Time
	children map[int]bool
}

func snapshot(src pidSource) generation {
	g := generation{pid: src.pid()}
	if src.file != "" {
		if fi, err := os.Stat(src.file); err == nil {
			g.pidMtime = fi.ModTime()
		}
	}
	g.children = map[int]bool{}
	for _, c := range children(g.pid) {
		g.children[c] = true
	}
	return g
}

// waitSettled waits, at most settle, until the server shows a new
// generation. Its main process dying (Apache after a graceful restart with
// a certificate it cannot load) is ErrExited. When nothing tells either way
// within settle, the reload counts as done: verification decides.
func waitSettled(ctx context.Context, src pidSource, before generation, settle time.Duration) error {
	deadline := time.Now().Add(settle)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		now := snapshot(src)
		switch {
		case now.pid > 0 && !alive(now.pid):
			return fmt.Errorf("%w: main process %d is gone", ErrExited, now.pid)
		case now.pid == 0 && before.pid > 0 && !alive(before.pid):
			return fmt.Errorf("%w: main process %d is gone", ErrExited, before.pid)
		case now.pid > 0 && now.pid != before.pid:
			return nil
		case now.pid > 0 && !now.pidMtime.Equal(before.pidMtime):
			return nil
		}
		for c := range now.children {
			if !before.children[c] {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the reload to settle: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
