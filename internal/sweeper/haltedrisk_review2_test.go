package sweeper

import (
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/inventory"
)

// A rollout halted because its certificate was revoked cannot be resumed
// (the pipeline refuses a revoked certificate): the sweep's risk must say
// to rebind, not to find the failed wave and redeploy. Any halted risk
// says why it halted.
func TestHaltedRiskSaysHowToAct(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	base := inventory.Rollout{ID: "r1", Name: "shop-web", Serial: "02", Phase: inventory.PhaseHalted, Wave: 1, Waves: []int{1, 4},
		Nodes: []string{"i-1", "i-2", "i-3", "i-4"}, GoBy: now.Add(-time.Hour), OldNotAfter: now.Add(6 * 24 * time.Hour), HaltedAt: now.Add(-48 * time.Hour)}
	tests := []struct {
		name, reason string
		want, not    []string
	}{
		{"canary failed", "wave 1 of 2: 1 node(s) did not install and verify serial 02 (i-1)",
			[]string{"did not install", "certferry redeploy shop-web"}, nil},
		{"revoked", "certificate arn:aws:acm:us-east-1:123456789012:certificate/x revoked (keyCompromise), by ops",
			[]string{"revoked", "certferry rebind shop-web --arn"}, []string{"certferry redeploy shop-web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			r.Reason = tt.reason
			risk, ok := haltedRisk(&r, map[string]inventory.Node{}, now)
			if !ok {
				t.Fatal("no risk")
			}
			for _, w := range tt.want {
				if !strings.Contains(risk, w) {
					t.Errorf("risk lacks %q: %s", w, risk)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(risk, w) {
					t.Errorf("risk says %q: %s", w, risk)
				}
			}
		})
	}
}
