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
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode the request: %w", err)
	}
	return raw, nil
}
