// Package document holds the one part of certferry's SSM Command document
// that production code reads: the result line. The node installer's last
// output line (installLinux / installWindows step) is
// `CERTFERRY_RESULT {json}`; the tracker parses it. The document itself
// (ssm-documents/) is checked and run locally by internal/agentrun.
package document

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Step names that print the result line, per platform (the tracker asks SSM
// for the output of the step of the node's platform).
const (
	StepLinux   = "installLinux"
	StepWindows = "installWindows"
)

// Status is the installer's verdict on a run, the result line's status.
type Status string

// Statuses of the result line (the node output contract: design.md, "SSM
// document and the node installer").
const (
	StatusInstalled  Status = "installed"   // the new certificate is in place and verified
	StatusUnchanged  Status = "unchanged"   // the node already served it
	StatusRolledBack Status = "rolled_back" // it failed a check; the previous state is back
	StatusFailed     Status = "failed"      // nothing was changed
	// StatusSuperseded: the bundle holds another certificate than the
	// command's (a newer deployment replaced it, with a command of its
	// own); the run did nothing, and nothing failed.
	StatusSuperseded Status = "superseded"
)

// SupersededPrefix starts the detail of a superseded run. Installers
// before StatusSuperseded reported such a run as failed with this detail
// (after any "recovered: ...; " note).
const SupersededPrefix = "superseded: "

// Installed reports whether the node has the certificate after the run.
func (s Status) Installed() bool { return s == StatusInstalled || s == StatusUnchanged }

// Superseded reports whether r says a newer deployment replaced the
// command, in either form: status superseded, or (an installer that
// predates it) status failed with a detail that starts, or continues
// after a recovery note, with SupersededPrefix.
func (r *Result) Superseded() bool {
	if r.Status == StatusSuperseded {
		return true
	}
	if r.Status != StatusFailed {
		return false
	}
	return strings.HasPrefix(r.Detail, SupersededPrefix) ||
		strings.HasPrefix(r.Detail, "recovered") && strings.Contains(r.Detail, "; "+SupersededPrefix)
}

// Result is the CERTFERRY_RESULT line of a run.
type Result struct {
	Status      Status `json:"status"`
	Fingerprint string `json:"fingerprint"`
	Serial      string `json:"serial"`
	Format      string `json:"format,omitempty"`
	Reload      string `json:"reload"`
	Verify      string `json:"verify"`
	Detail      string `json:"detail"`
}

// ResultPrefix starts the last output line of every run.
const ResultPrefix = "CERTFERRY_RESULT "

// Line renders r as the step's last output line, for stand-ins of a node's
// output.
func (r Result) Line() string {
	b, _ := json.Marshal(r) // strings only: cannot fail
	return ResultPrefix + string(b)
}

// ResultLine returns the JSON of the last CERTFERRY_RESULT line in output,
// or "" when there is none.
func ResultLine(output string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(output))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), ResultPrefix) {
			last = strings.TrimPrefix(sc.Text(), ResultPrefix)
		}
	}
	return last
}

// ParseResult decodes the last CERTFERRY_RESULT line in output.
func ParseResult(output string) (*Result, error) {
	last := ResultLine(output)
	if last == "" {
		return nil, errors.New("no CERTFERRY_RESULT line in the output")
	}
	var r Result
	if err := json.Unmarshal([]byte(last), &r); err != nil {
		return nil, fmt.Errorf("CERTFERRY_RESULT is not JSON: %w", err)
	}
	return &r, nil
}
