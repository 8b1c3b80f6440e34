package plan

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Protocols of a published port or a host service.
const (
	TCP = "tcp"
	UDP = "udp"
)

// Port is a published port: connections to HostAddr:HostPort (Proto) on
// the host are forwarded to the workload's ContainerPort. A zero HostAddr
// means every address of the host, IPv4 and IPv6 (as Docker's "8080:80").
type Port struct {
	HostAddr      netip.Addr
	HostPort      uint16
	ContainerPort uint16
	Proto         string // TCP or UDP
}

// PortSyntax describes what ParsePort accepts, for error messages.
const PortSyntax = `"[HOSTADDR:]HOSTPORT:CONTAINERPORT[/PROTO]" such as "8080:80", "127.0.0.1:5353:53/udp" or "[2001:db8::10]:8443:443" ` +
	`(HOSTADDR: one address of the host, IPv6 in brackets; default every address; PROTO: tcp or udp, default tcp)`

// ParsePort parses a published port as Docker's -p writes it:
// "[HOSTADDR:]HOSTPORT:CONTAINERPORT[/PROTO]". An unspecified HOSTADDR
// (0.0.0.0, [::]) is every address, as none.
func ParsePort(s string) (Port, error) {
	bad := func(format string, args ...any) (Port, error) {
		return Port{}, fmt.Errorf("invalid port %q: %s; must be %s", s, fmt.Sprintf(format, args...), PortSyntax)
	}
	p := Port{Proto: TCP}
	rest, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		if proto != TCP && proto != UDP {
			return bad("unknown protocol %q", proto)
		}
		p.Proto = proto
	}
	if strings.HasPrefix(rest, "[") {
		addr, after, ok := strings.Cut(rest[1:], "]:")
		a, err := netip.ParseAddr(addr)
		if !ok || err != nil || !a.Is6() || a.Zone() != "" {
			return bad("%q is not a bracketed IPv6 address followed by ':'", rest)
		}
		p.HostAddr, rest = a, after
	}
	parts := strings.Split(rest, ":")
	if len(parts) == 3 && !p.HostAddr.IsValid() {
		a, err := netip.ParseAddr(parts[0])
		if err != nil || !a.Is4() {
			return bad("host address %q is not an IPv4 address (write IPv6 in brackets)", parts[0])
		}
		p.HostAddr, parts = a, parts[1:]
	}
	if len(parts) != 2 {
		return bad("wrong number of ':'-separated parts")
	}
	if p.HostAddr.IsUnspecified() { // 0.0.0.0 and [::]: every address, as Docker's API takes them
		p.HostAddr = netip.Addr{}
	}
	var err error
	if p.HostPort, err = parsePortNumber(parts[0]); err != nil {
		return bad("host port: %v", err)
	}
	if p.ContainerPort, err = parsePortNumber(parts[1]); err != nil {
		return bad("container port: %v", err)
	}
	return p, nil
}

// ParseRandomPort parses a published port without its host port, as
// Docker's and podman's -p write one to be given a free host port:
// "CONTAINERPORT[/PROTO]" or "HOSTADDR::CONTAINERPORT[/PROTO]" (IPv6 in
// brackets). Its HostPort is 0; ok is false for anything else, a port
// ParsePort reads among them.
func ParseRandomPort(s string) (p Port, ok bool) {
	rest, proto, hasProto := strings.Cut(s, "/")
	var withHost string
	switch i := strings.LastIndex(rest, "::"); {
	case !strings.Contains(rest, ":"):
		withHost = "1:" + rest
	case i > 0 && !strings.Contains(rest[i+2:], ":") && !strings.Contains(rest[i+2:], "]"):
		withHost = rest[:i] + ":1:" + rest[i+2:]
	default:
		return Port{}, false
	}
	if hasProto {
		withHost += "/" + proto
	}
	p, err := ParsePort(withHost)
	if err != nil {
		return Port{}, false
	}
	p.HostPort = 0
	return p, true
}

// parsePortNumber parses a decimal port from 1 to 65535.
func parsePortNumber(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || s[0] == '+' {
		return 0, fmt.Errorf("%q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// String formats p as ParsePort accepts it: "8080:80/tcp",
// "127.0.0.1:5353:53/udp", "[2001:db8::10]:8443:443/tcp".
func (p Port) String() string {
	host := ""
	switch {
	case p.HostAddr.Is6():
		host = "[" + p.HostAddr.String() + "]:"
	case p.HostAddr.IsValid():
		host = p.HostAddr.String() + ":"
	}
	return fmt.Sprintf("%s%d:%d/%s", host, p.HostPort, p.ContainerPort, p.Proto)
}

// Loopback6Proxied says whether p is served on [::1]:HostPort by a
// proxy rather than by the firewall: a port (TCP or UDP) on ::1 or on
// every address. The kernel routes no IPv6 loopback traffic out of lo
// (IPv6 has no route_localnet), so a DNAT rule cannot send [::1]:PORT to
// a workload; a socket-activated proxy on the host does (units.Unit's
// Proxies).
func (p Port) Loopback6Proxied() bool {
	return !p.HostAddr.IsValid() || p.HostAddr == netip.IPv6Loopback()
}

// Conflicts says whether p and q claim the same host port: same protocol
// and port, and the same host address or either on every address.
func (p Port) Conflicts(q Port) bool {
	return p.Proto == q.Proto && p.HostPort == q.HostPort &&
		(!p.HostAddr.IsValid() || !q.HostAddr.IsValid() || p.HostAddr == q.HostAddr)
}

// Privileged says whether the host port is below 1024.
func (p Port) Privileged() bool { return p.HostPort < 1024 }

// HostService is a service of the host, on a network's gateway, that the
// network's workloads may reach (Network.AllowHost).
type HostService struct {
	Port  uint16
	Proto string // TCP or UDP
}

// ParseHostService parses "PORT[/PROTO]" such as "8080" or "123/udp".
func ParseHostService(s string) (HostService, error) {
	port, proto, hasProto := strings.Cut(s, "/")
	h := HostService{Proto: TCP}
	if hasProto {
		if proto != TCP && proto != UDP {
			return HostService{}, fmt.Errorf("invalid host service %q: unknown protocol %q; must be PORT[/tcp|udp]", s, proto)
		}
		h.Proto = proto
	}
	n, err := parsePortNumber(port)
	if err != nil {
		return HostService{}, fmt.Errorf("invalid host service %q: %v; must be PORT[/tcp|udp] such as \"8080\" or \"123/udp\"", s, err)
	}
	h.Port = n
	return h, nil
}

// String formats h as "PORT/PROTO".
func (h HostService) String() string { return fmt.Sprintf("%d/%s", h.Port, h.Proto) }

// Allows says why network n does not let a workload publish p, or nil:
// a host port below 1024 where privileged_ports = false, any port on an
// internal network (nothing is forwarded out of it, replies included, so
// a published port could never answer), and a port on an IPv6 address
// of the host, [::] (all of them) included, on a network without IPv6 (its
// workloads have no IPv6 address to forward to; [::1] is served by a
// proxy, which connects over IPv4, and a port on every address is
// forwarded over IPv4 alone).
func (n Network) Allows(p Port) error {
	switch {
	case n.Internal:
		return fmt.Errorf("network %s is internal (no traffic leaves it, replies included): host port %d cannot be published from it", n.Name, p.HostPort)
	case p.Privileged() && n.NoPrivilegedPorts:
		return fmt.Errorf("host port %d is below 1024, which network %s does not allow (privileged_ports = false)", p.HostPort, n.Name)
	case n.NoIPv6 && p.HostAddr.Is6() && !p.Loopback6Proxied():
		return fmt.Errorf("host address %v is IPv6 and network %s has none (ipv6 = false): nothing there could take the port's connections; publish it on an IPv4 address, on [::1] or on every address", p.HostAddr, n.Name)
	}
	return nil
}
