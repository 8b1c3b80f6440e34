// Package radv makes a cove network's bridge the IPv6 router of the
// guests on it (RFC 4861 router advertisements), so that a VM booted
// from its own disk learns its default route, the network's prefix as
// on-link and that it gets its address by DHCPv6 (internal/dhcp), as
// it would on any IPv6 LAN.
//
// No process stays resident. cove-ra@NETWORK.socket (units.CompileRA) is
// a datagram socket the DHCP responder writes to whenever it answers a
// client, and a VM's launcher when the VM starts; the first datagram
// starts cove-ra@NETWORK.service, which runs cove ra-serve NETWORK:
// Serve advertises at once, answers router solicitations and further
// datagrams while it runs, and returns after Config.Idle without either.
// A guest that boots sends its DHCP requests and its router solicitations
// together, so an advertisement reaches it while it still listens; the
// advertisement's router lifetime (18 hours) outlasts the clients'
// renewals (every 6 hours), each of which starts it again.
package radv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/ondemand"
)

// Defaults and limits of Serve.
const (
	DefaultIdle = 30 * time.Second
	// MinDelay is the least time between two advertisements (RFC 4861
	// MIN_DELAY_BETWEEN_RAS): requests within it share one.
	MinDelay = 3 * time.Second
	// RouterLifetime is how long a guest keeps the bridge as its default
	// router after an advertisement: the most the field holds (RFC 8319).
	RouterLifetime = 65535 * time.Second
)

// allRouters is the group router solicitations go to; allNodes the one
// advertisements go to.
var (
	allRouters = netip.MustParseAddr("ff02::2")
	allNodes   = netip.MustParseAddr("ff02::1")
)

// Advertisement is the router advertisement of network n (which has
// IPv6), whose bridge has MAC mac: the bridge as default router for
// RouterLifetime; addresses from DHCPv6 (managed) and other settings too
// (other configuration); n's prefix on-link for ever but not for
// stateless autoconfiguration (a workload may send only from its leased
// address: an address a guest made itself would be dropped); the
// bridge's MAC; and, unless n has no DNS, its gateway as DNS server and
// (when it can be sent: plan.ValidDomain) its name as search domain for
// as long as the router (RFC 8106).
func Advertisement(n plan.Network, mac net.HardwareAddr) *ndp.RouterAdvertisement {
	ra := &ndp.RouterAdvertisement{
		CurrentHopLimit:      64,
		ManagedConfiguration: true,
		OtherConfiguration:   true,
		RouterLifetime:       RouterLifetime,
		Options: []ndp.Option{
			&ndp.PrefixInformation{
				PrefixLength:      uint8(n.Subnet6.Bits()),
				OnLink:            true,
				ValidLifetime:     ndp.Infinity,
				PreferredLifetime: ndp.Infinity,
				Prefix:            n.Subnet6.Masked().Addr(),
			},
			&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac},
		},
	}
	if n.NoDNS {
		return ra
	}
	ra.Options = append(ra.Options, &ndp.RecursiveDNSServer{Lifetime: RouterLifetime, Servers: []netip.Addr{n.Gateway6}})
	if plan.ValidDomain(n.Name) {
		ra.Options = append(ra.Options, &ndp.DNSSearchList{Lifetime: RouterLifetime, DomainNames: []string{n.Name}})
	}
	return ra
}

// Config is what Serve advertises and how long it stays.
type Config struct {
	// Network is the network advertised; it must have IPv6.
	Network plan.Network
	// Idle is how long Serve goes on without a solicitation or a
	// datagram before it returns; negative: until ctx ends. 0 is
	// DefaultIdle.
	Idle time.Duration
	// Logf logs every advertisement sent, and what fails without ending
	// Serve. nil logs nothing.
	Logf func(format string, args ...any)
}

// Serve advertises c.Network's bridge on it (see Advertisement, sent to
// all nodes from the bridge's link-local address) at once, after every
// router solicitation on the bridge and every datagram on pokes (one
// advertisement for all that arrive within MinDelay of the last), until
// ctx ends or nothing came for c.Idle; then it returns nil. It needs
// CAP_NET_RAW (a raw ICMPv6 socket) in the bridge's network namespace,
// and gives up every capability once the socket is open
// (dropCapabilities; a failure is logged). It waits up to ListenWait for
// the bridge's link-local address (duplicate address detection after the
// bridge came up); a send that fails is logged and the next one tried.
// It returns an error if c.Network has no IPv6, or the bridge, its
// link-local address or the socket is not there in time; it then drops
// the datagrams waiting on pokes, so that they do not start it again at
// once. It closes pokes in every case.
func Serve(ctx context.Context, pokes net.PacketConn, c Config) error {
	defer pokes.Close()
	n := c.Network
	if !n.Subnet6.IsValid() {
		return fmt.Errorf("advertise network %s: it has no IPv6", n.Name)
	}
	if c.Idle == 0 {
		c.Idle = DefaultIdle
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	conn, mac, err := listenWhenReady(ctx, n.Bridge)
	if err != nil {
		drain(pokes)
		return fmt.Errorf("advertise network %s: %w", n.Name, err)
	}
	if err := dropCapabilities(); err != nil {
		c.Logf("advertise network %s: %v", n.Name, err)
	}
	a := &advertiser{conn: conn, ra: Advertisement(n, mac), act: ondemand.NewIdle(),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), logf: c.Logf, bridge: n.Bridge}
	a.wake <- struct{}{} // the first one at once
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() { errc <- a.readSolicitations() })
	wg.Go(func() { errc <- a.readPokes(pokes) })
	wg.Go(func() { errc <- a.send() })
	err = a.act.Wait(ctx, c.Idle, errc)
	close(a.quit)
	pokes.Close()                    // ends readPokes
	conn.SetReadDeadline(time.Now()) // ends readSolicitations
	wg.Wait()
	a.last() // a request that came while send was ending
	conn.Close()
	if err != nil {
		return fmt.Errorf("advertise network %s: %w", n.Name, err)
	}
	return nil
}

// ListenWait is how long Serve waits for the bridge's link-local
// address.
const ListenWait = 10 * time.Second

// listenWhenReady is listen, tried again every tenth of a second for up
// to ListenWait or until ctx ends.
func listenWhenReady(ctx context.Context, bridge string) (*ndp.Conn, net.HardwareAddr, error) {
	deadline := time.Now().Add(ListenWait)
	for {
		conn, mac, err := listen(bridge)
		if err == nil || time.Now().After(deadline) {
			return conn, mac, err
		}
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dropCapabilities empties the capability sets of every thread of the
// process (capset through syscall.AllThreadsSyscall), once the raw
// socket is open: it stays usable, bound to the bridge, but no other can
// be opened, on the bridge or elsewhere. A binary built with cgo cannot
// do that (ENOTSUP); cove's are built without.
func dropCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if errno != 0 {
		return fmt.Errorf("drop capabilities: capset on all threads: %w", errno)
	}
	return nil
}

// drain reads and drops what waits on pokes.
func drain(pokes net.PacketConn) {
	pokes.SetReadDeadline(time.Now())
	buf := make([]byte, 64)
	for {
		if _, _, err := pokes.ReadFrom(buf); err != nil {
			return
		}
	}
}

// listen opens the raw ICMPv6 socket of bridge: bound to its link-local
// address, a member of the all-routers group, reading router
// solicitations only. It also returns the bridge's MAC.
func listen(bridge string) (*ndp.Conn, net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(bridge)
	if err != nil {
		return nil, nil, fmt.Errorf("find bridge %s: netlink RTM_GETLINK: %w", bridge, err)
	}
	conn, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return nil, nil, fmt.Errorf("open an ICMPv6 socket on %s's link-local address: %w", bridge, err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	if err := conn.SetICMPFilter(&f); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("filter router solicitations on %s: setsockopt ICMP6_FILTER: %w", bridge, err)
	}
	if err := conn.JoinGroup(allRouters); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("join %v on %s: setsockopt IPV6_JOIN_GROUP: %w", allRouters, bridge, err)
	}
	return conn, ifi.HardwareAddr, nil
}

// advertiser sends one network's advertisements.
type advertiser struct {
	conn *ndp.Conn
	ra   *ndp.RouterAdvertisement
	act  *ondemand.Idle
	wake chan struct{} // an advertisement is due; buffered, one deep
	quit chan struct{} // closed: send returns
	logf func(format string, args ...any)

	bridge string
}

// due asks for an advertisement (requests that come while one is due
// share it) and counts as activity.
func (a *advertiser) due() {
	a.act.Begin()
	defer a.act.End()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// send sends an advertisement whenever one is due, at least MinDelay
// after the last, until quit is closed.
func (a *advertiser) send() error {
	for {
		select {
		case <-a.quit:
			return nil
		case <-a.wake:
		}
		a.advertise()
		select {
		case <-a.quit:
			return nil
		case <-time.After(MinDelay):
		}
	}
}

// last sends the advertisement still due after send has returned, if
// any.
func (a *advertiser) last() {
	select {
	case <-a.wake:
		a.advertise()
	default:
	}
}

// advertise sends one advertisement to all nodes and logs it. A failed
// send (the bridge's link-local address in duplicate address detection
// again, say) is logged; the next request tries again.
func (a *advertiser) advertise() {
	if err := a.conn.WriteTo(a.ra, nil, allNodes); err != nil {
		a.logf("send a router advertisement to %v on %s: sendmsg: %v", allNodes, a.bridge, err)
		return
	}
	a.logf("router advertisement sent to %v on %s", allNodes, a.bridge)
}

// readSolicitations asks for an advertisement after every router
// solicitation until the socket's read deadline passes (nil) or it fails
// (ndp drops what does not parse, and what the bridge sent itself).
func (a *advertiser) readSolicitations() error {
	for {
		m, _, _, err := a.conn.ReadFrom()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read router solicitations: %w", err)
		}
		if _, ok := m.(*ndp.RouterSolicitation); ok {
			a.due()
		}
	}
}

// readPokes asks for an advertisement after every datagram on pokes
// until it is closed (nil) or fails.
func (a *advertiser) readPokes(pokes net.PacketConn) error {
	buf := make([]byte, 64)
	for {
		_, _, err := pokes.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the start socket: %w", err)
		}
		a.due()
	}
}

// Poker returns what the DHCP responder calls after each answer: it
// writes one datagram to the socket at path (launch.RASocket of the
// network; ondemand.Wake, which never blocks), which starts the network's
// advertisements or, while they run, asks for one. A failure is logged
// with logf; the answer is not affected.
func Poker(path string, logf func(format string, args ...any)) func() {
	return func() {
		if err := ondemand.Wake(path); err != nil {
			logf("ask for a router advertisement: %v", err)
		}
	}
}
