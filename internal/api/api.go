// Package api translates API Gateway (REST, AWS_IAM auth) requests into
// pipeline and inventory calls, and domain errors into the JSON error
// contract: {"error": {"code", "message", "field"?}}.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/bundle"
	"github.com/certferry/certferry/internal/caller"
	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/lifecycle"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/rollout"
	"github.com/certferry/certferry/internal/spec"
)

type deployer interface {
	Onboard(ctx context.Context, sp spec.Spec) (pipeline.Result, error)
	Redeploy(ctx context.Context, name string, trigger inventory.Trigger) (pipeline.Result, error)
	RedeployNodes(ctx context.Context, name string, instanceIDs []string, trigger inventory.Trigger) (pipeline.Result, error)
	Delete(ctx context.Context, name string) (bool, error)
}

type catalog interface {
	ListCerts(ctx context.Context) ([]inventory.Cert, error)
	DescribePage(ctx context.Context, name string, limit int, next string) (*inventory.Page, error)
	GetCert(ctx context.Context, name string) (*inventory.Cert, error)
	GetNode(ctx context.Context, name, instanceID string) (*inventory.Node, error)
	NodesByInstance(ctx context.Context, instanceID string, limit int, next string) (*inventory.NodePage, error)
}

// secretRemover schedules the deletion of a name's secrets.
type secretRemover interface {
	Remove(ctx context.Context, name string, days int) ([]pipeline.ScheduledSecret, error)
}

var (
	_ deployer      = (*pipeline.Pipeline)(nil)
	_ deployer      = (*rollout.Engine)(nil) // waved names: onboarding and redeploys in waves
	_ catalog       = (*inventory.Store)(nil)
	_ secretRemover = (*pipeline.SecretRemover)(nil)
)

// API Gateway ends an integration after 29 s ("Amazon API Gateway quotas":
// maximum integration timeout). One deadline covers the whole request:
// every AWS call, every SDK retry and backoff, and ExportCertificate's own
// retries run under it.
const (
	// Budget is the longest a request works (the function's timeout is 29 s).
	Budget = 25 * time.Second
	// Reserve is kept back from the invocation's own deadline to release
	// the claim and answer.
	Reserve = 4 * time.Second
)

// Handler serves the onboarding API.
type Handler struct {
	deploy  deployer
	catalog catalog
	secrets secretRemover
	life    lifecycler
	alarms  stopAlarmChecker
}

// stopAlarmChecker checks that a rollout.stopAlarm names an existing
// CloudWatch alarm (AlarmChecker).
type stopAlarmChecker interface {
	Check(ctx context.Context, name string) error
}

var _ stopAlarmChecker = (*AlarmChecker)(nil)

// WithAlarms makes POST /certificates check a body's rollout.stopAlarm
// with c before anything is written: a missing alarm is a 400, an alarm
// CloudWatch would not let certferry read a 502.
func (h *Handler) WithAlarms(c stopAlarmChecker) *Handler {
	h.alarms = c
	return h
}

// NewHandler returns a Handler.
func NewHandler(d deployer, c catalog) *Handler { return &Handler{deploy: d, catalog: c} }

// WithSecrets lets DELETE /certificates/{name}?deleteSecret=true schedule
// the deletion of the name's secrets through r.
func (h *Handler) WithSecrets(r secretRemover) *Handler {
	h.secrets = r
	return h
}

// requestContext bounds ctx by Budget and by the invocation's deadline less
// Reserve, whichever comes first.
func requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	until := time.Now().Add(Budget)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-Reserve).Before(until) {
		until = dl.Add(-Reserve)
	}
	return context.WithDeadline(ctx, until)
}

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	ctx, cancel := requestContext(ctx)
	defer cancel()
	method, parts := req.HTTPMethod, route(req)
	slog.InfoContext(ctx, "api request", "method", method, "resource", req.Resource, "path", req.Path,
		"caller", req.RequestContext.Identity.UserArn, "requestId", req.RequestContext.RequestID)
	switch {
	case len(parts) == 1 && parts[0] == "certificates":
		switch method {
		case http.MethodPost:
			return h.onboard(ctx, req)
		case http.MethodGet:
			return h.list(ctx)
		}
	case len(parts) == 2 && parts[0] == "certificates":
		switch method {
		case http.MethodGet:
			return h.get(ctx, parts[1], req.QueryStringParameters)
		case http.MethodDelete:
			return h.remove(ctx, parts[1], req)
		}
	case len(parts) == 3 && parts[0] == "certificates" && parts[2] == "deployments":
		if method == http.MethodPost {
			return h.redeploy(ctx, parts[1], req)
		}
	case len(parts) == 3 && parts[0] == "certificates" && lifecycleRoutes[parts[2]]:
		if method == http.MethodPost {
			return h.lifecycleRoute(ctx, parts[1], parts[2], req)
		}
	case len(parts) == 3 && parts[0] == "certificates" && parts[2] == "audit":
		if method == http.MethodGet {
			return h.audit(ctx, parts[1], req.QueryStringParameters)
		}
	case len(parts) == 2 && parts[0] == "nodes":
		if method == http.MethodGet {
			return h.node(ctx, parts[1], req.QueryStringParameters)
		}
	default:
		return errorResponse(http.StatusNotFound, "NotFound", "no such route: "+method+" "+req.Path, ""), nil
	}
	return errorResponse(http.StatusMethodNotAllowed, "MethodNotAllowed", method+" is not allowed on "+req.Path, ""), nil
}

// lifecycleRoutes are the POST /certificates/{name}/… routes of the
// operator's actions (lifecycle.go).
var lifecycleRoutes = map[string]bool{"renewals": true, "approvals": true, "rebind": true, "revocations": true}

// route splits the request path into segments, taking {name} from the
// path parameters when API Gateway matched a resource template.
func route(req events.APIGatewayProxyRequest) []string {
	p := req.Resource
	if p == "" || !strings.Contains(p, "{") && req.Path != "" {
		p = req.Path
	}
	var out []string
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		switch seg {
		case "{name}":
			seg = req.PathParameters["name"]
		case "{instanceId}":
			seg = req.PathParameters["instanceId"]
		}
		out = append(out, seg)
	}
	return out
}

func (h *Handler) onboard(ctx context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	sp, err := ParseOnboard(req.Body, req.IsBase64Encoded)
	if err != nil {
		return fromError(ctx, err), nil
	}
	// The stop alarm must exist: SSM cancels every command whose alarm it
	// cannot read. Checked on every onboarding that sets one (a new name
	// or an update of the spec), before anything is written.
	if sp.Rollout != nil && sp.Rollout.StopAlarm != "" && h.alarms != nil {
		if err := h.alarms.Check(ctx, sp.Rollout.StopAlarm); err != nil {
			return fromError(ctx, err), nil
		}
	}
	res, err := h.deploy.Onboard(ctx, sp)
	if err != nil {
		return fromError(ctx, err), nil
	}
	return jsonResponse(http.StatusAccepted, res), nil
}

func (h *Handler) redeploy(ctx context.Context, name string, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	if !spec.NamePattern.MatchString(name) {
		return fromError(ctx, spec.Invalid("name", "must match %s", spec.NamePattern)), nil
	}
	body, err := ParseRedeploy(req.Body, req.IsBase64Encoded)
	if err != nil {
		return fromError(ctx, err), nil
	}
	var res pipeline.Result
	if body.InstanceIDs == nil {
		res, err = h.deploy.Redeploy(ctx, name, inventory.TriggerAPI)
	} else {
		if err := pipeline.CheckInstanceIDs(body.InstanceIDs); err != nil {
			return fromError(ctx, err), nil
		}
		if resp, ok := h.checkMembers(ctx, name, body.InstanceIDs); !ok {
			return resp, nil
		}
		res, err = h.deploy.RedeployNodes(ctx, name, body.InstanceIDs, inventory.TriggerAPI)
	}
	if err != nil {
		return fromError(ctx, err), nil
	}
	return jsonResponse(http.StatusAccepted, res), nil
}

// CertView is a certificate as the API shows it.
type CertView struct {
	Name             string               `json:"name"`
	CertificateARN   string               `json:"certificateArn"`
	Status           inventory.CertStatus `json:"status"`
	Serial           string               `json:"serial,omitempty"`
	NotAfter         time.Time            `json:"notAfter,omitzero"`
	Fingerprint      string               `json:"fingerprintSha256,omitempty"`
	DomainName       string               `json:"domainName,omitempty"`
	Targets          []spec.Target        `json:"targets"`
	Linux            spec.Linux           `json:"linux"`
	Windows          spec.Windows         `json:"windows"`
	SecretARN        string               `json:"secretArn,omitempty"`
	LastDeploymentID string               `json:"lastDeploymentId,omitempty"`
	LastCommandID    string               `json:"lastCommandId,omitempty"`
	// Revoked marks the name at risk: its certificate was revoked; rebind
	// it (POST /certificates/{name}/rebind).
	Revoked   *inventory.Revocation `json:"revoked,omitempty"`
	UpdatedAt time.Time             `json:"updatedAt"`

	// Rollout and lifecycle options, as the onboarding body spells them
	// (absent when not set).
	Rollout            *spec.Rollout            `json:"rollout,omitempty"`
	MaintenanceWindows []spec.MaintenanceWindow `json:"maintenanceWindows,omitempty"`
	SafetyMarginDays   *int                     `json:"safetyMarginDays,omitempty"`
	Approval           string                   `json:"approval,omitempty"`
	Probes             []string                 `json:"probes,omitempty"`
}

// NodeStatus is a node's state for one name: the fields NodeView (a
// name's node) and NodeCertView (a node's name) share. Embedded, its
// fields appear in the JSON where the embedding struct places it.
type NodeStatus struct {
	State         inventory.NodeState `json:"state"`
	Serial        string              `json:"serial,omitempty"`
	Fingerprint   string              `json:"fingerprintSha256,omitempty"`
	LastCommandID string              `json:"lastCommandId,omitempty"`
	DeploymentID  string              `json:"deploymentId,omitempty"`
	Error         string              `json:"error,omitempty"`
	Unverified    bool                `json:"unverified,omitempty"`
}

func nodeStatus(n inventory.Node) NodeStatus {
	return NodeStatus{State: n.State, Serial: n.Serial, Fingerprint: n.Fingerprint, LastCommandID: n.LastCommandID,
		DeploymentID: n.DeploymentID, Error: n.Error, Unverified: n.Unverified}
}

// NodeView is one node's state (GET /certificates/{name}).
type NodeView struct {
	InstanceID string `json:"instanceId"`
	NodeStatus
	Failures  int       `json:"failures,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// DeploymentView is one deployment.
type DeploymentView struct {
	DeploymentID string                      `json:"deploymentId"`
	CommandID    string                      `json:"commandId"`
	Trigger      inventory.Trigger           `json:"trigger"`
	Serial       string                      `json:"serial"`
	Counts       map[inventory.NodeState]int `json:"counts"`
	Outcome      inventory.Outcome           `json:"outcome"`
	CommandState string                      `json:"commandStatus,omitempty"`
	Expected     int                         `json:"expected,omitempty"` // nodes SSM targeted, once the command finished
	CreatedAt    time.Time                   `json:"createdAt"`
	FinishedAt   time.Time                   `json:"finishedAt,omitzero"`
	// The rollout and wave (k of n) the deployment sends; absent outside
	// a waved rollout.
	RolloutID string `json:"rolloutId,omitempty"`
	Wave      int    `json:"wave,omitempty"`
	Waves     int    `json:"waves,omitempty"`
}

// RolloutView is a name's current rollout: its phase, the wave sent,
// when a waiting one goes (notBefore: the window or the pause's end;
// goBy: the expiry override), why.
type RolloutView struct {
	ID         string                 `json:"rolloutId"`
	Serial     string                 `json:"serial"`
	Trigger    inventory.Trigger      `json:"trigger"`
	Phase      inventory.RolloutPhase `json:"phase"`
	Wave       int                    `json:"wave"`
	Waves      []int                  `json:"waves,omitempty"` // cumulative node counts
	Nodes      int                    `json:"nodes"`
	NotBefore  time.Time              `json:"notBefore,omitzero"`
	GoBy       time.Time              `json:"goBy,omitzero"`
	Reason     string                 `json:"reason,omitempty"`
	ApprovedBy string                 `json:"approvedBy,omitempty"`
	ApprovedAt time.Time              `json:"approvedAt,omitzero"`
	HaltedAt   time.Time              `json:"haltedAt,omitzero"`
	UpdatedAt  time.Time              `json:"updatedAt"`
}

func rolloutView(r *inventory.Rollout) *RolloutView {
	if r == nil {
		return nil
	}
	return &RolloutView{ID: r.ID, Serial: r.Serial, Trigger: r.Trigger, Phase: r.Phase, Wave: r.Wave, Waves: r.Waves, Nodes: len(r.Nodes),
		NotBefore: r.NotBefore, GoBy: r.GoBy, Reason: r.Reason, ApprovedBy: r.ApprovedBy, ApprovedAt: r.ApprovedAt, HaltedAt: r.HaltedAt,
		UpdatedAt: r.UpdatedAt}
}

func certView(c inventory.Cert) CertView {
	return CertView{
		Name: c.Name, CertificateARN: c.CertificateARN, Status: c.Status, Serial: c.Serial, NotAfter: c.NotAfter,
		Fingerprint: c.Fingerprint, DomainName: c.DomainName, Targets: c.Targets, Linux: c.Linux, Windows: c.Windows,
		SecretARN: c.SecretARN, LastDeploymentID: c.LastDeploymentID, LastCommandID: c.LastCommandID, Revoked: c.Revoked, UpdatedAt: c.UpdatedAt,
		Rollout: c.Rollout, MaintenanceWindows: c.MaintenanceWindows, SafetyMarginDays: c.SafetyMarginDays, Approval: c.Approval, Probes: c.Probes,
	}
}

func (h *Handler) list(ctx context.Context) (events.APIGatewayProxyResponse, error) {
	items, err := h.catalog.ListCerts(ctx)
	if err != nil {
		return fromError(ctx, err), nil
	}
	out := struct {
		Certificates []CertView `json:"certificates"`
	}{Certificates: []CertView{}}
	for _, c := range items {
		out.Certificates = append(out.Certificates, certView(c))
	}
	return jsonResponse(http.StatusOK, out), nil
}

// CertPage is the answer of GET /certificates/{name}: the certificate and
// one page of its deployments (oldest first), then its nodes. Next, when
// set, is the opaque token of the following page (?next=).
type CertPage struct {
	CertView
	Nodes       []NodeView       `json:"nodes"`
	Deployments []DeploymentView `json:"deployments"`
	// CurrentRollout is the name's rollout (first page only; "rollout"
	// is the spec's option).
	CurrentRollout *RolloutView `json:"currentRollout,omitempty"`
	Next           string       `json:"next,omitempty"`
}

// pageParams reads ?limit= (1 to inventory.MaxPageLimit, default
// inventory.DefaultPageLimit) and ?next=.
func pageParams(q map[string]string) (int, string, error) {
	limit := inventory.DefaultPageLimit
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > inventory.MaxPageLimit {
			return 0, "", spec.Invalid("limit", "must be a whole number from 1 to %d", inventory.MaxPageLimit)
		}
		limit = n
	}
	next, ok := q["next"]
	if ok && next == "" {
		return 0, "", spec.Invalid("next", "must be the next token of the previous page")
	}
	return limit, next, nil
}

func (h *Handler) get(ctx context.Context, name string, query map[string]string) (events.APIGatewayProxyResponse, error) {
	if !spec.NamePattern.MatchString(name) {
		return fromError(ctx, spec.Invalid("name", "must match %s", spec.NamePattern)), nil
	}
	limit, next, err := pageParams(query)
	if err != nil {
		return fromError(ctx, err), nil
	}
	d, err := h.catalog.DescribePage(ctx, name, limit, next)
	if errors.Is(err, inventory.ErrBadToken) {
		return errorResponse(http.StatusBadRequest, "ValidationError", "next: "+err.Error()+" (use the next token of the previous page)", "next"), nil
	}
	if err != nil {
		return fromError(ctx, err), nil
	}
	if d.Cert == nil {
		return errorResponse(http.StatusNotFound, "NotFound", "unknown certificate name: "+name, "name"), nil
	}
	out := CertPage{CertView: certView(*d.Cert), Nodes: []NodeView{}, Deployments: []DeploymentView{}, Next: d.Next,
		CurrentRollout: rolloutView(d.Rollout)}
	for _, n := range d.Nodes {
		out.Nodes = append(out.Nodes, NodeView{InstanceID: n.InstanceID, NodeStatus: nodeStatus(n), Failures: n.Failures, UpdatedAt: n.UpdatedAt})
	}
	for _, dep := range d.Deployments {
		out.Deployments = append(out.Deployments, DeploymentView{
			DeploymentID: dep.ID, CommandID: dep.CommandID, Trigger: dep.Trigger, Serial: dep.Serial,
			Counts: dep.Counts, Outcome: dep.Outcome, CommandState: dep.CommandStatus, Expected: dep.Expected, CreatedAt: dep.CreatedAt, FinishedAt: dep.FinishedAt,
			RolloutID: dep.RolloutID, Wave: dep.Wave, Waves: dep.Waves,
		})
	}
	return jsonResponse(http.StatusOK, out), nil
}

// deleted records a DELETE's audit entry and alert, when the handler
// serves the operator's actions.
func (h *Handler) deleted(ctx context.Context, name, arn string, by caller.Caller, secretDeletion string) {
	if h.life != nil {
		h.life.Deleted(ctx, name, arn, by, secretDeletion)
	}
}

func (h *Handler) remove(ctx context.Context, name string, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	query := req.QueryStringParameters
	if !spec.NamePattern.MatchString(name) {
		return fromError(ctx, spec.Invalid("name", "must match %s", spec.NamePattern)), nil
	}
	opts, err := parseDeleteQuery(query)
	if err != nil {
		return fromError(ctx, err), nil
	}
	if opts.deleteSecret && h.secrets == nil {
		return errorResponse(http.StatusInternalServerError, "InternalError", "this handler cannot delete secrets", ""), nil
	}
	// The bound certificate, for the audit entry and alert of the delete.
	var boundARN string
	if h.life != nil {
		if c, err := h.catalog.GetCert(ctx, name); err == nil && c != nil {
			boundARN = c.CertificateARN
		}
	}
	by := callerOf(req, time.Now())
	// Through the pipeline: a DELETE respects a deployment's live claim
	// (409) and holds the claim itself while it deletes.
	found, err := h.deploy.Delete(ctx, name)
	if err != nil {
		return fromError(ctx, err), nil
	}
	if found {
		slog.InfoContext(ctx, "certificate no longer distributed", "name", name, "by", by.ARN)
	}
	if !opts.deleteSecret {
		if !found {
			return errorResponse(http.StatusNotFound, "NotFound", "unknown certificate name: "+name, "name"), nil
		}
		h.deleted(ctx, name, boundARN, by, "")
		return jsonResponse(http.StatusOK, DeleteView{Name: name, Deleted: true, SecretKept: true}), nil
	}
	// After the inventory delete, so nothing deploys from a secret being
	// deleted. A name already gone is retried here too: a request that
	// deleted the inventory and then failed on Secrets Manager is
	// completed by its retry.
	scheduled, err := h.secrets.Remove(ctx, name, opts.recoveryDays)
	if err != nil {
		slog.ErrorContext(ctx, "secret deletion failed", "name", name, "inventoryDeleted", found, "error", err)
		return errorResponse(http.StatusBadGateway, "DependencyFailure",
			"the secret's deletion could not be scheduled; retry the same request (the name's inventory deletion, if done, stays done)", ""), nil
	}
	if !found && len(scheduled) == 0 {
		return errorResponse(http.StatusNotFound, "NotFound", "unknown certificate name: "+name, "name"), nil
	}
	slog.InfoContext(ctx, "secret deletion scheduled", "name", name, "secrets", len(scheduled), "recoveryWindowDays", opts.recoveryDays)
	if found {
		h.deleted(ctx, name, boundARN, by, fmt.Sprintf("Secrets scheduled for deletion with a %d-day recovery window (aws secretsmanager restore-secret undoes it until then).", opts.recoveryDays))
	}
	return jsonResponse(http.StatusOK, DeleteView{
		Name: name, Deleted: true, AlreadyGone: !found,
		SecretDeletion: &SecretDeletionView{RecoveryWindowDays: opts.recoveryDays, Secrets: append([]pipeline.ScheduledSecret{}, scheduled...)},
	}), nil
}

// fromError maps domain errors to the error contract. Anything unknown is a
// dependency failure: logged in full, answered without internals.
func fromError(ctx context.Context, err error) events.APIGatewayProxyResponse {
	var fe *spec.FieldError
	var de *spec.DomainError
	var ae *StopAlarmError
	field := ""
	if errors.As(err, &de) {
		field = de.Field
	}
	switch {
	case errors.As(err, &fe):
		return errorResponse(http.StatusBadRequest, "ValidationError", fe.Error(), fe.Field)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		slog.ErrorContext(ctx, "request deadline reached", "budget", Budget, "error", err)
		return errorResponse(http.StatusServiceUnavailable, "Timeout",
			"AWS did not answer within the request's time budget; retry the request (a retry completes it without duplicates)", "")
	case errors.As(err, &ae) && errors.Is(err, ErrAlarmAccessDenied):
		slog.ErrorContext(ctx, "stop alarm unreadable", "alarm", ae.Alarm, "error", err)
		return errorResponse(http.StatusBadGateway, "StopAlarmUnreadable", fmt.Sprintf(
			"rollout.stopAlarm: certferry may not read CloudWatch alarm %q in %s: its API function's role needs cloudwatch:DescribeAlarms (on \"*\" for a composite alarm); nothing was written",
			ae.Alarm, ae.Region), "rollout.stopAlarm")
	case errors.As(err, &ae):
		slog.ErrorContext(ctx, "stop alarm check throttled", "alarm", ae.Alarm, "error", err)
		return errorResponse(http.StatusBadGateway, "StopAlarmUnreadable", fmt.Sprintf(
			"rollout.stopAlarm: CloudWatch throttled cloudwatch:DescribeAlarms for alarm %q in %s; nothing was written, retry the request",
			ae.Alarm, ae.Region), "rollout.stopAlarm")
	case errors.Is(err, certs.ErrNotFound):
		return errorResponse(http.StatusNotFound, "CertificateNotFound", err.Error(), "certificateArn")
	case errors.Is(err, pipeline.ErrUnknownName):
		return errorResponse(http.StatusNotFound, "NotFound", err.Error(), "name")
	case errors.Is(err, pipeline.ErrNameTaken):
		return errorResponse(http.StatusConflict, "NameTaken", err.Error(), field)
	case errors.Is(err, bundle.ErrScheduledForDeletion):
		return errorResponse(http.StatusConflict, "SecretScheduledForDeletion", err.Error(), "name")
	case errors.Is(err, pipeline.ErrNotCurrent):
		return errorResponse(http.StatusConflict, "NotCurrent", err.Error(), "")
	case errors.Is(err, pipeline.ErrTargetsGone):
		return errorResponse(http.StatusConflict, "TargetsGone", err.Error(), "targets")
	case errors.Is(err, pipeline.ErrBusy), errors.Is(err, inventory.ErrConflict):
		return errorResponse(http.StatusConflict, "DeploymentInProgress", err.Error()+"; retry shortly", "")
	case errors.Is(err, certs.ErrNotExportable):
		return errorResponse(http.StatusUnprocessableEntity, "CertificateNotExportable", err.Error(), "certificateArn")
	case errors.Is(err, certs.ErrNotIssued):
		return errorResponse(http.StatusUnprocessableEntity, "CertificateNotIssued", err.Error(), "certificateArn")
	case errors.Is(err, certs.ErrBadReason):
		msg := err.Error()
		if de != nil {
			msg = de.Field + ": " + de.Message
		}
		return errorResponse(http.StatusBadRequest, "ValidationError", msg, "reason")
	case errors.Is(err, certs.ErrNotRenewable):
		return errorResponse(http.StatusUnprocessableEntity, "CertificateNotRenewable", err.Error()+"; nothing was called", "certificateArn")
	case errors.Is(err, certs.ErrNotRevocable):
		return errorResponse(http.StatusUnprocessableEntity, "CertificateNotRevocable", err.Error()+"; nothing was called", "certificateArn")
	case errors.Is(err, certs.ErrAlreadyRevoked):
		return errorResponse(http.StatusConflict, "AlreadyRevoked", err.Error()+"; rebind the name to a replacement (POST /certificates/{name}/rebind)", "certificateArn")
	case errors.Is(err, certs.ErrACMBusy):
		return errorResponse(http.StatusConflict, "CertificateBusy", err.Error(), "certificateArn")
	case errors.Is(err, lifecycle.ErrSameCertificate):
		msg := err.Error()
		if de != nil {
			msg = de.Message
		}
		return errorResponse(http.StatusConflict, "AlreadyBound", msg, "certificateArn")
	case errors.Is(err, lifecycle.ErrNothingToApprove):
		return errorResponse(http.StatusConflict, "NothingToApprove", err.Error(), "name")
	case errors.Is(err, lifecycle.ErrNotConfigured):
		slog.ErrorContext(ctx, "action not wired", "error", err)
		return errorResponse(http.StatusNotImplemented, "NotConfigured", "this action is not available in this deployment of certferry", "")
	case errors.Is(err, certs.ErrBadExport):
		slog.ErrorContext(ctx, "export failed verification", "error", err)
		return errorResponse(http.StatusBadGateway, "ExportVerificationFailed", "ACM's export did not pass verification; nothing was stored", "")
	}
	slog.ErrorContext(ctx, "dependency failure", "error", err)
	return errorResponse(http.StatusBadGateway, "DependencyFailure", "an AWS dependency failed; retry the request (details are in the function's log)", "")
}

func errorResponse(status int, code, message, field string) events.APIGatewayProxyResponse {
	body := map[string]any{"code": code, "message": message}
	if field != "" {
		body["field"] = field
	}
	return jsonResponse(status, map[string]any{"error": body})
}

func jsonResponse(status int, v any) events.APIGatewayProxyResponse {
	raw, err := json.Marshal(v)
	if err != nil {
		status, raw = http.StatusInternalServerError, []byte(`{"error":{"code":"InternalError","message":"could not encode the answer"}}`)
	}
	return events.APIGatewayProxyResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(raw),
	}
}
