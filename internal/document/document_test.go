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
