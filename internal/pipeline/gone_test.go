package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/testkit"
)

// idFleet refuses, as SSM does, a command whose instance ids (the
// install's: Only, else the spec's InstanceIds target) name a node gone:
// InvalidInstanceId fails the whole call, nothing is sent
// ("SendCommand", Systems Manager API Reference). failNext fails the next
// sends with another error (throttling) first.
type idFleet struct {
	*fakeFleet
	gone     map[string]bool
	refused  [][]string
	failNext []error
	// afterRefusal fails the send that follows the next refusal (once).
	afterRefusal error
	armed        bool
}

func (f *idFleet) Send(ctx context.Context, in fleet.Install) (fleet.Command, error) {
	if len(f.failNext) > 0 {
		err := f.failNext[0]
		f.failNext = f.failNext[1:]
		return fleet.Command{}, err
	}
	if f.armed {
		err := f.afterRefusal
		f.armed, f.afterRefusal = false, nil
		return fleet.Command{}, err
	}
	if ids := in.Instances(); slices.ContainsFunc(ids, func(id string) bool { return f.gone[id] }) {
		f.refused = append(f.refused, slices.Clone(ids))
		f.armed = f.afterRefusal != nil
		return fleet.Command{}, fmt.Errorf("send command: %w", fleet.ErrInstancesRefused)
	}
	cmd, err := f.fakeFleet.Send(ctx, in)
	cmd.InstanceIDs = slices.Clone(in.Instances())
	return cmd, err
}

// fakeUnmanaged answers which ids are gone (fleet.Resolver.Unmanaged).
type fakeUnmanaged struct {
	gone  map[string]bool
	err   error
	asked [][]string
}

func (u *fakeUnmanaged) Unmanaged(_ context.Context, ids []string) ([]string, error) {
	u.asked = append(u.asked, slices.Clone(ids))
	if u.err != nil {
		return nil, u.err
	}
	var out []string
	for _, id := range ids {
		if u.gone[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

var errThrottled = errors.New("ThrottlingException: rate exceeded")

type goneRig struct {
	*rig
	f   *idFleet
	um  *fakeUnmanaged
	ids []string
}

// newGoneRig onboards shop-web on three instance ids, all managed; the
// test then takes nodes away (gone).
func newGoneRig(t *testing.T) *goneRig {
	r := newRig(t)
	gone := map[string]bool{}
	f := &idFleet{fakeFleet: r.fleet, gone: gone}
	um := &fakeUnmanaged{gone: gone}
	r.p = New(r.acm, r.store, releasing{r.inv}, f, Config{Region: "us-east-1"}).WithUnmanaged(um)
	r.p.now = func() time.Time { return r.now }
	g := &goneRig{rig: r, f: f, um: um, ids: ids(3)}
	if _, err := r.p.Onboard(context.Background(), g.spec()); err != nil {
		t.Fatal(err)
	}
	f.sent, um.asked = nil, nil
	return g
}

func (g *goneRig) spec() spec.Spec {
	sp := onboardSpec()
	sp.Targets = []spec.Target{{Key: spec.TargetInstanceIDs, Values: g.ids}}
	return sp
}

func (g *goneRig) renew(t *testing.T) {
	g.acm.export = testkit.NewExport(t, testkit.RSA2048, "shop.example.com", "x")
	g.acm.info.Serial = certs.SerialHex(g.acm.export.Leaf.SerialNumber)
}

// A renewal or redeploy of a name targeting instance ids, one of them
// gone: one refused call, the ids asked about, one command to the other
// two, the deployment recording the gone id (DEPLOY item's Dropped, the
// result's droppedInstanceIds); META keeps nothing pending.
func TestDeployDropsInstanceIDsGone(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(*goneRig) (Result, error)
	}{
		{"renewal", func(g *goneRig) (Result, error) { return g.p.Sync(ctx, "shop-web", inventory.TriggerACM) }},
		{"redeploy", func(g *goneRig) (Result, error) { return g.p.Redeploy(ctx, "shop-web", inventory.TriggerAPI) }},
		{"resend", func(g *goneRig) (Result, error) {
			return g.p.Resend(ctx, "shop-web", g.inv.cert.Version, g.ids, nil, inventory.TriggerSweep)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGoneRig(t)
			if tc.name == "renewal" {
				g.renew(t)
			}
			g.f.gone[g.ids[1]] = true
			res, err := tc.run(g)
			if err != nil {
				t.Fatal(err)
			}
			rest := []string{g.ids[0], g.ids[2]}
			if len(g.f.refused) != 1 || len(g.f.sent) != 1 || !slices.Equal(g.f.sent[0].Instances(), rest) || len(g.um.asked) != 1 {
				t.Fatalf("refused %v, sent %d, asked %v; want one refusal then one command to %v", g.f.refused, len(g.f.sent), g.um.asked, rest)
			}
			d := g.inv.committed
			if !slices.Equal(d.InstanceIDs, rest) || !slices.Equal(d.Dropped, g.ids[1:2]) || d.Counts[inventory.NodePending] != 2 ||
				!slices.Equal(res.Dropped, g.ids[1:2]) || g.inv.cert.PendingSend != nil {
				t.Fatalf("deployment %+v, result %+v, pending %+v", d, res, g.inv.cert.PendingSend)
			}
			if tc.name == "renewal" && (res.Serial != g.acm.info.Serial || d.Serial != g.acm.info.Serial) {
				t.Fatalf("serial %s, want %s", res.Serial, g.acm.info.Serial)
			}
		})
	}
}

// Every id gone: no command, ErrTargetsGone naming them and saying what
// to do, no deployment, the claim released. Throttling (of SendCommand or
// of the check) is never taken for a node gone: the error stays, nothing
// is dropped.
func TestDeployInstanceIDsGoneRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("all gone", func(t *testing.T) {
		g := newGoneRig(t)
		g.renew(t)
		for _, id := range g.ids {
			g.f.gone[id] = true
		}
		commits := g.inv.commits
		_, err := g.p.Sync(ctx, "shop-web", inventory.TriggerACM)
		if !errors.Is(err, ErrTargetsGone) || !strings.Contains(err.Error(), strings.Join(g.ids, ", ")) || !strings.Contains(err.Error(), "onboard") {
			t.Fatalf("err %v, want ErrTargetsGone naming every id and what to do", err)
		}
		if len(g.f.sent) != 0 || g.inv.commits != commits || g.inv.cert.Claim != nil || len(g.f.refused) != 1 {
			t.Fatalf("sent %d, commits %d, claim %+v, refused %v", len(g.f.sent), g.inv.commits, g.inv.cert.Claim, g.f.refused)
		}
	})
	t.Run("throttled send", func(t *testing.T) {
		g := newGoneRig(t)
		g.f.gone[g.ids[1]] = true
		g.f.failNext = []error{errThrottled}
		_, err := g.p.Redeploy(ctx, "shop-web", inventory.TriggerAPI)
		if !errors.Is(err, errThrottled) || errors.Is(err, ErrTargetsGone) || len(g.um.asked) != 0 || len(g.f.sent) != 0 {
			t.Fatalf("err %v, asked %v, sent %d", err, g.um.asked, len(g.f.sent))
		}
	})
	t.Run("throttled check", func(t *testing.T) {
		g := newGoneRig(t)
		g.f.gone[g.ids[1]] = true
		g.um.err = errThrottled
		commits := g.inv.commits
		_, err := g.p.Redeploy(ctx, "shop-web", inventory.TriggerAPI)
		if !errors.Is(err, fleet.ErrInstancesRefused) || !errors.Is(err, errThrottled) || len(g.f.sent) != 0 || g.inv.commits != commits ||
			g.inv.cert.PendingSend.Dropped != nil {
			t.Fatalf("err %v, sent %d, commits %d, pending %+v", err, len(g.f.sent), g.inv.commits, g.inv.cert.PendingSend)
		}
	})
	t.Run("refused, nothing gone", func(t *testing.T) {
		g := newGoneRig(t)
		g.f.gone[g.ids[1]] = true
		g.um.gone = map[string]bool{} // SSM still manages every id (say, not this account's node)
		_, err := g.p.Redeploy(ctx, "shop-web", inventory.TriggerAPI)
		if !errors.Is(err, fleet.ErrInstancesRefused) || len(g.f.sent) != 0 {
			t.Fatalf("err %v, sent %d", err, len(g.f.sent))
		}
	})
}

// A run that dropped a node gone and sent to the rest, then failed before
// its commit (or between recording the send and SendCommand): the retry
// rebuilds the install without the recorded dropped ids, so it adopts the
// command sent (or sends it once), never a second command, and asks
// nothing again.
func TestDeployDropRetryAfterCrashSendsOnce(t *testing.T) {
	ctx := context.Background()
	t.Run("crash after the send", func(t *testing.T) {
		g := newGoneRig(t)
		g.renew(t)
		g.f.gone[g.ids[1]] = true
		g.inv.commitErr = errors.New("commit failed")
		if _, err := g.p.Sync(ctx, "shop-web", inventory.TriggerACM); err == nil {
			t.Fatal("the failed commit was not reported")
		}
		ps := g.inv.cert.PendingSend
		if ps == nil || !slices.Equal(ps.Dropped, g.ids[1:2]) || len(g.f.sent) != 1 {
			t.Fatalf("pending %+v, sent %d", ps, len(g.f.sent))
		}
		res, err := g.p.Sync(ctx, "shop-web", inventory.TriggerACM)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.f.sent) != 1 || len(g.f.refused) != 1 || len(g.um.asked) != 1 || res.CommandID != "cmd-sent-0" ||
			!slices.Equal(g.inv.committed.Dropped, g.ids[1:2]) || !slices.Equal(g.inv.committed.InstanceIDs, []string{g.ids[0], g.ids[2]}) {
			t.Fatalf("sent %d, refused %d, asked %d, result %+v, deployment %+v", len(g.f.sent), len(g.f.refused), len(g.um.asked), res, g.inv.committed)
		}
	})
	t.Run("crash before the send", func(t *testing.T) {
		g := newGoneRig(t)
		g.renew(t)
		g.f.gone[g.ids[1]] = true
		// The refused call goes through; the send to the rest fails
		// after its send id was recorded (as a crash there would leave it).
		g.f.afterRefusal = errThrottled
		run := func() (Result, error) { return g.p.Sync(ctx, "shop-web", inventory.TriggerACM) }
		if _, err := run(); !errors.Is(err, errThrottled) {
			t.Fatalf("first run: %v", err)
		}
		if ps := g.inv.cert.PendingSend; ps == nil || !slices.Equal(ps.Dropped, g.ids[1:2]) || len(g.f.sent) != 0 {
			t.Fatalf("pending %+v, sent %d", ps, len(g.f.sent))
		}
		if _, err := run(); err != nil {
			t.Fatal(err)
		}
		if len(g.f.sent) != 1 || len(g.f.refused) != 1 || len(g.um.asked) != 1 || !slices.Equal(g.f.sent[0].Instances(), []string{g.ids[0], g.ids[2]}) {
			t.Fatalf("sent %v, refused %d, asked %d", g.f.sent, len(g.f.refused), len(g.um.asked))
		}
	})
}

// An onboarding naming an instance id SSM does not manage is refused up
// front (a 400 naming it): nothing written, nothing sent. A waved send
// leaves the refusal to its rollout (Wave.Gone) even with the check wired.
func TestInstanceIDsGoneOnboardingAndWaves(t *testing.T) {
	ctx := context.Background()
	t.Run("onboarding", func(t *testing.T) {
		r := newRig(t)
		um := &fakeUnmanaged{gone: map[string]bool{ids(3)[2]: true}}
		r.p.WithUnmanaged(um)
		sp := onboardSpec()
		sp.Targets = []spec.Target{{Key: spec.TargetInstanceIDs, Values: ids(3)}}
		_, err := r.p.Onboard(ctx, sp)
		var fe *spec.FieldError
		if !errors.As(err, &fe) || fe.Field != "targets" || !strings.Contains(err.Error(), ids(3)[2]) || strings.Contains(err.Error(), ids(3)[0]) {
			t.Fatalf("err %v, want a 400 on targets naming %s alone", err, ids(3)[2])
		}
		if r.inv.cert != nil || len(r.fleet.sent) != 0 || r.acm.exports != 0 {
			t.Fatalf("written %+v, sent %d, exports %d", r.inv.cert, len(r.fleet.sent), r.acm.exports)
		}
		// Tag targets are not asked about.
		if _, err := r.p.Onboard(ctx, onboardSpec()); err != nil || len(um.asked) != 1 {
			t.Fatalf("tag onboarding: %v, asked %v", err, um.asked)
		}
	})
	t.Run("onboarding, check unanswered", func(t *testing.T) {
		r := newRig(t)
		um := &fakeUnmanaged{err: errThrottled}
		r.p.WithUnmanaged(um)
		sp := onboardSpec()
		sp.Targets = []spec.Target{{Key: spec.TargetInstanceIDs, Values: ids(3)}}
		if _, err := r.p.Onboard(ctx, sp); err != nil || len(um.asked) != 1 || len(r.fleet.sent) != 1 {
			t.Fatalf("onboarding with the check throttled: %v, asked %v, sent %d", err, um.asked, len(r.fleet.sent))
		}
	})
	t.Run("wave", func(t *testing.T) {
		g := newGoneRig(t)
		g.f.gone[g.ids[1]] = true
		var hooked [][]string
		_, err := g.p.SendWave(ctx, Wave{Name: "shop-web", RolloutID: "r1", Wave: 1, Waves: 1, Serial: g.acm.info.Serial, InstanceIDs: g.ids,
			Trigger: inventory.TriggerAPI, Gone: func(_ context.Context, refused []string) ([]string, error) {
				hooked = append(hooked, refused)
				return nil, nil
			}})
		if !errors.Is(err, fleet.ErrInstancesRefused) || len(hooked) != 1 || len(g.um.asked) != 0 || len(g.f.sent) != 0 {
			t.Fatalf("err %v, hook %v, pipeline asked %v", err, hooked, g.um.asked)
		}
	})
}
