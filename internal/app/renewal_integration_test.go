//go:build integration

package app

// Renewal on moto. moto cannot renew a certificate under the same ARN, so a
// renewal is staged the other way round: the secret's AWSCURRENT version and
// the inventory are rewound to an older certificate of the same ARN, which
// leaves ACM's certificate newer than what certferry deployed, exactly the
// state a real renewal produces.

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/renewal"
	"github.com/certferry/certferry/internal/testkit"
)

// renewalRig is the onboarding rig plus the renewal handler and a queue
// subscribed to the alerts topic.
type renewalRig struct {
	*rig
	renewal *renewal.Handler
	sqs     *sqs.Client
	queue   string
}

func newRenewalRig(t *testing.T) *renewalRig { return newRenewalRigOn(t, moto) }

// newRenewalRigOn is newRenewalRig on server.
func newRenewalRigOn(t *testing.T, server *motoserver.Server) *renewalRig {
	r := newRig(t, server)
	queue, err := localenv.SubscribeQueue(r.ctx, r.aws, r.cfg.TopicARN, "alerts-reader", false)
	if err != nil {
		t.Fatal(err)
	}
	return &renewalRig{rig: r, renewal: Renewal(r.aws, r.cfg, Options{}), sqs: sqs.NewFromConfig(r.aws), queue: queue}
}

// event reads events/<file> with the sample ARN replaced by arn and, when
// id is set, the event id replaced.
func (r *renewalRig) event(file, arn, id string) json.RawMessage {
	r.t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", file))
	if err != nil {
		r.t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(raw), localenv.SampleARN, arn)), &ev); err != nil {
		r.t.Fatal(err)
	}
	if id != "" {
		ev["id"] = id
	}
	out, _ := json.Marshal(ev)
	return out
}

func (r *renewalRig) handle(raw json.RawMessage) renewal.Outcome {
	r.t.Helper()
	out, err := r.renewal.Handle(r.ctx, raw)
	if err != nil {
		r.t.Fatalf("renewal handler: %v", err)
	}
	b, _ := json.Marshal(out)
	keep("handler outcome", string(b))
	return out
}

// alertMessage is one SNS notification read back from the queue.
type alertMessage struct{ Subject, Message string }

// alerts drains the queue; the sweep's risk reports are left out (moto
// reports every certificate's renewal INELIGIBLE, which a sweep reports a
// day after certferry's export, or at once for a serial it has not
// exported and is not deploying).
func (r *renewalRig) alerts() []alertMessage {
	return r.drainAlerts(func(n alertMessage) bool { return !strings.HasPrefix(n.Subject, "certferry: sweep:") })
}

// drainAlerts reads every alert published so far, passes each through the
// secret leak check (keep), and returns those keep says to.
func (r *renewalRig) drainAlerts(want func(alertMessage) bool) []alertMessage {
	r.t.Helper()
	var got []alertMessage
	for {
		out, err := r.sqs.ReceiveMessage(r.ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.queue), MaxNumberOfMessages: 10})
		if err != nil {
			r.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return got
		}
		for _, m := range out.Messages {
			var n alertMessage
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &n); err != nil {
				r.t.Fatalf("queue message is not an SNS notification: %v", err)
			}
			keep("alert", n.Subject+"\n"+n.Message)
			if want(n) {
				got = append(got, n)
			}
			if _, err := r.sqs.DeleteMessage(r.ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.queue), ReceiptHandle: m.ReceiptHandle}); err != nil {
				r.t.Fatal(err)
			}
		}
	}
}

// preRenewalACM stands in for ACM as it was before the renewal: it
// describes and exports an older certificate under the real ARN.
type preRenewalACM struct {
	t    testing.TB
	info certs.Info
	exp  testkit.Export
}

func (p *preRenewalACM) Describe(context.Context, string) (certs.Info, error) { return p.info, nil }

func (p *preRenewalACM) Export(_ context.Context, _ string, pass []byte) (certs.Exported, error) {
	seenMu.Lock()
	seen = append(seen, string(pass))
	seenMu.Unlock()
	return certs.Exported{Certificate: p.exp.Certificate, CertificateChain: p.exp.CertificateChain,
		PrivateKey: testkit.EncryptKey(p.t, p.exp.Key, string(pass))}, nil
}

// onboardedBeforeRenewal onboards name for a new exportable certificate on
// 2 tagged instances, as it was before ACM renewed it: the secret, the
// command and the inventory hold an older certificate of the same ARN,
// while moto's ACM holds the renewed one. It returns the ARN, the
// instances, the renewed (ACM's) serial and the old serial.
func (r *renewalRig) onboardedBeforeRenewal(name string) (arn string, tagged []string, renewed, old string) {
	r.t.Helper()
	tagged = r.launch(2, map[string]string{"env": "prod"})
	arn = r.exportable("shop.example.com")
	parts := NewParts(r.aws, r.cfg)
	now, err := parts.ACM.Describe(r.ctx, arn)
	if err != nil {
		r.t.Fatal(err)
	}
	exp := testkit.NewExport(r.t, testkit.RSA2048, "shop.example.com", "unused")
	before := now
	before.Serial = certs.SerialHex(exp.Leaf.SerialNumber)
	before.NotBefore, before.NotAfter = exp.Leaf.NotBefore, exp.Leaf.NotAfter
	p := pipeline.New(&preRenewalACM{t: r.t, info: before, exp: exp}, parts.Bundles, parts.Inventory, parts.Fleet, pipeline.Config{Region: "us-east-1"})
	res, err := p.Onboard(r.ctx, specOf(r.t.(*testing.T), onboardBody(arn, name)))
	if err != nil {
		r.t.Fatal(err)
	}
	if res.Serial != before.Serial || res.Serial == now.Serial {
		r.t.Fatalf("staged serial %s, ACM %s", res.Serial, now.Serial)
	}
	r.bundleOf(name) // remember its secrets for the leak check
	return arn, tagged, now.Serial, before.Serial
}

// onboarded onboards name for a new exportable certificate on 2 tagged
// instances and returns the ARN and the instances.
func (r *renewalRig) onboarded(name string) (string, []string) {
	r.t.Helper()
	tagged := r.launch(2, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	if status, ans := r.post(onboardBody(arn, name)); status != 202 {
		r.t.Fatalf("onboard: %d %v", status, ans)
	}
	return arn, tagged
}

func (r *renewalRig) cert(name string) *inventory.Cert {
	r.t.Helper()
	c, err := inventory.NewStore(r.ddb, r.cfg.Table).GetCert(r.ctx, name)
	if err != nil || c == nil {
		r.t.Fatalf("inventory %s: %v %v", name, c, err)
	}
	return c
}

func TestRenewalEventDeploysOnce(t *testing.T) {
	t.Parallel()
	r := newRenewalRig(t)
	arn, tagged, acmSerial, old := r.onboardedBeforeRenewal("shop-web")
	before := r.counts()

	out := r.handle(r.event("renewal-available-renewal.json", arn, ""))
	after := r.counts()
	if out.Status != renewal.StatusDone || len(out.Deployed) != 1 || out.Deployed[0].Serial != acmSerial {
		t.Fatalf("outcome %+v", out)
	}
	if after.versions != before.versions+1 || after.commands != before.commands+1 {
		t.Fatalf("counts %+v -> %+v: want one new secret version and one command", before, after)
	}
	if b := r.bundleOf("shop-web"); b.Serial != acmSerial || b.Serial == old {
		t.Fatalf("secret holds serial %s, want ACM's %s", b.Serial, acmSerial)
	}
	c := r.cert("shop-web")
	if c.Serial != acmSerial || c.LastCommandID != out.Deployed[0].CommandID {
		t.Fatalf("inventory %+v", c)
	}
	var cmd *ssmCommand
	for _, x := range r.commands() {
		if x.ID == out.Deployed[0].CommandID {
			cmd = &x
		}
	}
	if cmd == nil || !slices.Equal(slices.Sorted(slices.Values(cmd.Instances)), slices.Sorted(slices.Values(tagged))) {
		t.Fatalf("command %+v, want the bound targets %v", cmd, tagged)
	}
	d, err := inventory.NewStore(r.ddb, r.cfg.Table).Describe(r.ctx, "shop-web")
	if err != nil {
		t.Fatal(err)
	}
	if last := d.Deployments[len(d.Deployments)-1]; last.ID != out.Deployed[0].DeploymentID || last.Trigger != "acm-event" || last.Serial != acmSerial {
		t.Fatalf("deployment %+v", last)
	}

	// The same event again: nothing new.
	again := r.handle(r.event("renewal-available-renewal.json", arn, ""))
	if got := r.counts(); again.Status != renewal.StatusDuplicate || got.versions != after.versions || got.commands != after.commands {
		t.Fatalf("redelivery: %+v, counts %+v -> %+v", again, after, r.counts())
	}
	// Another event for the same, already deployed serial: checked, nothing new.
	other := r.handle(r.event("renewal-available-renewal.json", arn, "another-delivery-1"))
	if got := r.counts(); other.Status != renewal.StatusDone || !slices.Equal(other.Unchanged, []string{"shop-web"}) || got.versions != after.versions || got.commands != after.commands {
		t.Fatalf("same serial: %+v, counts %+v -> %+v", other, after, r.counts())
	}
	if n := len(r.alerts()); n != 0 {
		t.Fatalf("%d alerts for a successful renewal", n)
	}
}

// 10 copies of one event, then 5 ACM + 5 Health events for one renewal, all
// delivered at once: one new secret version and one command each time.
func TestRenewalConcurrentDeliveries(t *testing.T) {
	t.Parallel()
	for _, round := range []struct {
		name string
		acm  int
		hlth int
	}{
		{"10 copies of one event", 10, 0},
		{"ACM and Health events for one renewal", 5, 5},
	} {
		t.Run(round.name, func(t *testing.T) {
			r := newRenewalRig(t)
			arn, _, _, _ := r.onboardedBeforeRenewal("shop-web")
			evs := append(repeat(r.event("renewal-available-renewal.json", arn, ""), round.acm),
				repeat(r.event("renewal-health-completed.json", arn, ""), round.hlth)...)
			before := r.counts()
			var wg sync.WaitGroup
			outcomes := make(chan renewal.Outcome, len(evs))
			retries := make(chan json.RawMessage, len(evs))
			for _, ev := range evs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out, err := r.renewal.Handle(r.ctx, ev)
					switch {
					case errors.Is(err, renewal.ErrInProgress), errors.Is(err, pipeline.ErrBusy):
						// Another delivery is at work: this one fails and
						// Lambda retries it, never acknowledged unfinished.
						retries <- ev
					case err != nil:
						t.Errorf("delivery failed: %v", err)
					default:
						outcomes <- out
					}
				}()
			}
			wg.Wait()
			close(retries)
			// Lambda's retries, once the first handling finished: each acts
			// or is acknowledged.
			for ev := range retries {
				out, err := r.renewal.Handle(r.ctx, ev)
				if err != nil {
					t.Fatalf("retried delivery failed: %v", err)
				}
				outcomes <- out
			}
			close(outcomes)
			deployed := 0
			statuses := map[renewal.Status]int{}
			for o := range outcomes {
				deployed += len(o.Deployed)
				statuses[o.Status]++
			}
			after := r.counts()
			if deployed != 1 || after.versions != before.versions+1 || after.commands != before.commands+1 {
				t.Fatalf("%d deployments (%v); counts %+v -> %+v: want exactly one new version and one command", deployed, statuses, before, after)
			}
		})
	}
}

func repeat(ev json.RawMessage, n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range out {
		out[i] = ev
	}
	return out
}

func TestHealthEvents(t *testing.T) {
	t.Parallel()
	r := newRenewalRig(t)
	arn, _, acmSerial, _ := r.onboardedBeforeRenewal("internal-api")

	// A failed renewal: one alert, no deployment.
	before := r.counts()
	out := r.handle(r.event("renewal-health-failed.json", arn, ""))
	if out.Status != renewal.StatusDone || len(out.Deployed) != 0 || len(out.Alerts) != 1 {
		t.Fatalf("failed renewal: %+v", out)
	}
	if got := r.counts(); got.versions != before.versions || got.commands != before.commands {
		t.Fatalf("a failed renewal deployed: %+v -> %+v", before, got)
	}
	msgs := r.alerts()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "unable to renew") || !strings.Contains(msgs[0].Message, "internal-api") {
		t.Fatalf("alerts %+v", msgs)
	}

	// A completed renewal: deployed with trigger health-event.
	out = r.handle(r.event("renewal-health-completed.json", arn, ""))
	if len(out.Deployed) != 1 || out.Deployed[0].Serial != acmSerial {
		t.Fatalf("completed renewal: %+v", out)
	}
	if got := r.counts(); got.versions != before.versions+1 || got.commands != before.commands+1 {
		t.Fatalf("completed renewal: %+v -> %+v", before, got)
	}
	d, _ := inventory.NewStore(r.ddb, r.cfg.Table).Describe(r.ctx, "internal-api")
	if last := d.Deployments[len(d.Deployments)-1]; last.Trigger != "health-event" {
		t.Fatalf("trigger %s", last.Trigger)
	}
	if n := len(r.alerts()); n != 0 {
		t.Fatalf("%d alerts for a completed renewal", n)
	}
}

// Each alert kind publishes one message naming the certificate, its domain,
// days to expiry, every bound name and the nodes; a redelivery publishes
// nothing.
func TestAlertKinds(t *testing.T) {
	t.Parallel()
	tr := newTrackRig(t)
	r := tr.renewalRig
	arn, tagged := r.onboarded("shop-web")
	if status, ans := r.post(strings.Replace(onboardBody(arn, "shop-admin"), `"shop.example.com"`, `"admin.example.com"`, 1)); status != 202 {
		t.Fatalf("second name: %d %v", status, ans)
	}
	// The nodes report their installs, so the inventory knows who carries it.
	for _, name := range []string{"shop-web", "shop-admin"} {
		c := r.cert(name)
		for _, id := range tagged {
			tr.out.Out[id] = resultLine("installed", c.Fingerprint, c.Serial, "ok")
			tr.track("tracker-invocation-success.json", c.LastCommandID, id)
		}
	}
	before := r.counts()
	// Revoked: moto cannot revoke, so ACM still reports the deployed serial
	// ISSUED: nothing is deployed and the alert goes out.
	for _, file := range []string{"renewal-action-required.json", "renewal-approaching-expiration.json", "renewal-expired.json", "renewal-health-failed.json", "renewal-revoked.json"} {
		t.Run(file, func(t *testing.T) {
			r.t = t
			out := r.handle(r.event(file, arn, ""))
			if out.Status != renewal.StatusDone || len(out.Alerts) != 1 {
				t.Fatalf("outcome %+v", out)
			}
			if again := r.handle(r.event(file, arn, "")); again.Status != renewal.StatusDuplicate {
				t.Fatalf("redelivery %+v", again)
			}
			msgs := r.alerts()
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
			m := msgs[0]
			for _, want := range append([]string{arn, "shop.example.com", "Days to expiry:", "shop-web", "shop-admin", "What to do:"}, tagged...) {
				if !strings.Contains(m.Message, want) {
					t.Errorf("message lacks %q:\n%s", want, m.Message)
				}
			}
			if m.Subject == "" || len(m.Subject) > 100 {
				t.Errorf("subject %q", m.Subject)
			}
			testkit.AssertNoSecrets(t, "alert", m.Message, r.secretValues()...)
		})
	}
	if got := r.counts(); got.versions != before.versions || got.commands != before.commands {
		t.Fatalf("alerts deployed: %+v -> %+v", before, got)
	}
}

// Events for certificates certferry does not manage, unknown kinds and
// malformed events.
func TestRenewalIgnoresAndRejects(t *testing.T) {
	t.Parallel()
	r := newRenewalRig(t)
	r.onboarded("shop-web")
	stranger := r.exportable("other.example.com")
	before := r.counts()
	for _, tc := range []struct {
		name   string
		raw    json.RawMessage
		status renewal.Status
		fails  bool
	}{
		{"unbound certificate", r.event("renewal-available-renewal.json", stranger, ""), renewal.StatusIgnored, false},
		{"unbound certificate alert", r.event("renewal-expired.json", stranger, ""), renewal.StatusIgnored, false},
		{"unknown kind", r.event("renewal-unknown-kind.json", stranger, ""), renewal.StatusIgnored, false},
		{"no resources", r.event("renewal-malformed-no-resources.json", stranger, ""), renewal.StatusRejected, true},
		{"not JSON", json.RawMessage(`<xml/>`), renewal.StatusRejected, true},
	} {
		out, err := r.renewal.Handle(r.ctx, tc.raw)
		if (err != nil) != tc.fails || out.Status != tc.status {
			t.Errorf("%s: %+v, %v", tc.name, out, err)
		}
	}
	if got := r.counts(); got != before {
		t.Fatalf("ignored or rejected events wrote: %+v -> %+v", before, got)
	}
	if n := len(r.alerts()); n != 0 {
		t.Fatalf("%d alerts", n)
	}
}
