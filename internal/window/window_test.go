package window

import (
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/spec"
)

func mw(days, start, end, zone string) spec.MaintenanceWindow {
	return spec.MaintenanceWindow{Days: strings.Split(days, ","), Start: start, End: end, Timezone: zone}
}

// at parses "2006-01-02 15:04" in zone (the test's own instants; the DST
// cases give UTC to be unambiguous).
func at(t *testing.T, s, zone string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNext(t *testing.T) {
	berlinWeekend := mw("Sat,Sun", "02:00", "05:00", "Europe/Berlin")
	// 2026-11-28 is a Saturday; 2026-03-29 and 2026-10-25 are the Sundays
	// Europe/Berlin springs forward and falls back.
	tests := []struct {
		name     string
		ws       []spec.MaintenanceWindow
		t        time.Time
		wantOpen bool
		wantNext time.Time // when closed
	}{
		{name: "no windows: always open", ws: nil, t: at(t, "2026-11-25 12:00", "UTC"), wantOpen: true},
		{name: "inside", ws: []spec.MaintenanceWindow{berlinWeekend}, t: at(t, "2026-11-28 03:00", "Europe/Berlin"), wantOpen: true},
		{name: "at the start: open", ws: []spec.MaintenanceWindow{berlinWeekend}, t: at(t, "2026-11-28 02:00", "Europe/Berlin"), wantOpen: true},
		{name: "at the end: closed", ws: []spec.MaintenanceWindow{berlinWeekend}, t: at(t, "2026-11-28 05:00", "Europe/Berlin"),
			wantNext: at(t, "2026-11-29 02:00", "Europe/Berlin")},
		{name: "weekday waits for Saturday", ws: []spec.MaintenanceWindow{berlinWeekend}, t: at(t, "2026-11-25 12:00", "Europe/Berlin"),
			wantNext: at(t, "2026-11-28 02:00", "Europe/Berlin")},
		{name: "Sunday after the window waits six days", ws: []spec.MaintenanceWindow{berlinWeekend}, t: at(t, "2026-11-29 06:00", "Europe/Berlin"),
			wantNext: at(t, "2026-12-05 02:00", "Europe/Berlin")},
		{name: "t in another zone", ws: []spec.MaintenanceWindow{berlinWeekend}, t: at(t, "2026-11-27 20:30", "America/New_York"),
			wantOpen: true}, // 2026-11-28 02:30 in Berlin
		{name: "t in UTC, next in UTC", ws: []spec.MaintenanceWindow{berlinWeekend}, t: at(t, "2026-11-27 12:00", "UTC"),
			wantNext: at(t, "2026-11-28 01:00", "UTC")},
		{name: "Sunday window seen on Saturday night", ws: []spec.MaintenanceWindow{mw("Sun", "02:00", "05:00", "UTC")}, t: at(t, "2026-11-28 23:00", "UTC"),
			wantNext: at(t, "2026-11-29 02:00", "UTC")},
		{name: "Sunday window seen on Sunday after it", ws: []spec.MaintenanceWindow{mw("Sun", "02:00", "05:00", "UTC")}, t: at(t, "2026-11-29 05:00", "UTC"),
			wantNext: at(t, "2026-12-06 02:00", "UTC")},
		{name: "crossing midnight: open after midnight", ws: []spec.MaintenanceWindow{mw("Fri", "22:00", "02:00", "UTC")}, t: at(t, "2026-11-28 01:59", "UTC"),
			wantOpen: true},
		{name: "crossing midnight: open before midnight", ws: []spec.MaintenanceWindow{mw("Fri", "22:00", "02:00", "UTC")}, t: at(t, "2026-11-27 23:00", "UTC"),
			wantOpen: true},
		{name: "crossing midnight: closed at its end", ws: []spec.MaintenanceWindow{mw("Fri", "22:00", "02:00", "UTC")}, t: at(t, "2026-11-28 02:00", "UTC"),
			wantNext: at(t, "2026-12-04 22:00", "UTC")},
		{name: "ending at midnight", ws: []spec.MaintenanceWindow{mw("Sat", "22:00", "00:00", "UTC")}, t: at(t, "2026-11-28 23:59", "UTC"),
			wantOpen: true},
		{name: "several windows: the earliest", ws: []spec.MaintenanceWindow{berlinWeekend, mw("Wed", "20:00", "21:00", "America/New_York")},
			t: at(t, "2026-11-25 12:00", "UTC"), wantNext: at(t, "2026-11-26 01:00", "UTC")},
		{name: "several windows: open in the second", ws: []spec.MaintenanceWindow{berlinWeekend, mw("wed", "20:00", "21:00", "America/New_York")},
			t: at(t, "2026-11-26 01:30", "UTC"), wantOpen: true},
		{name: "every day", ws: []spec.MaintenanceWindow{mw("Mon,Tue,Wed,Thu,Fri,Sat,Sun", "01:00", "02:00", "UTC")}, t: at(t, "2026-11-25 03:00", "UTC"),
			wantNext: at(t, "2026-11-26 01:00", "UTC")},

		// Spring forward: 02:00–03:00 does not exist on 2026-03-29 in Berlin.
		{name: "start in the gap starts after it", ws: []spec.MaintenanceWindow{mw("Sun", "02:30", "04:00", "Europe/Berlin")}, t: at(t, "2026-03-28 12:00", "UTC"),
			wantNext: at(t, "2026-03-29 01:00", "UTC")}, // 03:00 CEST
		{name: "open right after the gap", ws: []spec.MaintenanceWindow{mw("Sun", "02:30", "04:00", "Europe/Berlin")}, t: at(t, "2026-03-29 01:00", "UTC"),
			wantOpen: true},
		{name: "window before the gap still 02:00 CET the week before", ws: []spec.MaintenanceWindow{mw("Sun", "02:30", "04:00", "Europe/Berlin")}, t: at(t, "2026-03-21 12:00", "UTC"),
			wantNext: at(t, "2026-03-22 01:30", "UTC")}, // 02:30 CET
		{name: "window wholly in the gap skips that day", ws: []spec.MaintenanceWindow{mw("Sun", "02:00", "02:45", "Europe/Berlin")}, t: at(t, "2026-03-28 12:00", "UTC"),
			wantNext: at(t, "2026-04-05 00:00", "UTC")}, // 02:00 CEST a week later
		{name: "window across the gap: open until 04:00 CEST", ws: []spec.MaintenanceWindow{mw("Sun", "01:00", "04:00", "Europe/Berlin")}, t: at(t, "2026-03-29 01:59", "UTC"),
			wantOpen: true},
		{name: "window across the gap is an hour shorter", ws: []spec.MaintenanceWindow{mw("Sun", "01:00", "04:00", "Europe/Berlin")}, t: at(t, "2026-03-29 02:00", "UTC"),
			wantNext: at(t, "2026-04-05 01:00", "Europe/Berlin")}, // closed at 04:00 CEST = 02:00 UTC
		// Fall back: 02:00–03:00 happens twice on 2026-10-25 in Berlin; a
		// wall time in it means the first (CEST).
		{name: "start in the repeated hour: first occurrence", ws: []spec.MaintenanceWindow{mw("Sun", "02:30", "03:30", "Europe/Berlin")}, t: at(t, "2026-10-24 12:00", "UTC"),
			wantNext: at(t, "2026-10-25 00:30", "UTC")}, // 02:30 CEST
		{name: "second 02:45 is inside (window 02:30 CEST to 03:30 CET)", ws: []spec.MaintenanceWindow{mw("Sun", "02:30", "03:30", "Europe/Berlin")}, t: at(t, "2026-10-25 01:45", "UTC"),
			wantOpen: true},
		{name: "closed at 03:30 CET", ws: []spec.MaintenanceWindow{mw("Sun", "02:30", "03:30", "Europe/Berlin")}, t: at(t, "2026-10-25 02:30", "UTC"),
			wantNext: at(t, "2026-11-01 02:30", "Europe/Berlin")},
		{name: "end in the repeated hour: first occurrence", ws: []spec.MaintenanceWindow{mw("Sun", "01:00", "02:30", "Europe/Berlin")}, t: at(t, "2026-10-25 00:30", "UTC"),
			wantNext: at(t, "2026-11-01 01:00", "Europe/Berlin")}, // closed at 02:30 CEST = 00:30 UTC
		// A gap at midnight: Chile springs forward from 00:00 to 01:00 on
		// 2026-09-06 (a Sunday).
		{name: "midnight gap", ws: []spec.MaintenanceWindow{mw("Sun", "00:30", "03:00", "America/Santiago")}, t: at(t, "2026-09-05 12:00", "UTC"),
			wantNext: at(t, "2026-09-06 04:00", "UTC")}, // 01:00 -03
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			open, next, err := Next(tc.ws, tc.t)
			if err != nil {
				t.Fatalf("Next() error %v", err)
			}
			if open != tc.wantOpen {
				t.Fatalf("open = %v (next %v), want %v", open, next, tc.wantOpen)
			}
			if open {
				if !next.Equal(tc.t) {
					t.Errorf("open, next = %v, want t itself", next)
				}
				return
			}
			if !next.Equal(tc.wantNext) {
				t.Errorf("next = %v (%v), want %v", next, next.UTC(), tc.wantNext.UTC())
			}
			if next.Location() != tc.t.Location() {
				t.Errorf("next in %v, want t's location %v", next.Location(), tc.t.Location())
			}
			// Just before next the windows are still closed, at next open.
			if o, _, _ := Next(tc.ws, next.Add(-time.Minute)); o {
				t.Errorf("open a minute before next")
			}
			if o, _, _ := Next(tc.ws, next); !o {
				t.Errorf("not open at next")
			}
		})
	}
}

func TestNextRefusesBadWindows(t *testing.T) {
	for _, ws := range [][]spec.MaintenanceWindow{
		{mw("Sat", "02:00", "05:00", "Mars/Olympus")},
		{mw("Someday", "02:00", "05:00", "UTC")},
		{mw("Sat", "2am", "05:00", "UTC")},
		{mw("Sat", "02:00", "02:00", "UTC")},
	} {
		if _, _, err := Next(ws, time.Now()); err == nil {
			t.Errorf("Next(%+v) accepted", ws)
		}
	}
}

func TestMargin(t *testing.T) {
	days := func(d int) *int { return &d }
	const day = 24 * time.Hour
	tests := []struct {
		name     string
		lifetime time.Duration
		override *int
		want     time.Duration
	}{
		{name: "short lifetime: 7 days", lifetime: 30 * day, want: 7 * day},
		{name: "ACM's 395 days: a tenth", lifetime: 395 * day, want: 39*day + 12*time.Hour},
		{name: "90 days: 9 days", lifetime: 90 * day, want: 9 * day},
		{name: "70 days: exactly 7", lifetime: 70 * day, want: 7 * day},
		{name: "zero lifetime: 7 days", lifetime: 0, want: 7 * day},
		{name: "override", lifetime: 395 * day, override: days(3), want: 3 * day},
		{name: "override above the default", lifetime: 30 * day, override: days(60), want: 60 * day},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Margin(tc.lifetime, tc.override); got != tc.want {
				t.Errorf("Margin = %v, want %v", got, tc.want)
			}
		})
	}
}
