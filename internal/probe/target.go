package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// hostPattern is a DNS name (letters, digits, '-' and '.' labels).
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9]((\.?[A-Za-z0-9-]){0,250}\.?[A-Za-z0-9])?$`)

// ParseTarget reads one target of a name's probes: "host:port",
// "[2001:db8::1]:8443", optionally followed by "/sni=name".
func ParseTarget(s string) (Target, error) {
	hostport, sni, hasSNI := strings.Cut(s, "/sni=")
	if !hasSNI && strings.Contains(s, "/") {
		return Target{}, fmt.Errorf("%q: only /sni=<name> may follow host:port", s)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return Target{}, fmt.Errorf("%q: want host:port or [IPv6]:port: %v", s, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return Target{}, fmt.Errorf("%q: port must be 1 to 65535", s)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return Target{}, fmt.Errorf("%q: an IPv6 zone is not allowed", s)
		}
		if a.Is6() && !a.Is4In6() && !strings.HasPrefix(hostport, "[") {
			return Target{}, errors.New("an IPv6 address needs brackets")
		}
	} else if !hostPattern.MatchString(host) {
		return Target{}, fmt.Errorf("%q: host must be a DNS name or an IP address", s)
	}
	if hasSNI {
		if _, err := netip.ParseAddr(sni); err == nil || !hostPattern.MatchString(sni) {
			return Target{}, fmt.Errorf("%q: sni must be a DNS name", s)
		}
	}
	return Target{Host: host, Port: p, SNI: sni}, nil
}
