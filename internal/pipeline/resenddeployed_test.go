package pipeline

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/testkit"
)

// ResendDeployed (the sweep, while a renewal waits for its window or
// approval) sends META's serial and secret version to the given nodes,
// never exporting ACM's newer serial; it is refused when META moved since
// the caller read it (so two sweeps that planned on one read send once),
// and when the secret's current version is not META's.
func TestResendDeployedSendsTheDeployedCertificateOnly(t *testing.T) {
	nodes := []string{"i-0123456789abcdef0"}
	ctx := context.Background()
	waiting := WaitingRollout{ID: "r1", Version: 4} // the rollout the sweep read
	// staged: onboarded at serial A, then ACM renewed to serial B (not
	// deployed: its rollout waits). The fake secret store answers every
	// current version as v1.
	staged := func(t *testing.T) (*rig, *inventory.Cert) {
		r := newRig(t)
		if _, err := r.p.Onboard(ctx, onboardSpec()); err != nil {
			t.Fatal(err)
		}
		r.inv.cert.SecretVersionID = "v1"
		r.acm.export = testkit.NewExport(t, testkit.RSA2048, "shop.example.com", "x")
		r.acm.info.Serial = certs.SerialHex(r.acm.export.Leaf.SerialNumber)
		r.inv.rollout = &inventory.Rollout{ID: waiting.ID, Version: waiting.Version, Name: "shop-web", Serial: r.acm.info.Serial,
			Phase: inventory.PhaseAwaitingApproval}
		c := *r.inv.cert
		return r, &c
	}
	t.Run("sends META's certificate, exports nothing", func(t *testing.T) {
		r, c := staged(t)
		res, err := r.p.ResendDeployed(ctx, "shop-web", c.Version, waiting, nodes, map[string]int{nodes[0]: 1}, inventory.TriggerSweep)
		if err != nil {
			t.Fatal(err)
		}
		sent := r.fleet.sent[len(r.fleet.sent)-1]
		d := r.inv.committed
		if r.acm.exports != 1 || r.store.puts != 1 || len(r.fleet.sent) != 2 || sent.Serial != c.Serial || sent.ExpectedFingerprint != c.Fingerprint ||
			!slices.Equal(sent.Only, nodes) || d.Serial != c.Serial || d.SecretVersionID != "v1" || d.Trigger != inventory.TriggerSweep ||
			r.inv.failures[nodes[0]] != 1 || res.Serial != c.Serial || r.inv.cert.Serial != c.Serial || r.inv.cert.SecretVersionID != "v1" {
			t.Fatalf("exports %d puts %d, sent %+v, committed %+v, META %+v", r.acm.exports, r.store.puts, sent, d, r.inv.cert)
		}
		// A second sweep that planned on the same read: refused.
		if _, err := r.p.ResendDeployed(ctx, "shop-web", c.Version, waiting, nodes, nil, inventory.TriggerSweep); !errors.Is(err, ErrBusy) || len(r.fleet.sent) != 2 {
			t.Fatalf("second send on the same read: %v, sent %d", err, len(r.fleet.sent))
		}
	})
	// The rollout went (approved, its window) after the sweep read it:
	// it wrote itself rolling before it claims the name for its wave; the
	// sweep's send, claim held, sees it and sends nothing.
	for _, tc := range []struct {
		name  string
		moved func(*inventory.Rollout) *inventory.Rollout
	}{
		{"the rollout went rolling", func(r *inventory.Rollout) *inventory.Rollout {
			r.Phase, r.Version = inventory.PhaseRolling, r.Version+1
			return r
		}},
		{"the rollout changed, still waiting", func(r *inventory.Rollout) *inventory.Rollout { r.Version++; return r }},
		{"another rollout", func(r *inventory.Rollout) *inventory.Rollout { r.ID = "r2"; return r }},
		{"no rollout", func(*inventory.Rollout) *inventory.Rollout { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, c := staged(t)
			r.inv.rollout = tc.moved(r.inv.rollout)
			_, err := r.p.ResendDeployed(ctx, "shop-web", c.Version, waiting, nodes, nil, inventory.TriggerSweep)
			if !errors.Is(err, ErrBusy) || len(r.fleet.sent) != 1 || len(r.inv.released) != 1 || r.acm.exports != 1 {
				t.Fatalf("%v: sent %d, released %v, exports %d", err, len(r.fleet.sent), r.inv.released, r.acm.exports)
			}
		})
	}
	t.Run("the secret holds a newer serial", func(t *testing.T) {
		r, c := staged(t)
		newer := *r.store.current
		newer.Serial = r.acm.info.Serial
		r.store.current = &newer // an export of B stored, its run never committed
		_, err := r.p.ResendDeployed(ctx, "shop-web", c.Version, waiting, nodes, nil, inventory.TriggerSweep)
		if !errors.Is(err, ErrNotDeployed) || len(r.fleet.sent) != 1 || r.acm.exports != 1 || len(r.inv.released) != 1 || r.inv.cert.Serial != c.Serial {
			t.Fatalf("%v: sent %d, exports %d, released %v", err, len(r.fleet.sent), r.acm.exports, r.inv.released)
		}
	})
	t.Run("the secret version is another", func(t *testing.T) {
		r, c := staged(t)
		r.inv.cert.SecretVersionID = "v0"
		if _, err := r.p.ResendDeployed(ctx, "shop-web", c.Version, waiting, nodes, nil, inventory.TriggerSweep); !errors.Is(err, ErrNotDeployed) || len(r.fleet.sent) != 1 {
			t.Fatalf("%v: sent %d", err, len(r.fleet.sent))
		}
	})
	t.Run("nothing deployed", func(t *testing.T) {
		r, c := staged(t)
		r.inv.cert.Serial = ""
		if _, err := r.p.ResendDeployed(ctx, "shop-web", c.Version, waiting, nodes, nil, inventory.TriggerSweep); !errors.Is(err, ErrNotDeployed) || len(r.fleet.sent) != 1 {
			t.Fatalf("%v: sent %d", err, len(r.fleet.sent))
		}
	})
	t.Run("no node, or more than 50", func(t *testing.T) {
		r, c := staged(t)
		many := make([]string, 51)
		for _, ids := range [][]string{nil, many} {
			if _, err := r.p.ResendDeployed(ctx, "shop-web", c.Version, waiting, ids, nil, inventory.TriggerSweep); err == nil || len(r.fleet.sent) != 1 {
				t.Fatalf("%d nodes: %v", len(ids), err)
			}
		}
	})
}

// Resend (the sweep, no rollout) plans on META's version as
// ResendDeployed does: a sweep that read META before another sweep's send
// committed (a duplicate delivery of the name, two runs) is refused
// instead of sending the nodes a second command.
func TestResendSendsOnceForTwoSweepsOfOneRead(t *testing.T) {
	ctx := context.Background()
	nodes := []string{"i-0123456789abcdef0"}
	r := newRig(t)
	if _, err := r.p.Onboard(ctx, onboardSpec()); err != nil {
		t.Fatal(err)
	}
	read := r.inv.cert.Version // both sweeps read META here
	if _, err := r.p.Resend(ctx, "shop-web", read, nodes, nil, inventory.TriggerSweep); err != nil || len(r.fleet.sent) != 2 {
		t.Fatalf("first sweep: %v, sent %d", err, len(r.fleet.sent))
	}
	if _, err := r.p.Resend(ctx, "shop-web", read, nodes, nil, inventory.TriggerSweep); !errors.Is(err, ErrBusy) || len(r.fleet.sent) != 2 {
		t.Fatalf("second sweep on the same read: %v, sent %d (want ErrBusy, 2)", err, len(r.fleet.sent))
	}
	// A sweep that reads META afresh sends (the first one's deployment is
	// finished by then in a real run).
	if _, err := r.p.Resend(ctx, "shop-web", r.inv.cert.Version, nodes, nil, inventory.TriggerSweep); err != nil || len(r.fleet.sent) != 3 {
		t.Fatalf("fresh read: %v, sent %d", err, len(r.fleet.sent))
	}
}
