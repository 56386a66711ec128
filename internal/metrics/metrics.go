// Package metrics writes CloudWatch Embedded Metric Format (EMF) lines:
// one JSON object per line on the function's output, which CloudWatch Logs
// turns into metrics with no API call and no extra permission.
package metrics

import (
	"encoding/json"
	"io"
	"maps"
	"slices"
	"sync"
	"time"
)

// Namespace is certferry's CloudWatch namespace (template.yaml alarms use it).
const Namespace = "certferry"

// Values are metric values by metric name (unit Count).
type Values map[string]float64

// Emitter writes EMF lines to w.
type Emitter struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// New returns an Emitter on w (os.Stdout in Lambda).
func New(w io.Writer) *Emitter { return &Emitter{w: w, now: time.Now} }

// Emit writes one line. Each metric is published with the given dimensions
// and also without any, so alarms can watch the fleet-wide figure (for
// instance the lowest DaysToExpiry of all names).
func (e *Emitter) Emit(dims map[string]string, v Values) {
	if e == nil || len(v) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(v))
	defs := make([]map[string]string, 0, len(names))
	for _, n := range names {
		defs = append(defs, map[string]string{"Name": n, "Unit": "Count"})
	}
	dimKeys := slices.Sorted(maps.Keys(dims))
	sets := [][]string{{}}
	if len(dimKeys) > 0 {
		sets = [][]string{dimKeys, {}}
	}
	line := map[string]any{
		"_aws": map[string]any{
			"Timestamp":         e.now().UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{"Namespace": Namespace, "Dimensions": sets, "Metrics": defs}},
		},
	}
	for k, val := range dims {
		line[k] = val
	}
	for k, val := range v {
		line[k] = val
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(append(b, '\n'))
}
