package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/api"
	"github.com/certferry/certferry/internal/inventory"
)

func lifeEnv(routes map[string]string, seen *[]request, stdin string, terminal bool) (Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return Env{
		Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(stdin), Interactive: func() bool { return terminal },
		Now:     func() time.Time { return time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC) },
		Connect: func(context.Context, string) (Caller, error) { return fakeAPI(routes, seen), nil },
	}, &out, &errOut
}

const shopGet = `{"name":"shop-web","certificateArn":"arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555","domainName":"shop.example.com","serial":"0a","status":"active","targets":[],"linux":{},"windows":{},"nodes":[],"deployments":[]}`

// Each verb sends its one request; revoke sends nothing until confirmed:
// on a terminal by typing the name back, in a script with --yes, and
// never without either (exit 2).
func TestLifecycleVerbs(t *testing.T) {
	routes := map[string]string{
		"GET /certificates/shop-web":               shopGet,
		"POST /certificates/shop-web/renewals":     `{"name":"shop-web","charged":true}`,
		"POST /certificates/shop-web/approvals":    `{"name":"shop-web"}`,
		"POST /certificates/shop-web/rebind":       `{"name":"shop-web"}`,
		"POST /certificates/shop-web/revocations":  `200|{"name":"shop-web","atRisk":["shop-web"]}`,
		"GET /certificates/shop-web/audit?limit=5": `{"name":"shop-web","entries":[{"action":"revoke","by":"arn:aws:iam::123456789012:user/alice","at":"2026-11-30T01:00:00Z","detail":"RevokeCertificate SUPERSEDED"}]}`,
	}
	for _, tc := range []struct {
		name     string
		run      func(context.Context, Env, []string) error
		args     []string
		stdin    string
		terminal bool
		sent     []string // "METHOD path body"
		exit     int
		out      string
	}{
		{name: "rotate", run: RunRotate, args: []string{"shop-web"}, sent: []string{"POST /certificates/shop-web/renewals "}, out: `"charged": true`},
		{name: "approve", run: RunApprove, args: []string{"shop-web"}, sent: []string{"POST /certificates/shop-web/approvals "}},
		{name: "rebind", run: RunRebind, args: []string{"shop-web", "--arn", "arn:aws:acm:us-east-1:123456789012:certificate/22222222-2222-3333-4444-555555555555"},
			sent: []string{`POST /certificates/shop-web/rebind {"certificateArn":"arn:aws:acm:us-east-1:123456789012:certificate/22222222-2222-3333-4444-555555555555"}`}},
		{name: "rebind without arn", run: RunRebind, args: []string{"shop-web"}, exit: ExitUsage},
		{name: "rotate two names", run: RunRotate, args: []string{"a", "b"}, exit: ExitUsage},
		{name: "revoke with --yes", run: RunRevoke, args: []string{"shop-web", "--reason", "SUPERSEDED", "--yes"},
			sent: []string{`POST /certificates/shop-web/revocations {"reason":"SUPERSEDED"}`}, out: `"atRisk"`},
		{name: "revoke without a terminal", run: RunRevoke, args: []string{"shop-web", "--reason", "SUPERSEDED"}, exit: ExitUsage},
		{name: "revoke without a reason", run: RunRevoke, args: []string{"shop-web", "--yes"}, exit: ExitUsage},
		{name: "revoke confirmed", run: RunRevoke, args: []string{"shop-web", "--reason", "superseded"}, terminal: true, stdin: "shop-web\n",
			sent: []string{"GET /certificates/shop-web ", `POST /certificates/shop-web/revocations {"reason":"superseded"}`}},
		{name: "revoke mistyped", run: RunRevoke, args: []string{"shop-web", "--reason", "SUPERSEDED"}, terminal: true, stdin: "shop-wbe\n",
			sent: []string{"GET /certificates/shop-web "}, exit: ExitFailed},
		{name: "revoke answered nothing", run: RunRevoke, args: []string{"shop-web", "--reason", "SUPERSEDED"}, terminal: true, stdin: "",
			sent: []string{"GET /certificates/shop-web "}, exit: ExitFailed},
		{name: "audit", run: RunAudit, args: []string{"shop-web", "--limit", "5"}, sent: []string{"GET /certificates/shop-web/audit?limit=5 "},
			out: "arn:aws:iam::123456789012:user/alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen []request
			env, out, errOut := lifeEnv(routes, &seen, tc.stdin, tc.terminal)
			err := tc.run(context.Background(), env, tc.args)
			if ExitCode(err) != tc.exit {
				t.Fatalf("exit %d (%v), want %d", ExitCode(err), err, tc.exit)
			}
			var got []string
			for _, r := range seen {
				got = append(got, r.method+" "+r.path+" "+r.body)
			}
			if strings.Join(got, "\n") != strings.Join(tc.sent, "\n") {
				t.Fatalf("sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.sent, "\n"))
			}
			if !strings.Contains(out.String(), tc.out) {
				t.Fatalf("printed %q, want %q", out.String(), tc.out)
			}
			if tc.terminal && !strings.Contains(errOut.String(), "Type the name (shop-web)") {
				t.Fatalf("prompt %q", errOut.String())
			}
			var nc *ErrNotConfirmed
			if tc.name == "revoke mistyped" && !errors.As(err, &nc) {
				t.Fatalf("error %v, want not confirmed", err)
			}
		})
	}
}

// status and get show a name at risk (its certificate revoked) and what
// to do; a name not at risk prints no such line.
func TestAtRiskShown(t *testing.T) {
	revoked := api.CertPage{CertView: api.CertView{Name: "shop-web", Revoked: &inventory.Revocation{
		CertificateARN: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555", Reason: "SUPERSEDED",
		At: time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC), By: "arn:aws:iam::123456789012:user/alice"}}}
	fine := api.CertPage{CertView: api.CertView{Name: "api"}}
	now := time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	if err := StatusTable(&b, []api.CertPage{revoked, fine}, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "AT RISK: shop-web: certificate arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555 revoked (SUPERSEDED) at 2026-11-30T01:00:00Z by arn:aws:iam::123456789012:user/alice; request a replacement, then certferry rebind shop-web --arn NEW_ARN") ||
		strings.Contains(b.String(), "AT RISK: api") {
		t.Fatalf("status:\n%s", b.String())
	}
	b.Reset()
	if err := CertDetail(&b, revoked, now); err != nil || !strings.Contains(b.String(), "At risk:") {
		t.Fatalf("get: %v\n%s", err, b.String())
	}
}
