package spec

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ProbeTarget is one outside probe of a name: a TLS handshake with Host
// (a DNS name or an IP address) on Port, sending SNI (empty: no SNI).
type ProbeTarget struct {
	Host string
	Port int
	SNI  string
}

const sniSuffix = "/sni="

// ParseProbe reads a probe as the probes field spells it:
//
//	host:port                 shop.example.com:443 (SNI shop.example.com)
//	ipv4:port                 10.0.0.5:443 (no SNI)
//	[ipv6]:port               [2001:db8::1]:8443 (no SNI)
//	…/sni=<dns name>          any of the above with the SNI to send
//
// The port is 1 to 65535 without leading zeros; a host is a DNS name
// (letters, digits, '-', '.'; labels of at most 63, no trailing dot) or an
// IP literal without zone; an IPv6 address needs brackets. DNS names are
// lower-cased (they are case-insensitive), so String gives one spelling.
func ParseProbe(s string) (ProbeTarget, error) {
	const want = `must be host:port, ipv4:port or [ipv6]:port, optionally followed by /sni=<dns name> (e.g. "shop.example.com:443", "[2001:db8::1]:8443/sni=shop.example.com")`
	if s == "" || len(s) > 600 {
		return ProbeTarget{}, fmt.Errorf("%s", want)
	}
	hostPort, sni, hasSNI := s, "", false
	if i := strings.IndexByte(s, '/'); i >= 0 {
		if !strings.HasPrefix(s[i:], sniSuffix) {
			return ProbeTarget{}, fmt.Errorf("%s; a path, scheme or other option is not a probe", want)
		}
		hostPort, sni, hasSNI = s[:i], s[i+len(sniSuffix):], true
		if !isDNSName(sni) {
			return ProbeTarget{}, fmt.Errorf("sni must be a DNS name (letters, digits, '-', '.'; no IP address, wildcard or trailing dot)")
		}
		sni = strings.ToLower(sni)
	}
	var host, port string
	if strings.HasPrefix(hostPort, "[") {
		end := strings.IndexByte(hostPort, ']')
		if end < 0 || !strings.HasPrefix(hostPort[end+1:], ":") {
			return ProbeTarget{}, fmt.Errorf("%s", want)
		}
		host, port = hostPort[1:end], hostPort[end+2:]
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return ProbeTarget{}, fmt.Errorf("%s; brackets hold an IPv6 address without zone", want)
		}
		host = ip.String()
	} else {
		i := strings.LastIndexByte(hostPort, ':')
		if i < 0 {
			return ProbeTarget{}, fmt.Errorf("%s; the port is missing", want)
		}
		host, port = hostPort[:i], hostPort[i+1:]
		switch {
		case strings.Contains(host, ":"):
			return ProbeTarget{}, fmt.Errorf("%s; an IPv6 address needs brackets: [2001:db8::1]:443", want)
		case isDottedNumbers(host):
			ip, err := netip.ParseAddr(host)
			if err != nil || !ip.Is4() {
				return ProbeTarget{}, fmt.Errorf("%s; %q is not an IPv4 address", want, host)
			}
		case isDNSName(host):
			host = strings.ToLower(host)
		default:
			return ProbeTarget{}, fmt.Errorf("%s; the host is neither a DNS name nor an IP address", want)
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || port != strconv.Itoa(p) {
		return ProbeTarget{}, fmt.Errorf("%s; the port must be 1 to 65535", want)
	}
	t := ProbeTarget{Host: host, Port: p, SNI: sni}
	if !hasSNI && !t.hostIsIP() {
		t.SNI = host
	}
	return t, nil
}

// isDNSName: ServerNamePattern, labels of at most 63, no trailing dot, not
// only digits and dots (those are IPv4 addresses).
func isDNSName(s string) bool {
	if !ServerNamePattern.MatchString(s) || strings.HasSuffix(s, ".") || isDottedNumbers(s) {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return false
		}
	}
	return true
}

func (t ProbeTarget) hostIsIP() bool {
	_, err := netip.ParseAddr(t.Host)
	return err == nil
}

// Addr is the address to dial: host:port, [ipv6]:port.
func (t ProbeTarget) Addr() string {
	if strings.Contains(t.Host, ":") {
		return "[" + t.Host + "]:" + strconv.Itoa(t.Port)
	}
	return t.Host + ":" + strconv.Itoa(t.Port)
}

// String spells the target as ParseProbe reads it; /sni= appears only when
// it is not the host name itself.
func (t ProbeTarget) String() string {
	if t.SNI == "" || t.SNI == t.Host {
		return t.Addr()
	}
	return t.Addr() + sniSuffix + t.SNI
}
