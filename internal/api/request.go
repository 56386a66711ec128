package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/certferry/certferry/internal/spec"
)

// maxBody bounds the request body; an onboarding request is a few hundred bytes.
const maxBody = 64 << 10

// onboardBody accepts both certferry's shape and the AWS sample's
// (aws-samples/sample-acm-export-cert-automation) flat shape.
type onboardBody struct {
	CertificateARN string          `json:"certificateArn"`
	Name           string          `json:"name"`
	Targets        json.RawMessage `json:"targets"`
	Linux          *spec.Linux     `json:"linux"`
	Windows        *spec.Windows   `json:"windows"`

	// Rollout and lifecycle options (issue 14); the nested objects are
	// decoded on their own so that an unknown or mistyped field inside
	// them is named with its path (rollout.foo, maintenanceWindows[1].end).
	Rollout            json.RawMessage `json:"rollout"`
	MaintenanceWindows json.RawMessage `json:"maintenanceWindows"`
	SafetyMarginDays   *int            `json:"safetyMarginDays"`
	Approval           string          `json:"approval"`
	Probes             []string        `json:"probes"`

	SampleCertificateARN string `json:"CertificateArn"`
	SampleCertName       string `json:"CertName"`
	SampleTagKey         string `json:"TargetTagKey"`
	SampleTagValue       string `json:"TargetTagValue"`
}

// ParseOnboard decodes a POST /certificates body into a Spec. It checks the
// JSON's shape only; Spec.Validate checks the values.
func ParseOnboard(body string, base64Encoded bool) (spec.Spec, error) {
	raw := []byte(body)
	if base64Encoded {
		dec, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return spec.Spec{}, spec.Invalid("body", "is marked base64 but does not decode")
		}
		raw = dec
	}
	if len(raw) > maxBody {
		return spec.Spec{}, spec.Invalid("body", "is larger than %d bytes", maxBody)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return spec.Spec{}, spec.Invalid("body", "is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b onboardBody
	if err := dec.Decode(&b); err != nil {
		return spec.Spec{}, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return spec.Spec{}, spec.Invalid("body", "holds data after the JSON object")
	}
	sample := b.SampleCertificateARN != "" || b.SampleCertName != "" || b.SampleTagKey != "" || b.SampleTagValue != ""
	options := len(b.Rollout) > 0 || len(b.MaintenanceWindows) > 0 || b.SafetyMarginDays != nil || b.Approval != "" || b.Probes != nil
	native := b.CertificateARN != "" || b.Name != "" || len(b.Targets) > 0 || b.Linux != nil || b.Windows != nil || options
	if sample && native {
		return spec.Spec{}, spec.Invalid("body", "mixes certferry fields (certificateArn, name, targets, options such as rollout) with the AWS sample's (CertificateArn, CertName, TargetTagKey, TargetTagValue)")
	}
	if sample {
		return fromSample(b)
	}
	sp := spec.Spec{CertificateARN: b.CertificateARN, Name: b.Name}
	if b.Linux != nil {
		sp.Linux = *b.Linux
	}
	if b.Windows != nil {
		sp.Windows = *b.Windows
	}
	targets, err := parseTargets(b.Targets)
	if err != nil {
		return spec.Spec{}, err
	}
	sp.Targets = targets
	if err := parseOptions(b, &sp); err != nil {
		return spec.Spec{}, err
	}
	return sp, nil
}

// parseOptions decodes the nested option objects strictly, naming a bad
// field by its path.
func parseOptions(b onboardBody, sp *spec.Spec) error {
	sp.SafetyMarginDays, sp.Approval, sp.Probes = b.SafetyMarginDays, b.Approval, b.Probes
	if raw := bytes.TrimSpace(b.Rollout); len(raw) > 0 && string(raw) != "null" {
		if raw[0] != '{' {
			return spec.Invalid("rollout", `must be an object: {"waves": ["1", "25%%", "100%%"], "pauseMinutes": 10, "stopAlarm": "alarm-name"}`)
		}
		var r spec.Rollout
		if err := strictDecode(raw, &r); err != nil {
			return nestedError("rollout", err)
		}
		sp.Rollout = &r
	}
	if raw := bytes.TrimSpace(b.MaintenanceWindows); len(raw) > 0 && string(raw) != "null" {
		var items []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
			return spec.Invalid("maintenanceWindows", `must be a list of windows: [{"days": ["Sat", "Sun"], "start": "02:00", "end": "05:00", "timezone": "Europe/Berlin"}]`)
		}
		sp.MaintenanceWindows = make([]spec.MaintenanceWindow, len(items))
		for i, item := range items {
			field := fmt.Sprintf("maintenanceWindows[%d]", i)
			if item = bytes.TrimSpace(item); len(item) == 0 || item[0] != '{' {
				return spec.Invalid(field, `must be an object: {"days": ["Sat", "Sun"], "start": "02:00", "end": "05:00", "timezone": "Europe/Berlin"}`)
			}
			if err := strictDecode(item, &sp.MaintenanceWindows[i]); err != nil {
				return nestedError(field, err)
			}
		}
	}
	return nil
}

func strictDecode(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// nestedError is jsonError for an object decoded at field.
func nestedError(field string, err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return spec.Invalid(field+"."+typeErr.Field, "has the wrong type: want %s", typeErr.Type)
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return spec.Invalid(field+"."+name, "is not a known field")
	}
	return spec.Invalid(field, "is not valid: %s", cleanJSONError(err))
}

func fromSample(b onboardBody) (spec.Spec, error) {
	switch {
	case b.SampleCertificateARN == "":
		return spec.Spec{}, spec.Invalid("CertificateArn", "is required")
	case b.SampleCertName == "":
		return spec.Spec{}, spec.Invalid("CertName", "is required")
	case b.SampleTagKey == "":
		return spec.Spec{}, spec.Invalid("TargetTagKey", "is required")
	case b.SampleTagValue == "":
		return spec.Spec{}, spec.Invalid("TargetTagValue", "is required")
	}
	return spec.Spec{
		CertificateARN: b.SampleCertificateARN,
		Name:           b.SampleCertName,
		Targets:        []spec.Target{{Key: spec.TargetTagPrefix + b.SampleTagKey, Values: []string{b.SampleTagValue}}},
	}, nil
}

// parseTargets accepts a list of targets or a single target object.
func parseTargets(raw json.RawMessage) ([]spec.Target, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, spec.Invalid("targets", "is required: [{\"key\": \"tag:env\", \"values\": [\"prod\"]}] or {\"key\": \"InstanceIds\", \"values\": [\"i-…\"]}")
	}
	strict := func(data []byte, v any) error {
		d := json.NewDecoder(bytes.NewReader(data))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	var out []spec.Target
	switch raw[0] {
	case '[':
		if err := strict(raw, &out); err != nil {
			return nil, spec.Invalid("targets", "must be a list of {\"key\", \"values\"} objects: %s", cleanJSONError(err))
		}
	case '{':
		var t spec.Target
		if err := strict(raw, &t); err != nil {
			return nil, spec.Invalid("targets", "must be a {\"key\", \"values\"} object: %s", cleanJSONError(err))
		}
		out = []spec.Target{t}
	default:
		return nil, spec.Invalid("targets", "must be a list of targets or one target object")
	}
	return out, nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return spec.Invalid(typeErr.Field, "has the wrong type: want %s", typeErr.Type)
	}
	if strings.HasPrefix(err.Error(), "json: unknown field ") {
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return spec.Invalid(field, "is not a known field")
	}
	return spec.Invalid("body", "is not valid JSON: %s", cleanJSONError(err))
}

// cleanJSONError drops the "json: " prefix and bounds the message length
// (it may quote input back).
func cleanJSONError(err error) string {
	s := strings.TrimPrefix(err.Error(), "json: ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprint(s)
}
