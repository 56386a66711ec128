// Command certferry-bench measures certferry at fleet scale on a private
// moto_server and writes the results to bench/results.json (and a table to
// stdout): cold start and size of every function, onboarding and renewal
// latency (p50/p99) with AWS calls per deployment for fleets of 1, 100 and
// 10 000 tagged instances, the tracker over 10 000 status events, and the
// sweep fanned out over 10 000 names × 10 nodes (enqueue, then the queue
// drained through the worker).
//
// Where moto lacks an API (DescribeInstanceInformation, output of
// GetCommandInvocation) or is far slower than AWS at scale (SendCommand to
// 10 000 tag targets takes moto about a minute, which real SSM resolves
// asynchronously), an SSM stand-in answers in real SSM's shape; each result
// says where it did. Everything else is moto.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/testkit"
)

// Result is one measured figure.
type Result struct {
	Section string  `json:"section"`
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Note    string  `json:"note,omitempty"`
}

// Report is bench/results.json.
type Report struct {
	Date    string         `json:"date"`
	Machine string         `json:"machine"`
	Config  map[string]int `json:"config"`
	Results []Result       `json:"results"`
	Calls   map[string]any `json:"awsCallsPerOperation"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := flag.String("out", "bench/results.json", "where to write the results")
	runs := flag.Int("runs", 100, "onboarding and renewal runs per fleet size")
	events := flag.Int("tracker-events", 10000, "status events for the tracker benchmark")
	certs := flag.Int("sweep-certs", 10000, "certificate names for the sweeper fan-out benchmark")
	nodes := flag.Int("sweep-nodes", 10, "nodes per certificate for the sweeper benchmark")
	starts := flag.Int("cold-starts", 10, "process starts per function")
	only := flag.String("only", "", "run one section: coldstart, onboarding, renewal, tracker, sweeper")
	cpuProfile := flag.String("cpuprofile", "", "write the bench process's CPU profile here (go tool pprof)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			slog.Error("cpu profile", "err", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			slog.Error("cpu profile", "err", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	// The handlers log every step; here only warnings matter.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := run(ctx, *out, *only, settings{runs: *runs, events: *events, certs: *certs, nodes: *nodes, starts: *starts}); err != nil {
		fmt.Fprintln(os.Stderr, "certferry-bench:", err)
		os.Exit(1)
	}
}

type settings struct{ runs, events, certs, nodes, starts int }

func run(ctx context.Context, outPath, only string, cfg settings) (err error) {
	// moto behind the AWS model check: a bench request AWS would refuse
	// fails the bench (testkit.StartRig).
	checked, err := testkit.StartRig(ctx)
	if err != nil {
		return err
	}
	modelRig = checked
	moto := checked.Moto
	defer func() {
		checked.Stop()
		if vs := checked.Violations(); len(vs) > 0 {
			err = errors.Join(err, fmt.Errorf("AWS model check: %d request(s) AWS would refuse: %v", len(vs), vs))
		}
	}()
	rep := &Report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: fmt.Sprintf("%s/%s, %d CPU, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
		Config:  map[string]int{"runs": cfg.runs, "trackerEvents": cfg.events, "sweepCertificates": cfg.certs, "sweepNodesPerCertificate": cfg.nodes, "coldStarts": cfg.starts},
		Calls:   map[string]any{},
	}
	sections := []struct {
		name string
		fn   func(context.Context, *motoserver.Server, settings, *Report) error
	}{
		{"coldstart", coldStart},
		{"onboarding", onboarding},
		{"renewal", renewal},
		{"tracker", benchTracker},
		{"sweeper", benchSweeper},
	}
	for _, s := range sections {
		if only != "" && only != s.name {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", s.name)
		start := time.Now()
		if err := s.fn(ctx, moto, cfg, rep); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(os.Stderr, "   %s done in %s\n", s.name, time.Since(start).Round(time.Second))
	}
	print(rep)
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(outPath, append(b, '\n'), 0o644)
}

func (r *Report) add(section, name string, value float64, unit, note string) {
	r.Results = append(r.Results, Result{Section: section, Name: name, Value: value, Unit: unit, Note: note})
}

func print(r *Report) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "certferry-bench %s (%s)\n\n", r.Date, r.Machine)
	fmt.Fprintln(tw, "SECTION\tMEASURE\tVALUE\tUNIT\tNOTE")
	for _, x := range r.Results {
		v := fmt.Sprintf("%.1f", x.Value)
		if x.Value == float64(int64(x.Value)) {
			v = fmt.Sprintf("%d", int64(x.Value))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.Section, x.Name, v, x.Unit, x.Note)
	}
	tw.Flush()
}
