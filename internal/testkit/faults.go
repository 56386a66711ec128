package testkit

import (
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"sync"
)

// FaultProxy is an HTTP proxy in front of the AWS emulator that answers
// chosen operations with throttling or server errors. Operations are named
// by their X-Amz-Target header ("CertificateManager.ExportCertificate",
// "DynamoDB_20120810.TransactWriteItems", …), which every JSON-protocol
// service certferry's pipeline calls sends.
type FaultProxy struct {
	URL string

	srv     *httptest.Server
	mu      sync.Mutex
	rules   map[string]*Fault
	answers map[string]Answer
	calls   map[string]int
	layers  []func(http.Handler) http.Handler
	guard   func(http.Handler) http.Handler // outermost, whatever Use adds later
	chain   http.Handler                    // layers around core, rebuilt by Use
	core    http.Handler
}

// Answer answers an operation in place of the emulator: it gets the request
// body and returns the status and JSON body to send.
type Answer func(body []byte) (int, []byte)

// Fault is what an operation answers instead of the emulator, Times times
// (negative: always).
type Fault struct {
	Status int    // 429, 500, 503…
	Code   string // ThrottlingException, InternalFailure, ServiceUnavailable…
	Times  int
}

// Throttle and Unavailable are the two faults the suite injects.
var (
	Throttle    = Fault{Status: http.StatusTooManyRequests, Code: "ThrottlingException"}
	Unavailable = Fault{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable"}
)

// NewFaultProxy starts a proxy to target (the emulator's URL). In front of
// a rig (target is a Rig's URL) it checks every request with the rig's AWS
// model check, whatever layers and answers it is given.
func NewFaultProxy(target string) (*FaultProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &FaultProxy{rules: map[string]*Fault{}, answers: map[string]Answer{}, calls: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.core = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		p.mu.Lock()
		p.calls[op]++
		f := p.rules[op]
		inject := f != nil && f.Times != 0
		if inject && f.Times > 0 {
			f.Times--
		}
		var fault Fault
		if inject {
			fault = *f
		}
		answer := p.answers[op]
		p.mu.Unlock()
		switch {
		case inject:
			w.Header().Set("X-Amzn-ErrorType", fault.Code)
			writeJSON(w, fault.Status, []byte(fmt.Sprintf(`{"__type":%q,"message":"injected by the fault proxy"}`, fault.Code)))
		case answer != nil:
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			status, resp := answer(body)
			writeJSON(w, status, resp)
		default:
			rp.ServeHTTP(w, r)
		}
	})
	p.chain = p.core
	if r := rigAt(target); r != nil {
		// In front of a checked rig: check here too, or answers and
		// stand-ins of this proxy would skip the AWS model check.
		p.guard = r.ModelCheck
		p.rebuild()
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		h := p.chain
		p.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	p.URL = p.srv.URL
	return p, nil
}

// Use wraps every request in layer, outside the faults, answers and the
// emulator (a request checker, a stand-in that needs the request before the
// emulator sees it). Layers added later run first.
func (p *FaultProxy) Use(layer func(http.Handler) http.Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.layers = append(p.layers, layer)
	p.rebuild()
}

// Guard makes layer the outermost one, run before every layer Use adds,
// before or after: the rig's AWS model check sees every request, including
// those a stand-in answers.
func (p *FaultProxy) Guard(layer func(http.Handler) http.Handler) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.guard = layer
	p.rebuild()
}

func (p *FaultProxy) rebuild() {
	h := p.core
	for _, l := range p.layers {
		h = l(h)
	}
	if p.guard != nil {
		h = p.guard(h)
	}
	p.chain = h
}

// writeJSON answers as the JSON-protocol services do, with the body's CRC32
// (DynamoDB's client checks it).
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Inject makes op answer f (f.Times times; negative: until Clear).
func (p *FaultProxy) Inject(op string, f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules[op] = &f
}

// Answer makes op answered by fn instead of the emulator (nil: the
// emulator again).
func (p *FaultProxy) Answer(op string, fn Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fn == nil {
		delete(p.answers, op)
		return
	}
	p.answers[op] = fn
}

// Clear removes every fault.
func (p *FaultProxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = map[string]*Fault{}
}

// Calls returns the calls per operation seen so far and resets the count.
func (p *FaultProxy) Calls() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.calls
	p.calls = map[string]int{}
	return c
}

// Ops returns the operation names of calls, sorted.
func Ops(calls map[string]int) []string {
	var ops []string
	for op := range calls {
		if op != "" {
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	return ops
}

// Close stops the proxy.
func (p *FaultProxy) Close() { p.srv.Close() }
