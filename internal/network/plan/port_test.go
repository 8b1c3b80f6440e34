package plan

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	for in, want := range map[string]Port{
		"8080:80":                 {HostPort: 8080, ContainerPort: 80, Proto: TCP},
		"127.0.0.1:5353:53/udp":   {HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, ContainerPort: 53, Proto: UDP},
		"[2001:db8::10]:8443:443": {HostAddr: netip.MustParseAddr("2001:db8::10"), HostPort: 8443, ContainerPort: 443, Proto: TCP},
		"[::1]:8443:443":          {HostAddr: netip.IPv6Loopback(), HostPort: 8443, ContainerPort: 443, Proto: TCP},
		"[::1]:5353:53/udp":       {HostAddr: netip.IPv6Loopback(), HostPort: 5353, ContainerPort: 53, Proto: UDP},
		"0.0.0.0:8080:80":         {HostPort: 8080, ContainerPort: 80, Proto: TCP},
		"[::]:5353:53/udp":        {HostPort: 5353, ContainerPort: 53, Proto: UDP},
	} {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if back, err := ParsePort(got.String()); err != nil || back != got {
			t.Errorf("ParsePort(%q.String() = %q) = %+v, %v", in, got.String(), back, err)
		}
	}
	for in, msg := range map[string]string{
		"80":             "wrong number",
		"0:80":           "host port",
		"8080:65536":     "container port",
		"8080:80/sctp":   "unknown protocol",
		"::1:8080:80":    "wrong number",
		"1.2.3:8080:80":  "not an IPv4 address",
		"[fe80::1%eth0]": "bracketed IPv6",
		"+80:80":         "host port",
	} {
		if _, err := ParsePort(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParsePort(%q) = %v, want an error with %q", in, err, msg)
		}
	}
	a, b := Port{HostPort: 80, Proto: TCP}, Port{HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 80, Proto: TCP}
	if !a.Conflicts(b) || b.Conflicts(Port{HostAddr: netip.MustParseAddr("127.0.0.2"), HostPort: 80, Proto: TCP}) || a.Conflicts(Port{HostPort: 80, Proto: UDP}) {
		t.Error("Conflicts")
	}
}

func TestLoopback6Proxied(t *testing.T) {
	for in, want := range map[string]bool{
		"8080:80": true, "[::1]:8080:80": true, "8080:80/udp": true, "[::1]:5353:53/udp": true,
		"127.0.0.1:8080:80": false, "127.0.0.1:5353:53/udp": false, "[2001:db8::10]:8080:80": false,
	} {
		p, err := ParsePort(in)
		if err != nil || p.Loopback6Proxied() != want {
			t.Errorf("ParsePort(%q).Loopback6Proxied() = %v (%v), want %v", in, p.Loopback6Proxied(), err, want)
		}
	}
}

func TestAllows(t *testing.T) {
	n := Default()
	low, high := Port{HostPort: 80, ContainerPort: 80, Proto: TCP}, Port{HostPort: 8080, ContainerPort: 80, Proto: TCP}
	if n.Allows(low) != nil || n.Allows(high) != nil {
		t.Error("the default network refuses a port")
	}
	n.NoPrivilegedPorts = true
	if err := n.Allows(low); err == nil || !strings.Contains(err.Error(), "below 1024") || n.Allows(high) != nil {
		t.Errorf("privileged_ports = false: %v", err)
	}
	n.Internal = true
	if err := n.Allows(high); err == nil || !strings.Contains(err.Error(), "internal") {
		t.Errorf("internal network: %v", err)
	}
}

// TestAllowsIPv6OnlyWithIPv6: on a network without IPv6 a port on one
// IPv6 address of the host is refused; [::1] (a proxy's, over IPv4),
// IPv4 addresses and every address are not.
func TestAllowsIPv6OnlyWithIPv6(t *testing.T) {
	n := Default()
	n.NoIPv6 = true
	for _, s := range []string{"[2001:db8::10]:8443:443", "[fd00::1]:53:53/udp"} {
		p, _ := ParsePort(s)
		if err := n.Allows(p); err == nil || !strings.Contains(err.Error(), "ipv6 = false") {
			t.Errorf("%s on an IPv4-only network: %v, want refused", s, err)
		}
		n.NoIPv6 = false
		if err := n.Allows(p); err != nil {
			t.Errorf("%s on a network with IPv6: %v", s, err)
		}
		n.NoIPv6 = true
	}
	for _, s := range []string{"[::1]:8443:443", "[::1]:5353:53/udp", "8080:80", "127.0.0.1:53:53/udp", "192.0.2.1:80:80"} {
		p, _ := ParsePort(s)
		if err := n.Allows(p); err != nil {
			t.Errorf("%s on an IPv4-only network: %v", s, err)
		}
	}
}

// TestParseRandomPort: Docker's -p forms without a host port parse with
// HostPort 0; a port with one, and malformed ones, do not.
func TestParseRandomPort(t *testing.T) {
	for s, want := range map[string]string{
		"80":              "0:80/tcp",
		"53/udp":          "0:53/udp",
		"127.0.0.1::80":   "127.0.0.1:0:80/tcp",
		"[::1]::5353/udp": "[::1]:0:5353/udp",
		"[fd00::1]::443":  "[fd00::1]:0:443/tcp",
		"0.0.0.0::80":     "0:80/tcp",
	} {
		if p, ok := ParseRandomPort(s); !ok || p.String() != want {
			t.Errorf("ParseRandomPort(%q) = %v, %v; want %s", s, p, ok, want)
		}
	}
	for _, s := range []string{"8080:80", "127.0.0.1:8080:80", "[::1]:8080:80", "::80", "0", "80/sctp", "[::1]:80", "x", "127.0.0.1::", "[fd00::1]::"} {
		if p, ok := ParseRandomPort(s); ok {
			t.Errorf("ParseRandomPort(%q) = %v, want none", s, p)
		}
	}
}
