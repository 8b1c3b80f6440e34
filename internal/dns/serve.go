package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/netutil"

	"github.com/cove-project/cove/internal/ondemand"
)

// Defaults of Config.
const (
	DefaultIdle           = 30 * time.Second
	DefaultForwardTimeout = 4 * time.Second
	DefaultMaxForwards    = 256
	DefaultMaxTCPConns    = 64
)

// Config is what Serve answers with, and its limits.
type Config struct {
	Zone Zone
	// Upstreams are the resolvers other names are forwarded to, in
	// order (see ReadUpstreams). None: such names get SERVFAIL.
	Upstreams []netip.AddrPort
	// Idle is how long Serve goes on without a query before it returns;
	// negative: until ctx ends. 0 is DefaultIdle.
	Idle time.Duration
	// ForwardTimeout bounds the forwarding of one query over all
	// upstreams. 0 is DefaultForwardTimeout.
	ForwardTimeout time.Duration
	// MaxForwards bounds the queries being forwarded at once; more get
	// SERVFAIL at once. 0 is DefaultMaxForwards.
	MaxForwards int
	// MaxTCPConns bounds the open TCP connections of each listener; more
	// wait in the kernel's backlog. 0 is DefaultMaxTCPConns.
	MaxTCPConns int
	// Logf logs what the responder cannot tell a client: a zone that
	// could not be read. nil logs nothing.
	Logf func(format string, args ...any)
}

// withDefaults fills what c leaves out.
func (c Config) withDefaults() Config {
	if c.Idle == 0 {
		c.Idle = DefaultIdle
	}
	if c.ForwardTimeout <= 0 {
		c.ForwardTimeout = DefaultForwardTimeout
	}
	if c.MaxForwards <= 0 {
		c.MaxForwards = DefaultMaxForwards
	}
	if c.MaxTCPConns <= 0 {
		c.MaxTCPConns = DefaultMaxTCPConns
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// Serve answers DNS queries on conns (UDP) and lns (TCP) until ctx ends
// or no query came for c.Idle; then it stops, closes them and returns
// nil, after the queries being answered are. It returns an error if
// there is no socket, or when one fails. A TCP connection may carry up to
// 128 queries of at most MaxQuery bytes each and is closed after 8
// seconds without one.
func Serve(ctx context.Context, conns []net.PacketConn, lns []net.Listener, c Config) error {
	if len(conns)+len(lns) == 0 {
		return errors.New("serve dns: no socket to serve on")
	}
	if c.Zone == nil {
		return errors.New("serve dns: no zone")
	}
	c = c.withDefaults()
	act := ondemand.NewIdle()
	h := &responder{zone: c.Zone, fwd: newForwarder(c, listening(conns, lns)), act: act, logf: c.Logf}
	var servers []*server
	for _, pc := range conns {
		servers = append(servers, newServer(&mdns.Server{PacketConn: pc, Net: "udp", UDPSize: MaxQuery}, pc.LocalAddr(), h))
	}
	for _, l := range lns {
		s := &mdns.Server{Listener: netutil.LimitListener(l, c.MaxTCPConns), Net: "tcp", DecorateReader: limitTCP}
		servers = append(servers, newServer(s, l.Addr(), h))
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		go s.run(errc)
	}
	defer stopAll(servers)
	return act.Wait(ctx, c.Idle, errc)
}

// server is one socket's mdns.Server and what it went through.
type server struct {
	srv     *mdns.Server
	addr    net.Addr
	started chan struct{} // closed when it serves
	done    chan struct{} // closed when it returned
}

// newServer serves addr's socket with h (the mdns.Server holds it).
func newServer(s *mdns.Server, addr net.Addr, h *responder) *server {
	sv := &server{srv: s, addr: addr, started: make(chan struct{}), done: make(chan struct{})}
	s.Handler = h
	s.MsgAcceptFunc = accept
	s.NotifyStartedFunc = func() { close(sv.started) }
	return sv
}

// run serves until stopped; an error, or a stop nobody asked for, goes
// to errc.
func (s *server) run(errc chan<- error) {
	defer close(s.done)
	err := s.srv.ActivateAndServe()
	if err == nil {
		err = errors.New("stopped")
	}
	errc <- fmt.Errorf("serve dns on %s %s: %w", s.addr.Network(), s.addr, err)
}

// stopAll stops the servers and waits until they returned: a server
// finishes the queries it is answering, for at most 5 seconds.
func stopAll(servers []*server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		select {
		case <-s.started:
			s.srv.ShutdownContext(ctx) // its only error is ctx's
		case <-s.done:
		}
	}
	for _, s := range servers {
		<-s.done
	}
}

// listening are the addresses of the sockets, unmapped.
func listening(conns []net.PacketConn, lns []net.Listener) []netip.AddrPort {
	var addrs []net.Addr
	for _, c := range conns {
		addrs = append(addrs, c.LocalAddr())
	}
	for _, l := range lns {
		addrs = append(addrs, l.Addr())
	}
	var aps []netip.AddrPort
	for _, a := range addrs {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			aps = append(aps, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	return aps
}
