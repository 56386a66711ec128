package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func fakeAPI(routes map[string]string) caller {
	return func(_ context.Context, method, path string) (int, []byte, error) {
		body, ok := routes[method+" "+path]
		if !ok {
			return 404, []byte(`{"error":{"code":"NotFound"}}`), nil
		}
		if method == "POST" {
			return 202, []byte(body), nil
		}
		return 200, []byte(body), nil
	}
}

const shopWeb = `{"name":"shop-web","serial":"0c","notAfter":"2026-12-23T00:00:00Z",
 "nodes":[{"instanceId":"i-1","state":"installed","serial":"0c"},{"instanceId":"i-2","state":"installed","serial":"0b"},
          {"instanceId":"i-3","state":"pending"},{"instanceId":"i-4","state":"rolled_back","error":"handshake mismatch"},
          {"instanceId":"i-5","state":"installed","serial":"0c","unverified":true}],
 "deployments":[{"deploymentId":"d1","createdAt":"2026-11-01T00:00:00Z","outcome":"succeeded","trigger":"api"},
                {"deploymentId":"d2","createdAt":"2026-11-20T00:00:00Z","outcome":"partial","trigger":"acm-event"}]}`

func TestStatusTable(t *testing.T) {
	call := fakeAPI(map[string]string{
		"GET /certificates":          `{"certificates":[{"name":"shop-web"},{"name":"empty"}]}`,
		"GET /certificates/shop-web": shopWeb,
		"GET /certificates/empty":    `{"name":"empty","nodes":[],"deployments":[]}`,
	})
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	if err := status(context.Background(), call, "", &b, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s", b.String())
	}
	if f := strings.Fields(lines[1]); strings.Join(f[:7], " ") != "shop-web 0c 2026-12-23 (30d) 2 2 1" || !strings.Contains(lines[1], "partial (acm-event)") {
		t.Fatalf("row %q", lines[1])
	}
	if f := strings.Fields(lines[2]); strings.Join(f, " ") != "empty - - 0 0 0 -" {
		t.Fatalf("row %q", lines[2])
	}
	b.Reset()
	if err := status(context.Background(), call, "shop-web", &b, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"i-4   rolled_back", "handshake mismatch", "installed (unverified)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("node table lacks %q:\n%s", want, b.String())
		}
	}
	if err := status(context.Background(), call, "nope", &b, now); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown name: %v", err)
	}
}

func TestRedeploy(t *testing.T) {
	call := fakeAPI(map[string]string{"POST /certificates/shop-web/deployments": `{"name":"shop-web","commandId":"c-1"}`})
	var b strings.Builder
	if err := redeploy(context.Background(), call, "shop-web", &b); err != nil || !strings.Contains(b.String(), "c-1") {
		t.Fatalf("%v %q", err, b.String())
	}
	if err := redeploy(context.Background(), call, "other", &b); err == nil {
		t.Fatal("redeploy of an unknown name succeeded")
	}
}

// Against the deployed API, requests are SigV4-signed for execute-api.
func TestAPICallerSigns(t *testing.T) {
	var auth, path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth, path = r.Header.Get("Authorization"), r.URL.Path
		_, _ = w.Write([]byte(`{"certificates":[]}`))
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "eu-west-1")
	call, err := newCaller(context.Background(), srv.URL+"/v1/")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := status(context.Background(), call, "", &b, time.Now()); err != nil {
		t.Fatal(err)
	}
	if path != "/v1/certificates" || !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(auth, "/eu-west-1/execute-api/aws4_request") {
		t.Fatalf("path %q auth %q", path, auth)
	}
}

// `certferry status NAME` follows the pages of GET /certificates/{name}
// (?next=) and counts every node of every page.
func TestStatusFollowsPages(t *testing.T) {
	call := fakeAPI(map[string]string{
		"GET /certificates/big": `{"name":"big","serial":"0c","nodes":[{"instanceId":"i-1","state":"installed","serial":"0c"}],
			"deployments":[{"deploymentId":"d1","createdAt":"2026-11-01T00:00:00Z","outcome":"succeeded","trigger":"api"}],"next":"p2"}`,
		"GET /certificates/big?next=p2":          `{"name":"big","serial":"0c","nodes":[{"instanceId":"i-2","state":"pending"}],"deployments":[],"next":"p+3/="}`,
		"GET /certificates/big?next=p%2B3%2F%3D": `{"name":"big","serial":"0c","nodes":[{"instanceId":"i-3","state":"failed","error":"boom"}],"deployments":[]}`,
	})
	var b strings.Builder
	if err := status(context.Background(), call, "big", &b, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if f := strings.Fields(lines[1]); strings.Join(f[:6], " ") != "big 0c - 1 1 1" || !strings.Contains(lines[1], "succeeded (api)") {
		t.Fatalf("row %q:\n%s", lines[1], b.String())
	}
	for _, id := range []string{"i-1", "i-2", "i-3"} {
		if !strings.Contains(b.String(), id) {
			t.Errorf("node table lacks %s:\n%s", id, b.String())
		}
	}
}

// The in-process caller passes the query string as API Gateway does.
func TestHandlerCallerQuery(t *testing.T) {
	req := apiRequest("GET", "/certificates/big?next=p%2B3&limit=5")
	if req.Path != "/certificates/big" || req.Resource != "/certificates/{name}" || req.PathParameters["name"] != "big" ||
		req.QueryStringParameters["next"] != "p+3" || req.QueryStringParameters["limit"] != "5" {
		t.Fatalf("request %+v", req)
	}
}
