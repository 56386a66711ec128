package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certferry/certferry/internal/config"
	"github.com/certferry/certferry/internal/motoserver"
)

// functions and the event each answers on its first invocation.
var functions = []struct{ name, event string }{
	{"onboard", "events/onboard-get-list.json"},
	{"renewal", "events/renewal-available-renewal.json"},
	{"tracker", "events/tracker-invocation-success.json"},
	{"sweeper", "events/sweeper-schedule.json"},
}

// runtimeAPI is a local Lambda Runtime API: it hands one event to the
// process and notes when the answer comes back.
type runtimeAPI struct {
	mu     sync.Mutex
	event  []byte
	served bool
	done   chan string // "" on a response, the error body otherwise
}

func (a *runtimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/2018-06-01/runtime/invocation/next":
		a.mu.Lock()
		first := !a.served
		a.served = true
		a.mu.Unlock()
		if !first { // the process waits for its next event: hold it until killed
			<-r.Context().Done()
			return
		}
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", "bench-request-1")
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(60*time.Second).UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:certferry-bench")
		w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
		_, _ = w.Write(a.event)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/response"):
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		a.done <- ""
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/error"):
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusAccepted)
		a.done <- "error: " + string(b)
	default:
		http.NotFound(w, r)
	}
}

// coldStart builds every function as deployed (linux/arm64, for its size)
// and for this machine (to run it), then times process start → first
// answer through a local Runtime API, against moto.
func coldStart(ctx context.Context, moto *motoserver.Server, cfg settings, rep *Report) error {
	r, err := newRig(ctx, moto)
	if err != nil {
		return err
	}
	defer r.close()
	dir, err := os.MkdirTemp("", "certferry-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, fn := range functions {
		arm := filepath.Join(dir, "arm64", fn.name, "bootstrap")
		if err := build(arm, "arm64", fn.name); err != nil {
			return err
		}
		st, err := os.Stat(arm)
		if err != nil {
			return err
		}
		rep.add("size", fn.name+" bootstrap (linux/arm64)", float64(st.Size())/1e6, "MB", "")
		host := filepath.Join(dir, "host", fn.name, "bootstrap")
		if err := build(host, runtime.GOARCH, fn.name); err != nil {
			return err
		}
		event, err := os.ReadFile(fn.event)
		if err != nil {
			return err
		}
		var lat []time.Duration
		for range cfg.starts {
			d, err := startOnce(ctx, host, event, moto.URL, r.cfg)
			if err != nil {
				return fmt.Errorf("%s: %w", fn.name, err)
			}
			lat = append(lat, d)
		}
		note := fmt.Sprintf("linux/%s process, %d starts, first event %s", runtime.GOARCH, cfg.starts, filepath.Base(fn.event))
		rep.add("cold start", fn.name+" p50", percentile(lat, 0.5), "ms", note)
		rep.add("cold start", fn.name+" max", percentile(lat, 1), "ms", "")
	}
	return nil
}

// build builds fn's bootstrap for arch with the Makefile's own Lambda
// build (bootstrap-%), so the sizes are those of what is deployed.
func build(out, arch, fn string) error {
	cmd := exec.Command("make", "-s", "bootstrap-"+fn, "OUT="+out, "LAMBDA_ARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s for %s: %v: %s", fn, arch, err, b)
	}
	return nil
}

func startOnce(ctx context.Context, bin string, event []byte, endpoint string, c config.Config) (time.Duration, error) {
	api := &runtimeAPI{event: event, done: make(chan string, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: api}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "AWS_LAMBDA_RUNTIME_API=" + ln.Addr().String(),
		"AWS_ENDPOINT_URL=" + endpoint, "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench",
		"AWS_LAMBDA_FUNCTION_NAME=certferry-bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_LOG_FORMAT=JSON", "_HANDLER=bootstrap",
		config.EnvTable + "=" + c.Table, config.EnvDocument + "=" + c.Document, config.EnvTopicARN + "=" + c.TopicARN,
		config.EnvKMSKeyID + "=" + c.KMSKeyID,
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	select {
	case res := <-api.done:
		d := time.Since(start)
		if res != "" {
			return 0, fmt.Errorf("first invocation failed: %s", res)
		}
		return d, nil
	case <-time.After(60 * time.Second):
		return 0, fmt.Errorf("no answer within 60s")
	}
}
