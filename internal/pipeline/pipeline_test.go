package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
	"github.com/certferry/certferry/internal/testkit"
)

const arn = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"

// Hand-written fakes with the state the pipeline reads and writes.
type fakeACM struct {
	t        testing.TB
	info     certs.Info
	export   testkit.Export
	exports  int
	onExport func() // runs at each export, e.g. to take the claim away
}

func (f *fakeACM) Describe(context.Context, string) (certs.Info, error) { return f.info, nil }
func (f *fakeACM) Export(_ context.Context, _ string, pass []byte) (certs.Exported, error) {
	f.exports++
	if f.onExport != nil {
		f.onExport()
	}
	return certs.Exported{Certificate: f.export.Certificate, CertificateChain: f.export.CertificateChain,
		PrivateKey: testkit.EncryptKey(f.t, f.export.Key, string(pass))}, nil
}

type fakeStore struct {
	current   *bundle.Bundle
	puts      int
	keystores []string // names whose keystore password was ensured
	ksErr     error
	// scheduled: the name's secret is scheduled for deletion (an earlier
	// DELETE ?deleteSecret=true).
	scheduled bool
}

func (f *fakeStore) CheckNotScheduledForDeletion(_ context.Context, name string, _ bool) error {
	if f.scheduled {
		return fmt.Errorf("secret certferry/%s: %w", name, bundle.ErrScheduledForDeletion)
	}
	return nil
}

func (f *fakeStore) EnsureKeystorePassword(_ context.Context, name string) error {
	if f.ksErr != nil {
		return f.ksErr
	}
	f.keystores = append(f.keystores, name)
	return nil
}

func (f *fakeStore) SecretName(n string) string { return "certferry/" + n }
func (f *fakeStore) NewPassphrase(context.Context) (string, error) {
	return "RandomPassphrase0123456789abcdef", nil
}
func (f *fakeStore) Current(context.Context, string) (*bundle.Bundle, bundle.Version, error) {
	return f.current, bundle.Version{SecretARN: "arn:secret", VersionID: "v1"}, nil
}
func (f *fakeStore) Put(_ context.Context, _ string, b *bundle.Bundle, _ string) (bundle.Version, error) {
	f.puts++
	f.current = b
	return bundle.Version{SecretARN: "arn:secret", VersionID: "v2"}, nil
}

type fakeInventory struct {
	cert      *inventory.Cert
	commits   int
	released  []string
	commitErr error // the next Commit fails with it
	deleted   int
	// committed and failures are the last Commit's deployment and carried
	// failures.
	committed *inventory.Deployment
	failures  map[string]int
	rollout   *inventory.Rollout // GetRollout's answer
}

func (f *fakeInventory) GetRollout(context.Context, string) (*inventory.Rollout, error) {
	if f.rollout == nil {
		return nil, nil
	}
	r := *f.rollout
	return &r, nil
}

func (f *fakeInventory) DeleteCert(_ context.Context, name string) (bool, error) {
	if f.cert == nil || f.cert.Name != name {
		return false, nil
	}
	f.deleted++
	f.cert = nil
	return true, nil
}

func (f *fakeInventory) GetCert(_ context.Context, name string) (*inventory.Cert, error) {
	if f.cert == nil || f.cert.Name != name {
		return nil, nil
	}
	return f.cert, nil
}
func (f *fakeInventory) CreateCert(_ context.Context, sp spec.Spec, c inventory.Claim) (*inventory.Cert, error) {
	if f.cert != nil {
		return nil, inventory.ErrConflict
	}
	f.cert = &inventory.Cert{Spec: sp, Version: 1, Claim: &c, Status: inventory.StatusOnboarding}
	return f.cert, nil
}
func (f *fakeInventory) TakeClaim(_ context.Context, c *inventory.Cert, cl inventory.Claim) (*inventory.Cert, error) {
	if f.cert.Version != c.Version {
		return nil, inventory.ErrConflict
	}
	next := *c
	next.Claim, next.Version = &cl, c.Version+1
	f.cert = &next
	return &next, nil
}
func (f *fakeInventory) ReleaseClaim(_ context.Context, _ string, token string) error {
	f.released = append(f.released, token)
	return nil
}
func (f *fakeInventory) RecordSend(_ context.Context, c *inventory.Cert, token string, ps inventory.PendingSend) (*inventory.Cert, error) {
	if f.cert.Version != c.Version || f.cert.Claim == nil || f.cert.Claim.Token != token {
		return nil, inventory.ErrConflict
	}
	next := *c
	next.PendingSend, next.Version = &ps, c.Version+1
	f.cert = &next
	return &next, nil
}
func (f *fakeInventory) Commit(_ context.Context, c *inventory.Cert, d *inventory.Deployment, failures map[string]int) (*inventory.Cert, error) {
	if f.commitErr != nil {
		err := f.commitErr
		f.commitErr = nil
		return nil, err
	}
	f.commits++
	f.committed, f.failures = d, failures
	next := *c
	next.Claim, next.Status, next.LastCommandID, next.LastDeploymentID = nil, inventory.StatusActive, d.CommandID, d.ID
	f.cert = &next
	return &next, nil
}

// fakeFleet keeps what it sent; Find adopts a sent command only by its send id.
type fakeFleet struct {
	sent []fleet.Install
	err  error
}

func (f *fakeFleet) Send(_ context.Context, in fleet.Install) (fleet.Command, error) {
	if f.err != nil {
		return fleet.Command{}, f.err
	}
	f.sent = append(f.sent, in)
	return fleet.Command{ID: "cmd-new", InstanceIDs: []string{"i-0123456789abcdef0"}}, nil
}
func (f *fakeFleet) Find(_ context.Context, in fleet.Install, _ time.Time) (*fleet.Command, error) {
	for i, s := range f.sent {
		if in.SendID != "" && s.SendID == in.SendID && fleet.InstallKey(s) == fleet.InstallKey(in) {
			return &fleet.Command{ID: fmt.Sprintf("cmd-sent-%d", i)}, nil
		}
	}
	return nil, nil
}

type rig struct {
	acm   *fakeACM
	store *fakeStore
	inv   *fakeInventory
	fleet *fakeFleet
	p     *Pipeline
	now   time.Time
}

func newRig(t *testing.T) *rig {
	exp := testkit.NewExport(t, testkit.RSA2048, "shop.example.com", "unused-here")
	serial := certs.SerialHex(exp.Leaf.SerialNumber)
	r := &rig{
		acm:   &fakeACM{t: t, export: exp, info: certs.Info{ARN: arn, Status: "ISSUED", Type: "PRIVATE", Serial: serial, DomainName: "*.example.com"}},
		store: &fakeStore{}, inv: &fakeInventory{}, fleet: &fakeFleet{},
		now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
	}
	r.p = New(r.acm, r.store, r.inv, r.fleet, Config{Region: "us-east-1"})
	r.p.now = func() time.Time { return r.now }
	return r
}

func onboardSpec() spec.Spec {
	return spec.Spec{Name: "shop-web", CertificateARN: arn, Targets: []spec.Target{{Key: "tag:env", Values: []string{"prod"}}}}
}

func TestOnboardThenSync(t *testing.T) {
	r := newRig(t)
	res, err := r.p.Onboard(context.Background(), onboardSpec())
	if err != nil {
		t.Fatal(err)
	}
	if r.acm.exports != 1 || r.store.puts != 1 || len(r.fleet.sent) != 1 || r.inv.commits != 1 || res.CommandID != "cmd-new" {
		t.Fatalf("exports %d puts %d sent %d commits %d", r.acm.exports, r.store.puts, len(r.fleet.sent), r.inv.commits)
	}
	if got := r.fleet.sent[0].ServerName; got != "www.example.com" {
		t.Errorf("server name for *.example.com = %q, want www.example.com", got)
	}
	// Same serial: Sync does nothing at all.
	res, err = r.p.Sync(context.Background(), "shop-web", inventory.TriggerACM)
	if err != nil || !res.Unchanged || r.acm.exports != 1 || len(r.fleet.sent) != 1 || r.inv.commits != 1 {
		t.Fatalf("sync with unchanged serial: %+v %v", res, err)
	}
	// A renewed serial: exported, stored and sent once.
	r.acm.export = testkit.NewExport(t, testkit.RSA2048, "shop.example.com", "x")
	r.acm.info.Serial = certs.SerialHex(r.acm.export.Leaf.SerialNumber)
	res, err = r.p.Sync(context.Background(), "shop-web", inventory.TriggerACM)
	if err != nil || res.Unchanged || r.acm.exports != 2 || r.store.puts != 2 || len(r.fleet.sent) != 2 || res.Serial != r.acm.info.Serial {
		t.Fatalf("sync after renewal: %+v %v (exports %d)", res, err, r.acm.exports)
	}
}

// The sweep's resend goes to the given nodes only, records them pending,
// and hands the inventory their consecutive failures (a parameter of the
// commit, not a field of the stored deployment).
func TestResendCarriesFailures(t *testing.T) {
	r := newRig(t)
	if _, err := r.p.Onboard(context.Background(), onboardSpec()); err != nil {
		t.Fatal(err)
	}
	nodes := []string{"i-0123456789abcdef0", "i-0123456789abcdef1"}
	failures := map[string]int{"i-0123456789abcdef0": 2}
	if _, err := r.p.Resend(context.Background(), "shop-web", r.inv.cert.Version, nodes, failures, inventory.TriggerSweep); err != nil {
		t.Fatal(err)
	}
	d := r.inv.committed
	if d.Trigger != inventory.TriggerSweep || !slices.Equal(d.InstanceIDs, nodes) || d.Counts[inventory.NodePending] != 2 ||
		d.Outcome != inventory.OutcomeInProgress || !maps.Equal(r.inv.failures, failures) {
		t.Fatalf("committed %+v with failures %v", d, r.inv.failures)
	}
}

func TestClaimBlocksConcurrentRunsUntilItExpires(t *testing.T) {
	r := newRig(t)
	if _, err := r.p.Onboard(context.Background(), onboardSpec()); err != nil {
		t.Fatal(err)
	}
	// Another run holds a live claim.
	held := *r.inv.cert
	held.Claim = &inventory.Claim{Token: "other", Serial: "ff", Until: r.now.Add(time.Minute).Unix()}
	r.inv.cert = &held
	_, err := r.p.Redeploy(context.Background(), "shop-web", inventory.TriggerAPI)
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("redeploy during a live claim: %v, want ErrBusy", err)
	}
	if len(r.fleet.sent) != 1 {
		t.Fatal("a busy refusal sent a command")
	}
	// The claim expired (its run crashed): the next run takes over.
	r.now = r.now.Add(3 * time.Minute)
	if _, err := r.p.Redeploy(context.Background(), "shop-web", inventory.TriggerAPI); err != nil {
		t.Fatalf("redeploy after the claim expired: %v", err)
	}
	if len(r.fleet.sent) != 2 || r.acm.exports != 1 {
		t.Fatalf("sent %d, exports %d: want a second command and no second export", len(r.fleet.sent), r.acm.exports)
	}
}

func TestFailedRunReleasesItsClaim(t *testing.T) {
	r := newRig(t)
	r.fleet.err = errors.New("ssm down")
	_, err := r.p.Onboard(context.Background(), onboardSpec())
	if err == nil || !strings.Contains(err.Error(), "ssm down") {
		t.Fatalf("Onboard() = %v", err)
	}
	if len(r.inv.released) != 1 || r.inv.released[0] != r.inv.cert.Claim.Token {
		t.Fatalf("released %v, claim %+v", r.inv.released, r.inv.cert.Claim)
	}
	// The retry reuses the stored bundle (no second export) and sends.
	r.fleet.err = nil
	r.inv.cert.Claim = nil
	if _, err := r.p.Onboard(context.Background(), onboardSpec()); err != nil {
		t.Fatal(err)
	}
	if r.acm.exports != 1 || r.store.puts != 1 || len(r.fleet.sent) != 1 {
		t.Fatalf("exports %d puts %d sent %d, want 1 1 1", r.acm.exports, r.store.puts, len(r.fleet.sent))
	}
}

// A run that failed between SendCommand and its commit is completed by the
// retry with the command it sent; a finished run's command is never adopted.
func TestAdoptsOnlyTheCommandItsRunSent(t *testing.T) {
	r := newRig(t)
	r.inv.commitErr = errors.New("ddb down")
	if _, err := r.p.Onboard(context.Background(), onboardSpec()); err == nil {
		t.Fatal("first run: no error from the failing commit")
	}
	if len(r.fleet.sent) != 1 || r.inv.cert.PendingSend == nil || r.fleet.sent[0].SendID != r.inv.cert.PendingSend.ID {
		t.Fatalf("sent %+v, pending %+v: want the send id recorded before sending", r.fleet.sent, r.inv.cert.PendingSend)
	}
	r.inv.cert.Claim = nil // released
	res, err := r.p.Onboard(context.Background(), onboardSpec())
	if err != nil {
		t.Fatal(err)
	}
	if res.CommandID != "cmd-sent-0" || len(r.fleet.sent) != 1 || r.inv.cert.PendingSend != nil {
		t.Fatalf("command %s, sent %d, pending %+v: want the interrupted run's command adopted and nothing pending",
			res.CommandID, len(r.fleet.sent), r.inv.cert.PendingSend)
	}
	// A redeploy of the committed name sends a new command with a new id.
	if _, err := r.p.Redeploy(context.Background(), "shop-web", inventory.TriggerAPI); err != nil {
		t.Fatal(err)
	}
	if len(r.fleet.sent) != 2 || r.fleet.sent[1].SendID == r.fleet.sent[0].SendID {
		t.Fatalf("redeploy: sent %d commands (ids %v)", len(r.fleet.sent), r.fleet.sent)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*rig)
		spec    func() spec.Spec
		wantErr error
	}{
		{"name taken", func(r *rig) {
			r.inv.cert = &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: strings.Replace(arn, "1111", "9999", 1)}}
		}, onboardSpec, ErrNameTaken},
		{"not exportable", func(r *rig) { r.acm.info.Type = "IMPORTED" }, onboardSpec, certs.ErrNotExportable},
		{"not issued", func(r *rig) { r.acm.info.Status = "PENDING_VALIDATION" }, onboardSpec, certs.ErrNotIssued},
		{"other region", func(*rig) {}, func() spec.Spec {
			s := onboardSpec()
			s.CertificateARN = strings.Replace(arn, "us-east-1", "eu-west-1", 1)
			return s
		}, spec.ErrInvalid},
		{"path outside the allowed prefixes", func(*rig) {}, func() spec.Spec {
			s := onboardSpec()
			s.Linux.CertPath = "/etc/passwd"
			return s
		}, spec.ErrInvalid},
		{"keystore outside the allowed prefixes", func(*rig) {}, func() spec.Spec {
			s := onboardSpec()
			s.Linux.Format, s.Linux.KeystorePath = "jks", "/home/app/shop.jks"
			return s
		}, spec.ErrInvalid},
		{"keystore format without a keystore path", func(*rig) {}, func() spec.Spec {
			s := onboardSpec()
			s.Linux.Format = "pkcs12"
			return s
		}, spec.ErrInvalid},
		{"split without a chain path", func(*rig) {}, func() spec.Spec {
			s := onboardSpec()
			s.Linux.Format = "split"
			return s
		}, spec.ErrInvalid},
		{"key readable by everyone", func(*rig) {}, func() spec.Spec {
			s := onboardSpec()
			s.Linux.KeyMode = "0644"
			return s
		}, spec.ErrInvalid},
		{"unknown starttls", func(*rig) {}, func() spec.Spec {
			s := onboardSpec()
			s.Linux.Starttls = "ldap"
			return s
		}, spec.ErrInvalid},
		{"pkcs12 name taken", func(r *rig) {
			r.inv.cert = &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: strings.Replace(arn, "1111", "9999", 1)}}
		}, func() spec.Spec {
			s := onboardSpec()
			s.Linux.Format, s.Linux.KeystorePath = "pkcs12", "/opt/app/shop.p12"
			return s
		}, ErrNameTaken},
		{"jks not exportable", func(r *rig) { r.acm.info.Type = "IMPORTED" }, func() spec.Spec {
			s := onboardSpec()
			s.Linux.Format, s.Linux.KeystorePath = "jks", "/opt/app/shop.jks"
			return s
		}, certs.ErrNotExportable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			tc.setup(r)
			before := r.inv.cert
			_, err := r.p.Onboard(context.Background(), tc.spec())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Onboard() = %v, want %v", err, tc.wantErr)
			}
			if r.inv.cert != before || r.store.puts != 0 || len(r.fleet.sent) != 0 || r.acm.exports != 0 || len(r.store.keystores) != 0 {
				t.Fatal("a refusal wrote something")
			}
			var fe *spec.FieldError
			if errors.Is(tc.wantErr, spec.ErrInvalid) && (!errors.As(err, &fe) || fe.Field == "") {
				t.Fatalf("a validation refusal without a field: %v", err)
			}
		})
	}
	r := newRig(t)
	if _, err := r.p.Sync(context.Background(), "unknown", inventory.TriggerACM); !errors.Is(err, ErrUnknownName) {
		t.Fatalf("Sync(unknown) = %v", err)
	}
}

// An interrupted DELETE leaves a META item without an ARN; the name is free.
func TestOnboardOverInterruptedDelete(t *testing.T) {
	r := newRig(t)
	r.inv.cert = &inventory.Cert{Spec: spec.Spec{Name: "shop-web"}, Status: inventory.StatusDeleting, Version: 3}
	res, err := r.p.Onboard(context.Background(), onboardSpec())
	if err != nil {
		t.Fatalf("Onboard() = %v", err)
	}
	if r.inv.cert.CertificateARN != arn || res.CommandID != "cmd-new" || r.inv.cert.Status != inventory.StatusActive {
		t.Fatalf("after onboarding: %+v", r.inv.cert)
	}
}

// META records when certferry exported its serial (the sweep tells a fresh
// INELIGIBLE from a lasting one by it): the time of the export, kept when a
// deployment reuses the stored bundle of the same serial, renewed with the
// next export.
func TestRecordsExportTime(t *testing.T) {
	r := newRig(t)
	t0 := r.now
	ctx := context.Background()
	if _, err := r.p.Onboard(ctx, onboardSpec()); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		act  func() error
		want time.Time
	}{
		{"onboarding exports", func() error { return nil }, t0},
		{"a resend reuses the bundle and its export time", func() error {
			r.now = t0.Add(2 * time.Hour)
			_, err := r.p.Resend(ctx, "shop-web", r.inv.cert.Version, []string{"i-0123456789abcdef0"}, nil, inventory.TriggerSweep)
			return err
		}, t0},
		{"a renewal exports again", func() error {
			r.now = t0.Add(3 * time.Hour)
			r.acm.export = testkit.NewExport(t, testkit.RSA2048, "shop.example.com", "x")
			r.acm.info.Serial = certs.SerialHex(r.acm.export.Leaf.SerialNumber)
			_, err := r.p.Sync(ctx, "shop-web", inventory.TriggerACM)
			return err
		}, t0.Add(3 * time.Hour)},
		{"a stored bundle without exportedAt keeps the recorded time of its serial", func() error {
			r.now = t0.Add(5 * time.Hour)
			legacy := *r.store.current
			legacy.ExportedAt = ""
			r.store.current = &legacy
			_, err := r.p.Resend(ctx, "shop-web", r.inv.cert.Version, []string{"i-0123456789abcdef0"}, nil, inventory.TriggerSweep)
			return err
		}, t0.Add(3 * time.Hour)},
	}
	for _, st := range steps {
		if err := st.act(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := r.inv.cert.ExportedAt; !got.Equal(st.want) {
			t.Fatalf("%s: exportedAt %v, want %v", st.name, got, st.want)
		}
	}
	if r.acm.exports != 2 {
		t.Fatalf("%d exports, want 2", r.acm.exports)
	}
}

// pkcs12 and jks names get their keystore password secret before the
// command is sent, on every deployment (idempotent in the store); other
// formats never do. The nodes get the pipeline's allowed prefixes.
func TestKeystorePasswordAndPrefixes(t *testing.T) {
	for _, format := range []string{"", "pem", "split", "combined", "pkcs12", "jks"} {
		t.Run("format "+format, func(t *testing.T) {
			r := newRig(t)
			sp := onboardSpec()
			sp.Linux.Format = format
			switch format {
			case "split":
				sp.Linux.ChainPath = "/etc/ssl/certs/shop-web.chain.pem"
			case "pkcs12", "jks":
				sp.Linux.KeystorePath = "/opt/app/shop-web." + format
			}
			if _, err := r.p.Onboard(context.Background(), sp); err != nil {
				t.Fatal(err)
			}
			if _, err := r.p.Redeploy(context.Background(), "shop-web", inventory.TriggerAPI); err != nil {
				t.Fatal(err)
			}
			keystore := format == "pkcs12" || format == "jks"
			if keystore && (len(r.store.keystores) != 2 || r.store.keystores[0] != "shop-web") {
				t.Errorf("keystore password ensured for %v, want shop-web before each of 2 sends", r.store.keystores)
			}
			if !keystore && len(r.store.keystores) != 0 {
				t.Errorf("format %q ensured a keystore password", format)
			}
			if got := r.fleet.sent[0].AllowedPrefixes; strings.Join(got, ":") != strings.Join(spec.DefaultAllowedPrefixes, ":") {
				t.Errorf("allowed prefixes sent %v", got)
			}
		})
	}
	// The keystore secret could not be made: no command, the claim released.
	r := newRig(t)
	r.store.ksErr = errors.New("secrets manager down")
	sp := onboardSpec()
	sp.Linux.Format, sp.Linux.KeystorePath = "jks", "/opt/app/shop.jks"
	if _, err := r.p.Onboard(context.Background(), sp); err == nil || !strings.Contains(err.Error(), "secrets manager down") {
		t.Fatalf("Onboard() = %v", err)
	}
	if len(r.fleet.sent) != 0 || len(r.inv.released) != 1 {
		t.Fatalf("sent %d, released %v: want no command and the claim released", len(r.fleet.sent), r.inv.released)
	}
}

// The stack's prefixes replace the default list, for the API check and
// for the nodes.
func TestStackAllowedPrefixes(t *testing.T) {
	r := newRig(t)
	r.p = New(r.acm, r.store, r.inv, r.fleet, Config{Region: "us-east-1", AllowedPrefixes: []string{"/data/tls"}})
	r.p.now = func() time.Time { return r.now }
	_, err := r.p.Onboard(context.Background(), onboardSpec()) // default paths under /etc/ssl
	var fe *spec.FieldError
	if !errors.As(err, &fe) || fe.Field != "linux.certPath" || !strings.Contains(fe.Message, "/data/tls") {
		t.Fatalf("Onboard() under /etc/ssl with prefixes /data/tls = %v", err)
	}
	sp := onboardSpec()
	sp.Linux.CertPath, sp.Linux.KeyPath = "/data/tls/shop.pem", "/data/tls/shop.key"
	if _, err := r.p.Onboard(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	if got := r.fleet.sent[0].AllowedPrefixes; len(got) != 1 || got[0] != "/data/tls" {
		t.Errorf("allowed prefixes sent %v", got)
	}
}

// Re-onboarding a name whose secret an earlier DELETE ?deleteSecret=true
// scheduled for deletion is refused before anything is written: Secrets
// Manager refuses every read and write of that secret until RestoreSecret,
// so a deployment could only fail, leaving an "onboarding" item behind.
func TestOnboardRefusedWhileSecretScheduledForDeletion(t *testing.T) {
	r := newRig(t)
	r.store.scheduled = true
	_, err := r.p.Onboard(context.Background(), onboardSpec())
	if !errors.Is(err, bundle.ErrScheduledForDeletion) {
		t.Fatalf("got %v, want ErrScheduledForDeletion", err)
	}
	if r.inv.cert != nil || r.acm.exports != 0 || r.store.puts != 0 || len(r.fleet.sent) != 0 {
		t.Fatalf("a refused onboarding wrote: item %+v exports %d puts %d sent %d", r.inv.cert, r.acm.exports, r.store.puts, len(r.fleet.sent))
	}
}
