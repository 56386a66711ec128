package pipeline

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/testkit"

	"github.com/certferry/certferry/internal/certs"
)

// A renewal that finds another run holding the claim for the same serial is
// not "unchanged": if that run fails the renewal would be lost. Sync answers
// ErrBusy, which event handlers return so that the event is retried.
func TestSyncDuringAnotherRunsClaimIsRetryable(t *testing.T) {
	r := newRig(t)
	if _, err := r.p.Onboard(context.Background(), onboardSpec()); err != nil {
		t.Fatal(err)
	}
	r.acm.export = testkit.NewExport(t, testkit.RSA2048, "shop.example.com", "x")
	r.acm.info.Serial = certs.SerialHex(r.acm.export.Leaf.SerialNumber)
	held := *r.inv.cert
	held.Claim = &inventory.Claim{Token: "other", Serial: r.acm.info.Serial, Until: r.now.Add(time.Minute).Unix()}
	r.inv.cert = &held
	res, err := r.p.Sync(context.Background(), "shop-web", inventory.TriggerACM)
	if !errors.Is(err, ErrBusy) || res.Unchanged {
		t.Fatalf("Sync() = %+v, %v; want ErrBusy (retry), never Unchanged", res, err)
	}
	if len(r.fleet.sent) != 1 || r.acm.exports != 1 {
		t.Fatal("a busy Sync exported or sent")
	}
}

// DELETE respects a live claim: it is refused (ErrBusy) while a deployment
// runs, and takes the claim itself otherwise.
func TestDeleteRespectsLiveClaims(t *testing.T) {
	r := newRig(t)
	if _, err := r.p.Onboard(context.Background(), onboardSpec()); err != nil {
		t.Fatal(err)
	}
	held := *r.inv.cert
	held.Claim = &inventory.Claim{Token: "other", Serial: "ff", Until: r.now.Add(time.Minute).Unix()}
	r.inv.cert = &held
	if _, err := r.p.Delete(context.Background(), "shop-web"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Delete during a live claim: %v, want ErrBusy", err)
	}
	if r.inv.deleted != 0 {
		t.Fatal("a refused delete deleted")
	}
	r.now = r.now.Add(3 * time.Minute) // the claim lapsed
	if found, err := r.p.Delete(context.Background(), "shop-web"); err != nil || !found || r.inv.deleted != 1 {
		t.Fatalf("Delete after the claim lapsed: %v %v (deleted %d)", found, err, r.inv.deleted)
	}
	if found, err := r.p.Delete(context.Background(), "unknown"); err != nil || found {
		t.Fatalf("Delete(unknown) = %v, %v", found, err)
	}
}

// A run whose claim was taken over (its lease lapsed and a DELETE or
// another run took the name) writes no secret version and sends nothing.
func TestRunTakenOverWritesNothing(t *testing.T) {
	r := newRig(t)
	r.acm.onExport = func() {
		other := *r.inv.cert
		other.Claim = &inventory.Claim{Token: "delete", Until: r.now.Add(time.Minute).Unix()}
		other.Version++
		r.inv.cert = &other
	}
	if _, err := r.p.Onboard(context.Background(), onboardSpec()); !errors.Is(err, ErrBusy) {
		t.Fatalf("Onboard() = %v, want ErrBusy", err)
	}
	if r.store.puts != 0 || len(r.fleet.sent) != 0 || r.inv.commits != 0 {
		t.Fatalf("puts %d sent %d commits %d: a run without its claim wrote", r.store.puts, len(r.fleet.sent), r.inv.commits)
	}
}
