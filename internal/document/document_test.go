package document

import (
	"strings"
	"testing"
)

func TestParseResult(t *testing.T) {
	tests := []struct {
		name, output string
		want         *Result
		err          string
	}{
		{"last line wins", "x\n" + Result{Status: "failed"}.Line() + "\nmore\n" + Result{Status: "installed", Fingerprint: "AB", Serial: "0c"}.Line() + "\n",
			&Result{Status: "installed", Fingerprint: "AB", Serial: "0c"}, ""},
		{"the shell step's spaced JSON", `CERTFERRY_RESULT {"status": "failed", "fingerprint": "", "serial": "", "format": "", "reload": "skipped", "verify": "skipped", "detail": "installer SHA-256 mismatch"}`,
			&Result{Status: "failed", Reload: "skipped", Verify: "skipped", Detail: "installer SHA-256 mismatch"}, ""},
		{"none", "hello\n", nil, "no CERTFERRY_RESULT line"},
		{"not JSON", "CERTFERRY_RESULT {oops\n", nil, "not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResult(tc.output)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || *got != *tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestSuperseded(t *testing.T) {
	const detail = "superseded: the bundle holds AA but this command installs BB (a newer deployment supersedes it)"
	tests := []struct {
		name string
		r    Result
		want bool
	}{
		{"status superseded", Result{Status: StatusSuperseded, Detail: detail}, true},
		{"status superseded, any detail", Result{Status: StatusSuperseded}, true},
		{"old installer: failed with the superseded detail", Result{Status: StatusFailed, Detail: detail}, true},
		{"old installer: after a recovery note", Result{Status: StatusFailed,
			Detail: "recovered: rolled back an interrupted run of AA (killed at phase written); " + detail}, true},
		{"failed for another reason", Result{Status: StatusFailed, Detail: "bundle refused, nothing written: chain does not verify"}, false},
		{"failed, the word elsewhere", Result{Status: StatusFailed, Detail: "read secret certferry/superseded: AccessDenied"}, false},
		{"rolled back with the words", Result{Status: StatusRolledBack, Detail: detail}, false},
		{"installed", Result{Status: StatusInstalled}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Superseded(); got != tc.want {
				t.Fatalf("Superseded() of %+v = %v, want %v", tc.r, got, tc.want)
			}
		})
	}
}
