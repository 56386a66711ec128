package main

import (
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/sweeper"
)

// The bench's check of a converged sweep fails on every way a sweep could
// do less than it should and still report as many names as it was given.
func TestCheckSweep(t *testing.T) {
	seeded := []string{"site-0", "site-1", "site-2"}
	good := func() (sweeper.RunReport, sweeper.Report, *sweeper.Run, map[string]int) {
		var names []sweeper.NameReport
		for _, n := range seeded {
			names = append(names, sweeper.NameReport{Name: n, Serial: "01"})
		}
		return sweeper.RunReport{RunID: "r", Names: 3, Enqueued: 3},
			sweeper.Report{RunID: "r", Names: names},
			&sweeper.Run{ID: "r", Total: 3, Done: 3, AlertedAt: time.Unix(1, 0)},
			map[string]int{"ACM.DescribeCertificate": 3, "DynamoDB.GetItem": 9, "SSM.DescribeInstanceInformation": 3}
	}
	started, res, run, calls := good()
	if err := checkSweep(seeded, started, res, run, calls); err != nil {
		t.Fatalf("a converged sweep fails the check: %v", err)
	}
	cases := []struct {
		name  string
		spoil func(*sweeper.RunReport, *sweeper.Report, **sweeper.Run, map[string]int)
		want  string
	}{
		{"a name swept twice in place of another", func(_ *sweeper.RunReport, r *sweeper.Report, _ **sweeper.Run, _ map[string]int) {
			r.Names[2] = r.Names[0]
		}, "never swept"},
		{"a name read as gone", func(_ *sweeper.RunReport, r *sweeper.Report, _ **sweeper.Run, _ map[string]int) {
			r.Names[1].Skipped = "gone"
		}, "not swept as converged"},
		{"a name failed", func(_ *sweeper.RunReport, r *sweeper.Report, _ **sweeper.Run, _ map[string]int) {
			r.Names[1].Error = "describe certificate: throttled"
		}, "not swept as converged"},
		{"a name deferred", func(_ *sweeper.RunReport, r *sweeper.Report, _ **sweeper.Run, _ map[string]int) {
			r.Names[0].Deferred = true
		}, "not swept as converged"},
		{"a resend", func(_ *sweeper.RunReport, r *sweeper.Report, _ **sweeper.Run, _ map[string]int) {
			r.Names[0].Resent = []string{"i-1"}
		}, "not swept as converged"},
		{"a risk", func(_ *sweeper.RunReport, r *sweeper.Report, _ **sweeper.Run, _ map[string]int) {
			r.Names[0].Risks = []string{"expiring"}
		}, "not swept as converged"},
		{"a name not seeded", func(_ *sweeper.RunReport, r *sweeper.Report, _ **sweeper.Run, _ map[string]int) {
			r.Names = append(r.Names, sweeper.NameReport{Name: "other"})
		}, "not seeded"},
		{"a dead letter", func(_ *sweeper.RunReport, r *sweeper.Report, _ **sweeper.Run, _ map[string]int) {
			r.DeadLettered = []string{"site-1"}
		}, "dead-lettered"},
		{"a name not enqueued", func(s *sweeper.RunReport, _ *sweeper.Report, _ **sweeper.Run, _ map[string]int) {
			s.Enqueued = 2
		}, "enqueued 2"},
		{"the run short of a name", func(_ *sweeper.RunReport, _ *sweeper.Report, run **sweeper.Run, _ map[string]int) {
			(*run).Done = 2
		}, "counts 2 of 3"},
		{"the run gone", func(_ *sweeper.RunReport, _ *sweeper.Report, run **sweeper.Run, _ map[string]int) {
			*run = nil
		}, "record is gone"},
		{"the run's alert never settled", func(_ *sweeper.RunReport, _ *sweeper.Report, run **sweeper.Run, _ map[string]int) {
			(*run).AlertedAt = time.Time{}
		}, "settled false"},
		{"an alert sent", func(_ *sweeper.RunReport, r *sweeper.Report, run **sweeper.Run, c map[string]int) {
			(*run).AlertID, r.AlertID, c["SNS.Publish"] = "m-1", "m-1", 1
		}, "SNS.Publish×1"},
		{"a name never described", func(_ *sweeper.RunReport, _ *sweeper.Report, _ **sweeper.Run, c map[string]int) {
			c["ACM.DescribeCertificate"] = 2
		}, "described 2 certificates"},
		{"a command sent", func(_ *sweeper.RunReport, _ *sweeper.Report, _ **sweeper.Run, c map[string]int) {
			c["SSM.SendCommand"] = 1
		}, "SSM.SendCommand×1"},
		{"an export", func(_ *sweeper.RunReport, _ *sweeper.Report, _ **sweeper.Run, c map[string]int) {
			c["ACM.ExportCertificate"] = 1
		}, "ACM.ExportCertificate×1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			started, res, run, calls := good()
			tc.spoil(&started, &res, &run, calls)
			err := checkSweep(seeded, started, res, run, calls)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkSweep = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
