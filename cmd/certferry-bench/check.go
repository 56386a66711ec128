package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/certferry/certferry/internal/sweeper"
)

// actingCalls are the calls a sweep makes only when it acts on a name
// (deploys, sends, alerts, emits an event); a converged fleet makes none.
var actingCalls = []string{"ACM.ExportCertificate", "SSM.SendCommand", "SNS.Publish", "Secrets Manager.PutSecretValue",
	"Secrets Manager.CreateSecret", "EventBridge.PutEvents"}

// checkSweep is the bench's check of one sweep of a converged fleet, so
// that a sweep that silently did less than AWS would make it do (a name
// skipped, read as gone, swept twice in place of another, deferred, failed)
// fails the bench instead of lowering its figures: every seeded name was
// enqueued and swept exactly once, none skipped, failed, deferred or acted
// on, none dead-lettered; the run counts every name and settled without an
// alert; ACM described each name once; no call acted.
func checkSweep(seeded []string, started sweeper.RunReport, res sweeper.Report, run *sweeper.Run, calls map[string]int) error {
	var errs []error
	n := len(seeded)
	if started.Names != n || started.Enqueued != n || started.Failed != 0 {
		errs = append(errs, fmt.Errorf("the fan-out listed %d, enqueued %d and failed %d of %d names", started.Names, started.Enqueued, started.Failed, n))
	}
	want := map[string]bool{}
	for _, name := range seeded {
		want[name] = true
	}
	seen := map[string]int{}
	var acted []string
	for _, r := range res.Names {
		seen[r.Name]++
		if !want[r.Name] {
			errs = append(errs, fmt.Errorf("swept %q, which was not seeded", r.Name))
		}
		if r.Skipped != "" || r.Error != "" || r.Deferred || r.Redeployed || r.NotCovered != "" || r.Rollout != "" ||
			len(r.Resent) > 0 || len(r.Risks) > 0 || len(r.Exhausted) > 0 || len(r.Stuck) > 0 || r.WaitingForRollout > 0 {
			acted = append(acted, fmt.Sprintf("%+v", r))
		}
	}
	if len(acted) > 0 {
		errs = append(errs, fmt.Errorf("%d names were not swept as converged (first: %s)", len(acted), acted[0]))
	}
	var missing, twice []string
	for _, name := range seeded {
		switch seen[name] {
		case 0:
			missing = append(missing, name)
		case 1:
		default:
			twice = append(twice, name)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("%d seeded names never swept (first: %s)", len(missing), missing[0]))
	}
	if len(twice) > 0 {
		errs = append(errs, fmt.Errorf("%d names swept more than once (first: %s)", len(twice), twice[0]))
	}
	if len(res.DeadLettered) > 0 {
		errs = append(errs, fmt.Errorf("%d names dead-lettered (first: %s)", len(res.DeadLettered), res.DeadLettered[0]))
	}
	switch {
	case run == nil:
		errs = append(errs, errors.New("the run's record is gone"))
	case run.Total != n || run.Done != n:
		errs = append(errs, fmt.Errorf("the run counts %d of %d names done, want %d of %d", run.Done, run.Total, n, n))
	case !run.Alerted() || run.AlertID != "" || res.AlertID != "":
		errs = append(errs, fmt.Errorf("the run's alert: settled %v, sent %q / %q; want settled with nothing to send", run.Alerted(), run.AlertID, res.AlertID))
	}
	if k := calls["ACM.DescribeCertificate"]; k != n {
		errs = append(errs, fmt.Errorf("ACM described %d certificates for %d names", k, n))
	}
	var bad []string
	for _, op := range actingCalls {
		if calls[op] > 0 {
			bad = append(bad, fmt.Sprintf("%s×%d", op, calls[op]))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		errs = append(errs, fmt.Errorf("a converged fleet's sweep acted: %s", strings.Join(bad, " ")))
	}
	return errors.Join(errs...)
}
