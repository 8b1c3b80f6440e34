package dhcp

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
)

// joinServers makes pc, when it is an IPv6 socket bound to a bridge
// (BindToDevice=), a member of plan.DHCP6Servers on that bridge
// (IPV6_JOIN_GROUP on the interface SO_BINDTOIFINDEX names: no lookup in
// a network namespace the responder does not see), so that DHCPv6
// clients' messages reach it. systemd holds the socket, so the
// membership outlasts the responder: the next SOLICIT starts it again.
// An IPv4 socket or one bound to no interface joins nothing; a socket
// that is a member already is no error.
func joinServers(pc net.PacketConn) error {
	ua, ok := pc.LocalAddr().(*net.UDPAddr)
	sc, isConn := pc.(syscall.Conn)
	if !ok || ua.IP.To4() != nil || !isConn {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("join %v on %v: %w", plan.DHCP6Servers, ua, err)
	}
	var opErr error
	err = rc.Control(func(fd uintptr) { opErr = joinOn(int(fd)) })
	if err = errors.Join(err, opErr); err != nil {
		return fmt.Errorf("join %v on %v: %w", plan.DHCP6Servers, ua, err)
	}
	return nil
}

// joinOn joins plan.DHCP6Servers on the interface socket fd is bound to.
func joinOn(fd int) error {
	ifindex, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX)
	if err != nil {
		return fmt.Errorf("getsockopt SO_BINDTOIFINDEX: %w", err)
	}
	if ifindex == 0 {
		return nil
	}
	mreq := &unix.IPv6Mreq{Multiaddr: plan.DHCP6Servers.As16(), Interface: uint32(ifindex)}
	err = unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq)
	if err != nil && !errors.Is(err, unix.EADDRINUSE) {
		return fmt.Errorf("setsockopt IPV6_JOIN_GROUP (interface %d): %w", ifindex, err)
	}
	return nil
}
