package events

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certferry/certferry/internal/inventory"
	"github.com/certferry/certferry/internal/localenv"
	"github.com/certferry/certferry/internal/schedule"
)

const sampleARN = localenv.SampleARN

// Every renewal sample in events/ parses to the kind its name announces.
func TestSamples(t *testing.T) {
	want := map[string]struct {
		kind      Kind
		malformed bool
		trigger   inventory.Trigger
		step      *schedule.Step
	}{
		"renewal-available-renewal.json":      {kind: KindAvailable, trigger: "acm-event"},
		"renewal-available-issuance.json":     {kind: KindAvailable, trigger: "acm-event"},
		"renewal-available-string-types.json": {kind: KindAvailable, trigger: "acm-event"},
		"renewal-action-required.json":        {kind: KindActionRequired, trigger: "acm-event"},
		"renewal-approaching-expiration.json": {kind: KindApproachingExpiry, trigger: "acm-event"},
		"renewal-expired.json":                {kind: KindExpired, trigger: "acm-event"},
		"renewal-revoked.json":                {kind: KindRevoked, trigger: "acm-event"},
		// "ACM Certificate Rotated" has no documented payload: the sample
		// carries the envelope and the certificate in resources only.
		"renewal-rotated.json":                {kind: KindRotated, trigger: "acm-event"},
		"renewal-health-completed.json":       {kind: KindRenewed, trigger: "health-event"},
		"renewal-health-failed.json":          {kind: KindRenewalProblem, trigger: "health-event"},
		"renewal-unknown-kind.json":           {kind: KindUnknown, trigger: "health-event"},
		"renewal-malformed-no-resources.json": {malformed: true},
		// certferry's own timed rollout step, as its schedule delivers it.
		"renewal-rollout-step.json": {kind: KindRolloutStep, trigger: "acm-event", step: &schedule.Step{
			Name: "shop-web", RolloutID: "r-20261128T101500Z-7f3a", Kind: schedule.KindWindow, At: time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)}},
		"renewal-rollout-step-malformed.json": {malformed: true},
	}
	files, err := filepath.Glob("../../events/renewal-*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no renewal samples: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			w, ok := want[filepath.Base(f)]
			if !ok {
				t.Fatalf("sample %s has no expectation in this test", f)
			}
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := Parse(raw)
			if w.malformed {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("want ErrMalformed, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != w.kind || ev.Trigger() != w.trigger {
				t.Fatalf("kind %s trigger %s, want %s %s", ev.Kind, ev.Trigger(), w.kind, w.trigger)
			}
			if w.step != nil {
				if ev.Step == nil || *ev.Step != *w.step || len(ev.CertificateARNs) != 0 || ev.Deploys() {
					t.Fatalf("step %+v, certificates %v, deploys %v; want %+v", ev.Step, ev.CertificateARNs, ev.Deploys(), *w.step)
				}
				if ev.ID != w.step.ScheduleName() {
					t.Fatalf("id %s, want the step's schedule name %s", ev.ID, w.step.ScheduleName())
				}
			} else if ev.Step != nil {
				t.Fatalf("step %+v on a %s event", ev.Step, ev.Kind)
			}
			if w.kind != KindUnknown && w.kind != KindRolloutStep && (len(ev.CertificateARNs) != 1 || ev.CertificateARNs[0] != sampleARN) {
				t.Fatalf("certificates %v", ev.CertificateARNs)
			}
			if ev.ID == "" || ev.Time.IsZero() {
				t.Fatalf("id %q time %v", ev.ID, ev.Time)
			}
		})
	}
}

func TestTolerantFields(t *testing.T) {
	ev, err := Parse(mustRead(t, "renewal-available-string-types.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.InUse == nil || !*ev.InUse || ev.Exported == nil || *ev.Exported || ev.DaysToExpiry == nil || *ev.DaysToExpiry != 200 {
		t.Fatalf("string-typed fields: InUse %v Exported %v DaysToExpiry %v", ev.InUse, ev.Exported, ev.DaysToExpiry)
	}
	ev, err = Parse(mustRead(t, "renewal-available-renewal.json"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.InUse == nil || !*ev.InUse || *ev.DaysToExpiry != 200 || ev.Action != "RENEWAL" || ev.ValidationMethod != "DNS" ||
		ev.ExpiresAt.Format("2006-01-02") != "2027-06-08" {
		t.Fatalf("typed fields: %+v", ev)
	}
}

func env(detailType, source, resources, detail string) string {
	return `{"version":"0","id":"ab-1","detail-type":` + detailType + `,"source":` + source +
		`,"time":"2026-11-20T10:15:30Z","resources":` + resources + `,"detail":` + detail + `}`
}

func TestHostileVariants(t *testing.T) {
	arn := `"` + sampleARN + `"`
	huge := strings.Repeat("A", 300_000)
	tests := []struct {
		name      string
		raw       string
		malformed bool
		kind      Kind
		check     func(t *testing.T, ev Event)
	}{
		{name: "empty", raw: ``, malformed: true},
		{name: "null", raw: `null`, malformed: true},
		{name: "array", raw: `[1,2]`, malformed: true},
		{name: "string", raw: `"ACM Certificate Available"`, malformed: true},
		{name: "truncated JSON", raw: `{"id":"x","source":"aws.acm"`, malformed: true},
		{name: "no id", raw: `{"source":"aws.acm","detail-type":"ACM Certificate Available","resources":[` + arn + `]}`, malformed: true},
		{name: "id of wrong type", raw: `{"id":{"a":1},"source":"aws.acm","detail-type":"ACM Certificate Available","resources":[` + arn + `]}`, malformed: true},
		{name: "id with spaces", raw: `{"id":"a b","source":"aws.acm","detail-type":"ACM Certificate Available","resources":[` + arn + `]}`, malformed: true},
		{name: "huge id", raw: `{"id":"` + huge + `","source":"aws.acm","detail-type":"ACM Certificate Available","resources":[` + arn + `]}`, malformed: true},
		{name: "no source", raw: `{"id":"x1","detail-type":"ACM Certificate Available","resources":[` + arn + `]}`, malformed: true},
		{name: "missing resources", raw: env(`"ACM Certificate Available"`, `"aws.acm"`, `null`, `{}`), malformed: true},
		{name: "empty resources", raw: env(`"ACM Certificate Expired"`, `"aws.acm"`, `[]`, `{}`), malformed: true},
		{name: "resources of wrong type", raw: env(`"ACM Certificate Available"`, `"aws.acm"`, `{"a":1}`, `{}`), malformed: true},
		{name: "resources not ACM", raw: env(`"ACM Certificate Available"`, `"aws.acm"`, `["arn:aws:iam::123456789012:role/x","i-0123"]`, `{}`), malformed: true},
		{name: "resources huge string", raw: env(`"ACM Certificate Available"`, `"aws.acm"`, `["`+huge+`"]`, `{}`), malformed: true},
		{name: "ARN with trailing junk", raw: env(`"ACM Certificate Available"`, `"aws.acm"`, `["`+sampleARN+`;rm -rf /"]`, `{}`), malformed: true},
		{name: "too many certificates", raw: env(`"ACM Certificate Available"`, `"aws.acm"`, manyARNs(MaxCertificates+1), `{}`), malformed: true},
		{name: "health for ACM without resources", raw: env(`"AWS Health Event"`, `"aws.health"`, `[]`,
			`{"service":"ACM","eventTypeCode":"AWS_ACM_RENEWAL_STATE_CHANGE","eventDescription":[{"latestDescription":"renewal has completed"}]}`), malformed: true},

		{name: "step without detail", raw: stepEnv(`null`), malformed: true},
		{name: "step detail of wrong type", raw: stepEnv(`"window"`), malformed: true},
		{name: "step without name", raw: stepEnv(`{"rolloutId":"r-1","step":"window","at":"2027-01-02T03:04:05Z"}`), malformed: true},
		{name: "step without rolloutId", raw: stepEnv(`{"name":"shop-web","step":"window","at":"2027-01-02T03:04:05Z"}`), malformed: true},
		{name: "step without kind", raw: stepEnv(`{"name":"shop-web","rolloutId":"r-1","at":"2027-01-02T03:04:05Z"}`), malformed: true},
		{name: "step of unknown kind", raw: stepEnv(`{"name":"shop-web","rolloutId":"r-1","step":"soon","at":"2027-01-02T03:04:05Z"}`), malformed: true},
		{name: "step without time", raw: stepEnv(`{"name":"shop-web","rolloutId":"r-1","step":"pause"}`), malformed: true},
		{name: "step with a bad time", raw: stepEnv(`{"name":"shop-web","rolloutId":"r-1","step":"pause","at":"next Saturday"}`), malformed: true},
		{name: "step time as a number", raw: stepEnv(`{"name":"shop-web","rolloutId":"r-1","step":"pause","at":1798859045}`), malformed: true},
		{name: "step name as a number", raw: stepEnv(`{"name":42,"rolloutId":"r-1","step":"pause","at":"2027-01-02T03:04:05Z"}`), malformed: true},
		{name: "step with a hostile name", raw: stepEnv(`{"name":"shop\nweb; rm","rolloutId":"r-1","step":"pause","at":"2027-01-02T03:04:05Z"}`), malformed: true},
		{name: "step with a huge rolloutId", raw: stepEnv(`{"name":"shop-web","rolloutId":"` + huge + `","step":"pause","at":"2027-01-02T03:04:05Z"}`), malformed: true},
		{name: "step from another source", raw: `{"id":"x1","source":"aws.scheduler","detail-type":"certferry Rollout Step","detail":{"name":"shop-web","rolloutId":"r-1","step":"pause","at":"2027-01-02T03:04:05Z"}}`, kind: KindUnknown},
		{name: "step with extra fields and resources", raw: `{"id":"x1","source":"certferry","detail-type":"certferry Rollout Step","resources":[` + arn + `],` +
			`"detail":{"name":"shop-web","rolloutId":"r-1","step":"deadline","at":"2027-01-02T03:04:05.250+01:00","extra":{"a":1}}}`, kind: KindRolloutStep,
			check: func(t *testing.T, ev Event) {
				want := schedule.Step{Name: "shop-web", RolloutID: "r-1", Kind: schedule.KindDeadline, At: time.Date(2027, 1, 2, 2, 4, 5, 0, time.UTC)}
				if ev.Step == nil || *ev.Step != want || len(ev.CertificateARNs) != 0 || ev.Deploys() {
					t.Fatalf("step %+v certificates %v", ev.Step, ev.CertificateARNs)
				}
			}},
		{name: "resources as one string", raw: env(`"ACM Certificate Available"`, `"aws.acm"`, arn, `{"Action":"RENEWAL"}`), kind: KindAvailable},
		{name: "duplicate and foreign resources", raw: env(`"ACM Certificate Available"`, `"aws.acm"`, `[`+arn+`,`+arn+`,7,null,"i-1"]`, `{}`), kind: KindAvailable,
			check: func(t *testing.T, ev Event) {
				if len(ev.CertificateARNs) != 1 {
					t.Fatalf("certificates %v", ev.CertificateARNs)
				}
			}},
		{name: "detail missing", raw: `{"id":"x1","source":"aws.acm","detail-type":"ACM Certificate Available","resources":[` + arn + `]}`, kind: KindAvailable},
		{name: "detail of wrong type", raw: env(`"ACM Certificate Available"`, `"aws.acm"`, `[`+arn+`]`, `"RENEWAL"`), kind: KindAvailable},
		{name: "fields of wrong types", raw: env(`"ACM Certificate Renewal Action Required"`, `"aws.acm"`, `[`+arn+`]`,
			`{"DaysToExpiry":{"x":1},"InUse":[true],"CommonName":42,"DomainValidationMethod":"EMAIL; DROP","CertificateExpirationDate":"soon"}`), kind: KindActionRequired,
			check: func(t *testing.T, ev Event) {
				if ev.DaysToExpiry != nil || ev.InUse != nil || ev.CommonName != "42" || ev.ValidationMethod != "" || !ev.ExpiresAt.IsZero() {
					t.Fatalf("wrong-typed fields read as %+v", ev)
				}
			}},
		{name: "booleans and numbers as strings", raw: env(`"ACM Certificate Approaching Expiration"`, `"aws.acm"`, `[`+arn+`]`,
			`{"DaysToExpiry":"12","InUse":"TRUE","Exported":"false"}`), kind: KindApproachingExpiry,
			check: func(t *testing.T, ev Event) {
				if *ev.DaysToExpiry != 12 || !*ev.InUse || *ev.Exported {
					t.Fatalf("%+v", ev)
				}
			}},
		{name: "huge common name is cut", raw: env(`"ACM Certificate Expired"`, `"aws.acm"`, `[`+arn+`]`, `{"CommonName":"`+huge+`"}`), kind: KindExpired,
			check: func(t *testing.T, ev Event) {
				if len(ev.CommonName) > 260 {
					t.Fatalf("common name of %d bytes kept", len(ev.CommonName))
				}
			}},
		{name: "control characters are dropped", raw: env(`"ACM Certificate Expired"`, `"aws.acm"`, `[`+arn+`]`, `{"CommonName":"a\nb\u0000c"}`), kind: KindExpired,
			check: func(t *testing.T, ev Event) {
				if ev.CommonName != "a b c" {
					t.Fatalf("common name %q", ev.CommonName)
				}
			}},
		{name: "unknown ACM detail type", raw: env(`"ACM Certificate Imported Somewhere"`, `"aws.acm"`, `[`+arn+`]`, `{}`), kind: KindUnknown},
		{name: "revoked with an empty detail", raw: env(`"ACM Certificate Revoked"`, `"aws.acm"`, `[`+arn+`]`, `{}`), kind: KindRevoked},
		{name: "rotated without detail", raw: `{"id":"x1","source":"aws.acm","detail-type":"ACM Certificate Rotated","resources":[` + arn + `]}`, kind: KindRotated},
		{name: "unknown source", raw: env(`"ACM Certificate Available"`, `"aws.s3"`, `[`+arn+`]`, `{}`), kind: KindUnknown},
		{name: "health for another service", raw: env(`"AWS Health Event"`, `"aws.health"`, `[`+arn+`]`, `{"service":"EC2","eventTypeCode":"AWS_ACM_RENEWAL_STATE_CHANGE"}`), kind: KindUnknown},
		{name: "health with another ACM code", raw: env(`"AWS Health Event"`, `"aws.health"`, `[`+arn+`]`, `{"service":"ACM","eventTypeCode":"AWS_ACM_SOMETHING_NEW"}`), kind: KindUnknown},
		{name: "health renewal failure code", raw: env(`"AWS Health Event"`, `"aws.health"`, `[`+arn+`]`, `{"service":"ACM","eventTypeCode":"AWS_ACM_RENEWAL_FAILURE"}`), kind: KindRenewalProblem},
		{name: "health CAA failure", raw: env(`"AWS Health Event"`, `"aws.health"`, `[`+arn+`]`, `{"service":"ACM","eventTypeCode":"CAA_CHECK_FAILURE"}`), kind: KindRenewalProblem},
		{name: "health without description is a problem", raw: env(`"AWS Health Event"`, `"aws.health"`, `[`+arn+`]`, `{"service":"ACM","eventTypeCode":"AWS_ACM_RENEWAL_STATE_CHANGE"}`), kind: KindRenewalProblem},
		{name: "health certificate only in affected entities", raw: env(`"AWS Health Event"`, `"aws.health"`, `[]`,
			`{"service":"ACM","eventTypeCode":"AWS_ACM_RENEWAL_STATE_CHANGE","affectedEntities":[{"entityValue":`+arn+`}],
			  "eventDescription":[{"language":"fr_FR","latestDescription":"renouvelé"},{"language":"en_US","latestDescription":"ACM has successfully renewed the certificate."}]}`), kind: KindRenewed},
		{name: "health description of wrong type", raw: env(`"AWS Health Event"`, `"aws.health"`, `[`+arn+`]`,
			`{"service":"ACM","eventTypeCode":"AWS_ACM_RENEWAL_STATE_CHANGE","eventDescription":"has completed the renewal"}`), kind: KindRenewalProblem},
		{name: "health huge description", raw: env(`"AWS Health Event"`, `"aws.health"`, `[`+arn+`]`,
			`{"service":"ACM","eventTypeCode":"AWS_ACM_RENEWAL_STATE_CHANGE","eventDescription":[{"latestDescription":"has completed the renewal `+huge+`"}]}`), kind: KindRenewed,
			check: func(t *testing.T, ev Event) {
				if len(ev.Description) > MaxTextLength+4 {
					t.Fatalf("description of %d bytes kept", len(ev.Description))
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := Parse([]byte(tc.raw))
			if tc.malformed {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("want ErrMalformed, got %v (%+v)", err, ev)
				}
				if len(err.Error()) > 400 {
					t.Fatalf("error message of %d bytes echoes the event", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != tc.kind {
				t.Fatalf("kind %s, want %s", ev.Kind, tc.kind)
			}
			if tc.check != nil {
				tc.check(t, ev)
			}
		})
	}
}

func TestRenewalCompleted(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"AWS Certificate Manager (ACM) has completed the renewal of the private certificate.", true},
		{"ACM has successfully renewed the certificate listed below.", true},
		{"The managed renewal of your certificate has been completed.", true},
		{"Your certificate renewal succeeded.", true},
		{"ACM was unable to renew the certificate because the CA is not ACTIVE.", false},
		{"Renewal of the certificate failed. Action is required.", false},
		{"The certificate has not been renewed; it expires in 10 days.", false},
		{"ACM could not complete the renewal.", false},
		{"Your certificate expires in 30 days.", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := RenewalCompleted(tc.text); got != tc.want {
			t.Errorf("RenewalCompleted(%q) = %v, want %v", tc.text, got, tc.want)
		}
	}
}

func stepEnv(detail string) string {
	return `{"version":"0","id":"cf-pause-shop-web-0123456789abcdef","detail-type":"certferry Rollout Step","source":"certferry",` +
		`"time":"2027-01-02T03:04:05Z","resources":[],"detail":` + detail + `}`
}

// The producer (schedule.Render) and the parser agree on every kind: what
// a schedule delivers parses back to exactly the step it was made for,
// with its schedule name as the event id (the dedupe mark's key).
func TestRolloutStepRoundTrip(t *testing.T) {
	at := time.Date(2027, 2, 27, 23, 59, 59, 0, time.UTC)
	for _, k := range schedule.Kinds {
		for _, name := range []string{"a", "shop-web", strings.Repeat("n", 63)} {
			st := schedule.Step{Name: name, RolloutID: "r-20270227T120000Z-0001", Kind: k, At: at}
			raw, err := schedule.Render(st)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := Parse(raw)
			if err != nil {
				t.Fatalf("%s %s: %v", k, name, err)
			}
			if ev.Kind != KindRolloutStep || ev.Step == nil || *ev.Step != st || ev.ID != st.ScheduleName() ||
				!ev.Time.Equal(at) || ev.Source != schedule.Source || ev.Deploys() || len(ev.CertificateARNs) != 0 {
				t.Fatalf("%s %s: parsed %+v (step %+v)", k, name, ev, ev.Step)
			}
		}
	}
}

func manyARNs(n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-`)
		b.WriteString(fmt.Sprintf("%012d", i))
		b.WriteString(`"`)
	}
	b.WriteString("]")
	return b.String()
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Clean: control characters become spaces; long text is cut on a rune
// boundary to at most n bytes, ending with "…".
func TestClean(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"short", "ok", 10, "ok"},
		{"control characters", "a\nb\tc\x00d", 64, "a b c d"},
		{"exactly n", "abcdef", 6, "abcdef"},
		{"cut", "abcdefgh", 6, "abc…"},
		{"cut on a rune boundary", "ééééé", 7, "éé…"},
		{"n below the ellipsis", "abcdef", 2, "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Clean(tc.in, tc.n)
			if got != tc.want {
				t.Errorf("Clean(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
			if len(tc.in) > tc.n && tc.n >= len("…") && len(got) > tc.n {
				t.Errorf("Clean(%q, %d) is %d bytes", tc.in, tc.n, len(got))
			}
		})
	}
}
