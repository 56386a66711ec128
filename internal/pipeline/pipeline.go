// Package pipeline is certferry's one way of getting a certificate onto
// nodes: describe → export → verify → store secret version → SendCommand →
// record in the inventory. Every entry point (API, ACM and Health events,
// the sweep) goes through Onboard or Sync, so the guarantees are the same
// everywhere:
//
//   - a refused request writes nothing (validation and ACM checks come first);
//   - one deployment per name runs at a time (a lease-bound claim on META,
//     taken under the item's optimistic lock);
//   - a run that failed part-way is completed by the next run without
//     duplicates: the current secret version is reused when it already holds
//     ACM's serial, and the command the failed run sent is adopted instead
//     of sending another. A run records a fresh send id on META (under its
//     claim) before SendCommand and the id travels in the command's Comment;
//     only a command carrying the recorded id, for the same install, is
//     adopted, so an earlier run's finished command never is (spec A, B, A
//     sends three commands).
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/fleet"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
)

// Domain errors beyond those of certs, spec and inventory.
var (
	ErrNameTaken   = errors.New("name is bound to another certificate")
	ErrUnknownName = errors.New("unknown certificate name")
	ErrBusy        = errors.New("a deployment of this name is in progress")
	// errRaced marks an ErrBusy caused by a lost optimistic-lock race on
	// the claim (as opposed to a live claim seen in the item).
	errRaced = errors.New("lost the race for the claim")
)

// Dependencies, each the narrowest surface the pipeline calls.
type (
	acmClient interface {
		Describe(ctx context.Context, arn string) (certs.Info, error)
		Export(ctx context.Context, arn string, passphrase []byte) (certs.Exported, error)
	}
	bundleStore interface {
		SecretName(name string) string
		NewPassphrase(ctx context.Context) (string, error)
		Current(ctx context.Context, name string) (*bundle.Bundle, bundle.Version, error)
		Put(ctx context.Context, name string, b *bundle.Bundle, token string) (bundle.Version, error)
		EnsureKeystorePassword(ctx context.Context, name string) error
		CheckNotScheduledForDeletion(ctx context.Context, name string, keystore bool) error
	}
	inventoryStore interface {
		GetCert(ctx context.Context, name string) (*inventory.Cert, error)
		CreateCert(ctx context.Context, sp spec.Spec, claim inventory.Claim) (*inventory.Cert, error)
		TakeClaim(ctx context.Context, c *inventory.Cert, claim inventory.Claim) (*inventory.Cert, error)
		ReleaseClaim(ctx context.Context, name, token string) error
		RecordSend(ctx context.Context, c *inventory.Cert, token string, ps inventory.PendingSend) (*inventory.Cert, error)
		Commit(ctx context.Context, c *inventory.Cert, d *inventory.Deployment, failures map[string]int) (*inventory.Cert, error)
		DeleteCert(ctx context.Context, name string) (bool, error)
		GetRollout(ctx context.Context, name string) (*inventory.Rollout, error)
	}
	commander interface {
		Send(ctx context.Context, in fleet.Install) (fleet.Command, error)
		Find(ctx context.Context, in fleet.Install, since time.Time) (*fleet.Command, error)
	}
)

var (
	_ acmClient      = (*certs.Client)(nil)
	_ bundleStore    = (*bundle.Store)(nil)
	_ inventoryStore = (*inventory.Store)(nil)
	_ commander      = (*fleet.Fleet)(nil)
)

// ReleaseTimeout bounds the release of a failed run's claim, which runs
// after the request's own deadline may have passed.
const ReleaseTimeout = 3 * time.Second

// Config is the pipeline's plain configuration.
type Config struct {
	Region string        // the stack's region; certificates must live there
	Lease  time.Duration // how long a claim blocks other runs (default 2m)
	// Lookback bounds how far back a sent command is searched for when a
	// run resumes after a failure (default 1h).
	Lookback time.Duration
	// AllowedPrefixes are the directories target paths must lie under
	// (default spec.DefaultAllowedPrefixes); nodes get the same list.
	AllowedPrefixes []string
	// Now is the pipeline's clock (claims, lookback, timestamps); nil is
	// time.Now. Integration tests move it on instead of sleeping.
	Now func() time.Time
}

// Pipeline runs deployments.
type Pipeline struct {
	acm   acmClient
	store bundleStore
	inv   inventoryStore
	fleet commander
	cfg   Config
	now   func() time.Time
	gone  unmanagedChecker // nil: a refused command stays an error (WithUnmanaged)
}

// New wires a Pipeline.
func New(acm acmClient, store bundleStore, inv inventoryStore, f commander, cfg Config) *Pipeline {
	if cfg.Lease == 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Lookback == 0 {
		cfg.Lookback = time.Hour
	}
	if len(cfg.AllowedPrefixes) == 0 {
		cfg.AllowedPrefixes = spec.DefaultAllowedPrefixes
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Pipeline{acm: acm, store: store, inv: inv, fleet: f, cfg: cfg, now: now}
}

// Result is what a deployment produced (or what was already there).
type Result struct {
	Name            string    `json:"name"`
	CertificateARN  string    `json:"certificateArn"`
	DeploymentID    string    `json:"deploymentId"`
	CommandID       string    `json:"commandId"`
	Serial          string    `json:"serial"`
	NotAfter        time.Time `json:"notAfter"`
	Fingerprint     string    `json:"fingerprintSha256"`
	SecretARN       string    `json:"-"`
	SecretVersionID string    `json:"-"`
	InstanceIDs     []string  `json:"-"`
	// Dropped are instance ids of the targets the deployment went on
	// without: SSM no longer manages them (gone.go).
	Dropped []string `json:"droppedInstanceIds,omitempty"`
	// Unchanged is true when nothing was written or sent: the inventory
	// already held this certificate, serial and spec.
	Unchanged bool `json:"-"`
}

// CheckARN validates a certificate ARN's shape and region.
func (p *Pipeline) CheckARN(arn string) error {
	if !certs.ARNPattern.MatchString(arn) {
		return fmt.Errorf("must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<uuid>)")
	}
	if r := certs.ARNRegion(arn); p.cfg.Region != "" && r != p.cfg.Region {
		return fmt.Errorf("certificate is in %s; this certferry stack runs in %s", r, p.cfg.Region)
	}
	return nil
}

// Onboard binds sp.Name to sp.CertificateARN and deploys it. Re-onboarding
// an unchanged spec whose serial is already deployed changes nothing.
func (p *Pipeline) Onboard(ctx context.Context, sp spec.Spec) (Result, error) {
	c, err := p.CheckOnboard(ctx, sp)
	if err != nil || c.Unchanged != nil {
		return c.result(), err
	}
	return p.deploy(ctx, c.existing, c.Spec, c.info, inventory.TriggerAPI, sendOpts{})
}

// Checked is an onboarding request that passed every check (CheckOnboard):
// its spec with defaults applied, the serial ACM holds, and, when the
// inventory already holds exactly this, the unchanged result.
type Checked struct {
	Spec      spec.Spec
	Serial    string
	Unchanged *Result
	existing  *inventory.Cert
	info      certs.Info
	// refused: a wave command of this onboarding was refused for a node
	// gone (SendWave), after deploy created or claimed the item.
	refused bool
}

// Info is what ACM said of the certificate when the onboarding was
// checked (the rollout engine's expiry margin needs its lifetime).
func (c Checked) Info() certs.Info { return c.info }

func (c Checked) result() Result {
	if c.Unchanged != nil {
		return *c.Unchanged
	}
	return Result{}
}

// CheckOnboard runs every check of an onboarding before anything is
// written (a refused request writes nothing): the spec, the name's
// binding, ACM's certificate, the secret's state.
func (p *Pipeline) CheckOnboard(ctx context.Context, sp spec.Spec) (Checked, error) {
	sp.ApplyDefaults()
	if err := sp.Validate(p.CheckARN); err != nil {
		return Checked{}, err
	}
	if err := sp.CheckPrefixes(p.cfg.AllowedPrefixes); err != nil {
		return Checked{}, err
	}
	if err := p.checkManaged(ctx, sp); err != nil {
		return Checked{}, err
	}
	existing, err := p.inv.GetCert(ctx, sp.Name)
	if err != nil {
		return Checked{}, err
	}
	// An item without an ARN is what an interrupted DELETE leaves: the name is free.
	if existing != nil && existing.CertificateARN != "" && existing.CertificateARN != sp.CertificateARN {
		return Checked{}, spec.Wrap(ErrNameTaken, "name", "%q is bound to %s; to move it to %s use certferry rebind %s --arn %s (POST /certificates/%s/rebind), or delete it first, or choose another name", sp.Name, existing.CertificateARN, sp.CertificateARN, sp.Name, sp.CertificateARN, sp.Name)
	}
	info, err := p.deployable(ctx, sp.CertificateARN)
	if err != nil {
		return Checked{}, err
	}
	c := Checked{Spec: sp, Serial: info.Serial, existing: existing, info: info}
	if existing != nil && existing.Status == inventory.StatusActive && existing.Serial == info.Serial &&
		reflect.DeepEqual(existing.Spec, sp) {
		slog.InfoContext(ctx, "onboarding unchanged", "name", sp.Name, "serial", info.Serial)
		r := resultOf(existing, true)
		c.Unchanged = &r
		return c, nil
	}
	// Before anything is written: a secret an earlier DELETE
	// ?deleteSecret=true scheduled for deletion can be neither read nor
	// written until it is restored (a refusal, not a retryable failure).
	if err := p.store.CheckNotScheduledForDeletion(ctx, sp.Name, sp.Linux.UsesKeystore()); err != nil {
		return Checked{}, err
	}
	return c, nil
}

// Redeploy sends the current certificate of name to its targets again, even
// when they already have it (the bundle is re-exported only when ACM's
// serial changed).
func (p *Pipeline) Redeploy(ctx context.Context, name string, trigger inventory.Trigger) (Result, error) {
	existing, info, err := p.knownDeployable(ctx, name)
	if err != nil {
		return Result{}, err
	}
	return p.deploy(ctx, existing, existing.Spec, info, trigger, sendOpts{force: true})
}

// Sync deploys name when ACM's current serial differs from the inventory's
// (a renewal), and does nothing otherwise. It is safe to call for the same
// renewal from several events at once: when another run holds a live claim
// (for this serial or another), Sync answers ErrBusy rather than Unchanged,
// so that the caller retries: the renewal is never acknowledged on the
// strength of a run that may still fail. Once that run committed the
// serial, the retry reports Unchanged.
func (p *Pipeline) Sync(ctx context.Context, name string, trigger inventory.Trigger) (Result, error) {
	existing, info, err := p.knownDeployable(ctx, name)
	if err != nil {
		return Result{}, err
	}
	for attempt := 1; ; attempt++ {
		if existing.Status == inventory.StatusActive && existing.Serial == info.Serial {
			slog.InfoContext(ctx, "serial unchanged, nothing to deploy", "name", name, "serial", info.Serial, "trigger", trigger)
			return resultOf(existing, true), nil
		}
		if cl := existing.Claim; cl != nil && cl.Until > p.now().Unix() {
			slog.InfoContext(ctx, "another run holds the name; retry later", "name", name, "serial", info.Serial,
				"claimSerial", cl.Serial, "trigger", trigger)
			return Result{}, fmt.Errorf("%w: %s (serial %s, claim expires %s); retry once it finished", ErrBusy, name, cl.Serial,
				time.Unix(cl.Until, 0).UTC().Format(time.RFC3339))
		}
		res, err := p.deploy(ctx, existing, existing.Spec, info, trigger, sendOpts{})
		if !errors.Is(err, errRaced) || attempt == 3 {
			return res, err
		}
		// Somebody changed the item between our read and our claim: look again.
		if existing, err = p.known(ctx, name); err != nil {
			return Result{}, err
		}
	}
}

// Resend sends name's current certificate again to the given nodes only
// (at most 50, SSM's limit for instance ids), for the sweep: nodes that
// failed, joined the targets later, or missed a renewal. failures carries
// each node's consecutive failures so that retries stay bounded. The name
// must already be deployed at ACM's serial; otherwise Sync comes first.
// version is the META version the caller planned on: the send goes only
// if META is still at it (nothing claimed, deployed or committed since;
// else ErrBusy), so two sweeps that planned on the same read (a duplicate
// delivery, two runs) send once.
func (p *Pipeline) Resend(ctx context.Context, name string, version int64, instanceIDs []string, failures map[string]int, trigger inventory.Trigger) (Result, error) {
	if len(instanceIDs) == 0 || len(instanceIDs) > 50 {
		return Result{}, fmt.Errorf("resend %s: %d nodes, want 1 to 50", name, len(instanceIDs))
	}
	existing, info, err := p.knownDeployable(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if existing.Version != version {
		return Result{}, fmt.Errorf("%w: %s changed since the sweep read it (version %d, now %d)", ErrBusy, name, version, existing.Version)
	}
	if existing.Status != inventory.StatusActive || existing.Serial != info.Serial {
		return Result{}, fmt.Errorf("%w: %s is not deployed at ACM's serial %s yet", ErrBusy, name, info.Serial)
	}
	return p.deploy(ctx, existing, existing.Spec, info, trigger, sendOpts{only: instanceIDs, failures: failures})
}

// ErrNotDeployed refuses ResendDeployed when the secret's current version
// is not the one META records as deployed (an export of a newer serial
// stored it and its run never committed): sending would install that
// newer certificate, so nothing is sent.
var ErrNotDeployed = errors.New("the secret's current version is not the deployed certificate")

// WaitingRollout is the rollout a ResendDeployed send goes behind, as the
// sweep read it: its id and item version.
type WaitingRollout struct {
	ID      string
	Version int64
}

// ResendDeployed sends the certificate the name's nodes have now (META's
// serial and secret version) to the given nodes only (at most 50), for
// the sweep while a renewal of a newer serial waits for its window or
// approval. version is the META version the caller planned on: the send
// goes only if META is still at it (nothing claimed, deployed or
// committed since; else ErrBusy), so two sweeps that planned on the same
// read send once. waiting is the rollout as the caller read it, waiting
// for its gate: once it holds the claim the send goes only if that
// rollout is still unchanged (else ErrBusy): a rollout approved or let go
// by its window meanwhile is written before it claims the name to send
// its wave, and the old certificate must not go out once it rolls. It
// never exports: the secret's current version must still be META's (else
// ErrNotDeployed). Claims, adoption of an interrupted send and the commit
// are deploy's, as for Resend.
func (p *Pipeline) ResendDeployed(ctx context.Context, name string, version int64, waiting WaitingRollout, instanceIDs []string, failures map[string]int, trigger inventory.Trigger) (Result, error) {
	if len(instanceIDs) == 0 || len(instanceIDs) > 50 {
		return Result{}, fmt.Errorf("resend %s: %d nodes, want 1 to 50", name, len(instanceIDs))
	}
	existing, err := p.known(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if existing.Version != version {
		return Result{}, fmt.Errorf("%w: %s changed since the sweep read it (version %d, now %d)", ErrBusy, name, version, existing.Version)
	}
	if existing.Status != inventory.StatusActive || existing.Serial == "" || existing.SecretVersionID == "" {
		return Result{}, fmt.Errorf("%w: %s has no deployed serial and secret version", ErrNotDeployed, name)
	}
	if existing.Revoked != nil {
		return Result{}, fmt.Errorf("%w: %s is marked revoked; rebind it", ErrNotDeployed, name)
	}
	// The certificate the nodes have, as META recorded it: ACM's view is
	// of its newer serial, which this send must not touch.
	info := certs.Info{ARN: existing.CertificateARN, Serial: existing.Serial, DomainName: existing.DomainName}
	return p.deploy(ctx, existing, existing.Spec, info, trigger, sendOpts{only: instanceIDs, failures: failures, deployed: true, behind: &waiting})
}

// stillWaiting checks, under the claim, that the rollout a ResendDeployed
// goes behind is the one the sweep read, unchanged and waiting.
func (p *Pipeline) stillWaiting(ctx context.Context, name string, w WaitingRollout) error {
	r, err := p.inv.GetRollout(ctx, name)
	if err != nil {
		return err
	}
	if r == nil || r.ID != w.ID || r.Version != w.Version || !r.Phase.Waiting() {
		now := "gone"
		if r != nil {
			now = fmt.Sprintf("rollout %s %s (version %d)", r.ID, r.Phase, r.Version)
		}
		return fmt.Errorf("%w: %s: rollout %s (version %d) moved on since the sweep read it: now %s", ErrBusy, name, w.ID, w.Version, now)
	}
	return nil
}

// deployedBundle returns the secret's current version when it is the one
// c (claimed) records as deployed; it never exports.
func (p *Pipeline) deployedBundle(ctx context.Context, c *inventory.Cert) (*bundle.Bundle, bundle.Version, error) {
	cur, ver, err := p.store.Current(ctx, c.Name)
	if err != nil {
		return nil, bundle.Version{}, err
	}
	if cur == nil || ver.VersionID != c.SecretVersionID || cur.Serial != c.Serial || cur.CertificateARN != c.CertificateARN {
		return nil, bundle.Version{}, fmt.Errorf("%w: %s records serial %s (secret version %s)", ErrNotDeployed, c.Name, c.Serial, c.SecretVersionID)
	}
	return cur, ver, nil
}

// Delete stops distributing name (DELETE /certificates/{name}; nodes keep
// their files). It takes the claim as a deployment does: it is refused
// (ErrBusy) while a deployment holds a live claim, and no deployment starts
// while it deletes. A run whose claim lapsed and was taken by a delete
// notices before it writes (see holding and RecordSend). Reports false for
// an unknown name.
func (p *Pipeline) Delete(ctx context.Context, name string) (bool, error) {
	if !spec.NamePattern.MatchString(name) {
		return false, spec.Invalid("name", "must match %s", spec.NamePattern)
	}
	c, err := p.inv.GetCert(ctx, name)
	if err != nil || c == nil {
		return false, err
	}
	if cl := c.Claim; cl != nil && cl.Until > p.now().Unix() {
		return false, fmt.Errorf("%w: %s (serial %s, claim expires %s)", ErrBusy, name, cl.Serial,
			time.Unix(cl.Until, 0).UTC().Format(time.RFC3339))
	}
	claim := inventory.Claim{Token: newToken(), Until: p.now().Add(p.cfg.Lease).Unix()}
	if _, err := p.inv.TakeClaim(ctx, c, claim); err != nil {
		if errors.Is(err, inventory.ErrConflict) {
			return false, fmt.Errorf("%w: %s changed while this request ran", ErrBusy, name)
		}
		return false, err
	}
	found, err := p.inv.DeleteCert(ctx, name)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReleaseTimeout)
		defer cancel()
		if rerr := p.inv.ReleaseClaim(rctx, name, claim.Token); rerr != nil {
			slog.WarnContext(ctx, "claim not released; it expires on its own", "name", name, "error", rerr)
		}
		if errors.Is(err, inventory.ErrConflict) {
			return false, fmt.Errorf("%w: %s changed while this request ran", ErrBusy, name)
		}
		return false, err
	}
	return found, nil
}

// holding checks, right before a write, that this run still holds the
// claim: a run whose lease lapsed and whose name was deleted or taken over
// stores nothing.
func (p *Pipeline) holding(ctx context.Context, name, token string) error {
	c, err := p.inv.GetCert(ctx, name)
	if err != nil {
		return err
	}
	if c == nil || c.Claim == nil || c.Claim.Token != token {
		return fmt.Errorf("%w: %s was deleted or taken over while this run worked; nothing stored", ErrBusy, name)
	}
	return nil
}

// sendOpts vary how deploy sends: force skips adopting an earlier command;
// only narrows the targets to these instances; failures are the
// consecutive failures those nodes carry into the deployment; deployed
// sends the secret version META records (never an export); behind, when
// set, is the waiting rollout that must still be unchanged once the claim
// is held.
type sendOpts struct {
	force    bool
	only     []string
	failures map[string]int
	wave     *waveTag
	deployed bool
	behind   *WaitingRollout
}

// waveTag links a deployment to the wave of a rollout it sends.
type waveTag struct {
	rolloutID   string
	wave, waves int
}

// knownDeployable reads name's inventory item and ACM's view of its
// certificate, which must be deployable.
func (p *Pipeline) knownDeployable(ctx context.Context, name string) (*inventory.Cert, certs.Info, error) {
	existing, err := p.known(ctx, name)
	if err != nil {
		return nil, certs.Info{}, err
	}
	info, err := p.deployable(ctx, existing.CertificateARN)
	if err != nil {
		return nil, certs.Info{}, err
	}
	return existing, info, nil
}

func (p *Pipeline) known(ctx context.Context, name string) (*inventory.Cert, error) {
	if !spec.NamePattern.MatchString(name) {
		return nil, spec.Invalid("name", "must match %s", spec.NamePattern)
	}
	c, err := p.inv.GetCert(ctx, name)
	if err != nil {
		return nil, err
	}
	if c == nil || c.CertificateARN == "" {
		return nil, fmt.Errorf("%w: %s", ErrUnknownName, name)
	}
	return c, nil
}

func (p *Pipeline) deployable(ctx context.Context, arn string) (certs.Info, error) {
	info, err := p.acm.Describe(ctx, arn)
	if err != nil {
		return certs.Info{}, err
	}
	if err := info.CheckDeployable(); err != nil {
		return certs.Info{}, err
	}
	return info, nil
}

// deploy holds the claim for the whole run and releases it on failure.
func (p *Pipeline) deploy(ctx context.Context, existing *inventory.Cert, sp spec.Spec, info certs.Info, trigger inventory.Trigger, opts sendOpts) (res Result, err error) {
	claim := inventory.Claim{Token: newToken(), Serial: info.Serial, Until: p.now().Add(p.cfg.Lease).Unix()}
	var c *inventory.Cert
	switch {
	case existing == nil:
		c, err = p.inv.CreateCert(ctx, sp, claim)
	case existing.Claim != nil && existing.Claim.Until > p.now().Unix():
		return Result{}, fmt.Errorf("%w: %s (serial %s, claim expires %s)", ErrBusy, sp.Name, existing.Claim.Serial,
			time.Unix(existing.Claim.Until, 0).UTC().Format(time.RFC3339))
	default:
		c, err = p.inv.TakeClaim(ctx, existing, claim)
	}
	if errors.Is(err, inventory.ErrConflict) {
		return Result{}, fmt.Errorf("%w: %s changed while this request ran (%w)", ErrBusy, sp.Name, errRaced)
	}
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if err == nil {
			return
		}
		// The request's deadline may have passed: the release gets its own
		// short one, inside the API's reserve.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ReleaseTimeout)
		defer cancel()
		if rerr := p.inv.ReleaseClaim(rctx, sp.Name, claim.Token); rerr != nil {
			slog.WarnContext(ctx, "claim not released; it expires on its own", "name", sp.Name, "error", rerr)
		}
	}()

	if opts.behind != nil {
		// Under the claim: a rollout that goes takes the claim to send
		// only after it wrote itself rolling.
		if err := p.stillWaiting(ctx, sp.Name, *opts.behind); err != nil {
			return Result{}, err
		}
	}
	var b *bundle.Bundle
	var ver bundle.Version
	if opts.deployed {
		b, ver, err = p.deployedBundle(ctx, c)
	} else {
		b, ver, err = p.bundleFor(ctx, sp.Name, info, claim.Token)
	}
	if err != nil {
		return Result{}, err
	}
	if sp.Linux.UsesKeystore() {
		// Before the command: the node reads <secret>/keystore.
		if err := p.store.EnsureKeystorePassword(ctx, sp.Name); err != nil {
			return Result{}, err
		}
	}
	install := fleet.Install{
		Spec: sp, SecretID: p.store.SecretName(sp.Name), Region: p.cfg.Region,
		ServerName: serverName(sp, info), ExpectedFingerprint: b.Fingerprint, Serial: b.Serial,
		Only: opts.only, AllowedPrefixes: p.cfg.AllowedPrefixes,
	}
	if sp.Rollout != nil {
		// Every command of the name carries its stop alarm.
		install.StopAlarm = sp.Rollout.StopAlarm
	}
	c, cmd, install, dropped, err := p.sendOrAdopt(ctx, c, claim.Token, install, trigger, opts)
	if err != nil {
		return Result{}, err
	}

	// The nodes recorded as pending: the instances asked for when the
	// targets are instance ids (SSM runs exactly those, at most 50). For tag
	// targets real SSM answers no instance list; the nodes appear as they
	// report, and the command's final status gives their number. (moto does
	// list them; ignoring that keeps the emulator on the production path,
	// and keeps a deployment's writes constant whatever the fleet size.)
	nodes := install.Instances()
	next := *c // the store's copy stays as read if the commit fails
	c = &next
	c.Spec, c.PendingSend = sp, nil // the commit links the command: nothing is pending any more
	c.SecretARN, c.SecretVersionID = ver.SecretARN, ver.VersionID
	c.ExportedAt = exportedAt(b, c)
	notAfter, err := time.Parse(time.RFC3339, b.NotAfter)
	if err != nil {
		return Result{}, fmt.Errorf("read the notAfter of %s's bundle: %w", sp.Name, err)
	}
	c.Serial, c.Fingerprint, c.NotAfter, c.DomainName = b.Serial, b.Fingerprint, notAfter.UTC(), info.DomainName
	dep := &inventory.Deployment{
		ID:        p.now().UTC().Format(inventory.DeploymentTimeFormat) + "#" + cmd.ID,
		CommandID: cmd.ID, Trigger: trigger, Serial: b.Serial, Fingerprint: b.Fingerprint,
		SecretVersionID: ver.VersionID, InstanceIDs: nodes,
		Counts:  map[inventory.NodeState]int{inventory.NodePending: len(nodes)},
		Outcome: inventory.OutcomeInProgress,
	}
	if w := opts.wave; w != nil {
		dep.RolloutID, dep.Wave, dep.Waves = w.rolloutID, w.wave, w.waves
	}
	dep.Dropped = dropped
	committed, err := p.inv.Commit(ctx, c, dep, opts.failures)
	if err != nil {
		if errors.Is(err, inventory.ErrConflict) {
			return Result{}, fmt.Errorf("%w: %s was taken over before this run committed", ErrBusy, sp.Name)
		}
		return Result{}, err
	}
	slog.InfoContext(ctx, "deployment recorded", "name", sp.Name, "deploymentId", dep.ID, "serial", b.Serial, "trigger", trigger)
	res = resultOf(committed, false)
	res.InstanceIDs, res.Dropped = cmd.InstanceIDs, dropped
	return res, nil
}

// bundleFor returns the secret version holding ACM's current serial,
// exporting (and storing) it only when the current version does not.
func (p *Pipeline) bundleFor(ctx context.Context, name string, info certs.Info, token string) (*bundle.Bundle, bundle.Version, error) {
	cur, ver, err := p.store.Current(ctx, name)
	if err != nil {
		return nil, bundle.Version{}, err
	}
	if cur != nil && cur.CertificateARN == info.ARN && cur.Serial == info.Serial {
		slog.InfoContext(ctx, "secret already holds this serial; not exporting again", "name", name, "serial", info.Serial)
		return cur, ver, nil
	}
	pass, err := p.store.NewPassphrase(ctx)
	if err != nil {
		return nil, bundle.Version{}, err
	}
	exp, err := p.acm.Export(ctx, info.ARN, []byte(pass))
	if err != nil {
		return nil, bundle.Version{}, err
	}
	m, err := certs.Verify(exp.Certificate, exp.CertificateChain, exp.PrivateKey, []byte(pass))
	if err != nil {
		return nil, bundle.Version{}, fmt.Errorf("verify export of %s: %w", info.ARN, err)
	}
	pfx, err := m.PKCS12(pass)
	if err != nil {
		return nil, bundle.Version{}, err
	}
	b := &bundle.Bundle{
		CertificateARN:   info.ARN,
		Serial:           m.Serial,
		NotAfter:         m.NotAfter.Format(time.RFC3339),
		Fingerprint:      m.Fingerprint,
		Certificate:      exp.Certificate,
		CertificateChain: exp.CertificateChain,
		PrivateKey:       exp.PrivateKey,
		PKCS12:           base64.StdEncoding.EncodeToString(pfx),
		Passphrase:       pass,
		ExportedAt:       p.now().UTC().Format(time.RFC3339),
	}
	if err := p.holding(ctx, name, token); err != nil {
		return nil, bundle.Version{}, err
	}
	ver, err = p.store.Put(ctx, name, b, token)
	if err != nil {
		return nil, bundle.Version{}, err
	}
	slog.InfoContext(ctx, "certificate exported and stored", "name", name, "bundle", b, "secretVersionId", ver.VersionID)
	return b, ver, nil
}

// exportedAt is when certferry exported the bundle's serial: the bundle's
// exportedAt (a reused bundle keeps the time of its export), else what the
// inventory recorded for that same serial, else unknown (zero).
func exportedAt(b *bundle.Bundle, c *inventory.Cert) time.Time {
	if t, err := time.Parse(time.RFC3339, b.ExportedAt); err == nil {
		return t.UTC()
	}
	if c.Serial == b.Serial {
		return c.ExportedAt
	}
	return time.Time{}
}

// serverName is the SNI name the node checks: the spec's, else the
// certificate's domain with a leading wildcard label replaced by "www".
func serverName(sp spec.Spec, info certs.Info) string {
	if sp.Linux.ServerName != "" {
		return sp.Linux.ServerName
	}
	d := info.DomainName
	if strings.HasPrefix(d, "*.") {
		d = "www" + d[1:]
	}
	if !spec.ServerNamePattern.MatchString(d) {
		return "localhost"
	}
	return d
}

func resultOf(c *inventory.Cert, unchanged bool) Result {
	return Result{
		Name: c.Name, CertificateARN: c.CertificateARN, DeploymentID: c.LastDeploymentID, CommandID: c.LastCommandID,
		Serial: c.Serial, NotAfter: c.NotAfter, Fingerprint: c.Fingerprint,
		SecretARN: c.SecretARN, SecretVersionID: c.SecretVersionID, Unchanged: unchanged,
	}
}

// newToken is a random UUID-shaped token, usable as a Secrets Manager
// ClientRequestToken (32 to 64 characters).
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
