package dhcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/ondemand"
)

// Defaults of Config.
const (
	DefaultIdle      = 30 * time.Second
	DefaultLeaseTime = 12 * time.Hour
)

// MaxRequest is the largest request the responder reads, in bytes: the
// UDP payload of one 1500-byte Ethernet frame. A longer datagram is
// dropped unread; real requests are a few hundred bytes.
const MaxRequest = 1472

// Config is what Serve answers with.
type Config struct {
	// Network is the network served: its Subnet4 and Gateway4 (the
	// server identifier, router and, unless NoDNS, DNS server), its name
	// (the domain).
	Network plan.Network
	// Leases holds the clients' addresses (LeaseTable outside tests).
	Leases Leases
	// Idle is how long Serve goes on without a request before it
	// returns; negative: until ctx ends. 0 is DefaultIdle.
	Idle time.Duration
	// LeaseTime is the lease time offered: the address never changes
	// while the VM exists, so it is long; clients renew at half of it.
	// 0 is DefaultLeaseTime; it is rounded to whole seconds, at least a
	// minute.
	LeaseTime time.Duration
	// Advertise, if not nil, is called after every answer sent to a
	// client: it makes the network's router advertise itself (a client
	// that asks for an address is booting, and an IPv6 one waits for a
	// router advertisement). It must not block: it runs on the only
	// reader of the socket the answer went out on (radv.Poker does not).
	Advertise func()
	// Logf logs what the responder does and cannot tell a client: ACKs,
	// NAKs, DECLINEs, leases that could not be read, replies that could
	// not be sent. nil logs nothing.
	Logf func(format string, args ...any)

	// broadcast and clientPort are where replies go (255.255.255.255 and
	// 68 when zero); tests on the loopback change them.
	broadcast  netip.Addr
	clientPort uint16
}

// withDefaults fills what c leaves out.
func (c Config) withDefaults() Config {
	if c.Idle == 0 {
		c.Idle = DefaultIdle
	}
	if c.LeaseTime == 0 {
		c.LeaseTime = DefaultLeaseTime
	}
	c.LeaseTime = leaseTime(c.LeaseTime)
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if !c.broadcast.IsValid() {
		c.broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	if c.clientPort == 0 {
		c.clientPort = dhcpv4.ClientPort
	}
	return c
}

// Serve answers DHCP requests on conns (UDP port 67 on the network's
// bridge, with SO_BROADCAST, and with IPv6 UDP port 547: see
// units.CompileDHCP) until ctx ends or no request came for c.Idle; then
// it closes them and returns nil, after the request being answered is.
// It first makes each IPv6 socket a member of plan.DHCP6Servers on its
// bridge (joinServers; a failure is logged). It returns an error if there
// is no socket, c has no leases or no IPv4 gateway, or a socket fails.
// Each request is answered on its own (see answer, answer6); one that
// cannot be parsed, or that panics the responder, is dropped.
func Serve(ctx context.Context, conns []net.PacketConn, c Config) error {
	if len(conns) == 0 {
		return errors.New("serve dhcp: no socket to serve on")
	}
	if c.Leases == nil || !c.Network.Gateway4.Is4() || !c.Network.Subnet4.Addr().Is4() {
		return fmt.Errorf("serve dhcp of network %s: no leases, IPv4 subnet or gateway", c.Network.Name)
	}
	r := &responder{c: c.withDefaults(), act: ondemand.NewIdle()}
	for _, pc := range conns {
		if err := joinServers(pc); err != nil {
			r.c.Logf("DHCPv6 clients cannot reach the responder: %v", err)
		}
	}
	errc := make(chan error, len(conns))
	var wg sync.WaitGroup
	for _, pc := range conns {
		wg.Go(func() { errc <- r.serve(pc) })
	}
	err := r.act.Wait(ctx, r.c.Idle, errc)
	for _, pc := range conns {
		pc.Close()
	}
	wg.Wait()
	return err
}

// responder answers the requests of one network.
type responder struct {
	c   Config
	act *ondemand.Idle
}

// serve reads and answers requests on pc until it is closed (nil) or
// fails.
func (r *responder) serve(pc net.PacketConn) error {
	buf := make([]byte, MaxRequest+1)
	for {
		n, from, err := pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("serve dhcp on %s: read: %w", pc.LocalAddr(), err)
		}
		if n <= MaxRequest {
			r.handle(pc, buf[:n], from)
		}
	}
}

// handle answers the request b from client from, if it calls for an
// answer (see reply). A client that is not there to take the answer is
// no error of the responder's, but a failed send is logged.
func (r *responder) handle(pc net.PacketConn, b []byte, from net.Addr) {
	r.act.Begin()
	defer r.act.End()
	defer func() {
		if p := recover(); p != nil {
			r.c.Logf("answer a request: panic: %v", p)
		}
	}()
	src, _ := from.(*net.UDPAddr)
	out, to, what, ok := r.reply(b, src.AddrPort())
	if !ok {
		return
	}
	if _, err := pc.WriteTo(out, net.UDPAddrFromAddrPort(to)); err != nil {
		r.c.Logf("send %s to %v: sendto: %v", what, to, err)
		return
	}
	if r.c.Advertise != nil {
		r.c.Advertise()
	}
}

// reply is the answer to request b from src, encoded, where it goes and
// what it is (for the log): DHCPv6 (answer6) when src is an IPv6
// address (the IPv6 socket is IPv6 only), else DHCP (answer). ok is
// false when b cannot be parsed or gets no answer.
func (r *responder) reply(b []byte, src netip.AddrPort) (out []byte, to netip.AddrPort, what string, ok bool) {
	if src.Addr().Is6() && !src.Addr().Is4In6() {
		m, err := dhcpv6.MessageFromBytes(b)
		if err != nil {
			return nil, to, "", false
		}
		rep, ok := r.answer6(m, src)
		if !ok {
			return nil, to, "", false
		}
		return rep.msg.ToBytes(), rep.to, fmt.Sprintf("DHCPv6 %v", rep.msg.Type()), true
	}
	req, err := dhcpv4.FromBytes(b)
	if err != nil {
		return nil, to, "", false
	}
	rep, ok := r.answer(req)
	if !ok {
		return nil, to, "", false
	}
	return rep.msg.ToBytes(), rep.to, fmt.Sprintf("%v (%v)", rep.msg.MessageType(), req.ClientHWAddr), true
}
