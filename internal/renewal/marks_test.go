package renewal

import (
	"context"
	"errors"
	"testing"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
)

// An event is acknowledged as a duplicate only when its mark says done. A
// mark still "processing" (a concurrent invocation, or a failed one whose
// release did not go through) makes the delivery fail, so Lambda retries
// it: an event whose handling failed is never swallowed, and concurrent
// duplicates still act exactly once.
func TestOnlyADoneMarkIsADuplicate(t *testing.T) {
	f := newFake()
	raw := sample(t, "renewal-available-renewal.json")
	ev, err := f.handler().Handle(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	f.marks[ev.EventID] = inventory.EventProcessing // the first delivery's handling is not finished
	f.synced = nil
	out, err := f.handler().Handle(context.Background(), raw)
	if !errors.Is(err, ErrInProgress) || out.Status != StatusBusy || len(f.synced) != 0 {
		t.Fatalf("delivery during another's processing: %+v, %v, synced %v; want a retryable error and nothing done", out, err, f.synced)
	}
	f.marks[ev.EventID] = inventory.EventDone
	if out, err := f.handler().Handle(context.Background(), raw); err != nil || out.Status != StatusDuplicate {
		t.Fatalf("delivery after done: %+v, %v", out, err)
	}
}

// A renewal that finds another run holding the name is not acknowledged:
// the pipeline's ErrBusy makes the delivery fail and releases the mark, so
// the retry acts (and finds the serial deployed, or deploys it).
func TestBusyNameIsRetried(t *testing.T) {
	f := newFake()
	f.syncFn = func(string) (pipeline.Result, error) { return pipeline.Result{}, pipeline.ErrBusy }
	out, err := f.handler().Handle(context.Background(), sample(t, "renewal-available-renewal.json"))
	if !errors.Is(err, pipeline.ErrBusy) || out.Status == StatusDone || len(f.marks) != 0 {
		t.Fatalf("%+v, %v, marks %v: want a retryable error and the mark released", out, err, f.marks)
	}
}
