package api

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/spec"
)

// TestNodeViewsJSON pins the bytes of the node answers of GET
// /certificates/{name} ("nodes") and GET /nodes/{instanceId}
// ("certificates"): field names, order, omitempty and zero values. The
// golden file was written from the answers before NodeView and
// NodeCertView shared their node fields, so the refactor is proven to
// change no byte. CERTFERRY_UPDATE_GOLDEN=1 rewrites it (only for a
// deliberate change of the API's answer).
func TestNodeViewsJSON(t *testing.T) {
	at := time.Date(2026, 11, 29, 8, 30, 15, 123456789, time.UTC)
	full := inventory.Node{
		InstanceID: nodeA, Serial: "0a1b", Fingerprint: "AB:CD", LastCommandID: "c-1", DeploymentID: "2026-11-29T08:30:00Z#c-1",
		State: inventory.NodeFailed, Error: "reload failed: nginx -t", Unverified: true, Failures: 2, UpdatedAt: at,
	}
	bare := inventory.Node{InstanceID: nodeB, State: inventory.NodePending} // every omitempty field empty, zero time
	cat := &fakeCatalog{
		detail: map[string]*inventory.Detail{"shop-web": {
			Cert: &inventory.Cert{Spec: spec.Spec{Name: "shop-web", CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/x",
				Targets: []spec.Target{{Key: "tag:env", Values: []string{"prod"}}}}},
			Nodes: []inventory.Node{full, bare},
		}},
		byNode: map[string][]inventory.NodeEntry{nodeA: {{Name: "shop-web", Node: full}, {Name: "api", Node: bare}}},
	}
	h := NewHandler(&fakeDeployer{}, cat)
	cases := []struct {
		name, golden, key string
		req               events.APIGatewayProxyRequest
	}{
		{"GET certificate nodes", "nodeview.golden.json", "nodes", events.APIGatewayProxyRequest{HTTPMethod: "GET", Resource: "/certificates/{name}",
			Path: "/certificates/shop-web", PathParameters: map[string]string{"name": "shop-web"}}},
		{"GET node certificates", "nodecertview.golden.json", "certificates", events.APIGatewayProxyRequest{HTTPMethod: "GET", Resource: "/nodes/{instanceId}",
			Path: "/nodes/" + nodeA, PathParameters: map[string]string{"instanceId": nodeA}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := h.Handle(context.Background(), tc.req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%d %v %s", resp.StatusCode, err, resp.Body)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
				t.Fatal(err)
			}
			got := append(bytes.Clone(m[tc.key]), '\n')
			path := filepath.Join("testdata", tc.golden)
			if os.Getenv("CERTFERRY_UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s changed:\n got %s\nwant %s", tc.key, got, want)
			}
		})
	}
}
