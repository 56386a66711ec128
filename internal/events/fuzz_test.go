package events

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/certferry/certferry/internal/certs"
	"github.com/certferry/certferry/internal/spec"
)

// addSamples seeds a fuzz target with every events/ sample of a prefix
// (testdata/fuzz/<Target>/ holds more, hostile ones).
func addSamples(f *testing.F, prefix string) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "events", prefix+"*.json"))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
}

// Whatever arrives, Parse neither panics nor lets through an event that
// names anything but well-formed ACM ARNs, or text with control characters;
// a rollout step only as a valid schedule.Step.
func FuzzParse(f *testing.F) {
	addSamples(f, "renewal-")
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Parse(raw)
		if err != nil {
			if !strings.Contains(err.Error(), ErrMalformed.Error()) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if ev.ID == "" || len(ev.ID) > MaxIDLength || !idPattern.MatchString(ev.ID) {
			t.Fatalf("id %q accepted", ev.ID)
		}
		if ev.Kind == KindRolloutStep {
			// A step names no certificate, only a valid step whose fields
			// keep their grammars; it never deploys by itself.
			if ev.Step == nil || ev.Step.Validate() != nil || len(ev.CertificateARNs) != 0 || ev.Deploys() {
				t.Fatalf("rollout step accepted: %+v (certificates %v)", ev.Step, ev.CertificateARNs)
			}
			return
		}
		if ev.Step != nil {
			t.Fatalf("step %+v on a %s event", ev.Step, ev.Kind)
		}
		if ev.Kind != KindUnknown && (len(ev.CertificateARNs) == 0 || len(ev.CertificateARNs) > MaxCertificates) {
			t.Fatalf("%s event with %d certificates accepted", ev.Kind, len(ev.CertificateARNs))
		}
		for _, a := range ev.CertificateARNs {
			if !certs.ARNPattern.MatchString(a) {
				t.Fatalf("ARN %q accepted", a)
			}
		}
		for _, s := range []string{ev.CommonName, ev.Description, ev.Source, ev.DetailType, ev.Account, ev.Region} {
			if strings.ContainsFunc(s, unicode.IsControl) {
				t.Fatalf("control character kept in %q", s)
			}
		}
		if len(ev.Description) > MaxTextLength+len("…") || len(ev.CommonName) > 256+len("…") {
			t.Fatalf("text not bounded: %d, %d bytes", len(ev.Description), len(ev.CommonName))
		}
		for _, w := range []string{ev.Action, ev.CertificateType, ev.ValidationMethod, ev.RenewalReason, ev.HealthCode} {
			if w != "" && !wordPattern.MatchString(w) {
				t.Fatalf("word field %q accepted", w)
			}
		}
	})
}

// ParseStatus lets through only well-formed command and instance ids.
func FuzzParseStatus(f *testing.F) {
	addSamples(f, "tracker-")
	f.Fuzz(func(t *testing.T, raw []byte) {
		st, ok, err := ParseStatus(raw)
		if err != nil || !ok {
			return
		}
		if !commandIDPattern.MatchString(st.CommandID) || st.Invocation && !spec.InstanceIDPattern.MatchString(st.InstanceID) ||
			!statusPattern.MatchString(st.Status) {
			t.Fatalf("accepted %+v", st)
		}
	})
}
