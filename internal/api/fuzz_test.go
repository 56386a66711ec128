package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/agentrun"
	"github.com/certferry/certferry/internal/fleet"
)

// Whatever the body, a request the API accepts yields document parameters
// the SSM document's allowedPatterns accept: nothing a node would run with
// can slip past validation, and validation never panics.
func FuzzParseOnboard(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "events", "onboard-post*.json"))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var req events.APIGatewayProxyRequest
		if err := json.Unmarshal(raw, &req); err == nil {
			f.Add(req.Body)
		}
	}
	doc, err := agentrun.Load(filepath.Join("..", "..", "ssm-documents", "certferry-install.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		sp, err := ParseOnboard(body, false)
		if err != nil {
			return
		}
		sp.ApplyDefaults()
		if err := sp.Validate(func(string) error { return nil }); err != nil {
			return
		}
		params := fleet.Parameters(fleet.Install{Spec: sp, SecretID: "certferry/" + sp.Name, Region: "us-east-1",
			ServerName: sp.Linux.ServerName, ExpectedFingerprint: strings.Repeat("AB:", 31) + "CD", Serial: "0c"})
		for name, vals := range params {
			re, err := doc.Pattern(name)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if !re.MatchString(v) {
					t.Fatalf("API accepted %s=%q, which the document refuses (body %q)", name, v, body)
				}
			}
		}
	})
}
