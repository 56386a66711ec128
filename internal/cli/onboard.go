package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/certferry/certferry/internal/spec"
)

// Onboard is what `certferry onboard` was told; Body turns it into the
// POST /certificates body. Only the options given are sent, so the API's
// defaults apply to the rest (the API validates every value).
type Onboard struct {
	Name, ARN string
	Targets   []string // KEY=V1[,V2…]: tag:env=prod, tag-key=certferry
	Instances []string // i-… / mi-…: one InstanceIds target
	Linux     map[string]any
	Windows   map[string]any

	// Rollout and lifecycle options (issue 14); zero values are not sent.
	Waves              string   // --waves 1,25%,100%
	PauseMinutes       *int     // --pause-minutes N
	StopAlarm          string   // --stop-alarm NAME
	MaintenanceWindows []string // --window "Sat,Sun 02:00-05:00 Europe/Berlin" (repeatable)
	SafetyMarginDays   *int     // --safety-margin-days N
	Approval           string   // --approval required
	Probes             []string // --probe host:port[/sni=name] (repeatable)
}

// ParseWindow reads --window "DAYS HH:MM-HH:MM ZONE" (days comma-separated:
// "Sat,Sun 02:00-05:00 Europe/Berlin"). It checks the shape; the API checks
// the values.
func ParseWindow(s string) (spec.MaintenanceWindow, error) {
	f := strings.Fields(s)
	if len(f) == 3 {
		start, end, ok := strings.Cut(f[1], "-")
		if ok && start != "" && end != "" && f[0] != "" {
			return spec.MaintenanceWindow{Days: strings.Split(f[0], ","), Start: start, End: end, Timezone: f[2]}, nil
		}
	}
	return spec.MaintenanceWindow{}, Usagef(`--window %q: want "DAYS HH:MM-HH:MM ZONE", e.g. "Sat,Sun 02:00-05:00 Europe/Berlin"`, s)
}

// WindowString spells a window as --window takes it.
func WindowString(w spec.MaintenanceWindow) string {
	return fmt.Sprintf("%s %s-%s %s", strings.Join(w.Days, ","), w.Start, w.End, w.Timezone)
}

// options adds the rollout and lifecycle options given to body.
func (o Onboard) options(body map[string]any) error {
	rollout := map[string]any{}
	if o.Waves != "" {
		rollout["waves"] = strings.Split(o.Waves, ",")
	}
	if o.PauseMinutes != nil {
		rollout["pauseMinutes"] = *o.PauseMinutes
	}
	if o.StopAlarm != "" {
		rollout["stopAlarm"] = o.StopAlarm
	}
	if len(rollout) > 0 {
		body["rollout"] = rollout
	}
	if len(o.MaintenanceWindows) > 0 {
		ws := []spec.MaintenanceWindow{}
		for _, s := range o.MaintenanceWindows {
			w, err := ParseWindow(s)
			if err != nil {
				return err
			}
			ws = append(ws, w)
		}
		body["maintenanceWindows"] = ws
	}
	if o.SafetyMarginDays != nil {
		body["safetyMarginDays"] = *o.SafetyMarginDays
	}
	if o.Approval != "" {
		body["approval"] = o.Approval
	}
	if len(o.Probes) > 0 {
		body["probes"] = o.Probes
	}
	return nil
}

// ParseTarget reads KEY=V1[,V2…] (tag:env=prod,staging; tag-key=web).
func ParseTarget(s string) (spec.Target, error) {
	key, vals, ok := strings.Cut(s, "=")
	if !ok || key == "" || vals == "" {
		return spec.Target{}, Usagef("--target %q: want KEY=VALUE[,VALUE…], e.g. tag:env=prod", s)
	}
	return spec.Target{Key: key, Values: strings.Split(vals, ",")}, nil
}

// Body is the JSON request body.
func (o Onboard) Body() ([]byte, error) {
	if o.Name == "" || o.ARN == "" {
		return nil, Usagef("onboard needs --name and --arn")
	}
	if len(o.Targets) == 0 && len(o.Instances) == 0 {
		return nil, Usagef("onboard needs --target KEY=VALUE (e.g. tag:env=prod) or --instance ID")
	}
	targets := []spec.Target{}
	for _, t := range o.Targets {
		tg, err := ParseTarget(t)
		if err != nil {
			return nil, err
		}
		targets = append(targets, tg)
	}
	if len(o.Instances) > 0 {
		var ids []string
		for _, i := range o.Instances {
			ids = append(ids, strings.Split(i, ",")...)
		}
		targets = append(targets, spec.Target{Key: spec.TargetInstanceIDs, Values: ids})
	}
	body := map[string]any{"name": o.Name, "certificateArn": o.ARN, "targets": targets}
	if len(o.Linux) > 0 {
		body["linux"] = o.Linux
	}
	if len(o.Windows) > 0 {
		body["windows"] = o.Windows
	}
	if err := o.options(body); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode the request: %w", err)
	}
	return raw, nil
}
