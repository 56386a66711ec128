// Package window computes maintenance windows (spec.MaintenanceWindow) and
// the expiry override's safety margin. It is pure: the caller gives the
// time.
//
// A window opens on each of its days at start, in its time zone, and
// closes at end the same day, or the next day when end is at or before
// start (it crosses midnight). Daylight-saving time:
//   - a wall time that does not exist that day (Europe/Berlin's 02:00–03:00
//     on the last Sunday of March) means the first instant after the gap
//     (03:00 CEST); a window lying wholly in the gap does not open that day;
//   - a wall time that occurs twice (02:00–03:00 on the last Sunday of
//     October) means its first occurrence (in CEST).
//
// So a window lasts as long as its wall clock says, give or take the hour
// the clocks move.
package window

import (
	"fmt"
	"time"

	"github.com/certferry/certferry/internal/spec"
)

// Next reports whether t lies inside one of ws (open); when it does not,
// next is the start of the next window after t, in t's location. When t is
// inside a window next is t itself (go now). No windows means always open.
// A window that does not validate (spec.ValidateWindows) is an error.
func Next(ws []spec.MaintenanceWindow, t time.Time) (open bool, next time.Time, err error) {
	if len(ws) == 0 {
		return true, t, nil
	}
	if err := spec.ValidateWindows(ws); err != nil {
		return false, time.Time{}, fmt.Errorf("maintenance windows: %w", err)
	}
	for _, w := range ws {
		o, n, err := nextOf(w, t)
		if err != nil {
			return false, time.Time{}, err
		}
		if o {
			return true, t, nil
		}
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	if next.IsZero() {
		return false, time.Time{}, fmt.Errorf("maintenance windows: none opens in the next two weeks")
	}
	return false, next.In(t.Location()), nil
}

// nextOf is Next for one window.
func nextOf(w spec.MaintenanceWindow, t time.Time) (open bool, next time.Time, err error) {
	loc, err := spec.LoadZone(w.Timezone)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("maintenance window zone %q: %w", w.Timezone, err)
	}
	startMin, _ := spec.ParseClock(w.Start)
	endMin, _ := spec.ParseClock(w.End)
	days := map[time.Weekday]bool{}
	for _, d := range w.Days {
		wd, _ := spec.ParseWeekday(d)
		days[wd] = true
	}
	local := t.In(loc)
	y, m, d := local.Date()
	// From yesterday (a window crossing midnight may still be open) to two
	// weeks ahead (a window whose only day has a DST gap over it opens a
	// week later).
	for i := -1; i <= 14; i++ {
		day := time.Date(y, m, d+i, 12, 0, 0, 0, loc)
		if !days[day.Weekday()] {
			continue
		}
		s := wall(day, startMin, loc)
		endDay := day
		if endMin <= startMin {
			endDay = time.Date(y, m, d+i+1, 12, 0, 0, 0, loc)
		}
		e := wall(endDay, endMin, loc)
		if !e.After(s) {
			continue // wholly inside a DST gap that day
		}
		if !t.Before(s) && t.Before(e) {
			return true, t, nil
		}
		if s.After(t) {
			return false, s, nil // days ascend: the first start after t
		}
	}
	return false, time.Time{}, nil
}

// wall is the instant of minutes after midnight on day's date in loc, by
// the package's DST rules.
func wall(day time.Time, minutes int, loc *time.Location) time.Time {
	y, m, d := day.Date()
	hh, mm := minutes/60, minutes%60
	u := time.Date(y, m, d, hh, mm, 0, 0, loc)
	if same(u.In(loc), y, m, d, hh, mm) {
		// It exists; if it exists twice, take the first occurrence: the
		// same wall time under the zone before u's.
		zs, _ := u.ZoneBounds()
		if !zs.IsZero() {
			_, before := zs.Add(-time.Second).Zone()
			_, now := u.Zone()
			if c := u.Add(time.Duration(now-before) * time.Second); c.Before(zs) && same(c.In(loc), y, m, d, hh, mm) {
				return c
			}
		}
		return u
	}
	// It does not exist (a gap): the first instant after the gap is the
	// transition next to u.
	zs, ze := u.ZoneBounds()
	lu := u.In(loc)
	want := time.Date(y, m, d, hh, mm, 0, 0, time.UTC)
	got := time.Date(lu.Year(), lu.Month(), lu.Day(), lu.Hour(), lu.Minute(), 0, 0, time.UTC)
	if got.After(want) {
		return zs // u lies after the gap, in the zone that began there
	}
	return ze // u lies before the gap, in the zone that ends there
}

func same(t time.Time, y int, m time.Month, d, hh, mm int) bool {
	ty, tm, td := t.Date()
	return ty == y && tm == m && td == d && t.Hour() == hh && t.Minute() == mm
}

// Margin is the expiry override's margin: overrideDays when set, else the
// larger of 7 days and a tenth of the certificate's lifetime.
func Margin(lifetime time.Duration, overrideDays *int) time.Duration {
	if overrideDays != nil {
		return time.Duration(*overrideDays) * 24 * time.Hour
	}
	return max(7*24*time.Hour, lifetime/10)
}
