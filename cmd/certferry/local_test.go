package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// `local schedules` and its refusals, before any AWS call.
func TestLocalSchedulesArgs(t *testing.T) {
	t.Setenv("CERTFERRY_SCHEDULE_GROUP", "")
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string // "" = no error
		wantOut string // in stderr
	}{
		{name: "help", args: []string{"schedules", "--help"}, wantOut: "certferry local schedules"},
		{name: "extra argument", args: []string{"schedules", "shop-web"}, wantErr: "local schedules takes no arguments"},
		{name: "no group", args: []string{"schedules"}, wantErr: "CERTFERRY_SCHEDULE_GROUP is not set: run `certferry local up` and eval its output"},
		{name: "unknown subcommand", args: []string{"down"}, wantErr: "the subcommands are up, proxy and schedules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := local(context.Background(), tc.args, &stdout, &stderr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("local %v: %v", tc.args, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("local %v: %v, want %q", tc.args, err, tc.wantErr)
			}
			if !strings.Contains(stderr.String(), tc.wantOut) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantOut)
			}
		})
	}
}
