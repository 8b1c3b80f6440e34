package dhcp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/cove-project/cove/internal/network/plan"
)

// The loopback tests play the bridge on 127.0.0.0/8: the network is
// 127.0.0.0/8 with gateway 127.0.0.1, the VM's lease is loNet's
// 127.0.0.2, and "broadcast" replies go to 127.0.0.3 (Config.broadcast).
var (
	loNet   = plan.Network{Name: "lab", Subnet4: netip.MustParsePrefix("127.0.0.0/8"), Gateway4: netip.MustParseAddr("127.0.0.1")}
	loLease = Lease{Workload: "vm1", Addr: netip.MustParseAddr("127.0.0.2")}
	loBcast = netip.MustParseAddr("127.0.0.3")
)

// loopback is a responder serving on 127.0.0.1 and the client's two
// sockets: bcast on 127.0.0.3:PORT (where "broadcasts" go) and unicast
// on 127.0.0.2:PORT (the leased address).
type loopback struct {
	server         *net.UDPAddr
	bcast, unicast net.PacketConn
	done           chan error // Serve's result
	logMu          sync.Mutex
	logs           []string
}

// serveLoopback starts Serve with idle and the fake leases; it stops
// when the test ends.
func serveLoopback(t *testing.T, idle time.Duration) *loopback {
	t.Helper()
	lb := &loopback{done: make(chan error, 1)}
	lb.bcast, lb.unicast = clientPair(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb.server = pc.LocalAddr().(*net.UDPAddr)
	c := Config{Network: loNet, Leases: fakeLeases{leases: map[plan.MAC]Lease{vmMAC: loLease}}, Idle: idle,
		broadcast: loBcast, clientPort: uint16(lb.bcast.LocalAddr().(*net.UDPAddr).Port)}
	c.Logf = func(format string, args ...any) {
		lb.logMu.Lock()
		defer lb.logMu.Unlock()
		lb.logs = append(lb.logs, fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { lb.done <- Serve(ctx, []net.PacketConn{pc}, c) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-lb.done:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return when its context ended")
		}
	})
	return lb
}

// clientPair binds 127.0.0.3 and 127.0.0.2 on one port.
func clientPair(t *testing.T) (bcast, unicast net.PacketConn) {
	t.Helper()
	for range 10 {
		b, err := net.ListenPacket("udp4", loBcast.String()+":0")
		if err != nil {
			t.Fatal(err)
		}
		u, err := net.ListenPacket("udp4", fmt.Sprintf("%v:%d", loLease.Addr, b.LocalAddr().(*net.UDPAddr).Port))
		if err == nil {
			t.Cleanup(func() { b.Close(); u.Close() })
			return b, u
		}
		b.Close()
	}
	t.Fatal("no port free on both 127.0.0.2 and 127.0.0.3")
	return nil, nil
}

// client is a DHCP client for mac on the loopback's broadcast socket,
// which it then owns (one client per loopback).
func (lb *loopback) client(t *testing.T, mac plan.MAC) *nclient4.Client {
	t.Helper()
	c, err := nclient4.NewWithConn(lb.bcast, mac[:], nclient4.WithServerAddr(lb.server),
		nclient4.WithTimeout(time.Second), nclient4.WithRetry(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestServeLoopback: a VM's client gets its lease over real sockets
// (DISCOVER, OFFER, REQUEST, ACK, all broadcast), its renewal is
// answered by unicast to its address, and a stranger gets nothing.
func TestServeLoopback(t *testing.T) {
	lb := serveLoopback(t, -1)
	c := lb.client(t, vmMAC)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lease, err := c.Request(ctx)
	if err != nil {
		t.Fatalf("request a lease: %v", err)
	}
	if ack := lease.ACK; !ack.YourIPAddr.Equal(net.ParseIP("127.0.0.2")) || ack.HostName() != "vm1" {
		t.Errorf("ACK: %v", ack)
	}
	lb.logMu.Lock()
	if len(lb.logs) != 1 || !strings.HasPrefix(lb.logs[0], "DHCPACK 127.0.0.2 to "+vmMAC.String()) {
		t.Errorf("logged %q, want the ACK", lb.logs)
	}
	lb.logMu.Unlock()

	renew, err := dhcpv4.NewRenewFromAck(lease.ACK)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lb.unicast.WriteTo(renew.ToBytes(), lb.server); err != nil {
		t.Fatal(err)
	}
	if m := readReply(t, lb.unicast, time.Second); m == nil || m.MessageType() != dhcpv4.MessageTypeAck || !m.ClientIPAddr.Equal(net.ParseIP("127.0.0.2")) {
		t.Errorf("the renewal's ACK, unicast to the leased address: %v", m)
	}

	if _, err := serveLoopback(t, -1).client(t, stray).DiscoverOffer(ctx); err == nil {
		t.Error("a stranger's DISCOVER got an OFFER")
	}
}

// readReply reads one DHCP message from pc within d; nil if none came.
func readReply(t *testing.T, pc net.PacketConn, d time.Duration) *dhcpv4.DHCPv4 {
	t.Helper()
	buf := make([]byte, 1500)
	pc.SetReadDeadline(time.Now().Add(d))
	defer pc.SetReadDeadline(time.Time{})
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		return nil
	}
	m, err := dhcpv4.FromBytes(buf[:n])
	if err != nil {
		t.Fatalf("a reply that does not parse: %v", err)
	}
	return m
}

// TestServeHostile: empty, short, garbage, oversized and wrong-op
// datagrams get no reply and do not stop the responder, which answers
// the next valid request.
func TestServeHostile(t *testing.T) {
	lb := serveLoopback(t, -1)
	discover := request(t, dhcpv4.MessageTypeDiscover, vmMAC).ToBytes()
	reply := request(t, dhcpv4.MessageTypeDiscover, vmMAC, func(d *dhcpv4.DHCPv4) { d.OpCode = dhcpv4.OpcodeBootReply }).ToBytes()
	huge := append(append([]byte{}, discover[:len(discover)-1]...), make([]byte, MaxRequest)...) // padding: a valid DISCOVER, too long
	garbage := make([]byte, 600)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	badOptions := append(append([]byte{}, discover[:240]...), 53, 200, 1) // an option longer than the datagram
	for _, b := range [][]byte{{}, {1}, make([]byte, 235), garbage, badOptions, huge, reply, make([]byte, 60000)} {
		if _, err := lb.bcast.WriteTo(b, lb.server); err != nil {
			t.Fatalf("send %d bytes: %v", len(b), err)
		}
	}
	if m := readReply(t, lb.bcast, 300*time.Millisecond); m != nil {
		t.Errorf("a hostile datagram got a reply: %v", m)
	}
	if _, err := lb.bcast.WriteTo(discover, lb.server); err != nil {
		t.Fatal(err)
	}
	if m := readReply(t, lb.bcast, time.Second); m == nil || m.MessageType() != dhcpv4.MessageTypeOffer {
		t.Errorf("a valid DISCOVER after the hostile ones: %v", m)
	}
	select {
	case err := <-lb.done:
		t.Fatalf("Serve returned: %v", err)
	default:
	}
}

// TestServeIdle: Serve goes on while requests come, returns nil once
// none came for Idle, and closes its socket.
func TestServeIdle(t *testing.T) {
	lb := serveLoopback(t, 300*time.Millisecond)
	discover := request(t, dhcpv4.MessageTypeDiscover, vmMAC).ToBytes()
	for range 5 {
		time.Sleep(150 * time.Millisecond)
		lb.bcast.WriteTo(discover, lb.server)
		if readReply(t, lb.bcast, time.Second) == nil {
			t.Fatal("no OFFER")
		}
	}
	last := time.Now()
	select {
	case err := <-lb.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		if d := time.Since(last); d < 250*time.Millisecond {
			t.Errorf("Serve returned %v after the last request, want about 300 ms", d)
		}
		lb.done <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return when idle")
	}
	lb.bcast.WriteTo(discover, lb.server)
	if m := readReply(t, lb.bcast, 300*time.Millisecond); m != nil {
		t.Errorf("an answer after Serve returned: %v", m)
	}
}

// TestServeNothing checks the errors of a Serve that cannot serve.
func TestServeNothing(t *testing.T) {
	if err := Serve(context.Background(), nil, Config{Network: loNet, Leases: fakeLeases{}}); err == nil {
		t.Error("Serve without sockets returned nil")
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, c := range []Config{{Network: loNet}, {Leases: fakeLeases{}}} {
		if err := Serve(context.Background(), []net.PacketConn{pc}, c); err == nil {
			t.Errorf("Serve with %+v returned nil", c)
		}
	}
}
