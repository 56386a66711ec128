//go:build integration

package app

// DynamoDB transaction conflicts. moto (serialised) runs one request at a
// time, so no transaction is ever ongoing when another arrives and nothing
// ever conflicts; DynamoDB cancels overlapping transactions on one item and
// rejects single-item writes on an item an ongoing transaction holds.
// These tests put testkit.DDBConflicts (which answers as DynamoDB documents,
// see its file) in front of the rig, between the functions' SDK clients and
// moto, and drive the real handlers concurrently.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/renewal"
	"github.com/certferry/certferry/internal/testkit"
	"github.com/certferry/certferry/internal/tracker"
)

// conflictWindow keeps each transaction in flight a little longer than the
// emulator takes, so that concurrent handlers overlap as they do on
// DynamoDB.
const conflictWindow = 5 * time.Millisecond

// waveConflictWindow is TestTrackerWaveWithConflicts' window (see there).
const waveConflictWindow = 50 * time.Millisecond

// waveTimeout is each event's deadline in the wave. On AWS it would be the
// tracker function's 30 s timeout; but moto serves the wave's ~2,000
// requests one at a time (DynamoDB serves them in parallel), so the wave
// lasts as long as the emulator takes, not as long as DynamoDB would. The
// deadline is there so that a retry loop that never ends fails the test
// instead of hanging it; that retries never wait past a deadline is pinned
// in internal/inventory (TestConflictRetryStopsAtDeadline).
const waveTimeout = 5 * time.Minute

// withConflicts returns an SDK config for r's stack whose requests pass the
// DynamoDB conflict layer, and the layer.
func withConflicts(t *testing.T, r *rig) (aws.Config, *testkit.DDBConflicts) {
	t.Helper()
	return withConflictOptions(t, r, testkit.DDBConflictOptions{Window: conflictWindow})
}

func withConflictOptions(t *testing.T, r *rig, opts testkit.DDBConflictOptions) (aws.Config, *testkit.DDBConflicts) {
	t.Helper()
	proxy, err := testkit.NewFaultProxy(r.server.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	opts.Endpoint = r.server.URL
	c := testkit.NewDDBConflicts(opts)
	proxy.Use(c.Layer)
	return aimedAt(r, proxy.URL), c
}

// A rollout wave: 200 nodes report at once on one deployment, with the
// command's own status among them. Every node is recorded, the counts are
// exact, the deployment finishes exactly once and alerts once.
func TestTrackerWaveWithConflicts(t *testing.T) {
	// The longest test: on a moto of its own it runs beside the others
	// (stopped, and its model violations reported, after the rig's cleanup).
	t.Parallel()
	own := testkit.StartRigT(t)
	r := newTrackRigOn(t, own.Moto)
	const n = 200
	nodes := r.launch(n, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	if status, ans := r.post(onboardBody(arn, "shop-web")); status != 202 {
		t.Fatalf("onboard: %d %v", status, ans)
	}
	c := r.cert("shop-web")
	cmd := c.LastCommandID

	// The mix: every 10th node rolls back, every 25th (from the 2nd) fails
	// before installing, the others install.
	want := map[string]inventory.NodeState{}
	wantCounts := map[inventory.NodeState]int{}
	var evs []json.RawMessage
	for i, id := range nodes {
		state, file := inventory.NodeInstalled, "tracker-invocation-success.json"
		r.out.Out[id] = resultLine("installed", c.Fingerprint, c.Serial, "installed shop-web")
		switch {
		case i%10 == 0:
			state, file = inventory.NodeRolledBack, "tracker-invocation-failed.json"
			r.out.Out[id] = resultLine("rolled_back", c.Fingerprint, c.Serial, "handshake served another certificate")
		case i%25 == 1:
			state, file = inventory.NodeFailed, "tracker-invocation-failed.json"
			r.out.Out[id] = resultLine("failed", c.Fingerprint, c.Serial, "config test failed")
		}
		want[id] = state
		wantCounts[state]++
		evs = append(evs, r.status(file, cmd, id))
	}
	evs = append(evs, r.status("tracker-command-failed.json", cmd, nodes[0]))

	// The wave's transactions meet on the 16 COUNT shards only by chance:
	// moto serves the ~2,000 requests one at a time, which spreads them
	// over seconds, and with conflictWindow (5 ms) about one overlap was
	// expected per wave, so about one wave in four met none and the guard
	// below failed. A 50 ms window makes about ten expected, and a wave
	// without any practically impossible; the counts checked are the same.
	awsCfg, conflicts := withConflictOptions(t, r.rig, testkit.DDBConflictOptions{Window: waveConflictWindow})
	h := Tracker(awsCfg, r.cfg, Options{SSM: r.out, Metrics: io.Discard})
	outs, errs := handleAll(r.ctx, h, evs)
	for i, err := range errs {
		t.Errorf("event %d failed (Lambda would retry it, then dead-letter it): %v", i, err)
		if i == 4 {
			t.Fatalf("%d of %d events failed", len(errs), len(evs))
		}
	}
	stats := conflicts.Stats()
	if stats.Canceled+stats.Conflicted == 0 {
		t.Fatal("the wave met no transaction conflict: the test proves nothing")
	}
	t.Logf("conflicts answered: %+v", stats)

	d, err := r.inv.Describe(r.ctx, "shop-web")
	if err != nil {
		t.Fatal(err)
	}
	got := d.NodesByID()
	for id, state := range want {
		if nd := got[id]; nd.State != state || nd.DeploymentID != c.LastDeploymentID {
			t.Errorf("node %s: %+v, want %s", id, nd, state)
		}
	}
	dep, _ := r.inv.GetDeployment(r.ctx, "shop-web", c.LastDeploymentID)
	for _, s := range []inventory.NodeState{inventory.NodeInstalled, inventory.NodeRolledBack, inventory.NodeFailed} {
		if dep.Counts[s] != wantCounts[s] {
			t.Errorf("deployment counts %v, want %v", dep.Counts, wantCounts)
			break
		}
	}
	if dep.Counts[inventory.NodePending] != 0 || dep.Outcome != inventory.OutcomePartial || dep.Expected != n {
		t.Errorf("deployment %+v: want partial, %d expected, none pending", dep, n)
	}
	// What the API and the sweep read (Describe) counts the same.
	if last := d.Deployments[len(d.Deployments)-1]; fmt.Sprint(last.Counts) != fmt.Sprint(dep.Counts) {
		t.Errorf("Describe counts %v, GetDeployment %v", last.Counts, dep.Counts)
	}
	finished := 0
	for _, o := range outs {
		if o.Status == tracker.StatusFinished {
			finished++
			if o.Deployment != inventory.OutcomePartial || o.AlertID == "" {
				t.Errorf("finishing outcome %+v", o)
			}
		}
	}
	msgs := r.alerts()
	if finished != 1 || len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "partial") {
		t.Fatalf("%d events finished the deployment; alerts %+v: want one of each", finished, msgs)
	}
	failedNode := nodes[1]
	if !strings.Contains(msgs[0].Message, failedNode) || !strings.Contains(msgs[0].Message, nodes[0]) || strings.Contains(msgs[0].Message, nodes[2]) {
		t.Fatalf("the alert does not name exactly the failed nodes: %s", msgs[0].Message)
	}
}

// handleAll hands every event to the tracker at once, each under the
// function's timeout, and returns the outcomes and the errors.
func handleAll(ctx context.Context, h *tracker.Tracker, evs []json.RawMessage) ([]tracker.Outcome, []error) {
	var (
		mu   sync.Mutex
		outs []tracker.Outcome
		errs []error
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for _, ev := range evs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ctx, cancel := context.WithTimeout(ctx, waveTimeout)
			defer cancel()
			out, err := h.Handle(ctx, ev)
			b, _ := json.Marshal(out)
			keep("handler outcome", string(b))
			mu.Lock()
			defer mu.Unlock()
			outs = append(outs, out)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return outs, errs
}

// Onboarding and renewal stay exactly-once with conflicts on: concurrent
// requests and deliveries race for the claim and the commit, the losers
// of a conflict retry and then meet the winner's version.
func TestExactlyOnceWithConflicts(t *testing.T) {
	t.Parallel()
	t.Run("8 concurrent onboardings", func(t *testing.T) {
		r := newRig(t, moto)
		r.launch(2, map[string]string{"env": "prod"})
		arn := r.exportable("shop.example.com")
		awsCfg, conflicts := withConflicts(t, r)
		h := Onboard(awsCfg, r.cfg, Options{})
		onboardConcurrently(t, r, h, arn, 8)
		consistent(t, r, "shop-web", 0)
		t.Logf("conflicts answered: %+v", conflicts.Stats())
	})
	// A run whose lease ran out releases its claim (its deferred release)
	// while the run that took over commits: the release meets the commit's
	// transaction on META (TransactionConflictException), retries, and
	// then finds the claim is not its own any more, and changes nothing.
	t.Run("stale release during a commit", func(t *testing.T) {
		r := newRig(t, moto)
		r.launch(2, map[string]string{"env": "prod"})
		arn := r.exportable("shop.example.com")
		committing, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		awsCfg, conflicts := withConflictOptions(t, r, testkit.DDBConflictOptions{
			// The commit (the transaction that puts the DEPLOY item) stays
			// ongoing until the test lets it go.
			Hold: func(ctx context.Context, body []byte) bool {
				if !strings.Contains(string(body), `"DEPLOY#`) {
					return true
				}
				once.Do(func() { close(committing) })
				select {
				case <-release:
					return true
				case <-ctx.Done():
					return false
				}
			},
		})
		h := Onboard(awsCfg, r.cfg, Options{})
		onboarded := make(chan int, 1)
		go func() {
			resp, err := h.Handle(r.ctx, events.APIGatewayProxyRequest{
				HTTPMethod: "POST", Path: "/certificates", Resource: "/certificates", Body: onboardBody(arn, "shop-web"),
			})
			if err != nil {
				t.Error(err)
			}
			keep("api answer", resp.Body)
			onboarded <- resp.StatusCode
		}()
		<-committing
		stale := inventory.NewStore(dynamodb.NewFromConfig(awsCfg), r.cfg.Table)
		released := make(chan error, 1)
		go func() { released <- stale.ReleaseClaim(r.ctx, "shop-web", "token-of-a-run-that-lost-its-lease") }()
		// Let the commit go once the release has met it.
		for conflicts.Stats().Conflicted == 0 {
			select {
			case err := <-released:
				t.Fatalf("the release ended before meeting the commit: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		close(release)
		if status := <-onboarded; status != 202 {
			t.Fatalf("onboarding answered %d", status)
		}
		if err := <-released; err != nil {
			t.Fatalf("stale release: %v", err)
		}
		consistent(t, r, "shop-web", 0)
		t.Logf("conflicts answered: %+v", conflicts.Stats())
	})
	t.Run("10 concurrent renewal deliveries", func(t *testing.T) {
		r := newRenewalRig(t)
		arn, _, _, _ := r.onboardedBeforeRenewal("shop-web")
		awsCfg, conflicts := withConflicts(t, r.rig)
		h := Renewal(awsCfg, r.cfg, Options{})
		ev := r.event("renewal-available-renewal.json", arn, "")
		before := r.counts()
		var wg sync.WaitGroup
		outcomes := make(chan renewal.Outcome, 10)
		retries := make(chan struct{}, 10)
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := h.Handle(r.ctx, ev)
				switch {
				case errors.Is(err, renewal.ErrInProgress), errors.Is(err, pipeline.ErrBusy):
					retries <- struct{}{} // another delivery is at work: Lambda retries this one
				case err != nil:
					t.Errorf("delivery failed: %v", err)
				default:
					b, _ := json.Marshal(out)
					keep("handler outcome", string(b))
					outcomes <- out
				}
			}()
		}
		wg.Wait()
		close(retries)
		// Lambda's retries, once the first handling finished.
		for range retries {
			out, err := h.Handle(r.ctx, ev)
			if err != nil {
				t.Fatalf("retried delivery failed: %v", err)
			}
			outcomes <- out
		}
		close(outcomes)
		deployed := 0
		for o := range outcomes {
			deployed += len(o.Deployed)
		}
		after := r.counts()
		if deployed != 1 || after.versions != before.versions+1 || after.commands != before.commands+1 {
			t.Fatalf("%d deployments; counts %+v -> %+v: want exactly one new version and one command", deployed, before, after)
		}
		t.Logf("conflicts answered: %+v", conflicts.Stats())
	})
}

// A finished deployment expires (DynamoDB TTL on expiresAt) the configured
// retention after it finished; one in progress never does.
func TestFinishedDeploymentsExpire(t *testing.T) {
	t.Parallel()
	r := newTrackRig(t)
	nodes := r.launch(1, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	for _, name := range []string{"shop-web", "shop-api"} {
		if status, ans := r.post(onboardBody(arn, name)); status != 202 {
			t.Fatalf("onboard %s: %d %v", name, status, ans)
		}
	}
	cfg := r.cfg
	cfg.DeployRetentionDays = 7
	h := Tracker(r.aws, cfg, Options{SSM: r.out, Metrics: io.Discard})
	done := r.cert("shop-web")
	r.out.Out[nodes[0]] = resultLine("installed", done.Fingerprint, done.Serial, "ok")
	for _, file := range []string{"tracker-invocation-success.json", "tracker-command-success.json"} {
		if _, err := h.Handle(r.ctx, r.status(file, done.LastCommandID, nodes[0])); err != nil {
			t.Fatal(err)
		}
	}
	waiting := r.cert("shop-api") // no event: still in progress

	for _, tc := range []struct {
		name, id string
		expires  bool
	}{
		{"shop-web", done.LastDeploymentID, true},
		{"shop-api", waiting.LastDeploymentID, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := r.ddb.GetItem(r.ctx, &dynamodb.GetItemInput{TableName: aws.String(r.cfg.Table), ConsistentRead: aws.Bool(true),
				Key: map[string]ddbtypes.AttributeValue{
					"PK": &ddbtypes.AttributeValueMemberS{Value: inventory.CertKey(tc.name)},
					"SK": &ddbtypes.AttributeValueMemberS{Value: "DEPLOY#" + tc.id},
				}})
			if err != nil || out.Item == nil {
				t.Fatalf("deployment item: %v %v", out, err)
			}
			keep("dynamodb item", fmt.Sprintf("%v", out.Item))
			ttl, has := out.Item[inventory.TTLAttribute].(*ddbtypes.AttributeValueMemberN)
			if !tc.expires {
				if has || out.Item["outcome"].(*ddbtypes.AttributeValueMemberS).Value != string(inventory.OutcomeInProgress) {
					t.Fatalf("deployment in progress: %v", out.Item)
				}
				return
			}
			fin, ok := out.Item["finishedAt"].(*ddbtypes.AttributeValueMemberS)
			if !has || !ok {
				t.Fatalf("finished deployment without expiry: %v", out.Item)
			}
			at, err := time.Parse(time.RFC3339, fin.Value)
			if err != nil {
				t.Fatal(err)
			}
			if want := strconv.FormatInt(at.Add(7*24*time.Hour).Unix(), 10); ttl.Value != want {
				t.Fatalf("expiresAt %s, want %s (finishedAt %s + 7 days)", ttl.Value, want, fin.Value)
			}
		})
	}

	// Deleting a name removes every item under it, the deployment's count
	// shards included.
	if ok, err := r.inv.DeleteCert(r.ctx, "shop-web"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	left, err := r.ddb.Query(r.ctx, &dynamodb.QueryInput{TableName: aws.String(r.cfg.Table), KeyConditionExpression: aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": &ddbtypes.AttributeValueMemberS{Value: inventory.CertKey("shop-web")}}})
	if err != nil || len(left.Items) != 0 {
		t.Fatalf("after delete: %d items left (%v)", len(left.Items), err)
	}
}
