package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/certferry/certferry/internal/cli"
)

// `status --regions` is parsed by the regions verb: bad command lines are
// usage errors (exit 2) before any AWS configuration is loaded; without
// --regions, status is unchanged.
func TestStatusRegionsDispatch(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1") // nothing listens: a verb that acted would fail, not pass
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"status", "--regions", "mars-1"}, `"mars-1" is not a region code`},
		{[]string{"status", "--regions=us-east-1", "--accounts", "111111111111"}, "--accounts needs --role-arn"},
		{[]string{"status", "--regions", "us-east-1", "--role-arn", "arn:aws:iam::{account}:role/r"}, "give the accounts"},
		{[]string{"status", "shop-web", "--regions", "us-east-1", "--node", "i-1"}, "--node"},
		{[]string{"status", "a", "b"}, "certferry status takes at most one name, or --node ID alone"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := run(context.Background(), tt.args, &out, &bytes.Buffer{})
		var ue *cli.UsageError
		if !errors.As(err, &ue) || cli.ExitCode(err) != cli.ExitUsage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v (exit %d), want a usage error with %q", tt.args, err, cli.ExitCode(err), tt.want)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"status", "--help"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"--regions", "--stack-name", "--role-arn", "--accounts", "--external-id", "{account}", "CERTFERRY_TABLE"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("status --help lacks %s", f)
		}
	}
}
