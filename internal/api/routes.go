package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
)

// RedeployBody is the optional body of POST /certificates/{name}/deployments.
// InstanceIDs nil (no body, {} or null) redeploys to every target; a list
// redeploys to those nodes only.
type RedeployBody struct {
	InstanceIDs []string `json:"instanceIds"`
}

// ParseRedeploy decodes a redeploy body (empty allowed).
func ParseRedeploy(body string, base64Encoded bool) (RedeployBody, error) {
	var b RedeployBody
	raw := []byte(body)
	if base64Encoded {
		dec, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return b, spec.Invalid("body", "is marked base64 but does not decode")
		}
		raw = dec
	}
	if len(raw) > maxBody {
		return b, spec.Invalid("body", "is larger than %d bytes", maxBody)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return b, nil
	}
	// Field names match exactly (encoding/json alone would take
	// "InstanceIDs" for instanceIds).
	dec := json.NewDecoder(bytes.NewReader(raw))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		return b, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return b, spec.Invalid("body", "holds data after the JSON object")
	}
	for k := range m {
		if k != "instanceIds" {
			return b, spec.Invalid(k, "is not a known field (instanceIds)")
		}
	}
	ids := bytes.TrimSpace(m["instanceIds"])
	if len(ids) == 0 || string(ids) == "null" {
		return b, nil
	}
	if err := json.Unmarshal(ids, &b.InstanceIDs); err != nil {
		return RedeployBody{}, spec.Invalid("instanceIds", "must be a list of instance ids")
	}
	if b.InstanceIDs == nil {
		b.InstanceIDs = []string{}
	}
	return b, nil
}

// checkMembers refuses (400) instance ids that are not nodes of name: a
// node is one the inventory has a NODE record of under the name (it was
// targeted or reported), or one listed in the name's InstanceIds targets.
// A node of the name's tag targets that never reported is reached by
// redeploying the whole name (SSM resolves the tags). 404 for an unknown
// name.
func (h *Handler) checkMembers(ctx context.Context, name string, ids []string) (events.APIGatewayProxyResponse, bool) {
	c, err := h.catalog.GetCert(ctx, name)
	if err != nil {
		return fromError(ctx, err), false
	}
	if c == nil || c.CertificateARN == "" {
		return errorResponse(http.StatusNotFound, "NotFound", "unknown certificate name: "+name, "name"), false
	}
	listed := c.Spec.InstanceIDs()
	for i, id := range ids {
		if slices.Contains(listed, id) {
			continue
		}
		n, err := h.catalog.GetNode(ctx, name, id)
		if err != nil {
			return fromError(ctx, err), false
		}
		if n == nil {
			return fromError(ctx, spec.Invalid(fmt.Sprintf("instanceIds[%d]", i),
				"%s is not a node of %s (no record of it under the name, and not in its InstanceIds targets); redeploy the whole name to reach new nodes of its tag targets", id, name)), false
		}
	}
	return events.APIGatewayProxyResponse{}, true
}

// deleteOptions are the query parameters of DELETE /certificates/{name}.
type deleteOptions struct {
	deleteSecret bool
	recoveryDays int
}

// parseDeleteQuery reads ?deleteSecret=true|false and, with
// deleteSecret=true, ?recoveryWindowDays=7..30 (default 30).
func parseDeleteQuery(q map[string]string) (deleteOptions, error) {
	o := deleteOptions{recoveryDays: pipeline.DefaultRecoveryDays}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k != "deleteSecret" && k != "recoveryWindowDays" {
			return o, spec.Invalid(k, "is not a known query parameter (deleteSecret, recoveryWindowDays)")
		}
	}
	if v, ok := q["deleteSecret"]; ok {
		switch v {
		case "true":
			o.deleteSecret = true
		case "false":
		default:
			return o, spec.Invalid("deleteSecret", "must be true or false")
		}
	}
	if v, ok := q["recoveryWindowDays"]; ok {
		n, err := strconv.Atoi(v)
		if !o.deleteSecret {
			return o, spec.Invalid("recoveryWindowDays", "applies only with deleteSecret=true")
		}
		if err != nil || n < pipeline.MinRecoveryDays || n > pipeline.MaxRecoveryDays || strings.TrimSpace(v) != v {
			return o, spec.Invalid("recoveryWindowDays", "must be a whole number of days from %d to %d", pipeline.MinRecoveryDays, pipeline.MaxRecoveryDays)
		}
		o.recoveryDays = n
	}
	return o, nil
}

// DeleteView is the answer of DELETE /certificates/{name}.
type DeleteView struct {
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
	// AlreadyGone: the inventory held no such name any more (an earlier
	// request deleted it); this one scheduled what was left of its secrets.
	AlreadyGone bool `json:"alreadyGone,omitempty"`
	// SecretKept: without deleteSecret=true the name's secret stays.
	SecretKept     bool                `json:"secretKept,omitempty"`
	SecretDeletion *SecretDeletionView `json:"secretDeletion,omitempty"`
}

// SecretDeletionView says which secrets are scheduled for deletion and
// how long RestoreSecret can still bring them back.
type SecretDeletionView struct {
	RecoveryWindowDays int                        `json:"recoveryWindowDays"`
	Secrets            []pipeline.ScheduledSecret `json:"secrets"`
}

// NodeCertView is one name a node has (GET /nodes/{instanceId}).
type NodeCertView struct {
	Name string `json:"name"`
	NodeStatus
	UpdatedAt time.Time `json:"updatedAt"`
}

// NodePage is the answer of GET /nodes/{instanceId}: one page of the names
// the node has, by name. Next, when set, is the token of the next page.
type NodePage struct {
	InstanceID   string         `json:"instanceId"`
	Certificates []NodeCertView `json:"certificates"`
	Next         string         `json:"next,omitempty"`
}

func (h *Handler) node(ctx context.Context, id string, query map[string]string) (events.APIGatewayProxyResponse, error) {
	if !spec.InstanceIDPattern.MatchString(id) {
		return fromError(ctx, spec.Invalid("instanceId", "must match %s", spec.InstanceIDPattern)), nil
	}
	limit, next, err := pageParams(query)
	if err != nil {
		return fromError(ctx, err), nil
	}
	p, err := h.catalog.NodesByInstance(ctx, id, limit, next)
	if errors.Is(err, inventory.ErrBadToken) {
		return errorResponse(http.StatusBadRequest, "ValidationError", "next: "+err.Error()+" (use the next token of the previous page)", "next"), nil
	}
	if err != nil {
		return fromError(ctx, err), nil
	}
	out := NodePage{InstanceID: id, Certificates: []NodeCertView{}, Next: p.Next}
	for _, e := range p.Entries {
		out.Certificates = append(out.Certificates, NodeCertView{Name: e.Name, NodeStatus: nodeStatus(e.Node), UpdatedAt: e.UpdatedAt})
	}
	return jsonResponse(http.StatusOK, out), nil
}
