package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
)

// goneWorld is the world with nodes that left SSM: its SendWave refuses a
// command naming one, as SSM does (InvalidInstanceId for the whole call),
// and asks the wave's Gone hook as the pipeline does; Unmanaged answers
// as fleet.Resolver's one-by-one check.
type goneWorld struct {
	*world
	gone     map[string]bool
	refusals int
}

func (g *goneWorld) Unmanaged(_ context.Context, ids []string) ([]string, error) {
	var out []string
	for _, id := range ids {
		if g.gone[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

func (g *goneWorld) SendWave(ctx context.Context, wv pipeline.Wave) ([]pipeline.Result, error) {
	ids := slices.Clone(wv.InstanceIDs)
	for slices.ContainsFunc(ids, func(id string) bool { return g.gone[id] }) {
		g.refusals++
		refused := fmt.Errorf("send command: %w", fleet.ErrInstancesRefused)
		if wv.Gone == nil {
			return nil, refused
		}
		gone, err := wv.Gone(ctx, ids)
		if err != nil || len(gone) == 0 {
			return nil, errors.Join(refused, err)
		}
		ids = slices.DeleteFunc(ids, func(id string) bool { return slices.Contains(gone, id) })
		if len(ids) == 0 {
			return nil, nil
		}
	}
	wv.InstanceIDs = ids
	return g.world.SendWave(ctx, wv)
}

func newGoneWorld(gone ...string) (*goneWorld, *Engine) {
	g := &goneWorld{world: newWorld(wavedSpec()), gone: map[string]bool{}}
	for _, id := range gone {
		g.gone[id] = true
	}
	e := New(g, g, acmFake{g.world}, g, g, g, Config{Now: func() time.Time { return g.now }, NotifySuccess: true})
	return g, e
}

// Waves 1, 2, 4 over i-1 | i-2 | i-3 i-4: the ways a wave loses nodes.
func TestEngineWaveNodesGone(t *testing.T) {
	ctx := context.Background()
	t.Run("the last wave empties: done", func(t *testing.T) {
		g, e := newGoneWorld("i-3", "i-4")
		if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
			t.Fatal(err)
		}
		g.report("i-1", inventory.NodeInstalled)
		if err := e.Advance(ctx, "shop-web"); err != nil {
			t.Fatal(err)
		}
		g.report("i-2", inventory.NodeInstalled)
		if err := e.Advance(ctx, "shop-web"); err != nil {
			t.Fatal(err)
		}
		r := g.rollout
		if fmt.Sprint(sentTo(g.world)) != "[[i-1] [i-2]]" || r.Phase != inventory.PhaseDone || !slices.Equal(r.Dropped, []string{"i-3", "i-4"}) ||
			!slices.Equal(r.Waves, []int{1, 2}) {
			t.Fatalf("sent %v, rollout %+v", sentTo(g.world), r)
		}
		if len(g.alerts) != 1 || g.alerts[0].Kind != KindDone || strings.Count(g.alerts[0].Text(), "i-3") != 1 {
			t.Fatalf("alerts %+v, want one done alert naming the dropped nodes once", g.alerts)
		}
	})
	t.Run("the canary left: the next wave is the canary", func(t *testing.T) {
		g, e := newGoneWorld("i-1")
		res, err := e.Renew(ctx, "shop-web", inventory.TriggerACM)
		if err != nil {
			t.Fatal(err)
		}
		r := g.rollout
		if fmt.Sprint(sentTo(g.world)) != "[[i-2]]" || r.Wave != 1 || !slices.Equal(r.Waves, []int{1, 3}) || res.Sent != 1 ||
			r.WaveSentAt.IsZero() || !slices.Equal(r.Dropped, []string{"i-1"}) {
			t.Fatalf("sent %v, result %+v, rollout %+v", sentTo(g.world), res, r)
		}
		g.report("i-2", inventory.NodeInstalled)
		_ = e.Advance(ctx, "shop-web")
		if fmt.Sprint(sentTo(g.world)) != "[[i-2] [i-3 i-4]]" {
			t.Fatalf("sent %v", sentTo(g.world))
		}
	})
	t.Run("part of a wave left: the rest goes once", func(t *testing.T) {
		g, e := newGoneWorld("i-3")
		_, _ = e.Renew(ctx, "shop-web", inventory.TriggerACM)
		g.report("i-1", inventory.NodeInstalled)
		_ = e.Advance(ctx, "shop-web")
		g.report("i-2", inventory.NodeInstalled)
		if err := e.Advance(ctx, "shop-web"); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(sentTo(g.world)) != "[[i-1] [i-2] [i-4]]" || g.refusals != 1 || g.rollout.Wave != 3 {
			t.Fatalf("sent %v, %d refusals, rollout %+v", sentTo(g.world), g.refusals, g.rollout)
		}
		for range 2 { // later looks send nothing more
			_ = e.Advance(ctx, "shop-web")
		}
		if len(g.waves) != 3 || g.refusals != 1 {
			t.Fatalf("sent %v", sentTo(g.world))
		}
	})
	t.Run("every node left: one command to the targets", func(t *testing.T) {
		g, e := newGoneWorld("i-1", "i-2", "i-3", "i-4")
		g.online = []string{"i-1"}
		if _, err := e.Renew(ctx, "shop-web", inventory.TriggerACM); err != nil {
			t.Fatal(err)
		}
		if r := g.rollout; len(g.waves) != 0 || g.syncs != 1 || r.Phase != inventory.PhaseDone || !slices.Equal(r.Dropped, []string{"i-1"}) {
			t.Fatalf("sent %v, syncs %d, rollout %+v", sentTo(g.world), g.syncs, r)
		}
	})
	t.Run("a resolver that cannot tell: the refusal stands", func(t *testing.T) {
		g, _ := newGoneWorld("i-2")
		e := New(g, g, acmFake{g.world}, g.world, g, g, Config{Now: func() time.Time { return g.now }})
		_, _ = e.Renew(ctx, "shop-web", inventory.TriggerACM)
		g.report("i-1", inventory.NodeInstalled)
		err := e.Advance(ctx, "shop-web")
		if !errors.Is(err, fleet.ErrInstancesRefused) || len(g.rollout.Dropped) != 0 || len(g.rollout.Nodes) != 4 || len(g.steps) != 1 {
			t.Fatalf("advance: %v, rollout %+v, steps %v; want the refusal, nothing dropped, a repair step", err, g.rollout, g.steps)
		}
	})
}
