package cli

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// The rollout and lifecycle flags of `certferry onboard` become the API's
// option fields; only the flags given are sent.
func TestOnboardOptionFlags(t *testing.T) {
	arn := "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
	base := []string{"--name", "shop-web", "--arn", arn, "--target", "tag:env=prod"}
	head := `{"certificateArn":"` + arn + `",`
	tail := `"name":"shop-web","targets":[{"key":"tag:env","values":["prod"]}]}`
	for _, tc := range []struct {
		name string
		args []string
		body string
	}{
		{"all", []string{"--waves", "1,25%,100%", "--pause-minutes", "10", "--stop-alarm", "shop 5xx",
			"--window", "Sat,Sun 02:00-05:00 Europe/Berlin", "--window", " wed  22:00-01:00   UTC ", "--safety-margin-days", "14", "--approval", "required",
			"--probe", "shop.example.com:443", "--probe", "[2001:db8::1]:8443/sni=shop.example.com"},
			`{"approval":"required","certificateArn":"` + arn + `","maintenanceWindows":[{"days":["Sat","Sun"],"start":"02:00","end":"05:00","timezone":"Europe/Berlin"},` +
				`{"days":["wed"],"start":"22:00","end":"01:00","timezone":"UTC"}],"name":"shop-web","probes":["shop.example.com:443","[2001:db8::1]:8443/sni=shop.example.com"],` +
				`"rollout":{"pauseMinutes":10,"stopAlarm":"shop 5xx","waves":["1","25%","100%"]},"safetyMarginDays":14,"targets":[{"key":"tag:env","values":["prod"]}]}`},
		{"none", nil, head + tail},
		{"stop alarm alone", []string{"--stop-alarm", "a"}, head + `"name":"shop-web","rollout":{"stopAlarm":"a"},"targets":[{"key":"tag:env","values":["prod"]}]}`},
		{"explicit zeros are sent", []string{"--pause-minutes", "0", "--safety-margin-days", "0"},
			head + `"name":"shop-web","rollout":{"pauseMinutes":0},"safetyMarginDays":0,"targets":[{"key":"tag:env","values":["prod"]}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var seen []request
			call := fakeAPI(map[string]string{"POST /certificates": `{"name":"shop-web","commandId":"c-1"}`}, &seen)
			var b bytes.Buffer
			if err := RunOnboard(context.Background(), env(call, &b), append(append([]string{}, base...), tc.args...)); err != nil {
				t.Fatal(err)
			}
			if len(seen) != 1 || seen[0].body != tc.body {
				t.Fatalf("sent %+v\nwant %s", seen, tc.body)
			}
		})
	}
}

func TestOnboardBadWindowFlag(t *testing.T) {
	for _, w := range []string{"Sat,Sun 02:00 Europe/Berlin", "Sat,Sun 02:00-05:00", "02:00-05:00 UTC", "Sat 02:00- UTC", "Sat -05:00 UTC", "Sat 02:00-05:00 Europe/Berlin extra", ""} {
		var seen []request
		call := fakeAPI(map[string]string{"POST /certificates": `{}`}, &seen)
		err := RunOnboard(context.Background(), env(call, &bytes.Buffer{}), []string{"--name", "a", "--arn", "arn:x", "--target", "tag:env=prod", "--window", w})
		var ue *UsageError
		if !errors.As(err, &ue) || ExitCode(err) != ExitUsage || len(seen) != 0 {
			t.Errorf("--window %q: %v (sent %d), want a usage error and nothing sent", w, err, len(seen))
		}
	}
}

func TestGetShowsOptionsGolden(t *testing.T) {
	call := fakeAPI(map[string]string{"GET /certificates/opts": `{"name":"opts","status":"active","targets":[{"key":"tag:env","values":["prod"]}],"linux":{},"windows":{},
		"rollout":{"waves":["1","25%","100%"],"pauseMinutes":10,"stopAlarm":"shop-5xx"},
		"maintenanceWindows":[{"days":["Sat","Sun"],"start":"02:00","end":"05:00","timezone":"Europe/Berlin"},{"days":["Wed"],"start":"22:00","end":"01:00","timezone":"UTC"}],
		"safetyMarginDays":14,"approval":"required","probes":["shop.example.com:443","10.0.0.5:443/sni=shop.example.com"],"nodes":[],"deployments":[]}`}, nil)
	var b bytes.Buffer
	if err := RunGet(context.Background(), env(call, &b), []string{"opts"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "get-options.txt", b.String())
}
