package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/certferry/certferry/internal/spec"
)

// Request is what the probe function takes (and what runs in-process
// locally): the targets in the probes grammar and the fingerprint they
// must serve.
type Request struct {
	Targets             []string `json:"targets"`
	ExpectedFingerprint string   `json:"expectedFingerprint,omitempty"`
	// BudgetMillis bounds the whole check (the caller's remaining time);
	// 0: the function's own deadline alone.
	BudgetMillis int64 `json:"budgetMillis,omitempty"`
}

// Response is the probe function's answer: one result per target, in the
// order asked.
type Response struct {
	Results []Result `json:"results"`
}

// ErrBadRequest wraps every refusal of a malformed request; nothing was
// probed.
var ErrBadRequest = errors.New("bad probe request")

// fingerprintPattern is certs.Fingerprint's format.
var fingerprintPattern = regexp.MustCompile(`^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31}$`)

// Handler answers probe requests: the probe function's handler, and the
// in-process prober of local runs and tests.
type Handler struct{ p *Prober }

// NewHandler wraps a Prober.
func NewHandler(p *Prober) *Handler { return &Handler{p: p} }

// deadlineMargin is kept free before the function's own deadline, so that
// the answer is sent before Lambda stops the function.
const deadlineMargin = 500 * time.Millisecond

// Handle validates the request (every target parses, the fingerprint is
// well formed, at most MaxTargets) and probes. A bad request is an error
// and probes nothing.
func (h *Handler) Handle(ctx context.Context, req Request) (Response, error) {
	targets, err := req.Parse()
	if err != nil {
		return Response{}, err
	}
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-deadlineMargin))
		defer cancel()
	}
	if req.BudgetMillis > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.BudgetMillis)*time.Millisecond)
		defer cancel()
	}
	res := h.p.Check(ctx, targets, req.ExpectedFingerprint)
	for i := range res {
		res[i].Target = req.Targets[i] // as asked, so callers match them
	}
	mismatches, failed := 0, 0
	for _, r := range res {
		switch {
		case r.Mismatch():
			mismatches++
		case r.Failed():
			failed++
		}
	}
	slog.InfoContext(ctx, "probes done", "targets", len(res), "mismatches", mismatches, "failed", failed)
	return Response{Results: res}, nil
}

// Probe is Handle under the name the tracker's and sweeper's prober
// interfaces call: locally the same code runs in-process.
func (h *Handler) Probe(ctx context.Context, req Request) (Response, error) {
	return h.Handle(ctx, req)
}

// Parse checks the request and returns its targets.
func (req Request) Parse() ([]Target, error) {
	if len(req.Targets) == 0 {
		return nil, fmt.Errorf("%w: no targets", ErrBadRequest)
	}
	if len(req.Targets) > MaxTargets {
		return nil, fmt.Errorf("%w: %d targets, at most %d", ErrBadRequest, len(req.Targets), MaxTargets)
	}
	if req.ExpectedFingerprint != "" && !fingerprintPattern.MatchString(req.ExpectedFingerprint) {
		return nil, fmt.Errorf("%w: expectedFingerprint must be a SHA-256 fingerprint as 32 hex pairs joined by ':'", ErrBadRequest)
	}
	if req.BudgetMillis < 0 {
		return nil, fmt.Errorf("%w: budgetMillis must not be negative", ErrBadRequest)
	}
	out := make([]Target, 0, len(req.Targets))
	for i, s := range req.Targets {
		t, err := spec.ParseProbe(s)
		if err != nil {
			return nil, fmt.Errorf("%w: targets[%d]: %v", ErrBadRequest, i, err)
		}
		out = append(out, t)
	}
	return out, nil
}
