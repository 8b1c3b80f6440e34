package dns

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// forwarder sends the queries the zone does not answer to the upstream
// resolvers, in order, until one answers.
type forwarder struct {
	upstreams []netip.AddrPort
	timeout   time.Duration         // the whole forwarding of one query
	slots     chan struct{}         // bounds the forwards in flight
	self      map[netip.Addr]bool   // the addresses the responder listens on
	mu        sync.Mutex            // guards inFlight
	inFlight  map[mdns.Question]int // questions being forwarded now
}

// newForwarder forwards to upstreams, less those that are one of the
// responder's own sockets (listening): asking them would ask itself.
func newForwarder(c Config, listening []netip.AddrPort) *forwarder {
	f := &forwarder{
		timeout:  c.ForwardTimeout,
		slots:    make(chan struct{}, c.MaxForwards),
		self:     map[netip.Addr]bool{},
		inFlight: map[mdns.Question]int{},
	}
	for _, l := range listening {
		f.self[l.Addr()] = true
	}
	for _, u := range c.Upstreams {
		u = netip.AddrPortFrom(u.Addr().Unmap(), u.Port())
		if !slices.Contains(listening, u) {
			f.upstreams = append(f.upstreams, u)
		}
	}
	return f
}

// forward answers req with an upstream's reply, or SERVFAIL when none
// answers in time or too many forwards are in flight. A query from one of
// the responder's own addresses (the host, through the gateway) for a
// question it is forwarding right now is a forwarding loop (an upstream
// that forwards back to it) and is REFUSED, which ends the loop.
func (f *forwarder) forward(w mdns.ResponseWriter, req *mdns.Msg) *mdns.Msg {
	q := req.Question[0]
	q.Name = mdns.CanonicalName(q.Name)
	if f.self[addrOf(w.RemoteAddr())] && f.busy(q) {
		return reply(req, mdns.RcodeRefused)
	}
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	default:
		return reply(req, mdns.RcodeServerFailure)
	}
	f.track(q, 1)
	defer f.track(q, -1)
	resp := f.exchange(req, isTCP(w))
	if resp == nil {
		return reply(req, mdns.RcodeServerFailure)
	}
	resp.Id = req.Id
	return resp
}

// exchange asks the upstreams in turn; each gets half of what is left of
// the timeout, so a dead first one leaves time for the next. A reply of
// SERVFAIL or REFUSED counts as none. A truncated UDP reply is asked
// again over TCP.
func (f *forwarder) exchange(req *mdns.Msg, tcp bool) *mdns.Msg {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	m := req.Copy()
	for i, up := range f.upstreams {
		deadline, _ := ctx.Deadline()
		share := time.Until(deadline)
		if i < len(f.upstreams)-1 {
			share /= 2
		}
		m.Id = mdns.Id() // not the client's: harder to spoof
		resp := ask(ctx, m, up, tcp, share)
		if resp != nil && resp.Rcode != mdns.RcodeServerFailure && resp.Rcode != mdns.RcodeRefused {
			return resp
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil
}

// ask sends m to one upstream within timeout; nil if it did not answer.
func ask(ctx context.Context, m *mdns.Msg, up netip.AddrPort, tcp bool, timeout time.Duration) *mdns.Msg {
	c := &mdns.Client{Net: "udp", Timeout: timeout}
	if tcp {
		c.Net = "tcp"
	}
	resp, _, err := c.ExchangeContext(ctx, m, up.String())
	if err == nil && resp.Truncated && !tcp {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, up.String())
	}
	if err != nil {
		return nil
	}
	return resp
}

// busy reports whether q is being forwarded.
func (f *forwarder) busy(q mdns.Question) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight[q] > 0
}

// track counts a forward of q that begins (1) or ends (-1).
func (f *forwarder) track(q mdns.Question, d int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inFlight[q] += d; f.inFlight[q] <= 0 {
		delete(f.inFlight, q)
	}
}

// addrOf is the IP address of a UDP or TCP address (invalid for others).
func addrOf(a net.Addr) netip.Addr {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	}
	return ap.Addr().Unmap()
}
