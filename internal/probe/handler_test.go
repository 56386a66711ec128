package probe

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// The sam local invoke / certferry invoke fixture is a valid request.
func TestRequestFixture(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "probe-request.json"))
	if err != nil {
		t.Fatal(err)
	}
	var req Request
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	ts, err := req.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[1].Host != "::1" || ts[1].SNI != "shop.example.com" {
		t.Fatalf("targets %+v", ts)
	}
}

// The handler probes over the wire types: a Go TLS server serving the
// expected leaf matches, another port refuses.
func TestHandlerProbes(t *testing.T) {
	ca := newCA(t)
	shop := ca.issue(t, 5, "shop.example.com")
	a := tlsServer(t, "tcp4", map[string]testCert{"shop.example.com": shop})
	h := NewHandler(New(Config{}))
	req := Request{Targets: []string{target("127.0.0.1", a, "shop.example.com").String(), "127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/sni=shop.example.com"},
		ExpectedFingerprint: shop.fingerprint(), BudgetMillis: 60_000}
	resp, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 2 || resp.Results[0].Status != StatusMatch || resp.Results[1].ErrorKind != ErrRefused {
		t.Fatalf("results %+v", resp.Results)
	}
	// What the function answers is what the invoker decodes.
	raw, _ := json.Marshal(resp)
	if !strings.Contains(string(raw), `"status":"match"`) || !strings.Contains(string(raw), `"fingerprintSha256":"`+shop.fingerprint()+`"`) {
		t.Errorf("answer %s", raw)
	}
}

type fakeLambda struct {
	in  *lambda.InvokeInput
	out *lambda.InvokeOutput
}

func (f *fakeLambda) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.in = in
	return f.out, nil
}

// The invoker calls the function synchronously with the caller's
// remaining time as budget, and reports function errors as errors.
func TestInvoker(t *testing.T) {
	ok, _ := json.Marshal(Response{Results: []Result{{Target: "a.example.com:443", Status: StatusMatch}}})
	tests := []struct {
		name    string
		out     *lambda.InvokeOutput
		wantErr string
	}{
		{name: "answer", out: &lambda.InvokeOutput{StatusCode: 200, Payload: ok}},
		{name: "function error", out: &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"),
			Payload: []byte(`{"errorMessage":"bad probe request: no targets","errorType":"wrapError"}`)}, wantErr: "probe function certferry-probe failed (Unhandled): wrapError bad probe request: no targets"},
		{name: "a result short", out: &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"results":[]}`)}, wantErr: "answered 0 results for 1 targets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeLambda{out: tc.out}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			resp, err := NewInvoker(api, "certferry-probe").Probe(ctx, Request{Targets: []string{"a.example.com:443"}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(resp.Results) != 1 {
				t.Fatalf("%+v %v", resp, err)
			}
			if api.in.InvocationType != lambdatypes.InvocationTypeRequestResponse || aws.ToString(api.in.FunctionName) != "certferry-probe" {
				t.Errorf("invoked %+v", api.in)
			}
			var sent Request
			_ = json.Unmarshal(api.in.Payload, &sent)
			if sent.BudgetMillis <= 0 || sent.BudgetMillis > (time.Minute-invokeMargin).Milliseconds() {
				t.Errorf("budget %d ms, want the caller's remaining time less the margin", sent.BudgetMillis)
			}
		})
	}
	// No time left: no call.
	api := &fakeLambda{}
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := NewInvoker(api, "f").Probe(ctx, Request{Targets: []string{"a.example.com:443"}}); err == nil || api.in != nil {
		t.Fatalf("err %v, invoked %v", err, api.in != nil)
	}
}
