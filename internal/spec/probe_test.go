package spec

import (
	"strings"
	"testing"
)

func TestParseProbe(t *testing.T) {
	tests := []struct {
		in     string
		want   ProbeTarget
		canon  string // String(); "" = in
		errHas string // non-empty: ParseProbe must fail, its message containing this
	}{
		{in: "shop.example.com:443", want: ProbeTarget{"shop.example.com", 443, "shop.example.com"}},
		{in: "Shop.Example.COM:443", want: ProbeTarget{"shop.example.com", 443, "shop.example.com"}, canon: "shop.example.com:443"},
		{in: "localhost:8443", want: ProbeTarget{"localhost", 8443, "localhost"}},
		{in: "lb.internal:443/sni=shop.example.com", want: ProbeTarget{"lb.internal", 443, "shop.example.com"}},
		{in: "shop.example.com:443/sni=shop.example.com", want: ProbeTarget{"shop.example.com", 443, "shop.example.com"}, canon: "shop.example.com:443"},
		{in: "10.0.0.5:443", want: ProbeTarget{"10.0.0.5", 443, ""}},
		{in: "10.0.0.5:443/sni=x", want: ProbeTarget{"10.0.0.5", 443, "x"}},
		{in: "[2001:db8::1]:8443/sni=shop.example.com", want: ProbeTarget{"2001:db8::1", 8443, "shop.example.com"}},
		{in: "[2001:DB8:0::1]:443", want: ProbeTarget{"2001:db8::1", 443, ""}, canon: "[2001:db8::1]:443"},
		{in: "[::1]:1", want: ProbeTarget{"::1", 1, ""}},
		{in: "a:65535", want: ProbeTarget{"a", 65535, "a"}},
		{in: "xn--bcher-kva.example:443", want: ProbeTarget{"xn--bcher-kva.example", 443, "xn--bcher-kva.example"}},

		{in: "", errHas: "host:port"},
		{in: "shop.example.com", errHas: "port is missing"},
		{in: "shop.example.com:", errHas: "1 to 65535"},
		{in: "shop.example.com:0", errHas: "1 to 65535"},
		{in: "shop.example.com:65536", errHas: "1 to 65535"},
		{in: "shop.example.com:0443", errHas: "1 to 65535"},
		{in: "shop.example.com:+443", errHas: "1 to 65535"},
		{in: "shop.example.com:https", errHas: "1 to 65535"},
		{in: "shop.example.com :443", errHas: "neither"},
		{in: " shop.example.com:443", errHas: "neither"},
		{in: "shop.example.com:443 ", errHas: "1 to 65535"},
		{in: "user@shop.example.com:443", errHas: "neither"},
		{in: "user:pw@shop.example.com:443", errHas: "brackets"},
		{in: "https://shop.example.com:443", errHas: "not a probe"},
		{in: "shop.example.com:443/health", errHas: "not a probe"},
		{in: "shop.example.com:443/sni=", errHas: "sni must be"},
		{in: "shop.example.com:443/sni=10.0.0.1", errHas: "sni must be"},
		{in: "shop.example.com:443/sni=*.example.com", errHas: "sni must be"},
		{in: "shop.example.com:443/sni=a b", errHas: "sni must be"},
		{in: "shop.example.com:443/sni=x/y", errHas: "sni must be"},
		{in: "shop.example.com.:443", errHas: "neither"},
		{in: "-shop.example.com:443", errHas: "neither"},
		{in: "shop-.example.com:443", errHas: "neither"},
		{in: strings.Repeat("a", 64) + ".example.com:443", errHas: "neither"},
		{in: "shop_1.example.com:443", errHas: "neither"},
		{in: "2001:db8::1:443", errHas: "brackets"},
		{in: "::1:443", errHas: "brackets"},
		{in: "[fe80::1%eth0]:443", errHas: "without zone"},
		{in: "[10.0.0.5]:443", errHas: "IPv6"},
		{in: "[2001:db8::1]", errHas: "host:port"},
		{in: "[2001:db8::1]443", errHas: "host:port"},
		{in: "[2001:db8::1]:", errHas: "1 to 65535"},
		{in: "10.0.0.256:443", errHas: "not an IPv4"},
		{in: "010.0.0.5:443", errHas: "not an IPv4"},
		{in: "10.0.0:443", errHas: "not an IPv4"},
		{in: "shop.example.com:443\n", errHas: "1 to 65535"},
		{in: "shop.example.com;id:443", errHas: "neither"},
		{in: strings.Repeat("a.", 400) + "b:443", errHas: "host:port"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseProbe(tc.in)
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("ParseProbe(%q) = %+v, %v; want an error containing %q", tc.in, got, err, tc.errHas)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseProbe(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			canon := tc.canon
			if canon == "" {
				canon = tc.in
			}
			if got.String() != canon {
				t.Errorf("String() = %q, want %q", got.String(), canon)
			}
			again, err := ParseProbe(got.String())
			if err != nil || again != got {
				t.Errorf("round trip %q = %+v, %v; want %+v", got.String(), again, err, got)
			}
		})
	}
}

func TestProbeAddr(t *testing.T) {
	for in, want := range map[string]string{
		"shop.example.com:443":                    "shop.example.com:443",
		"[2001:db8::1]:8443/sni=shop.example.com": "[2001:db8::1]:8443",
		"10.0.0.5:443/sni=x":                      "10.0.0.5:443",
	} {
		p, err := ParseProbe(in)
		if err != nil || p.Addr() != want {
			t.Errorf("ParseProbe(%q).Addr() = %q, %v; want %q", in, p.Addr(), err, want)
		}
	}
}

// Whatever the input, an accepted probe spells itself one way and reads
// back the same; ParseProbe never panics.
func FuzzParseProbe(f *testing.F) {
	for _, s := range []string{"shop.example.com:443", "[2001:db8::1]:8443/sni=shop.example.com", "10.0.0.5:443/sni=x", "[::ffff:10.0.0.1]:1", "a:1/sni=b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProbe(s)
		if err != nil {
			return
		}
		if p.Port < 1 || p.Port > 65535 || p.Host == "" || strings.ContainsAny(p.String(), " \t\n@%") {
			t.Fatalf("ParseProbe(%q) accepted %+v", s, p)
		}
		again, err := ParseProbe(p.String())
		if err != nil || again != p {
			t.Fatalf("ParseProbe(%q) = %+v; its String %q reads back as %+v, %v", s, p, p.String(), again, err)
		}
	})
}
