package udpproxy

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"
)

// listen opens a UDP socket on 127.0.0.1 (a free port).
func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echo serves on a socket of its own: each datagram is answered twice, as
// "1:" and "2:" followed by it; the server's address is returned.
func echo(t *testing.T) netip.AddrPort {
	s := listen(t)
	go func() {
		buf := make([]byte, MaxDatagram)
		for {
			n, from, err := s.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			for _, tag := range []string{"1:", "2:"} {
				s.WriteToUDPAddrPort(append([]byte(tag), buf[:n]...), from)
			}
		}
	}()
	return s.LocalAddr().(*net.UDPAddr).AddrPort()
}

// start serves a proxy to server on a new socket and returns the proxy's
// address, the proxy and a channel that Serve's result reaches.
func start(t *testing.T, server netip.AddrPort, idle time.Duration, maxFlows int) (netip.AddrPort, *Proxy, <-chan error) {
	t.Helper()
	p := &Proxy{Listen: listen(t), To: server, Idle: idle, MaxFlows: maxFlows}
	done := make(chan error, 1)
	go func() { done <- p.Serve() }()
	return p.Listen.LocalAddr().(*net.UDPAddr).AddrPort(), p, done
}

// ask sends msg from c to addr and returns the replies that come within
// wait.
func ask(t *testing.T, c *net.UDPConn, addr netip.AddrPort, msg []byte, want int, wait time.Duration) [][]byte {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(msg, addr); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	buf := make([]byte, MaxDatagram+10)
	c.SetReadDeadline(time.Now().Add(wait))
	for len(got) < want {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		if from != addr {
			t.Errorf("a reply came from %v, want the proxy's %v", from, addr)
		}
		got = append(got, bytes.Clone(buf[:n]))
	}
	return got
}

// TestRelay: two clients each get their own replies (every one of them),
// from the proxy's address; a datagram of the largest size passes whole.
func TestRelay(t *testing.T) {
	proxy, _, _ := start(t, echo(t), time.Minute, 8)
	a, b := listen(t), listen(t)
	for i := range 3 {
		for name, c := range map[string]*net.UDPConn{"a": a, "b": b} {
			msg := []byte(name + string(rune('0'+i)))
			got := ask(t, c, proxy, msg, 2, 5*time.Second)
			if len(got) != 2 || string(got[0]) != "1:"+string(msg) || string(got[1]) != "2:"+string(msg) {
				t.Errorf("client %s sent %q, got %q; want its two echoes", name, msg, got)
			}
		}
	}
	big := bytes.Repeat([]byte("x"), 65507-2) // IPv4's largest, with the echo's tag
	if got := ask(t, a, proxy, big, 1, 5*time.Second); len(got) != 1 || !bytes.Equal(got[0], append([]byte("1:"), big...)) {
		t.Errorf("a datagram of %d bytes: got %d replies (first %d bytes), want its echo whole", len(big), len(got), len(got[0]))
	}
}

// TestMaxFlows: a client beyond MaxFlows gets nothing while the others'
// flows live; the proxy returns once they have ended, and a proxy on the
// same socket (as systemd starts the service again for what is queued
// there) relays that client.
func TestMaxFlows(t *testing.T) {
	const idle = 300 * time.Millisecond
	proxy, p, done := start(t, echo(t), idle, 1)
	a, b := listen(t), listen(t)
	if got := ask(t, a, proxy, []byte("a"), 2, 5*time.Second); len(got) != 2 {
		t.Fatalf("first client: %q, want two echoes", got)
	}
	if got := ask(t, b, proxy, []byte("b"), 1, idle/2); len(got) != 0 {
		t.Errorf("second client with MaxFlows 1 and the first's flow alive: %q, want nothing", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its flows had been idle")
	}
	again := &Proxy{Listen: p.Listen, To: p.To, Idle: idle, MaxFlows: 1}
	go again.Serve()
	if got := ask(t, b, proxy, []byte("b"), 2, 5*time.Second); len(got) != 2 || string(got[0]) != "1:b" {
		t.Errorf("second client once the first's flow has ended: %q, want its echoes", got)
	}
}

// TestRefusedServer: a server that is not there (an ICMP port
// unreachable for each datagram) ends no flow: the client keeps its flow
// (the same socket) and is relayed to the server once it listens.
func TestRefusedServer(t *testing.T) {
	gone := listen(t)
	server := gone.LocalAddr().(*net.UDPAddr).AddrPort()
	gone.Close()
	proxy, p, _ := start(t, server, time.Minute, 8)
	a := listen(t)
	client := a.LocalAddr().(*net.UDPAddr).AddrPort()
	var first *flow
	for i := range 3 {
		if got := ask(t, a, proxy, []byte("a"), 1, 100*time.Millisecond); len(got) != 0 {
			t.Fatalf("no server, yet a reply: %q", got)
		}
		p.mu.Lock()
		f := p.flows[client]
		p.mu.Unlock()
		if i == 0 {
			first = f
		}
		if f == nil || f != first {
			t.Fatalf("after refused datagram %d the client's flow is %p, want the first one (%p)", i+1, f, first)
		}
	}
	s, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(server))
	if err != nil {
		t.Skipf("the server's port was taken meanwhile: %v", err)
	}
	defer s.Close()
	go func() {
		buf := make([]byte, 64)
		n, from, err := s.ReadFromUDPAddrPort(buf)
		if err == nil {
			s.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	if got := ask(t, a, proxy, []byte("again"), 1, 5*time.Second); len(got) != 1 || string(got[0]) != "again" {
		t.Errorf("once the server listens: %q, want its reply", got)
	}
}
