package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// Every socket of these tests is on 127.0.0.1 (a client of the loop test
// on 127.0.0.2): no packet leaves the loopback. Addresses in zones are
// data only; nothing is sent to them.

// mapZone is a fake Zone and Authority: names to addresses, the domain
// it owns, and a count of lookups per name.
type mapZone struct {
	names   map[string][]netip.Addr
	domain  string
	err     error
	panicOn string // Lookup panics for this name
	mu      sync.Mutex
	lookups map[string]int
}

func (z *mapZone) Lookup(name string) (v4, v6 []netip.Addr, ok bool, err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.lookups == nil {
		z.lookups = map[string]int{}
	}
	z.lookups[name]++
	if name == z.panicOn {
		panic("lookup of " + name)
	}
	if z.err != nil {
		return nil, nil, false, z.err
	}
	addrs, ok := z.names[name]
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return v4, v6, ok, nil
}

func (z *mapZone) Owns(name string) bool {
	return name == z.domain || strings.HasSuffix(name, "."+z.domain)
}

func (z *mapZone) LookupAddr(a netip.Addr) ([]string, bool, error) {
	return nil, false, nil
}

// lookupsOf is how often name was looked up.
func (z *mapZone) lookupsOf(name string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.lookups[name]
}

// testZone holds web (IPv4 and IPv6) and v4only below the domain "test".
func testZone() *mapZone {
	web := []netip.Addr{netip.MustParseAddr("10.77.0.2"), netip.MustParseAddr("fd00::2")}
	v4 := []netip.Addr{netip.MustParseAddr("10.77.0.3")}
	return &mapZone{domain: "test", names: map[string][]netip.Addr{
		"web": web, "web.test": web, "v4only.test": v4, "test": nil,
	}}
}

// testResponder is a Serve running on 127.0.0.1 for a test.
type testResponder struct {
	addr netip.AddrPort // UDP and TCP
	done chan error     // Serve's result
	stop context.CancelFunc
}

// listenPair listens on UDP and TCP on the same free port of 127.0.0.1.
func listenPair(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("no free port for both UDP and TCP on 127.0.0.1")
	return nil, nil
}

// startResponder runs Serve with c on a UDP and a TCP socket of one port;
// the test's cleanup stops it and checks that it returned nil.
func startResponder(t *testing.T, c Config) *testResponder {
	t.Helper()
	pc, l := listenPair(t)
	return startResponderOn(t, c, []net.PacketConn{pc}, []net.Listener{l})
}

// startResponderOn is startResponder on the given sockets; its address
// is the first socket's.
func startResponderOn(t *testing.T, c Config, conns []net.PacketConn, lns []net.Listener) *testResponder {
	t.Helper()
	var first net.Addr
	if len(conns) > 0 {
		first = conns[0].LocalAddr()
	} else {
		first = lns[0].Addr()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &testResponder{addr: netip.MustParseAddrPort(first.String()), done: make(chan error, 1), stop: cancel}
	go func() { r.done <- Serve(ctx, conns, lns, c) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return 10 s after its context ended")
		}
	})
	return r
}

// query sends one query for name and qtype over proto ("udp" or "tcp").
func query(t *testing.T, proto string, to netip.AddrPort, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	return exchange(t, &mdns.Client{Net: proto, Timeout: 5 * time.Second}, to, m)
}

// exchange sends m with c and fails the test without a reply.
func exchange(t *testing.T, c *mdns.Client, to netip.AddrPort, m *mdns.Msg) *mdns.Msg {
	t.Helper()
	resp, _, err := c.Exchange(m, to.String())
	if err != nil {
		t.Fatalf("query %s %s over %s: %v", m.Question[0].Name, mdns.TypeToString[m.Question[0].Qtype], c.Net, err)
	}
	if resp.Id != m.Id {
		t.Fatalf("reply id %d, query id %d", resp.Id, m.Id)
	}
	return resp
}

// addrs are the A and AAAA addresses of a reply, in order.
func addrs(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *mdns.A:
			out = append(out, rr.A.String())
		case *mdns.AAAA:
			out = append(out, rr.AAAA.String())
		case *mdns.PTR:
			out = append(out, rr.Ptr)
		}
	}
	return out
}

// upstream is a miekg/dns server on 127.0.0.1 (UDP and TCP, one port)
// that answers with handle and counts the queries it got per protocol.
type upstream struct {
	addr      netip.AddrPort
	udp, tcp  atomic.Int32
	lastQuery atomic.Pointer[mdns.Msg]
}

// startUpstream serves handle; a UDP reply is truncated to 512 bytes,
// as by a server that ignores EDNS.
func startUpstream(t *testing.T, handle func(req *mdns.Msg) *mdns.Msg) *upstream {
	t.Helper()
	pc, l := listenPair(t)
	u := &upstream{addr: netip.MustParseAddrPort(pc.LocalAddr().String())}
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, req *mdns.Msg) {
		u.lastQuery.Store(req)
		m := handle(req)
		if isTCP(w) {
			u.tcp.Add(1)
		} else {
			u.udp.Add(1)
			if m != nil {
				m.Truncate(mdns.MinMsgSize)
			}
		}
		if m != nil {
			w.WriteMsg(m)
		}
	})
	for _, s := range []*mdns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go s.ActivateAndServe()
		<-started
		t.Cleanup(func() { s.Shutdown() })
	}
	return u
}

// answerA answers every query with n A records of 198.18.0.x (data only).
func answerA(n int) func(req *mdns.Msg) *mdns.Msg {
	return func(req *mdns.Msg) *mdns.Msg {
		m := new(mdns.Msg)
		m.SetReply(req)
		for i := range n {
			m.Answer = append(m.Answer, &mdns.A{
				Hdr: mdns.RR_Header{Name: req.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60},
				A:   net.IPv4(198, 18, 0, byte(i+1)),
			})
		}
		return m
	}
}

// errZone is what a zone that cannot be read returns.
var errZone = errors.New("zone unreadable")
