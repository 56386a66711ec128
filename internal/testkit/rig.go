package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/certferry/certferry/internal/motoserver"
	"github.com/certferry/certferry/internal/testkit/awsmodel"
)

// Rig is moto_server behind a FaultProxy whose first layer checks every
// request against AWS's published API model of its service
// (internal/testkit/awsmodel). Tests use Moto (its URL is the proxy's) as
// their endpoint, never the emulator's own address.
type Rig struct {
	URL   string             // the checked endpoint
	Moto  *motoserver.Server // moto with URL = the checked endpoint (Reset goes through it)
	Proxy *FaultProxy
	// Conflicts answers overlapping DynamoDB writes as DynamoDB does.
	Conflicts *DDBConflicts

	emulator *motoserver.Server
	mu       sync.Mutex
	seen     []awsmodel.Violation
	checked  map[string]int // requests checked per service.Operation
	ssmDocs  ssmDocuments
	ddb      ddbLimits
}

// StartRig starts moto_server (env as for motoserver.Start) behind a fault
// proxy that checks every request against the AWS API models. The models
// come from the installed botocore: without it StartRig fails.
func StartRig(ctx context.Context, env ...string) (*Rig, error) {
	if _, err := awsmodel.Dir(); err != nil {
		return nil, err
	}
	emu, err := motoserver.Start(ctx, env...)
	if err != nil {
		return nil, err
	}
	proxy, err := NewFaultProxy(emu.URL)
	if err != nil {
		emu.Stop()
		return nil, err
	}
	r := &Rig{URL: proxy.URL, Proxy: proxy, emulator: emu, checked: map[string]int{}}
	checked := *emu
	checked.URL = proxy.URL
	r.Moto = &checked
	proxy.Guard(r.ModelCheck)
	// DynamoDB's transaction conflicts, which the serialised emulator never
	// shows (ddbconflict.go).
	r.Conflicts = NewDDBConflicts(DDBConflictOptions{Window: RigConflictWindow, Endpoint: emu.URL})
	proxy.Use(r.Conflicts.Layer)
	ridsMu.Lock()
	rigs[r.URL] = r
	ridsMu.Unlock()
	return r, nil
}

// rigs are the running rigs by checked URL: a FaultProxy a test puts in
// front of one (for its own faults or stand-in answers) checks requests
// with the same model check, so nothing it answers escapes the check.
var (
	ridsMu sync.Mutex
	rigs   = map[string]*Rig{}
)

func rigAt(target string) *Rig {
	ridsMu.Lock()
	defer ridsMu.Unlock()
	return rigs[strings.TrimSuffix(target, "/")]
}

// ModelCheck is the proxy layer that validates each request against its
// operation's input shape. A violation is answered as AWS answers it
// (HTTP 400, ValidationException for JSON services, an XML error for
// query and REST services) and recorded, so the suite fails even when the
// code under test swallowed the 400. moto's own control API (/moto-api/)
// passes unchecked.
func (r *Rig) ModelCheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/moto-api/") {
			next.ServeHTTP(w, req)
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		parsed, vs := awsmodel.Check(req, body)
		if len(vs) == 0 {
			vs = append(r.ssmDocs.observe(parsed), r.ddb.observe(parsed)...)
		}
		r.mu.Lock()
		r.checked[parsed.Op()]++
		r.mu.Unlock()
		if len(vs) == 0 {
			next.ServeHTTP(w, req)
			return
		}
		r.mu.Lock()
		r.seen = append(r.seen, vs...)
		r.mu.Unlock()
		answerViolation(w, parsed, vs)
	})
}

// answerViolation writes AWS's answer to an invalid request: "N
// validation error(s) detected: …" with each member and constraint.
func answerViolation(w http.ResponseWriter, req awsmodel.Request, vs []awsmodel.Violation) {
	msgs := make([]string, len(vs))
	for i, v := range vs {
		msgs[i] = v.Message
	}
	noun := "errors"
	if len(vs) == 1 {
		noun = "error"
	}
	msg := fmt.Sprintf("%d validation %s detected: %s", len(vs), noun, strings.Join(msgs, "; "))
	esc := func(s string) string {
		var b bytes.Buffer
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	switch req.Protocol() {
	case "query":
		// SNS names its model's InvalidParameterException "InvalidParameter";
		// other query services answer ValidationError.
		code := "ValidationError"
		if req.Service == "sns" {
			code = "InvalidParameter"
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>certferry-model-check</RequestId></ErrorResponse>`, code, esc(msg))
	case "ec2":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<Response><Errors><Error><Code>InvalidParameterValue</Code><Message>%s</Message></Error></Errors><RequestID>certferry-model-check</RequestID></Response>`, esc(msg))
	case "rest-xml":
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `<Error><Code>InvalidArgument</Code><Message>%s</Message><RequestId>certferry-model-check</RequestId></Error>`, esc(msg))
	default:
		code := "ValidationException"
		if vs[0].Code != "" {
			code = vs[0].Code
		}
		w.Header().Set("X-Amzn-ErrorType", code)
		body, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
		writeJSON(w, http.StatusBadRequest, body)
	}
}

// Violations returns every violation seen so far.
func (r *Rig) Violations() []awsmodel.Violation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]awsmodel.Violation(nil), r.seen...)
}

// Checked returns how many requests were checked, per "service.Operation".
func (r *Rig) Checked() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.checked))
	for k, v := range r.checked {
		out[k] = v
	}
	return out
}

// TakeViolations returns the violations seen so far and forgets them: only
// for a test that plants violations on purpose and asserts them.
func (r *Rig) TakeViolations() []awsmodel.Violation {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.seen
	r.seen = nil
	return v
}

// Stop stops the proxy and moto.
func (r *Rig) Stop() {
	ridsMu.Lock()
	delete(rigs, r.URL)
	ridsMu.Unlock()
	r.Proxy.Close()
	r.emulator.Stop()
}

// Finish is the end of a TestMain: it stops the rig and turns the exit
// code m.Run returned into 1 (listing them) when any request of the run
// broke the AWS API model, whatever the tests said.
func (r *Rig) Finish(code int) int {
	r.Stop()
	vs := r.Violations()
	total, ops := 0, Ops(r.Checked())
	for _, n := range r.Checked() {
		total += n
	}
	fmt.Fprintf(os.Stderr, "AWS model check: %d requests of %d operations checked (%s), %d violations\n", total, len(ops), strings.Join(ops, " "), len(vs))
	if len(vs) == 0 {
		return code
	}
	fmt.Fprintf(os.Stderr, "AWS model check: %d request(s) AWS would refuse (see internal/testkit/awsmodel):\n", len(vs))
	for _, v := range vs {
		fmt.Fprintln(os.Stderr, "  -", v.String())
	}
	return 1
}

// TB is the part of testing.TB the rig needs.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Cleanup(func())
}

// StartRigT starts a rig for one test: it is stopped when the test ends,
// and the test fails if any request broke the model.
func StartRigT(t interface {
	TB
	Fatal(args ...any)
}, env ...string) *Rig {
	t.Helper()
	r, err := StartRig(context.Background(), env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		for _, v := range r.Violations() {
			t.Errorf("AWS model check: %s", v)
		}
	})
	return r
}

// NewFaultProxy starts another fault proxy in front of this rig's
// emulator, guarded by the same model check (its violations are this
// rig's): for a caller that needs its own faults or stand-in answers and
// must not let them skip the check.
func (r *Rig) NewFaultProxy() (*FaultProxy, error) {
	p, err := NewFaultProxy(r.emulator.URL)
	if err != nil {
		return nil, err
	}
	p.Guard(r.ModelCheck)
	return p, nil
}
