package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/pipeline"
	"github.com/certferry/certferry/internal/spec"
)

const optionsARN = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"

// optionsBody is a native body with extra top-level members.
func optionsBody(extra string) string {
	return fmt.Sprintf(`{"certificateArn": %q, "name": "web", "targets": [{"key": "tag:env", "values": ["prod"]}]%s}`, optionsARN, extra)
}

func TestParseOnboardOptions(t *testing.T) {
	margin := 14
	full := `, "rollout": {"waves": ["1", "25%", "100%"], "pauseMinutes": 10, "stopAlarm": "shop-5xx"},
		"maintenanceWindows": [{"days": ["Sat", "Sun"], "start": "02:00", "end": "05:00", "timezone": "Europe/Berlin"}],
		"safetyMarginDays": 14, "approval": "required",
		"probes": ["shop.example.com:443", "[2001:db8::1]:8443/sni=shop.example.com"]`
	got, err := ParseOnboard(optionsBody(full), false)
	if err != nil {
		t.Fatal(err)
	}
	want := spec.Spec{
		Name: "web", CertificateARN: optionsARN, Targets: []spec.Target{{Key: "tag:env", Values: []string{"prod"}}},
		Rollout:            &spec.Rollout{Waves: []string{"1", "25%", "100%"}, PauseMinutes: 10, StopAlarm: "shop-5xx"},
		MaintenanceWindows: []spec.MaintenanceWindow{{Days: []string{"Sat", "Sun"}, Start: "02:00", End: "05:00", Timezone: "Europe/Berlin"}},
		SafetyMarginDays:   &margin, Approval: "required",
		Probes: []string{"shop.example.com:443", "[2001:db8::1]:8443/sni=shop.example.com"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseOnboard() = %+v\nwant %+v", got, want)
	}

	// Absent, null and empty options are the same spec after the defaults.
	plain, err := ParseOnboard(optionsBody(""), false)
	if err != nil {
		t.Fatal(err)
	}
	plain.ApplyDefaults()
	for _, extra := range []string{
		`, "rollout": null, "maintenanceWindows": null, "probes": null, "safetyMarginDays": null`,
		`, "rollout": {}, "maintenanceWindows": [], "probes": []`,
		`, "rollout": {"waves": []}, "approval": ""`,
	} {
		sp, err := ParseOnboard(optionsBody(extra), false)
		if err != nil {
			t.Fatalf("%s: %v", extra, err)
		}
		sp.ApplyDefaults()
		if !reflect.DeepEqual(sp, plain) {
			t.Errorf("%s: %+v, want %+v", extra, sp, plain)
		}
	}
}

func TestParseOnboardOptionsRefused(t *testing.T) {
	tests := []struct {
		name, extra, wantField string
	}{
		{"unknown top-level option", `, "rollouts": {}`, "rollouts"},
		{"unknown rollout field", `, "rollout": {"waves": ["100%"], "canary": 1}`, "rollout.canary"},
		{"rollout not an object", `, "rollout": ["1", "100%"]`, "rollout"},
		{"waves as numbers", `, "rollout": {"waves": [1, 100]}`, "rollout.waves"},
		{"waves as a string", `, "rollout": {"waves": "1,25%,100%"}`, "rollout.waves"},
		{"pause as a string", `, "rollout": {"pauseMinutes": "10"}`, "rollout.pauseMinutes"},
		{"pause fractional", `, "rollout": {"pauseMinutes": 1.5}`, "rollout.pauseMinutes"},
		{"rollout trailing garbage", `, "rollout": {"waves": ["100%"]}}`, "body"},
		{"windows not a list", `, "maintenanceWindows": {"days": ["Sat"]}`, "maintenanceWindows"},
		{"window not an object", `, "maintenanceWindows": ["Sat 02:00-05:00"]`, "maintenanceWindows[0]"},
		{"unknown window field", `, "maintenanceWindows": [{"days": ["Sat"], "start": "02:00", "end": "05:00", "timezone": "UTC"}, {"days": ["Sun"], "start": "02:00", "end": "05:00", "tz": "UTC"}]`, "maintenanceWindows[1].tz"},
		{"window days as a string", `, "maintenanceWindows": [{"days": "Sat", "start": "02:00", "end": "05:00", "timezone": "UTC"}]`, "maintenanceWindows[0].days"},
		{"window start as a number", `, "maintenanceWindows": [{"days": ["Sat"], "start": 200, "end": "05:00", "timezone": "UTC"}]`, "maintenanceWindows[0].start"},
		{"margin as a string", `, "safetyMarginDays": "7"`, "safetyMarginDays"},
		{"margin fractional", `, "safetyMarginDays": 7.5`, "safetyMarginDays"},
		{"approval as a bool", `, "approval": true`, "approval"},
		{"probes as a string", `, "probes": "shop.example.com:443"`, "probes"},
		{"probe objects", `, "probes": [{"host": "shop.example.com", "port": 443}]`, "probes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseOnboard(optionsBody(tc.extra), false)
			var fe *spec.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.wantField {
				t.Fatalf("ParseOnboard() error = %v, want field %q", err, tc.wantField)
			}
		})
	}
	// Options belong to the native shape.
	_, err := ParseOnboard(fmt.Sprintf(`{"CertificateArn": %q, "CertName": "web", "TargetTagKey": "env", "TargetTagValue": "prod", "approval": "required"}`, optionsARN), false)
	var fe *spec.FieldError
	if !errors.As(err, &fe) || fe.Field != "body" {
		t.Fatalf("sample shape with options: %v, want a refusal on body", err)
	}
}

// TestOnboardOptionsBadValues: values that decode but do not validate
// answer 400 naming the field (the pipeline runs the spec's defaults and
// validation; the fake does the same).
func TestOnboardOptionsBadValues(t *testing.T) {
	tests := []struct{ extra, field string }{
		{`, "rollout": {"waves": ["1", "50%"]}`, "rollout.waves[1]"},
		{`, "rollout": {"waves": ["1", "100%"], "pauseMinutes": 2000}`, "rollout.pauseMinutes"},
		{`, "rollout": {"stopAlarm": " "}`, "rollout.stopAlarm"},
		{`, "maintenanceWindows": [{"days": ["Sat"], "start": "02:00", "end": "05:00", "timezone": "Europe/Atlantis"}]`, "maintenanceWindows[0].timezone"},
		{`, "maintenanceWindows": [{"days": ["Sat", "Saturday"], "start": "02:00", "end": "05:00", "timezone": "UTC"}]`, "maintenanceWindows[0].days[1]"},
		{`, "safetyMarginDays": 0`, "safetyMarginDays"},
		{`, "approval": "yes"`, "approval"},
		{`, "probes": ["shop.example.com:443", "2001:db8::1:443"]`, "probes[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			dep := &fakeDeployer{onboard: func(sp spec.Spec) (pipeline.Result, error) {
				sp.ApplyDefaults()
				return pipeline.Result{}, sp.Validate(func(string) error { return nil })
			}}
			resp, err := NewHandler(dep, &fakeCatalog{}).Handle(context.Background(), events.APIGatewayProxyRequest{
				HTTPMethod: "POST", Path: "/certificates", Resource: "/certificates", Body: optionsBody(tc.extra),
			})
			if err != nil {
				t.Fatal(err)
			}
			var eb errorBody
			_ = json.Unmarshal([]byte(resp.Body), &eb)
			if resp.StatusCode != 400 || eb.Error.Code != "ValidationError" || eb.Error.Field != tc.field || !strings.Contains(eb.Error.Message, "must") {
				t.Fatalf("answer %d %s, want 400 ValidationError on %s saying what it must be", resp.StatusCode, resp.Body, tc.field)
			}
		})
	}
}

// TestGetShowsOptions: GET /certificates/{name} answers the options as the
// body spells them, and leaves them out when unset.
func TestGetShowsOptions(t *testing.T) {
	margin := 14
	sp := spec.Spec{
		Name: "shop-web", CertificateARN: "arn:x",
		Rollout:            &spec.Rollout{Waves: []string{"1", "25%", "100%"}, PauseMinutes: 10, StopAlarm: "shop-5xx"},
		MaintenanceWindows: []spec.MaintenanceWindow{{Days: []string{"Sat", "Sun"}, Start: "02:00", End: "05:00", Timezone: "Europe/Berlin"}},
		SafetyMarginDays:   &margin, Approval: "required", Probes: []string{"shop.example.com:443"},
	}
	for _, tc := range []struct {
		name string
		sp   spec.Spec
		want string
	}{
		{"with options", sp, `"rollout":{"waves":["1","25%","100%"],"pauseMinutes":10,"stopAlarm":"shop-5xx"},` +
			`"maintenanceWindows":[{"days":["Sat","Sun"],"start":"02:00","end":"05:00","timezone":"Europe/Berlin"}],` +
			`"safetyMarginDays":14,"approval":"required","probes":["shop.example.com:443"]`},
		{"without", spec.Spec{Name: "shop-web", CertificateARN: "arn:x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cat := &fakeCatalog{detail: map[string]*inventory.Detail{"shop-web": {Cert: &inventory.Cert{Spec: tc.sp, Status: "active"}}}}
			resp, err := NewHandler(&fakeDeployer{}, cat).Handle(context.Background(), events.APIGatewayProxyRequest{
				HTTPMethod: "GET", Path: "/certificates/shop-web", Resource: "/certificates/{name}", PathParameters: map[string]string{"name": "shop-web"},
			})
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET = %d %s, %v", resp.StatusCode, resp.Body, err)
			}
			if tc.want != "" && !strings.Contains(resp.Body, tc.want) {
				t.Errorf("answer %s\ndoes not hold %s", resp.Body, tc.want)
			}
			if tc.want == "" {
				for _, k := range []string{"rollout", "maintenanceWindows", "safetyMarginDays", "approval", "probes"} {
					if strings.Contains(resp.Body, `"`+k+`"`) {
						t.Errorf("answer shows unset %s: %s", k, resp.Body)
					}
				}
			}
			// What GET shows decodes as an onboarding body again.
			var page map[string]json.RawMessage
			_ = json.Unmarshal([]byte(resp.Body), &page)
			body := map[string]json.RawMessage{"certificateArn": json.RawMessage(`"` + optionsARN + `"`), "name": page["name"],
				"targets": json.RawMessage(`[{"key":"tag:env","values":["prod"]}]`)}
			for _, k := range []string{"rollout", "maintenanceWindows", "safetyMarginDays", "approval", "probes"} {
				if v, ok := page[k]; ok {
					body[k] = v
				}
			}
			raw, _ := json.Marshal(body)
			again, err := ParseOnboard(string(raw), false)
			if err != nil {
				t.Fatalf("GET's options do not onboard again: %v", err)
			}
			if !reflect.DeepEqual(again.Rollout, tc.sp.Rollout) || !reflect.DeepEqual(again.MaintenanceWindows, tc.sp.MaintenanceWindows) ||
				!reflect.DeepEqual(again.Probes, tc.sp.Probes) || again.Approval != tc.sp.Approval || !reflect.DeepEqual(again.SafetyMarginDays, tc.sp.SafetyMarginDays) {
				t.Errorf("round trip %+v, want %+v", again, tc.sp)
			}
		})
	}
}
