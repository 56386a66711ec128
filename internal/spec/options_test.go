package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
)

func TestValidateOptions(t *testing.T) {
	days := func(d int) *int { return &d }
	win := func() MaintenanceWindow {
		return MaintenanceWindow{Days: []string{"Sat", "Sun"}, Start: "02:00", End: "05:00", Timezone: "Europe/Berlin"}
	}
	tests := []struct {
		name      string
		mutate    func(*Spec)
		wantField string
	}{
		{name: "all options", mutate: func(s *Spec) {
			s.Rollout = &Rollout{Waves: []string{"1", "25%", "100%"}, PauseMinutes: 10, StopAlarm: "shop-5xx"}
			s.MaintenanceWindows = []MaintenanceWindow{win()}
			s.SafetyMarginDays = days(14)
			s.Approval = "required"
			s.Probes = []string{"shop.example.com:443", "[2001:db8::1]:8443/sni=shop.example.com"}
		}},
		{name: "waves single 100%", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"100%"}} }},
		{name: "waves counts then shares", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"1", "5", "10%", "50%", "100%"}} }},
		{name: "waves equal neighbours", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"2", "2", "100%"}} }},
		{name: "waves ten", mutate: func(s *Spec) {
			s.Rollout = &Rollout{Waves: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "100%"}}
		}},
		{name: "waves eleven", mutate: func(s *Spec) {
			s.Rollout = &Rollout{Waves: []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "100%"}}
		}, wantField: "rollout.waves"},
		{name: "wave count max", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"10000", "100%"}} }},
		{name: "wave count too big", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"10001", "100%"}} }, wantField: "rollout.waves[0]"},
		{name: "wave zero", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"0", "100%"}} }, wantField: "rollout.waves[0]"},
		{name: "wave zero percent", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"0%", "100%"}} }, wantField: "rollout.waves[0]"},
		{name: "wave negative", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"-1", "100%"}} }, wantField: "rollout.waves[0]"},
		{name: "wave leading zero", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"01", "100%"}} }, wantField: "rollout.waves[0]"},
		{name: "wave fraction", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"2.5%", "100%"}} }, wantField: "rollout.waves[0]"},
		{name: "wave over 100%", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"1", "101%"}} }, wantField: "rollout.waves[1]"},
		{name: "wave spaces", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{" 1", "100%"}} }, wantField: "rollout.waves[0]"},
		{name: "wave percent sign first", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"%5", "100%"}} }, wantField: "rollout.waves[0]"},
		{name: "last wave not 100%", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"1", "50%"}} }, wantField: "rollout.waves[1]"},
		{name: "last wave a count", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"1", "500"}} }, wantField: "rollout.waves[1]"},
		{name: "100% not last", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"1", "100%", "100%"}} }, wantField: "rollout.waves[1]"},
		{name: "counts decrease", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"5", "10%", "2", "100%"}} }, wantField: "rollout.waves[2]"},
		{name: "shares decrease", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"50%", "1", "25%", "100%"}} }, wantField: "rollout.waves[2]"},
		{name: "pause without waves", mutate: func(s *Spec) { s.Rollout = &Rollout{PauseMinutes: 5} }, wantField: "rollout.pauseMinutes"},
		{name: "pause max", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"1", "100%"}, PauseMinutes: 1440} }},
		{name: "pause too long", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"1", "100%"}, PauseMinutes: 1441} }, wantField: "rollout.pauseMinutes"},
		{name: "pause negative", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{"1", "100%"}, PauseMinutes: -1} }, wantField: "rollout.pauseMinutes"},
		{name: "stop alarm alone", mutate: func(s *Spec) { s.Rollout = &Rollout{StopAlarm: "shop 5xx / p99 > 2s"} }},
		{name: "stop alarm 255", mutate: func(s *Spec) { s.Rollout = &Rollout{StopAlarm: strings.Repeat("é", 255)} }},
		{name: "stop alarm 256", mutate: func(s *Spec) { s.Rollout = &Rollout{StopAlarm: strings.Repeat("a", 256)} }, wantField: "rollout.stopAlarm"},
		{name: "stop alarm spaces", mutate: func(s *Spec) { s.Rollout = &Rollout{StopAlarm: "   "} }, wantField: "rollout.stopAlarm"},
		{name: "stop alarm newline", mutate: func(s *Spec) { s.Rollout = &Rollout{StopAlarm: "a\nb"} }, wantField: "rollout.stopAlarm"},
		{name: "stop alarm line separator", mutate: func(s *Spec) { s.Rollout = &Rollout{StopAlarm: "a\u2028b"} }, wantField: "rollout.stopAlarm"},
		{name: "stop alarm nul", mutate: func(s *Spec) { s.Rollout = &Rollout{StopAlarm: "a\x00"} }, wantField: "rollout.stopAlarm"},
		{name: "stop alarm bad utf8", mutate: func(s *Spec) { s.Rollout = &Rollout{StopAlarm: "a\xff"} }, wantField: "rollout.stopAlarm"},

		{name: "window lower-case days", mutate: func(s *Spec) {
			w := win()
			w.Days = []string{"sat", "SUN"}
			s.MaintenanceWindows = []MaintenanceWindow{w}
		}},
		{name: "window crossing midnight", mutate: func(s *Spec) {
			w := win()
			w.Start, w.End = "22:00", "02:00"
			s.MaintenanceWindows = []MaintenanceWindow{w}
		}},
		{name: "window ending at midnight", mutate: func(s *Spec) {
			w := win()
			w.Start, w.End = "22:00", "00:00"
			s.MaintenanceWindows = []MaintenanceWindow{w}
		}},
		{name: "window utc", mutate: func(s *Spec) { w := win(); w.Timezone = "UTC"; s.MaintenanceWindows = []MaintenanceWindow{w} }},
		{name: "window etc zone", mutate: func(s *Spec) { w := win(); w.Timezone = "Etc/GMT+5"; s.MaintenanceWindows = []MaintenanceWindow{w} }},
		{name: "window three-part zone", mutate: func(s *Spec) {
			w := win()
			w.Timezone = "America/Argentina/Buenos_Aires"
			s.MaintenanceWindows = []MaintenanceWindow{w}
		}},
		{name: "seven windows", mutate: func(s *Spec) {
			for range 7 {
				s.MaintenanceWindows = append(s.MaintenanceWindows, win())
			}
		}},
		{name: "eight windows", mutate: func(s *Spec) {
			for range 8 {
				s.MaintenanceWindows = append(s.MaintenanceWindows, win())
			}
		}, wantField: "maintenanceWindows"},
		{name: "window no days", mutate: func(s *Spec) { w := win(); w.Days = nil; s.MaintenanceWindows = []MaintenanceWindow{w} }, wantField: "maintenanceWindows[0].days"},
		{name: "window day long name", mutate: func(s *Spec) {
			w := win()
			w.Days = []string{"Sat", "Sunday"}
			s.MaintenanceWindows = []MaintenanceWindow{w}
		}, wantField: "maintenanceWindows[0].days[1]"},
		{name: "window duplicate day", mutate: func(s *Spec) {
			w := win()
			w.Days = []string{"Sat", "sat"}
			s.MaintenanceWindows = []MaintenanceWindow{w}
		}, wantField: "maintenanceWindows[0].days[1]"},
		{name: "window bad start", mutate: func(s *Spec) { w := win(); w.Start = "2:00"; s.MaintenanceWindows = []MaintenanceWindow{w} }, wantField: "maintenanceWindows[0].start"},
		{name: "window start 24:00", mutate: func(s *Spec) { w := win(); w.Start = "24:00"; s.MaintenanceWindows = []MaintenanceWindow{w} }, wantField: "maintenanceWindows[0].start"},
		{name: "window start with seconds", mutate: func(s *Spec) { w := win(); w.Start = "02:00:00"; s.MaintenanceWindows = []MaintenanceWindow{w} }, wantField: "maintenanceWindows[0].start"},
		{name: "window end 12h", mutate: func(s *Spec) { w := win(); w.End = "5:00 AM"; s.MaintenanceWindows = []MaintenanceWindow{w} }, wantField: "maintenanceWindows[0].end"},
		{name: "window end equals start", mutate: func(s *Spec) { w := win(); w.End = w.Start; s.MaintenanceWindows = []MaintenanceWindow{w} }, wantField: "maintenanceWindows[0].end"},
		{name: "window no zone", mutate: func(s *Spec) { w := win(); w.Timezone = ""; s.MaintenanceWindows = []MaintenanceWindow{w} }, wantField: "maintenanceWindows[0].timezone"},
		{name: "window local zone", mutate: func(s *Spec) { w := win(); w.Timezone = "Local"; s.MaintenanceWindows = []MaintenanceWindow{w} }, wantField: "maintenanceWindows[0].timezone"},
		{name: "window unknown zone", mutate: func(s *Spec) {
			w := win()
			w.Timezone = "Europe/Atlantis"
			s.MaintenanceWindows = []MaintenanceWindow{w}
		}, wantField: "maintenanceWindows[0].timezone"},
		{name: "window zone traversal", mutate: func(s *Spec) {
			w := win()
			w.Timezone = "../../etc/passwd"
			s.MaintenanceWindows = []MaintenanceWindow{w}
		}, wantField: "maintenanceWindows[0].timezone"},
		{name: "window zone offset", mutate: func(s *Spec) { w := win(); w.Timezone = "+02:00"; s.MaintenanceWindows = []MaintenanceWindow{w} }, wantField: "maintenanceWindows[0].timezone"},
		{name: "second window bad", mutate: func(s *Spec) {
			w := win()
			w.Timezone = "CEST"
			s.MaintenanceWindows = []MaintenanceWindow{win(), w}
		}, wantField: "maintenanceWindows[1].timezone"},

		{name: "margin 1", mutate: func(s *Spec) { s.SafetyMarginDays = days(1) }},
		{name: "margin 60", mutate: func(s *Spec) { s.SafetyMarginDays = days(60) }},
		{name: "margin 0", mutate: func(s *Spec) { s.SafetyMarginDays = days(0) }, wantField: "safetyMarginDays"},
		{name: "margin 61", mutate: func(s *Spec) { s.SafetyMarginDays = days(61) }, wantField: "safetyMarginDays"},
		{name: "approval upper case", mutate: func(s *Spec) { s.Approval = "Required" }, wantField: "approval"},
		{name: "approval none spelled", mutate: func(s *Spec) { s.Approval = "none" }, wantField: "approval"},

		{name: "ten probes", mutate: func(s *Spec) {
			for i := range 10 {
				s.Probes = append(s.Probes, "10.0.0."+string(rune('0'+i))+":443")
			}
		}},
		{name: "eleven probes", mutate: func(s *Spec) {
			for i := range 11 {
				s.Probes = append(s.Probes, "shop.example.com:"+string(rune('1'+i%9))+"443")
			}
		}, wantField: "probes"},
		{name: "probe bad", mutate: func(s *Spec) { s.Probes = []string{"shop.example.com:443", "https://shop.example.com"} }, wantField: "probes[1]"},
		{name: "probe duplicate", mutate: func(s *Spec) {
			s.Probes = []string{"shop.example.com:443", "SHOP.example.com:443/sni=shop.example.com"}
		}, wantField: "probes[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.mutate(&s)
			s.ApplyDefaults()
			fe := checkFieldError(t, s.Validate(okARN), tc.wantField)
			if fe == nil {
				return
			}
			if !strings.Contains(fe.Message, "must") && !strings.Contains(fe.Message, "is required") &&
				!strings.Contains(fe.Message, "twice") && !strings.Contains(fe.Message, "repeats") && !strings.Contains(fe.Message, "give") {
				t.Errorf("message %q does not say how to fix it", fe.Message)
			}
		})
	}
}

// TestApplyDefaultsNormalisesOptions: empty lists and an empty rollout
// are the same as absent ones, as they come back from DynamoDB (omitempty),
// so re-onboarding an unchanged spec compares equal in pipeline.Onboard.
func TestApplyDefaultsNormalisesOptions(t *testing.T) {
	absent := valid()
	tests := []struct {
		name   string
		mutate func(*Spec)
	}{
		{name: "empty rollout", mutate: func(s *Spec) { s.Rollout = &Rollout{} }},
		{name: "rollout with empty waves", mutate: func(s *Spec) { s.Rollout = &Rollout{Waves: []string{}} }},
		{name: "empty windows", mutate: func(s *Spec) { s.MaintenanceWindows = []MaintenanceWindow{} }},
		{name: "empty probes", mutate: func(s *Spec) { s.Probes = []string{} }},
		{name: "all empty", mutate: func(s *Spec) {
			s.Rollout, s.MaintenanceWindows, s.Probes = &Rollout{Waves: []string{}}, []MaintenanceWindow{}, []string{}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.mutate(&s)
			s.ApplyDefaults()
			if !reflect.DeepEqual(s, absent) {
				t.Errorf("after ApplyDefaults %+v, want %+v", s, absent)
			}
		})
	}

	// A rollout with only a stop alarm keeps it, with nil waves.
	s := valid()
	s.Rollout = &Rollout{Waves: []string{}, StopAlarm: "x"}
	s.ApplyDefaults()
	if s.Rollout == nil || s.Rollout.Waves != nil || s.Rollout.StopAlarm != "x" || s.Rollout.Waved() {
		t.Errorf("rollout = %+v", s.Rollout)
	}

	// Day names get one spelling, and ApplyDefaults is idempotent.
	w := valid()
	w.MaintenanceWindows = []MaintenanceWindow{{Days: []string{"sat", "SUN", "Mon"}, Start: "02:00", End: "05:00", Timezone: "UTC"}}
	w.ApplyDefaults()
	if got := w.MaintenanceWindows[0].Days; !reflect.DeepEqual(got, []string{"Sat", "Sun", "Mon"}) {
		t.Errorf("days = %q", got)
	}
	again := w
	again.MaintenanceWindows = []MaintenanceWindow{w.MaintenanceWindows[0]}
	again.MaintenanceWindows[0].Days = append([]string(nil), w.MaintenanceWindows[0].Days...)
	again.ApplyDefaults()
	if !reflect.DeepEqual(again, w) {
		t.Errorf("ApplyDefaults is not idempotent: %+v then %+v", w, again)
	}
	if !w.Gated() || absent.Gated() {
		t.Errorf("Gated: with windows %v, without %v", w.Gated(), absent.Gated())
	}
}

func TestWaveOf(t *testing.T) {
	tests := []struct {
		wave  string
		total int
		want  int
	}{
		{"1", 4, 1}, {"50%", 4, 2}, {"100%", 4, 4}, {"1%", 10, 1}, {"25%", 10, 3}, {"10", 4, 4}, {"1", 0, 0}, {"100%", 0, 0},
	}
	for _, tc := range tests {
		w, err := ParseWave(tc.wave)
		if err != nil {
			t.Fatalf("ParseWave(%q) = %v", tc.wave, err)
		}
		if got := w.Of(tc.total); got != tc.want {
			t.Errorf("%s of %d = %d, want %d", tc.wave, tc.total, got, tc.want)
		}
	}
}

// TestOptionsSurviveTheInventory: a spec with defaults applied comes back
// from DynamoDB's attribute values (as the inventory stores it) equal to
// itself, so pipeline.Onboard's reflect.DeepEqual finds an unchanged
// re-onboarding unchanged.
func TestOptionsSurviveTheInventory(t *testing.T) {
	margin := 14
	for _, tc := range []struct {
		name   string
		mutate func(*Spec)
	}{
		{name: "no options", mutate: func(*Spec) {}},
		{name: "empty options", mutate: func(s *Spec) {
			s.Rollout, s.MaintenanceWindows, s.Probes = &Rollout{Waves: []string{}}, []MaintenanceWindow{}, []string{}
		}},
		{name: "stop alarm only", mutate: func(s *Spec) { s.Rollout = &Rollout{StopAlarm: "a"} }},
		{name: "all options", mutate: func(s *Spec) {
			s.Rollout = &Rollout{Waves: []string{"1", "25%", "100%"}, PauseMinutes: 10, StopAlarm: "shop-5xx"}
			s.MaintenanceWindows = []MaintenanceWindow{{Days: []string{"sat", "Sun"}, Start: "22:00", End: "02:00", Timezone: "Europe/Berlin"}}
			s.SafetyMarginDays, s.Approval, s.Probes = &margin, "required", []string{"shop.example.com:443"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.mutate(&s)
			s.ApplyDefaults()
			if err := s.Validate(okARN); err != nil {
				t.Fatal(err)
			}
			item, err := attributevalue.MarshalMap(s)
			if err != nil {
				t.Fatal(err)
			}
			var back Spec
			if err := attributevalue.UnmarshalMap(item, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, s) {
				t.Errorf("stored and read back:\n%+v\nwant\n%+v", back, s)
			}
		})
	}
}

// TestValidateStopAlarm: the form check the API runs before it asks
// CloudWatch for the alarm is Validate's own (same field, same verdicts).
func TestValidateStopAlarm(t *testing.T) {
	for _, tc := range []struct {
		name, alarm string
		ok          bool
	}{
		{"plain", "shop-5xx", true},
		{"spaces and symbols", "shop 5xx / p99 > 2s", true},
		{"255 runes", strings.Repeat("é", 255), true},
		{"256", strings.Repeat("a", 256), false},
		{"only spaces", "   ", false},
		{"empty", "", false},
		{"newline", "a\nb", false},
		{"bad utf8", "a\xff", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateStopAlarm(tc.alarm)
			var fe *FieldError
			if tc.ok != (err == nil) || err != nil && (!errors.As(err, &fe) || fe.Field != "rollout.stopAlarm") {
				t.Fatalf("ValidateStopAlarm(%q) = %v, want ok %v on rollout.stopAlarm", tc.alarm, err, tc.ok)
			}
			s := Spec{Rollout: &Rollout{StopAlarm: tc.alarm}}
			if tc.alarm != "" && (validateRollout(s.Rollout) == nil) != tc.ok {
				t.Fatalf("validateRollout disagrees for %q", tc.alarm)
			}
		})
	}
}
