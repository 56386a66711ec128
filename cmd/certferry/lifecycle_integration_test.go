//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/acmstandin"
	"github.com/certferry/certferry/internal/cli"
	"github.com/certferry/certferry/internal/localenv"
)

// rotate, revoke, rebind and audit as an operator runs them without -api
// (the handler in this process, so the caller is local:<user>), against
// moto behind the AWS model check with the local proxy's ACM stand-ins
// (RenewCertificate, RevokeCertificate), as `certferry local proxy` gives.
func TestCLILifecycleOnMoto(t *testing.T) {
	ctx := context.Background()
	awsCfg := localStack(t)
	proxy, err := localenv.StartProxy(os.Getenv("AWS_ENDPOINT_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	t.Setenv("AWS_ENDPOINT_URL", proxy.URL)
	ids, err := localenv.LaunchInstances(ctx, awsCfg, 1, map[string]string{"env": "prod"})
	if err != nil {
		t.Fatal(err)
	}
	arn, err := localenv.RequestExportable(ctx, awsCfg, "shop.example.com")
	if err != nil {
		t.Fatal(err)
	}
	replacement, err := localenv.RequestExportable(ctx, awsCfg, "shop.example.com")
	if err != nil {
		t.Fatal(err)
	}
	cf, must := verbs(ctx, t)
	must("onboard", "--name", "shop-web", "--arn", arn, "--instance", ids[0])

	var rotated struct {
		Charged     bool
		RequestedBy struct{ ARN string }
	}
	if out := must("rotate", "shop-web"); json.Unmarshal([]byte(out), &rotated) != nil || !rotated.Charged || !strings.HasPrefix(rotated.RequestedBy.ARN, "local:") {
		t.Fatalf("rotate printed %q", out)
	}
	if n := len(acmstandin.Drain(proxy.Renewals.Events())); n != 1 {
		t.Fatalf("%d renewals", n)
	}

	_, err = cf("revoke", "shop-web", "--reason", "KEY_COMPROMISE", "--yes")
	if cli.ExitCode(err) != cli.ExitClient || !strings.Contains(fmt.Sprint(err), "CESSATION_OF_OPERATION") || proxy.Revocations.Calls(arn) != 0 {
		t.Fatalf("refused reason: %v (exit %d), %d calls", err, cli.ExitCode(err), proxy.Revocations.Calls(arn))
	}
	if out := must("revoke", "shop-web", "--reason", "superseded", "--yes"); !strings.Contains(out, `"atRisk": [`) || proxy.Revocations.Calls(arn) != 1 {
		t.Fatalf("revoke printed %q", out)
	}
	if out := must("status"); !strings.Contains(out, "AT RISK: shop-web") || !strings.Contains(out, "certferry rebind shop-web --arn NEW_ARN") {
		t.Fatalf("status:\n%s", out)
	}
	if out := must("rebind", "shop-web", "--arn", replacement); !strings.Contains(out, `"urgent": true`) {
		t.Fatalf("rebind printed %q", out)
	}
	if out := must("status"); strings.Contains(out, "AT RISK") {
		t.Fatalf("still at risk after rebind:\n%s", out)
	}
	out := must("audit", "shop-web")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "rebind") || !strings.Contains(lines[2], "revoke") || !strings.Contains(lines[3], "rotate") || !strings.Contains(out, "local:") {
		t.Fatalf("audit:\n%s", out)
	}
}
