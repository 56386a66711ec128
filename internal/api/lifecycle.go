package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/caller"
	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/lifecycle"
	"github.com/certferry/certferry/internal/spec"
)

// lifecycler runs the operator's actions (internal/lifecycle).
type lifecycler interface {
	Rotate(ctx context.Context, name string, by caller.Caller) (lifecycle.RotateResult, error)
	Revoke(ctx context.Context, name, reason string, by caller.Caller) (lifecycle.RevokeResult, error)
	Rebind(ctx context.Context, name, arn string, by caller.Caller) (lifecycle.RebindResult, error)
	Approve(ctx context.Context, name string, by caller.Caller) (lifecycle.ApprovalResult, lifecycle.Recorded, error)
	Deleted(ctx context.Context, name, arn string, by caller.Caller, secretDeletion string) lifecycle.Recorded
	AuditTrail(ctx context.Context, name string, limit int) ([]inventory.AuditEntry, error)
}

var _ lifecycler = (*lifecycle.Service)(nil)

// WithLifecycle serves the operator's actions through l: POST
// /certificates/{name}/renewals, /approvals, /rebind, /revocations, GET
// /certificates/{name}/audit, and the audit entry and alert of a DELETE.
func (h *Handler) WithLifecycle(l lifecycler) *Handler {
	h.life = l
	return h
}

// callerOf is who sent the request, and when: the caller's IAM ARN as API
// Gateway authenticated it (requestContext.identity.userArn of a REST API
// with AWS_IAM authorization: "$context.identity.userArn", API Gateway
// Developer Guide, "$context variables for data models, authorizers,
// mapping templates, and access logging"), or local:<os user> for a
// request without one (the handler run in the operator's process).
func callerOf(req events.APIGatewayProxyRequest, now time.Time) caller.Caller {
	return caller.Caller{ARN: caller.Or(req.RequestContext.Identity.UserArn), At: now.UTC()}
}

// parseObject decodes an optional JSON object body whose field names must
// be among allowed (exactly spelled) and whose values are strings.
func parseObject(body string, base64Encoded bool, allowed ...string) (map[string]string, error) {
	raw := []byte(body)
	if base64Encoded {
		dec, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, spec.Invalid("body", "is marked base64 but does not decode")
		}
		raw = dec
	}
	if len(raw) > maxBody {
		return nil, spec.Invalid("body", "is larger than %d bytes", maxBody)
	}
	out := map[string]string{}
	if len(bytes.TrimSpace(raw)) == 0 {
		return out, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, spec.Invalid("body", "holds data after the JSON object")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			return nil, spec.Invalid(k, "is not a known field (%s)", strings.Join(allowed, ", "))
		}
		var v string
		if err := json.Unmarshal(m[k], &v); err != nil {
			return nil, spec.Invalid(k, "must be a string")
		}
		out[k] = v
	}
	return out, nil
}

func (h *Handler) lifecycleRoute(ctx context.Context, name, action string, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	if h.life == nil {
		return errorResponse(http.StatusNotImplemented, "NotConfigured", "this handler does not serve "+action, ""), nil
	}
	if !spec.NamePattern.MatchString(name) {
		return fromError(ctx, spec.Invalid("name", "must match %s", spec.NamePattern)), nil
	}
	by := callerOf(req, time.Now())
	switch action {
	case "renewals":
		if _, err := parseObject(req.Body, req.IsBase64Encoded); err != nil {
			return fromError(ctx, err), nil
		}
		res, err := h.life.Rotate(ctx, name, by)
		if err != nil {
			return fromError(ctx, err), nil
		}
		return jsonResponse(http.StatusAccepted, res), nil
	case "approvals":
		if _, err := parseObject(req.Body, req.IsBase64Encoded); err != nil {
			return fromError(ctx, err), nil
		}
		res, rec, err := h.life.Approve(ctx, name, by)
		if err != nil {
			return fromError(ctx, err), nil
		}
		return jsonResponse(http.StatusAccepted, struct {
			lifecycle.ApprovalResult
			ApprovedBy caller.Caller      `json:"approvedBy"`
			Recorded   lifecycle.Recorded `json:"recorded"`
		}{res, by, rec}), nil
	case "rebind":
		b, err := parseObject(req.Body, req.IsBase64Encoded, "certificateArn")
		if err != nil {
			return fromError(ctx, err), nil
		}
		if b["certificateArn"] == "" {
			return fromError(ctx, spec.Invalid("certificateArn", "is required: the ARN of the certificate to move %s to", name)), nil
		}
		res, err := h.life.Rebind(ctx, name, b["certificateArn"], by)
		if errors.Is(err, lifecycle.ErrDeployAfterRebind) {
			return rebindDeployFailed(ctx, name, res, err), nil
		}
		if err != nil {
			return fromError(ctx, err), nil
		}
		return jsonResponse(http.StatusAccepted, res), nil
	case "revocations":
		b, err := parseObject(req.Body, req.IsBase64Encoded, "reason")
		if err != nil {
			return fromError(ctx, err), nil
		}
		res, err := h.life.Revoke(ctx, name, b["reason"], by)
		if err != nil {
			return fromError(ctx, err), nil
		}
		return jsonResponse(http.StatusOK, res), nil
	}
	return errorResponse(http.StatusNotFound, "NotFound", "no such route", ""), nil
}

// rebindDeployFailed answers a rebind whose deployment failed: the rebind
// stands (a retry of it would answer 409), so the answer says how to
// complete it; the cause's internals stay in the log.
func rebindDeployFailed(ctx context.Context, name string, res lifecycle.RebindResult, err error) events.APIGatewayProxyResponse {
	resp := fromError(ctx, errors.Unwrap(err))
	var eb struct {
		Error map[string]any `json:"error"`
	}
	_ = json.Unmarshal([]byte(resp.Body), &eb)
	code := "DependencyFailure"
	if c, ok := eb.Error["code"].(string); ok && resp.StatusCode < 500 {
		code = c
	}
	status := resp.StatusCode
	return errorResponse(status, code, name+" is now bound to "+res.CertificateARN+
		" (the rebind stands), but its deployment did not go out; complete it with POST /certificates/"+name+"/deployments (certferry redeploy "+name+")", "")
}

// AuditView is the answer of GET /certificates/{name}/audit.
type AuditView struct {
	Name    string                 `json:"name"`
	Entries []inventory.AuditEntry `json:"entries"`
}

// DefaultAuditLimit is how many entries GET …/audit answers by default.
const DefaultAuditLimit = 50

func (h *Handler) audit(ctx context.Context, name string, q map[string]string) (events.APIGatewayProxyResponse, error) {
	if h.life == nil {
		return errorResponse(http.StatusNotImplemented, "NotConfigured", "this handler does not serve the audit trail", ""), nil
	}
	limit := DefaultAuditLimit
	for k, v := range q {
		if k != "limit" {
			return fromError(ctx, spec.Invalid(k, "is not a known query parameter (limit)")), nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > inventory.MaxPageLimit {
			return fromError(ctx, spec.Invalid("limit", "must be a whole number from 1 to %d", inventory.MaxPageLimit)), nil
		}
		limit = n
	}
	entries, err := h.life.AuditTrail(ctx, name, limit)
	if err != nil {
		return fromError(ctx, err), nil
	}
	if entries == nil {
		entries = []inventory.AuditEntry{}
	}
	return jsonResponse(http.StatusOK, AuditView{Name: name, Entries: entries}), nil
}
