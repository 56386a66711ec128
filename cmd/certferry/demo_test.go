package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

func TestPrettyJSON(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"key order kept, short lists inline", `{"name":"a","targets":[{"key":"tag:env","values":["prod"]}]}`,
			"{\n  \"name\": \"a\",\n  \"targets\": [{\"key\": \"tag:env\", \"values\": [\"prod\"]}]\n}"},
		{"lists of objects: the first and a count", `{"nodes":[{"instanceId":"i-1","state":"installed","serial":"0123456789abcdef0123456789"},{"instanceId":"i-2"},{"instanceId":"i-3"}]}`,
			"{\n  \"nodes\": [\n    {\n      \"instanceId\": \"i-1\",\n      \"state\": \"installed\",\n      \"serial\": \"0123456789abcdef0123456789\"\n    },\n    \"… 2 more\"\n  ]\n}"},
		{"long lists of values cut", `["a","b","c","d","e"]`, `["a", "b", "… 3 more"]`},
		{"numbers as they came", `{"verifyPort":443,"ratio":0.25}`, "{\n  \"verifyPort\": 443,\n  \"ratio\": 0.25\n}"},
		{"not JSON", `nope`, `nope`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := prettyJSON([]byte(tc.in)); got != tc.want {
				t.Errorf("prettyJSON(%s) =\n%s\nwant\n%s", tc.in, got, tc.want)
			}
		})
	}
	long := strings.Repeat("x", 300)
	if got := prettyJSON([]byte(`"` + long + `"`)); len(got) > maxStrLen+10 || !strings.Contains(got, "…") {
		t.Errorf("a 300-character string printed as %d characters", len(got))
	}
}

func TestActionableError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name     string
		err      error
		endpoint string
		want     string // "" : unchanged
	}{
		{"missing table", fmt.Errorf("get item: %w", &ddbtypes.ResourceNotFoundException{Message: smithyString("Requested resource not found")}), "http://127.0.0.1:5000", "run `certferry local up`"},
		{"connection refused", fmt.Errorf("send: %w", refused), "http://127.0.0.1:5123", "start moto_server there (MOTO_ACM_VALIDATION_WAIT=0 moto_server -p 5123) or run `make demo`"},
		{"connection refused, real AWS", fmt.Errorf("send: %w", refused), "", ""},
		{"anything else", &smithy.GenericAPIError{Code: "AccessDenied"}, "http://127.0.0.1:5000", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ActionableError(tc.err, tc.endpoint)
			if !errors.Is(got, tc.err) {
				t.Errorf("the original error is not wrapped: %v", got)
			}
			if tc.want == "" && got != tc.err {
				t.Errorf("changed: %v", got)
			}
			if tc.want != "" && !strings.Contains(got.Error(), tc.want) {
				t.Errorf("got %q, want it to say %q", got, tc.want)
			}
		})
	}
	if ActionableError(nil, "x") != nil {
		t.Error("nil became an error")
	}
}

func smithyString(s string) *string { return &s }

func TestCheckLocalEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := CheckLocalEndpoint(context.Background(), "http://"+addr); err != nil {
		t.Errorf("listening endpoint: %v", err)
	}
	l.Close()
	err = CheckLocalEndpoint(context.Background(), "http://"+addr)
	if err == nil || !strings.Contains(err.Error(), "start moto_server there") {
		t.Errorf("closed endpoint: %v, want the advice to start moto_server", err)
	}
}

func TestLocalRefusesWithoutEndpoint(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "")
	var out bytes.Buffer
	err := local(context.Background(), []string{"up"}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--real") || out.Len() != 0 {
		t.Fatalf("local up without AWS_ENDPOINT_URL: %v (printed %q), want a refusal naming --real", err, out.String())
	}
	err = local(context.Background(), []string{"up", "--real", "--seed"}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "only against an emulator") {
		t.Fatalf("local up --real --seed: %v, want a refusal", err)
	}
}

func TestFlagsHelpAndMistakes(t *testing.T) {
	var errOut bytes.Buffer
	if _, _, err := demoFlags([]string{"--help"}, &errOut); !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "usage: certferry demo") {
		t.Errorf("demo --help: %v, printed %q", err, errOut.String())
	}
	if err := demo(context.Background(), []string{"-h"}, io.Discard, io.Discard); err != nil {
		t.Errorf("demo -h must print usage and run nothing: %v", err)
	}
	if v, k, err := demoFlags([]string{"-v", "--keep"}, io.Discard); err != nil || !v || !k {
		t.Errorf("demo -v --keep: %v %v %v", v, k, err)
	}
	if _, _, err := demoFlags([]string{"now"}, io.Discard); err == nil {
		t.Error("demo now: accepted")
	}
	if err := local(context.Background(), []string{"up", "--help"}, io.Discard, io.Discard); err != nil {
		t.Errorf("local up --help: %v", err)
	}
	for _, args := range [][]string{{}, {"down"}, {"up", "extra"}, {"up", "--sed"}} {
		if _, _, err := localFlags(args, io.Discard); err == nil {
			t.Errorf("local %v: accepted", args)
		}
	}
}
