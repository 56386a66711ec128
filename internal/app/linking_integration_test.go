//go:build integration

package app

import (
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
)

// A deployment is linked to exactly the command sent for it: a command that
// an earlier run sent (and that finished) for the same parameters is never
// adopted. Spec A, then B, then A again within the look-back sends three
// commands; a retry after a failure between SendCommand and the commit
// adopts the command that very run sent, not an older one with the same
// parameters.
func TestDeploymentLinkedToItsOwnCommand(t *testing.T) {
	t.Parallel()
	r := newRig(t, moto)
	r.launch(2, map[string]string{"env": "prod"})
	arn := r.exportable("shop.example.com")
	parts := NewParts(r.aws, r.cfg)
	flaky := &failingCommit{Store: parts.Inventory}
	p := pipeline.New(parts.ACM, parts.Bundles, flaky, parts.Fleet, pipeline.Config{Region: "us-east-1"})
	specA := specOf(t, onboardBody(arn, "shop-web"))
	specB := specOf(t, strings.Replace(onboardBody(arn, "shop-web"), `"nginx"`, `"apache2"`, 1))

	used := map[string]string{}
	for i, step := range []struct {
		name string
		sp   spec.Spec
	}{{"A", specA}, {"B", specB}, {"A again", specA}} {
		res, err := p.Onboard(r.ctx, step.sp)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if c := r.counts().commands; c != i+1 {
			t.Fatalf("%s: %d commands sent in all, want %d (an earlier command with the same parameters was adopted)", step.name, c, i+1)
		}
		if prev, ok := used[res.CommandID]; ok {
			t.Fatalf("%s: deployment linked to command %s of step %s", step.name, res.CommandID, prev)
		}
		used[res.CommandID] = step.name
	}

	// B again, and its run dies between SendCommand and the commit: the
	// retry adopts the command it sent, not step B's.
	before := map[string]bool{}
	for _, c := range r.commands() {
		before[c.ID] = true
	}
	flaky.failures = 1
	if _, err := p.Onboard(r.ctx, specB); err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("B with a failing commit: %v, want the injected failure", err)
	}
	var sent []string
	for _, c := range r.commands() {
		if !before[c.ID] {
			sent = append(sent, c.ID)
		}
	}
	if len(sent) != 1 {
		t.Fatalf("the failed run sent %v, want one command", sent)
	}
	res, err := p.Onboard(r.ctx, specB)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if c := r.counts().commands; c != 4 {
		t.Fatalf("after the retry: %d commands, want still 4 (the retry adopts what its run sent)", c)
	}
	if prev, ok := used[res.CommandID]; ok {
		t.Fatalf("retry linked to command %s of step %s, not the one its run sent", res.CommandID, prev)
	}
	if res.CommandID != sent[0] {
		t.Fatalf("retry recorded %s, want %s, the command its run sent", res.CommandID, sent[0])
	}
}
