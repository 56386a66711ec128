package spec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // provided.al2023 has no zone database
	"unicode"
	"unicode/utf8"
)

// Per-name rollout and lifecycle options (issue 14). Every field is
// optional; a spec without them behaves as before: one command to every
// target, no gate on renewals, no outside probe.

// Approval values.
const (
	ApprovalNone     = ""         // renewals go without a person
	ApprovalRequired = "required" // renewal deployments wait for POST …/approvals
)

// Rollout says how a deployment reaches the nodes: in cumulative waves
// (shares of the nodes resolved when the rollout starts: "1" is one node,
// "25%" a quarter, the last wave must be "100%"), with a pause between
// waves, and one CloudWatch alarm that stops the command (SendCommand's
// AlarmConfiguration takes exactly one alarm).
type Rollout struct {
	Waves        []string `json:"waves,omitempty" dynamodbav:"waves,omitempty"`
	PauseMinutes int      `json:"pauseMinutes,omitempty" dynamodbav:"pauseMinutes,omitempty"`
	StopAlarm    string   `json:"stopAlarm,omitempty" dynamodbav:"stopAlarm,omitempty"`
}

// Waved reports whether the rollout has waves (more than one step).
func (r *Rollout) Waved() bool { return r != nil && len(r.Waves) > 0 }

// MaintenanceWindow is a weekly window in a time zone during which renewal
// deployments may start: days (Mon … Sun), start and end as "HH:MM" (an end
// at or before the start crosses midnight), an IANA time zone.
type MaintenanceWindow struct {
	Days     []string `json:"days" dynamodbav:"days"`
	Start    string   `json:"start" dynamodbav:"start"`
	End      string   `json:"end" dynamodbav:"end"`
	Timezone string   `json:"timezone" dynamodbav:"timezone"`
}

// Gated reports whether renewals of the spec wait for a window or an
// approval.
func (s *Spec) Gated() bool {
	return len(s.MaintenanceWindows) > 0 || s.Approval == ApprovalRequired
}

// Limits of the options (issue 14).
const (
	MaxWaves            = 10
	MaxWaveCount        = 10000
	MaxPauseMinutes     = 1440 // a day
	MaxWindows          = 7
	MinSafetyMarginDays = 1
	MaxSafetyMarginDays = 60
	MaxProbes           = 10
	// maxAlarmName is SendCommand's AlarmConfiguration.Alarms[].Name
	// (botocore ssm 2014-11-06 shape AlarmName: min 1, max 255, pattern
	// ^(?!\s*$).+, i.e. not only white space and no line terminator).
	maxAlarmName = 255
)

// Weekdays as maintenanceWindows[].days spells them (the input is matched
// case-insensitively; ApplyDefaults stores these spellings).
var Weekdays = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

var (
	waveCountPattern = regexp.MustCompile(`^[1-9][0-9]{0,4}$`)
	wavePctPattern   = regexp.MustCompile(`^[1-9][0-9]{0,2}%$`)
	clockPattern     = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	// zonePattern bounds what reaches time.LoadLocation: IANA names such
	// as Europe/Berlin, America/Argentina/Buenos_Aires, Etc/GMT+5, UTC.
	zonePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$`)
)

// Wave is one parsed wave: Count nodes, or Percent of the nodes.
type Wave struct {
	Count   int // > 0 for "25"
	Percent int // > 0 for "25%"
}

// ParseWave parses "1".."10000" or "1%".."100%" (no sign, no leading
// zero, whole percentages).
func ParseWave(s string) (Wave, error) {
	switch {
	case waveCountPattern.MatchString(s):
		n, _ := strconv.Atoi(s)
		if n <= MaxWaveCount {
			return Wave{Count: n}, nil
		}
	case wavePctPattern.MatchString(s):
		n, _ := strconv.Atoi(strings.TrimSuffix(s, "%"))
		if n <= 100 {
			return Wave{Percent: n}, nil
		}
	}
	return Wave{}, fmt.Errorf(`must be a node count "1" to "%d" or a share "1%%" to "100%%" (whole numbers, no leading zero)`, MaxWaveCount)
}

// Of is the cumulative number of nodes the wave covers out of total: a
// count capped at total, a percentage rounded up (so "1%" of 10 nodes is 1).
func (w Wave) Of(total int) int {
	if w.Percent > 0 {
		return (total*w.Percent + 99) / 100
	}
	return min(w.Count, total)
}

// ParseWeekday reads Mon … Sun, case-insensitively.
func ParseWeekday(s string) (time.Weekday, bool) {
	for i, d := range Weekdays {
		if strings.EqualFold(s, d) {
			return time.Weekday(i), true
		}
	}
	return 0, false
}

// ParseClock reads "HH:MM" (00:00 to 23:59) into minutes after midnight.
func ParseClock(s string) (int, bool) {
	if !clockPattern.MatchString(s) {
		return 0, false
	}
	h, _ := strconv.Atoi(s[:2])
	m, _ := strconv.Atoi(s[3:])
	return h*60 + m, true
}

// LoadZone loads an IANA time zone (the embedded database: package spec
// imports time/tzdata). "Local" and "" are refused: a Lambda's local zone
// is not the operator's.
func LoadZone(name string) (*time.Location, error) {
	if len(name) > 64 || !zonePattern.MatchString(name) || name == "Local" {
		return nil, fmt.Errorf("must be an IANA time zone such as Europe/Berlin, America/New_York or UTC")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("must be an IANA time zone such as Europe/Berlin, America/New_York or UTC (%q is not in the time zone database)", name)
	}
	return loc, nil
}

// normaliseOptions makes absent and empty the same value, so that a spec
// stored in DynamoDB (omitempty drops empty lists) and the same spec sent
// again compare equal (pipeline.Onboard's "unchanged"). Day names get their
// canonical spelling.
func (s *Spec) normaliseOptions() {
	if r := s.Rollout; r != nil {
		if len(r.Waves) == 0 {
			r.Waves = nil
		}
		if r.Waves == nil && r.PauseMinutes == 0 && r.StopAlarm == "" {
			s.Rollout = nil
		}
	}
	if len(s.MaintenanceWindows) == 0 {
		s.MaintenanceWindows = nil
	}
	for i := range s.MaintenanceWindows {
		w := &s.MaintenanceWindows[i]
		if len(w.Days) == 0 {
			w.Days = nil
		}
		for j, d := range w.Days {
			if wd, ok := ParseWeekday(d); ok {
				w.Days[j] = Weekdays[wd]
			}
		}
	}
	if len(s.Probes) == 0 {
		s.Probes = nil
	}
}

// validateOptions checks the rollout and lifecycle options.
func (s *Spec) validateOptions() error {
	if err := validateRollout(s.Rollout); err != nil {
		return err
	}
	if err := ValidateWindows(s.MaintenanceWindows); err != nil {
		return err
	}
	if d := s.SafetyMarginDays; d != nil && (*d < MinSafetyMarginDays || *d > MaxSafetyMarginDays) {
		return Invalid("safetyMarginDays", "must be %d to %d days (leave it out for the default: the larger of 7 days and a tenth of the certificate's lifetime)", MinSafetyMarginDays, MaxSafetyMarginDays)
	}
	if s.Approval != ApprovalNone && s.Approval != ApprovalRequired {
		return Invalid("approval", `must be "required" (renewal deployments wait for an approval) or left out`)
	}
	return validateProbes(s.Probes)
}

func validateRollout(r *Rollout) error {
	if r == nil {
		return nil
	}
	if len(r.Waves) > MaxWaves {
		return Invalid("rollout.waves", "must hold 1 to %d waves (the last one \"100%%\")", MaxWaves)
	}
	var lastCount, lastPct int
	for i, v := range r.Waves {
		field := fmt.Sprintf("rollout.waves[%d]", i)
		w, err := ParseWave(v)
		if err != nil {
			return Invalid(field, "%v", err)
		}
		last := i == len(r.Waves)-1
		switch {
		case last && w.Percent != 100:
			return Invalid(field, `must be "100%%": the last wave reaches every node`)
		case !last && w.Percent == 100:
			return Invalid(field, `"100%%" must be the last wave`)
		case w.Count > 0 && w.Count < lastCount:
			return Invalid(field, "must not be smaller than an earlier count (%d): waves are cumulative", lastCount)
		case w.Percent > 0 && w.Percent < lastPct:
			return Invalid(field, "must not be smaller than an earlier share (%d%%): waves are cumulative", lastPct)
		}
		lastCount, lastPct = max(lastCount, w.Count), max(lastPct, w.Percent)
	}
	if r.PauseMinutes < 0 || r.PauseMinutes > MaxPauseMinutes {
		return Invalid("rollout.pauseMinutes", "must be 0 (next wave at once) to %d minutes", MaxPauseMinutes)
	}
	if r.PauseMinutes > 0 && len(r.Waves) == 0 {
		return Invalid("rollout.pauseMinutes", `is the pause between waves: give rollout.waves too (e.g. ["1", "25%%", "100%%"])`)
	}
	if r.StopAlarm != "" {
		return ValidateStopAlarm(r.StopAlarm)
	}
	return nil
}

// ValidateStopAlarm checks a rollout.stopAlarm's form (Validate's check),
// for callers that must not send a malformed name on: the API checks the
// alarm exists in CloudWatch (DescribeAlarms' AlarmName is 1–255
// characters too) only once its name passed this.
func ValidateStopAlarm(n string) error {
	if err := validateAlarmName(n); err != nil {
		return Invalid("rollout.stopAlarm", "%v", err)
	}
	return nil
}

// validateAlarmName: SSM's AlarmName (1–255 characters, not only white
// space, no line terminator) and CloudWatch's alarm names (UTF-8 without
// ASCII control characters, "PutMetricAlarm", CloudWatch API Reference).
func validateAlarmName(n string) error {
	const msg = "must be a CloudWatch alarm name: 1 to %d characters, not only spaces, no control characters or line breaks"
	if !utf8.ValidString(n) || utf8.RuneCountInString(n) > maxAlarmName || strings.TrimSpace(n) == "" {
		return fmt.Errorf(msg, maxAlarmName)
	}
	for _, r := range n {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			return fmt.Errorf(msg, maxAlarmName)
		}
	}
	return nil
}

// ValidateWindows checks maintenance windows (nil is none).
func ValidateWindows(ws []MaintenanceWindow) error {
	if ws == nil {
		return nil
	}
	if len(ws) > MaxWindows {
		return Invalid("maintenanceWindows", "must hold 1 to %d windows", MaxWindows)
	}
	for i, w := range ws {
		field := fmt.Sprintf("maintenanceWindows[%d]", i)
		if len(w.Days) == 0 || len(w.Days) > 7 {
			return Invalid(field+".days", `must list 1 to 7 days the window starts on, e.g. ["Sat", "Sun"]`)
		}
		seen := map[time.Weekday]bool{}
		for j, d := range w.Days {
			wd, ok := ParseWeekday(d)
			if !ok {
				return Invalid(fmt.Sprintf("%s.days[%d]", field, j), "must be Mon, Tue, Wed, Thu, Fri, Sat or Sun")
			}
			if seen[wd] {
				return Invalid(fmt.Sprintf("%s.days[%d]", field, j), "names %s twice", Weekdays[wd])
			}
			seen[wd] = true
		}
		start, ok := ParseClock(w.Start)
		if !ok {
			return Invalid(field+".start", `must be a 24-hour time "HH:MM" such as "02:00"`)
		}
		end, ok := ParseClock(w.End)
		if !ok {
			return Invalid(field+".end", `must be a 24-hour time "HH:MM" such as "05:00" (an end at or before the start ends the next day; "00:00" is midnight)`)
		}
		if end == start {
			return Invalid(field+".end", "must differ from start (an end before the start crosses midnight; for no window at all leave maintenanceWindows out)")
		}
		if w.Timezone == "" {
			return Invalid(field+".timezone", "is required: an IANA time zone such as Europe/Berlin or UTC")
		}
		if _, err := LoadZone(w.Timezone); err != nil {
			return Invalid(field+".timezone", "%v", err)
		}
	}
	return nil
}

func validateProbes(ps []string) error {
	if len(ps) > MaxProbes {
		return Invalid("probes", "must hold at most %d probes", MaxProbes)
	}
	seen := map[string]int{}
	for i, p := range ps {
		field := fmt.Sprintf("probes[%d]", i)
		t, err := ParseProbe(p)
		if err != nil {
			return Invalid(field, "%v", err)
		}
		if j, dup := seen[t.String()]; dup {
			return Invalid(field, "repeats probes[%d]", j)
		}
		seen[t.String()] = i
	}
	return nil
}
