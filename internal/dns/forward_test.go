package dns

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// TestForward checks that names outside the zone go to the upstream: over
// UDP for a UDP query and over TCP for a TCP one, with an id of the
// responder's own, and that the reply comes back under the client's id.
func TestForward(t *testing.T) {
	up := startUpstream(t, answerA(1))
	r := startResponder(t, Config{Zone: testZone(), Upstreams: []netip.AddrPort{up.addr}})
	m := new(mdns.Msg)
	m.SetQuestion("example.org.", mdns.TypeA)
	m.Id = 4242
	resp := exchange(t, &mdns.Client{Timeout: 5 * time.Second}, r.addr, m)
	if got := addrs(resp); resp.Rcode != mdns.RcodeSuccess || len(got) != 1 || got[0] != "198.18.0.1" {
		t.Errorf("forwarded over UDP: %s %v", mdns.RcodeToString[resp.Rcode], got)
	}
	if q := up.lastQuery.Load(); q == nil || q.Question[0].Name != "example.org." {
		t.Fatalf("the upstream got %v", q)
	} else if q.Id == m.Id && up.udp.Load() == 1 {
		t.Logf("the upstream query reused the client's id %d (1 in 65536 by chance)", m.Id)
	}
	if resp := query(t, "tcp", r.addr, "example.org.", mdns.TypeA); resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("forwarded over TCP: %v", resp)
	}
	if u, c := up.udp.Load(), up.tcp.Load(); u != 1 || c != 1 {
		t.Errorf("the upstream got %d UDP and %d TCP queries, want 1 and 1", u, c)
	}
}

// TestForwardTruncated checks that a truncated UDP reply of the upstream
// (one that ignores EDNS) is asked again over TCP, and that the client
// gets what fits its buffer: all of it with EDNS 1232, a truncated reply
// (TC) without EDNS.
func TestForwardTruncated(t *testing.T) {
	up := startUpstream(t, answerA(40)) // about 700 bytes
	r := startResponder(t, Config{Zone: testZone(), Upstreams: []netip.AddrPort{up.addr}})
	m := new(mdns.Msg)
	m.SetQuestion("big.example.", mdns.TypeA)
	m.SetEdns0(1232, false)
	resp := exchange(t, &mdns.Client{Timeout: 5 * time.Second}, r.addr, m)
	if len(resp.Answer) != 40 || resp.Truncated {
		t.Errorf("with EDNS 1232: %d records, tc=%v; want 40, no tc", len(resp.Answer), resp.Truncated)
	}
	if u, c := up.udp.Load(), up.tcp.Load(); u != 1 || c != 1 {
		t.Errorf("the upstream got %d UDP and %d TCP queries, want 1 (truncated) and 1", u, c)
	}
	resp = query(t, "udp", r.addr, "big.example.", mdns.TypeA)
	if !resp.Truncated || len(resp.Answer) >= 40 {
		t.Errorf("without EDNS: %d records, tc=%v; want fewer than 40 and tc", len(resp.Answer), resp.Truncated)
	}
}

// TestForwardFailover checks that an upstream that does not answer, or
// answers SERVFAIL, is followed by the next, and that SERVFAIL comes
// back in time when none answers.
func TestForwardFailover(t *testing.T) {
	dead, err := net.ListenPacket("udp", "127.0.0.1:0") // reads nothing, answers nothing
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	deadAddr := netip.MustParseAddrPort(dead.LocalAddr().String())
	failing := startUpstream(t, func(req *mdns.Msg) *mdns.Msg {
		m := new(mdns.Msg)
		return m.SetRcode(req, mdns.RcodeServerFailure)
	})
	good := startUpstream(t, answerA(1))
	c := Config{Zone: testZone(), ForwardTimeout: time.Second}
	c.Upstreams = []netip.AddrPort{deadAddr, failing.addr, good.addr}
	r := startResponder(t, c)
	if resp := query(t, "udp", r.addr, "example.org.", mdns.TypeA); resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Errorf("after a dead and a failing upstream: %s %v", mdns.RcodeToString[resp.Rcode], addrs(resp))
	}
	if failing.udp.Load() != 1 || good.udp.Load() != 1 {
		t.Errorf("the failing upstream got %d queries, the good one %d; want 1 each", failing.udp.Load(), good.udp.Load())
	}

	c.Upstreams = []netip.AddrPort{deadAddr}
	r = startResponder(t, c)
	start := time.Now()
	if resp := query(t, "udp", r.addr, "example.org.", mdns.TypeA); resp.Rcode != mdns.RcodeServerFailure {
		t.Errorf("with a dead upstream: %s, want SERVFAIL", mdns.RcodeToString[resp.Rcode])
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("SERVFAIL after %v, want about the forward timeout (1 s)", d)
	}
	c.Upstreams = nil
	r = startResponder(t, c)
	if resp := query(t, "tcp", r.addr, "example.org.", mdns.TypeA); resp.Rcode != mdns.RcodeServerFailure {
		t.Errorf("without upstreams: %s, want SERVFAIL", mdns.RcodeToString[resp.Rcode])
	}
}

// TestForwardOwnName checks that a name of the zone's domain that does
// not exist is answered, not forwarded.
func TestForwardOwnName(t *testing.T) {
	up := startUpstream(t, answerA(1))
	r := startResponder(t, Config{Zone: testZone(), Upstreams: []netip.AddrPort{up.addr}})
	if resp := query(t, "udp", r.addr, "nope.test.", mdns.TypeA); resp.Rcode != mdns.RcodeNameError {
		t.Errorf("nope.test: %s, want NXDOMAIN", mdns.RcodeToString[resp.Rcode])
	}
	if n := up.udp.Load() + up.tcp.Load(); n != 0 {
		t.Errorf("the upstream got %d queries for the zone's domain", n)
	}
}

// TestForwardLoop checks both guards against forwarding to itself: an
// upstream that is the responder's own socket is dropped, and an
// upstream that forwards back to it (a relay on 127.0.0.1, as a
// resolver configured with the gateway would) gets REFUSED for the
// question it is forwarding, so the loop ends after one round.
func TestForwardLoop(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self := netip.MustParseAddrPort(pc.LocalAddr().String())
	var relayed, refused atomic.Int32
	relay := startUpstream(t, func(req *mdns.Msg) *mdns.Msg {
		resp, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(req, self.String())
		if err != nil {
			return nil
		}
		relayed.Add(1)
		if resp.Rcode == mdns.RcodeRefused {
			refused.Add(1)
		}
		return resp
	})
	z := testZone()
	c := Config{Zone: z, Upstreams: []netip.AddrPort{self, relay.addr}, ForwardTimeout: 2 * time.Second}
	r := startResponderOn(t, c, []net.PacketConn{pc}, nil)
	client := &mdns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}}}
	m := new(mdns.Msg)
	m.SetQuestion("loop.example.", mdns.TypeA)
	resp := exchange(t, client, r.addr, m)
	if resp.Rcode != mdns.RcodeServerFailure {
		t.Errorf("the client got %s, want SERVFAIL", mdns.RcodeToString[resp.Rcode])
	}
	if n := relay.udp.Load(); n != 1 || relayed.Load() != 1 || refused.Load() != 1 {
		t.Errorf("the relay got %d queries and %d replies, %d of them REFUSED; want 1, 1, 1", n, relayed.Load(), refused.Load())
	}
	if n := z.lookupsOf("loop.example"); n != 2 {
		t.Errorf("the responder was asked %d times, want 2 (by the client, by the relay)", n)
	}
}
