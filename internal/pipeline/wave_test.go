package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
)

// goneFleet refuses, as SSM does, a command whose instance ids name a
// node gone: InvalidInstanceId fails the whole call, nothing is sent.
type goneFleet struct {
	*fakeFleet
	gone    map[string]bool
	refused [][]string
}

func (f *goneFleet) Send(ctx context.Context, in fleet.Install) (fleet.Command, error) {
	if slices.ContainsFunc(in.Only, func(id string) bool { return f.gone[id] }) {
		f.refused = append(f.refused, slices.Clone(in.Only))
		return fleet.Command{}, fmt.Errorf("send command: %w", fleet.ErrInstancesRefused)
	}
	return f.fakeFleet.Send(ctx, in)
}

// releasing clears a released claim, as the inventory does.
type releasing struct{ *fakeInventory }

func (r releasing) ReleaseClaim(ctx context.Context, name, token string) error {
	if r.cert != nil && r.cert.Claim != nil && r.cert.Claim.Token == token {
		next := *r.cert
		next.Claim, next.Version = nil, next.Version+1
		r.cert = &next
	}
	return r.fakeInventory.ReleaseClaim(ctx, name, token)
}

func ids(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("i-%017x", i+1))
	}
	return out
}

// A command refused for a node gone: Gone is asked with its ids, the
// remaining ids go again without the gone ones, chunked from there (as a
// retry of the wave would chunk them); the onboarding's first command,
// refused after it created the name's item, goes from the item as it is.
// No node gone, no hook, or a failing hook: the refusal is the error.
func TestSendWaveDropsNodesGone(t *testing.T) {
	ctx := context.Background()
	all := ids(60)
	setup := func(gone ...string) (*rig, *goneFleet) {
		r := newRig(t)
		f := &goneFleet{fakeFleet: r.fleet, gone: map[string]bool{}}
		for _, id := range gone {
			f.gone[id] = true
		}
		r.p = New(r.acm, r.store, releasing{r.inv}, f, Config{Region: "us-east-1"})
		r.p.now = func() time.Time { return r.now }
		return r, f
	}
	t.Run("onboarding", func(t *testing.T) {
		r, f := setup(all[3], all[55])
		chk, err := r.p.CheckOnboard(ctx, onboardSpec())
		if err != nil {
			t.Fatal(err)
		}
		var asked [][]string
		hook := func(_ context.Context, refused []string) ([]string, error) {
			asked = append(asked, refused)
			var g []string
			for _, id := range refused {
				if f.gone[id] {
					g = append(g, id)
				}
			}
			return g, nil
		}
		res, err := r.p.SendWave(ctx, Wave{Name: "shop-web", RolloutID: "r1", Wave: 1, Waves: 2, Serial: chk.Serial, InstanceIDs: all,
			Onboard: &chk, Trigger: inventory.TriggerAPI, Gone: hook})
		if err != nil {
			t.Fatal(err)
		}
		want := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return f.gone[id] })
		if len(res) != 2 || len(f.sent) != 2 || !slices.Equal(f.sent[0].Only, want[:50]) || !slices.Equal(f.sent[1].Only, want[50:]) {
			t.Fatalf("sent %d command(s): %v", len(f.sent), f.sent)
		}
		if len(asked) != 2 || !slices.Equal(asked[0], all[:50]) || len(f.refused) != 2 {
			t.Fatalf("asked %v, refused %v", asked, f.refused)
		}
		if r.inv.cert.Spec.Name != "shop-web" || r.inv.commits != 2 {
			t.Fatalf("item %+v, %d commits", r.inv.cert, r.inv.commits)
		}
	})
	for _, tc := range []struct {
		name string
		hook func(context.Context, []string) ([]string, error)
		want error
	}{
		{"no hook", nil, fleet.ErrInstancesRefused},
		{"nothing gone", func(context.Context, []string) ([]string, error) { return nil, nil }, fleet.ErrInstancesRefused},
		{"check failed", func(context.Context, []string) ([]string, error) { return nil, errors.New("throttled") }, fleet.ErrInstancesRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, f := setup(all[1])
			if _, err := r.p.Onboard(ctx, onboardSpec()); err != nil {
				t.Fatal(err)
			}
			f.sent = nil
			_, err := r.p.SendWave(ctx, Wave{Name: "shop-web", RolloutID: "r1", Wave: 2, Waves: 2, Serial: r.acm.info.Serial,
				InstanceIDs: all[:3], Trigger: inventory.TriggerACM, Gone: tc.hook})
			if !errors.Is(err, tc.want) || len(f.sent) != 0 {
				t.Fatalf("err %v, sent %v", err, f.sent)
			}
		})
	}
}
