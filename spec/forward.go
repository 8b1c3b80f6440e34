package spec

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// DefaultForwardAddr is the host address of a forward written without one.
const DefaultForwardAddr = "127.0.0.1"

// forwardSyntax describes the syntax of a forward, for errors.
var forwardSyntax = `must be "[HOSTADDR:]HOSTPORT:GUESTPORT[/PROTO]" such as "127.0.0.1:2222:22/tcp" or "8080:80" ` +
	`(HOSTADDR is an IPv4 address, default ` + DefaultForwardAddr + `; PROTO is ` + strings.Join(protocolValues, " or ") + `, default ` + ProtoTCP + `)`

// ParseForward parses a port forward "[HOSTADDR:]HOSTPORT:GUESTPORT[/PROTO]":
// HOSTADDR is an IPv4 address and defaults to DefaultForwardAddr
// (127.0.0.1: reachable from the host only; 0.0.0.0 listens on all
// interfaces), the ports are decimal numbers from 1 to 65535 and PROTO is
// "tcp" (the default) or "udp".
func ParseForward(s string) (Forward, error) {
	bad := func(format string, args ...any) (Forward, error) {
		return Forward{}, fmt.Errorf("invalid forward %q: %s; %s", s, fmt.Sprintf(format, args...), forwardSyntax)
	}
	if msg := checkText(s); msg != "" {
		return Forward{}, fmt.Errorf("invalid forward %q: %s", s, msg)
	}
	f := Forward{HostAddr: DefaultForwardAddr, Proto: ProtoTCP}
	rest, proto, hasProto := strings.Cut(s, "/")
	if hasProto {
		if !slices.Contains(protocolValues, proto) {
			return bad("unknown protocol %q (allowed: %s)", proto, strings.Join(protocolValues, ", "))
		}
		f.Proto = proto
	}
	parts := strings.Split(rest, ":")
	switch len(parts) {
	case 2:
	case 3:
		a, err := netip.ParseAddr(parts[0])
		if err != nil || !a.Is4() {
			return bad("host address %q is not an IPv4 address such as 127.0.0.1 or 0.0.0.0", parts[0])
		}
		f.HostAddr = a.String()
		parts = parts[1:]
	default:
		return bad("wrong number of ':'-separated parts")
	}
	for i, what := range []string{"host", "guest"} {
		n, msg := parsePort(parts[i])
		if msg != "" {
			return bad("%s port %s", what, msg)
		}
		if i == 0 {
			f.HostPort = n
		} else {
			f.GuestPort = n
		}
	}
	return f, nil
}

// String formats f as ParseForward accepts it, e.g. "127.0.0.1:2222:22/tcp".
func (f Forward) String() string {
	return fmt.Sprintf("%s:%d:%d/%s", f.HostAddr, f.HostPort, f.GuestPort, f.Proto)
}

// checkForward returns "" if f is valid, else what is wrong.
func checkForward(f Forward) string {
	if a, err := netip.ParseAddr(f.HostAddr); err != nil || !a.Is4() || a.String() != f.HostAddr {
		return fmt.Sprintf("host address %q is not an IPv4 address such as 127.0.0.1 or 0.0.0.0", f.HostAddr)
	}
	if msg := checkPort(f.HostPort); msg != "" {
		return "host port " + msg
	}
	if msg := checkPort(f.GuestPort); msg != "" {
		return "guest port " + msg
	}
	if !slices.Contains(protocolValues, f.Proto) {
		return fmt.Sprintf("unknown protocol %q; allowed: %s", f.Proto, joinQuoted(protocolValues, ", "))
	}
	return ""
}
