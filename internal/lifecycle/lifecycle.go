// Package lifecycle is what an operator does to a name besides onboarding
// and redeploying (issue 14): rotate now (ACM RenewCertificate), approve a
// waiting deployment, revoke the certificate (ACM RevokeCertificate), move
// the name to another certificate (rebind), and delete. Each action is
// checked before anything is called (a refusal changes nothing), then
// recorded as an AUDIT item under the name with the caller's ARN and
// time, and announced in one SNS alert naming the caller.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"

	"github.com/certferry/certferry/internal/caller"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/notify"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
)

// Domain errors of the actions (beyond those of certs, pipeline and
// inventory), mapped to status codes at the API edge.
var (
	// ErrSameCertificate: a rebind to the certificate the name is bound to.
	ErrSameCertificate = errors.New("name is already bound to that certificate")
	// ErrNothingToApprove: no deployment of the name waits for approval.
	ErrNothingToApprove = errors.New("no deployment of this name waits for approval")
	// ErrNotConfigured: the action's dependency is not wired in this process.
	ErrNotConfigured = errors.New("action not available in this process")
)

// Dependencies, each the narrowest surface the service calls.
type (
	store interface {
		GetCert(ctx context.Context, name string) (*inventory.Cert, error)
		Describe(ctx context.Context, name string) (*inventory.Detail, error)
		NamesByARN(ctx context.Context, arn string) ([]string, error)
		Audit(ctx context.Context, name string, e inventory.AuditEntry) error
		AuditTrail(ctx context.Context, name string, limit int) ([]inventory.AuditEntry, error)
		MarkRevoked(ctx context.Context, name string, r inventory.Revocation) (bool, error)
		Rebind(ctx context.Context, c *inventory.Cert, arn string) (*inventory.Cert, error)
	}
	describer interface {
		Describe(ctx context.Context, arn string) (certs.Info, error)
	}
	acmActions interface {
		Renew(ctx context.Context, arn string) error
		Revoke(ctx context.Context, arn, reason string) error
	}
	publisher interface {
		Publish(ctx context.Context, a notify.Alert) (string, error)
	}
)

var (
	_ store      = (*inventory.Store)(nil)
	_ describer  = (*certs.Client)(nil)
	_ acmActions = (*certs.Actions)(nil)
	_ publisher  = (*notify.Publisher)(nil)
)

// Halter stops the deployments of a name (rollout.Engine.Halt).
type Halter interface {
	Halt(ctx context.Context, name, reason string) error
}

// Deployer deploys a name's bound certificate now, bypassing maintenance
// windows and approval (a person is acting): the rollout engine's Deploy;
// before it, the pipeline's Redeploy.
type Deployer interface {
	Deploy(ctx context.Context, name string, trigger inventory.Trigger) (pipeline.Result, error)
}

// Renewer deploys a name's bound certificate through the renewal path
// (waves, windows, approval): the rollout engine's Renew; before it, the
// pipeline's Sync.
type Renewer interface {
	Renew(ctx context.Context, name string, trigger inventory.Trigger) (pipeline.Result, error)
}

// Approver releases a deployment waiting for approval
// (rollout.Engine.Approve, adapted). It answers an error wrapping
// ErrNothingToApprove when nothing waits.
type Approver interface {
	Approve(ctx context.Context, name string, by caller.Caller) (ApprovalResult, error)
}

// DeployFunc, RenewFunc and ApproveFunc adapt functions to the interfaces.
type (
	DeployFunc  func(ctx context.Context, name string, trigger inventory.Trigger) (pipeline.Result, error)
	RenewFunc   func(ctx context.Context, name string, trigger inventory.Trigger) (pipeline.Result, error)
	ApproveFunc func(ctx context.Context, name string, by caller.Caller) (ApprovalResult, error)
)

// Deploy calls f.
func (f DeployFunc) Deploy(ctx context.Context, name string, t inventory.Trigger) (pipeline.Result, error) {
	return f(ctx, name, t)
}

// Renew calls f.
func (f RenewFunc) Renew(ctx context.Context, name string, t inventory.Trigger) (pipeline.Result, error) {
	return f(ctx, name, t)
}

// Approve calls f.
func (f ApproveFunc) Approve(ctx context.Context, name string, by caller.Caller) (ApprovalResult, error) {
	return f(ctx, name, by)
}

// ApprovalResult is what an approval released.
type ApprovalResult struct {
	Name      string `json:"name"`
	RolloutID string `json:"rolloutId,omitempty"`
	Phase     string `json:"phase,omitempty"`
	// What says in a sentence what happens now ("wave 1 of 3 sent").
	What string `json:"what"`
}

// Config wires a Service. Store, ACM, Actions are required; the rest may
// be nil until wired (an action needing a missing one answers
// ErrNotConfigured; a missing Alerts or Halter is logged and skipped).
type Config struct {
	Store    store
	ACM      describer
	Actions  acmActions
	Alerts   publisher
	Halter   Halter
	Deployer Deployer
	Renewer  Renewer
	Approver Approver
	// Region is the stack's region: a rebind target must live there.
	Region string
	Now    func() time.Time
}

// Service runs the actions.
type Service struct {
	cfg Config
	now func() time.Time
}

// New returns a Service.
func New(cfg Config) *Service {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{cfg: cfg, now: now}
}

// bound reads name's META item; pipeline.ErrUnknownName when there is none
// (or only what an interrupted DELETE left).
func (s *Service) bound(ctx context.Context, name string) (*inventory.Cert, error) {
	if !spec.NamePattern.MatchString(name) {
		return nil, spec.Invalid("name", "must match %s", spec.NamePattern)
	}
	c, err := s.cfg.Store.GetCert(ctx, name)
	if err != nil {
		return nil, err
	}
	if c == nil || c.CertificateARN == "" || c.Status == inventory.StatusDeleting {
		return nil, fmt.Errorf("%w: %s", pipeline.ErrUnknownName, name)
	}
	return c, nil
}

// record writes an audit entry; a failure is logged, not returned: the
// action itself happened and must not be repeated by a retry.
func (s *Service) record(ctx context.Context, name string, e inventory.AuditEntry) bool {
	if err := s.cfg.Store.Audit(context.WithoutCancel(ctx), name, e); err != nil {
		slog.ErrorContext(ctx, "audit entry not recorded", "name", name, "action", e.Action, "by", e.By, "error", err)
		return false
	}
	return true
}

// announce publishes a; a failure is logged, not returned (see record).
func (s *Service) announce(ctx context.Context, a notify.Alert) string {
	if s.cfg.Alerts == nil {
		slog.WarnContext(ctx, "no alert topic configured; alert not published", "kind", a.Kind, "title", a.Title)
		return ""
	}
	id, err := s.cfg.Alerts.Publish(context.WithoutCancel(ctx), a)
	if err != nil {
		slog.ErrorContext(ctx, "alert not published", "kind", a.Kind, "error", err)
		return ""
	}
	return id
}

// Recorded says what of an action's bookkeeping went through.
type Recorded struct {
	Audit bool   `json:"audit"`
	Alert string `json:"alertMessageId,omitempty"`
}

// RotateResult is the answer of a rotation.
type RotateResult struct {
	Name           string        `json:"name"`
	CertificateARN string        `json:"certificateArn"`
	SerialBefore   string        `json:"serialBefore,omitempty"`
	RequestedBy    caller.Caller `json:"requestedBy"`
	Charged        bool          `json:"charged"`
	Next           string        `json:"next"`
	Recorded       Recorded      `json:"recorded"`
}

// Rotate asks ACM to renew name's certificate now (RenewCertificate, once).
// It is not idempotent at ACM: every accepted call starts a renewal (and
// for a public certificate, a charge); while one is in progress ACM
// answers RequestInProgressException (certs.ErrACMBusy).
func (s *Service) Rotate(ctx context.Context, name string, by caller.Caller) (RotateResult, error) {
	c, err := s.bound(ctx, name)
	if err != nil {
		return RotateResult{}, err
	}
	info, err := s.cfg.ACM.Describe(ctx, c.CertificateARN)
	if err != nil {
		return RotateResult{}, err
	}
	if err := info.CheckRenewable(); err != nil {
		return RotateResult{}, err
	}
	if err := s.cfg.Actions.Renew(ctx, c.CertificateARN); err != nil {
		return RotateResult{}, err
	}
	slog.InfoContext(ctx, "renewal requested", "name", name, "certificateArn", c.CertificateARN, "by", by.ARN)
	res := RotateResult{
		Name: name, CertificateARN: c.CertificateARN, SerialBefore: info.Serial, RequestedBy: by, Charged: info.Charged(),
		Next: "ACM renews the certificate under the same ARN and sends \"ACM Certificate Available\" (RENEWAL); certferry then deploys the new serial to every name bound to it through each name's waves, maintenance windows and approval.",
	}
	if res.Charged {
		res.Next += " This is an exportable public certificate: ACM charges for the renewal."
	}
	res.Recorded.Audit = s.record(ctx, name, inventory.AuditEntry{Action: inventory.AuditRotate, By: by.ARN, At: by.At,
		ARN: c.CertificateARN, Detail: "RenewCertificate accepted; serial before " + info.Serial})
	res.Recorded.Alert = s.announce(ctx, notify.RotationRequested(s.action(ctx, name, c.CertificateARN, info, by, nil), res.Charged))
	return res, nil
}

// action is the notify.Action of an operator action on arn.
func (s *Service) action(ctx context.Context, name, arn string, info certs.Info, by caller.Caller, names []string) notify.Action {
	a := notify.Action{Name: name, ARN: arn, Domain: info.DomainName, NotAfter: info.NotAfter, By: by.ARN, At: by.At}
	for _, n := range names {
		d, err := s.cfg.Store.Describe(ctx, n)
		if err != nil {
			d = nil
		}
		a.Names = append(a.Names, notify.NameFrom(n, d))
	}
	return a
}

// RevokeResult is the answer of a revocation.
type RevokeResult struct {
	Name           string        `json:"name"`
	CertificateARN string        `json:"certificateArn"`
	Serial         string        `json:"serial,omitempty"`
	Reason         string        `json:"reason"`
	RevokedBy      caller.Caller `json:"revokedBy"`
	// AtRisk are every name bound to the certificate, now marked at risk.
	AtRisk   []string `json:"atRisk"`
	Halted   []string `json:"halted"`
	Next     string   `json:"next"`
	Recorded Recorded `json:"recorded"`
}

// NormalizeReason is reason as ACM spells it (upper case, "_" for "-"
// and spaces): "superseded" and "cessation-of-operation" are accepted.
func NormalizeReason(reason string) string {
	return strings.NewReplacer("-", "_", " ", "_").Replace(strings.ToUpper(strings.TrimSpace(reason)))
}

// Revoke revokes name's certificate in ACM (RevokeCertificate, once, only
// with a reason ACM accepts for its type), then marks every name bound to
// it at risk, stops their deployments and alerts once.
func (s *Service) Revoke(ctx context.Context, name, reason string, by caller.Caller) (RevokeResult, error) {
	reason = NormalizeReason(reason)
	c, err := s.bound(ctx, name)
	if err != nil {
		return RevokeResult{}, err
	}
	info, err := s.cfg.ACM.Describe(ctx, c.CertificateARN)
	if err != nil {
		return RevokeResult{}, err
	}
	if reason == "" {
		return RevokeResult{}, spec.Wrap(certs.ErrBadReason, "reason", "is required: one of %s", strings.Join(info.RevocationReasons(), ", "))
	}
	if err := info.CheckRevocable(reason); err != nil {
		if errors.Is(err, certs.ErrBadReason) {
			return RevokeResult{}, spec.Wrap(certs.ErrBadReason, "reason", "%s", strings.TrimPrefix(err.Error(), certs.ErrBadReason.Error()+": "))
		}
		return RevokeResult{}, err
	}
	if err := s.cfg.Actions.Revoke(ctx, c.CertificateARN, reason); err != nil {
		return RevokeResult{}, err
	}
	slog.WarnContext(ctx, "certificate revoked", "name", name, "certificateArn", c.CertificateARN, "reason", reason, "by", by.ARN)
	res := RevokeResult{Name: name, CertificateARN: c.CertificateARN, Serial: info.Serial, Reason: reason, RevokedBy: by,
		Next: "Request a replacement certificate in ACM, then move each name to it: certferry rebind NAME --arn NEW_ARN (POST /certificates/{name}/rebind), which deploys it at once."}
	rev := inventory.Revocation{CertificateARN: c.CertificateARN, Serial: info.Serial, Reason: reason, At: by.At, By: by.ARN}
	marked, halted, names, err := s.MarkAtRisk(ctx, rev, "revoked through "+name)
	res.AtRisk, res.Halted = marked, halted
	if err != nil {
		// ACM revoked it; the names are marked by the ACM event's handler
		// (renewal), or the sweep. Say so rather than fail the request.
		slog.ErrorContext(ctx, "names not all marked at risk after the revocation", "certificateArn", c.CertificateARN, "error", err)
		res.Next = "Not every name could be marked at risk yet (the ACM Certificate Revoked event will); " + res.Next
	}
	for _, n := range names {
		ok := s.record(ctx, n, inventory.AuditEntry{Action: inventory.AuditRevoke, By: by.ARN, At: by.At, ARN: c.CertificateARN,
			Detail: fmt.Sprintf("RevokeCertificate %s, serial %s, requested on %s", reason, info.Serial, name)})
		if n == name {
			res.Recorded.Audit = ok
		}
	}
	if len(marked) > 0 {
		info.Status, info.RevocationReason = string(acmtypes.CertificateStatusRevoked), reason
		res.Recorded.Alert = s.announce(ctx, notify.Revoked(s.action(ctx, name, c.CertificateARN, info, by, names), reason))
	}
	return res, nil
}

// MarkAtRisk marks every name bound to r.CertificateARN at risk and halts
// its deployments. It returns the names this call marked, those it
// halted, and every bound name. A name already marked for the ARN is
// neither marked nor halted again, so the API's revocation and ACM's
// event for it act once between them.
func (s *Service) MarkAtRisk(ctx context.Context, r inventory.Revocation, why string) (marked, halted, names []string, err error) {
	names, err = s.cfg.Store.NamesByARN(ctx, r.CertificateARN)
	if err != nil {
		return nil, nil, nil, err
	}
	var errs []error
	for _, n := range names {
		ok, err := s.cfg.Store.MarkRevoked(ctx, n, r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		marked = append(marked, n)
		if s.cfg.Halter == nil {
			slog.WarnContext(ctx, "no rollout engine wired; deployments of the revoked certificate are not halted here", "name", n)
			continue
		}
		if err := s.cfg.Halter.Halt(ctx, n, fmt.Sprintf("certificate %s revoked (%s), %s", r.CertificateARN, r.Reason, why)); err != nil {
			errs = append(errs, fmt.Errorf("halt %s: %w", n, err))
			continue
		}
		halted = append(halted, n)
	}
	return marked, halted, names, errors.Join(errs...)
}

// RebindResult is the answer of a rebind.
type RebindResult struct {
	Name           string          `json:"name"`
	CertificateARN string          `json:"certificateArn"`
	Previous       string          `json:"previousCertificateArn"`
	ReboundBy      caller.Caller   `json:"reboundBy"`
	Urgent         bool            `json:"urgent"`
	Why            string          `json:"why"`
	Deployment     pipeline.Result `json:"deployment"`
	Recorded       Recorded        `json:"recorded"`
}

// ErrDeployAfterRebind wraps a deployment that failed after the name was
// rebound: the rebind stays, a redeploy completes it.
var ErrDeployAfterRebind = errors.New("rebound, but the deployment failed")

// Rebind moves name to the certificate arn and deploys it: at once
// (bypassing windows and approval) when the bound certificate is revoked
// or expired, else through the renewal path.
func (s *Service) Rebind(ctx context.Context, name, arn string, by caller.Caller) (RebindResult, error) {
	if !certs.ARNPattern.MatchString(arn) {
		return RebindResult{}, spec.Invalid("certificateArn", "must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<uuid>)")
	}
	if r := certs.ARNRegion(arn); s.cfg.Region != "" && r != s.cfg.Region {
		return RebindResult{}, spec.Invalid("certificateArn", "certificate is in %s; this certferry stack runs in %s", r, s.cfg.Region)
	}
	c, err := s.bound(ctx, name)
	if err != nil {
		return RebindResult{}, err
	}
	if c.CertificateARN == arn {
		return RebindResult{}, spec.Wrap(ErrSameCertificate, "certificateArn", "%s is already bound to %s; to send it again use POST /certificates/%s/deployments (certferry redeploy %s)", name, arn, name, name)
	}
	if r := certs.ARNRegion(arn); r != certs.ARNRegion(c.CertificateARN) {
		return RebindResult{}, spec.Invalid("certificateArn", "certificate is in %s; %s is bound to a certificate in %s", r, name, certs.ARNRegion(c.CertificateARN))
	}
	if a := certs.ARNAccount(arn); a != certs.ARNAccount(c.CertificateARN) {
		// ACM certificates are per account: this stack can neither
		// describe nor export another account's.
		return RebindResult{}, spec.Invalid("certificateArn", "certificate is in account %s; %s is bound to a certificate in account %s (this stack's)", a, name, certs.ARNAccount(c.CertificateARN))
	}
	info, err := s.cfg.ACM.Describe(ctx, arn)
	if err != nil {
		return RebindResult{}, err
	}
	if err := info.CheckDeployable(); err != nil {
		return RebindResult{}, err
	}
	urgent, why := s.urgency(ctx, c)
	if urgent && s.cfg.Deployer == nil || !urgent && s.cfg.Renewer == nil {
		return RebindResult{}, fmt.Errorf("%w: no deployer wired", ErrNotConfigured)
	}
	next, err := s.cfg.Store.Rebind(ctx, c, arn)
	if err != nil {
		return RebindResult{}, err
	}
	slog.InfoContext(ctx, "name rebound", "name", name, "from", c.CertificateARN, "to", arn, "by", by.ARN, "urgent", urgent)
	res := RebindResult{Name: name, CertificateARN: next.CertificateARN, Previous: c.CertificateARN, ReboundBy: by, Urgent: urgent, Why: why}
	res.Recorded.Audit = s.record(ctx, name, inventory.AuditEntry{Action: inventory.AuditRebind, By: by.ARN, At: by.At, ARN: arn,
		Detail: "from " + c.CertificateARN + " (" + why + ")"})
	var how string
	if urgent {
		how = "deployed at once, bypassing maintenance windows and approval (" + why + ")"
		res.Deployment, err = s.cfg.Deployer.Deploy(ctx, name, inventory.TriggerAPI)
	} else {
		how = "deployed through the name's waves, maintenance windows and approval (" + why + ")"
		res.Deployment, err = s.cfg.Renewer.Renew(ctx, name, inventory.TriggerAPI)
	}
	if err != nil {
		res.Recorded.Alert = s.announce(ctx, notify.ReboundNotDeployed(s.action(ctx, name, arn, info, by, nil), c.CertificateARN))
	} else {
		res.Recorded.Alert = s.announce(ctx, notify.Rebound(s.action(ctx, name, arn, info, by, nil), c.CertificateARN, how))
	}
	if err != nil {
		return res, fmt.Errorf("%w: %s is now bound to %s; POST /certificates/%s/deployments completes it: %w", ErrDeployAfterRebind, name, arn, name, err)
	}
	return res, nil
}

// urgency says whether the bound certificate can no longer serve: revoked
// (marked, or ACM says so), expired, or gone from ACM.
func (s *Service) urgency(ctx context.Context, c *inventory.Cert) (bool, string) {
	if c.Revoked != nil {
		return true, "the bound certificate was revoked (" + c.Revoked.Reason + ")"
	}
	old, err := s.cfg.ACM.Describe(ctx, c.CertificateARN)
	switch {
	case errors.Is(err, certs.ErrNotFound):
		return true, "the bound certificate no longer exists in ACM"
	case err != nil:
		slog.WarnContext(ctx, "bound certificate not read; judged by the inventory", "name", c.Name, "error", err)
	case old.Status == string(acmtypes.CertificateStatusRevoked):
		return true, "the bound certificate was revoked (" + old.RevocationReason + ")"
	case old.Status == string(acmtypes.CertificateStatusExpired):
		return true, "the bound certificate expired"
	}
	if !c.NotAfter.IsZero() && !s.now().Before(c.NotAfter) {
		return true, "the deployed certificate expired on " + c.NotAfter.UTC().Format(time.RFC3339)
	}
	return false, "the bound certificate is still valid"
}

// Approve releases name's deployment waiting for approval and records who
// released it.
func (s *Service) Approve(ctx context.Context, name string, by caller.Caller) (ApprovalResult, Recorded, error) {
	c, err := s.bound(ctx, name)
	if err != nil {
		return ApprovalResult{}, Recorded{}, err
	}
	if s.cfg.Approver == nil {
		return ApprovalResult{}, Recorded{}, fmt.Errorf("%w: approvals need the rollout engine", ErrNotConfigured)
	}
	res, err := s.cfg.Approver.Approve(ctx, name, by)
	if err != nil {
		return ApprovalResult{}, Recorded{}, err
	}
	var rec Recorded
	rec.Audit = s.record(ctx, name, inventory.AuditEntry{Action: inventory.AuditApprove, By: by.ARN, At: by.At, ARN: c.CertificateARN,
		Detail: strings.TrimSpace(res.RolloutID + " " + res.What)})
	rec.Alert = s.announce(ctx, notify.Approved(s.action(ctx, name, c.CertificateARN, certs.Info{}, by, nil), res.What))
	return res, rec, nil
}

// Deleted records that name was deleted (the entry survives the delete)
// and announces it.
func (s *Service) Deleted(ctx context.Context, name, arn string, by caller.Caller, secretDeletion string) Recorded {
	var rec Recorded
	detail := "inventory deleted; secret kept"
	if secretDeletion != "" {
		detail = "inventory deleted; " + secretDeletion
	}
	rec.Audit = s.record(ctx, name, inventory.AuditEntry{Action: inventory.AuditDelete, By: by.ARN, At: by.At, ARN: arn, Detail: detail})
	rec.Alert = s.announce(ctx, notify.Deleted(notify.Action{Name: name, ARN: arn, By: by.ARN, At: by.At}, secretDeletion))
	return rec
}

// AuditTrail returns name's last limit audit entries, newest first (also
// after the name was deleted).
func (s *Service) AuditTrail(ctx context.Context, name string, limit int) ([]inventory.AuditEntry, error) {
	if !spec.NamePattern.MatchString(name) {
		return nil, spec.Invalid("name", "must match %s", spec.NamePattern)
	}
	return s.cfg.Store.AuditTrail(ctx, name, limit)
}
