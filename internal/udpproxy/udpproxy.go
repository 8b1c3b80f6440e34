// Package udpproxy relays UDP datagrams between the clients of one
// listening socket and one server address, as Docker's userland proxy does
// for UDP: each client (source address and port) gets a socket of its own
// connected to the server, so the server's replies on it go back to that
// client from the listening address. A published UDP port's [::1] proxy
// runs it (systemd-socket-proxyd relays streams only).
package udpproxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MaxDatagram is the largest UDP payload a socket receives (IPv6's:
// 65535 less the UDP header; IPv4's is 65507): every datagram is relayed
// whole.
const MaxDatagram = 65527

// Proxy relays between the clients of Listen and To. Idle and MaxFlows
// must be above zero.
type Proxy struct {
	Listen *net.UDPConn   // the listening socket (systemd's, passed to the service)
	To     netip.AddrPort // the server
	// Idle is how long a client's flow lives without a datagram either
	// way (conntrack's UDP timeout is 30 s); Serve returns when no flow
	// is left and no datagram has come for as long.
	Idle time.Duration
	// MaxFlows bounds the clients relayed at once, each a socket: a
	// datagram from a further client is dropped until a flow has ended.
	MaxFlows int

	mu    sync.Mutex
	flows map[netip.AddrPort]*flow
}

// flow is one client's socket to the server.
type flow struct {
	conn *net.UDPConn
	last time.Time // the last datagram either way; under Proxy.mu
}

// buffers holds the buffers of replies being relayed: a flow waits for
// its server without one, so memory grows with the datagrams in flight,
// not with the flows.
var buffers = sync.Pool{New: func() any { return new([MaxDatagram + 1]byte) }}

// Serve relays until no flow is left and no datagram has come for
// p.Idle, then returns nil; or until reading the listening socket fails:
// then it closes the flows and returns that error. A datagram that
// cannot be relayed (no socket for a new client, MaxFlows reached, the
// server refusing it) is dropped, as the network would drop it.
func (p *Proxy) Serve() error {
	p.flows = map[netip.AddrPort]*flow{}
	buf := make([]byte, MaxDatagram+1)
	for {
		if err := p.Listen.SetReadDeadline(time.Now().Add(p.Idle)); err != nil {
			return p.fail(fmt.Errorf("set a deadline on %v: %w", p.Listen.LocalAddr(), err))
		}
		n, client, err := p.Listen.ReadFromUDPAddrPort(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if p.idle() {
				return nil
			}
			continue
		}
		if err != nil {
			return p.fail(fmt.Errorf("read %v: %w", p.Listen.LocalAddr(), err))
		}
		if f := p.flowOf(client); f != nil {
			f.conn.Write(buf[:n]) // a refused or lost datagram is the network's
		}
	}
}

// fail closes every flow and returns err, naming the proxy.
func (p *Proxy) fail(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for client, f := range p.flows {
		delete(p.flows, client)
		f.conn.Close()
	}
	return fmt.Errorf("udp proxy to %v: %w", p.To, err)
}

// idle reports whether the proxy has no flow.
func (p *Proxy) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.flows) == 0
}

// flowOf returns client's flow, marked active, opening it (and starting
// its replies' relay) when it has none; nil when it cannot.
func (p *Proxy) flowOf(client netip.AddrPort) *flow {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.flows[client]; f != nil {
		f.last = time.Now()
		return f
	}
	if len(p.flows) >= p.MaxFlows {
		return nil
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.To))
	if err != nil {
		return nil
	}
	f := &flow{conn: conn, last: time.Now()}
	p.flows[client] = f
	go p.replies(client, f)
	return f
}

// replies relays the server's datagrams on f to client until f has been
// idle for p.Idle (or its socket fails), then closes and forgets f.
func (p *Proxy) replies(client netip.AddrPort, f *flow) {
	for {
		f.conn.SetReadDeadline(p.expiry(f))
		err := p.relayReply(client, f)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if p.end(client, f, false) {
				return
			}
		case errors.Is(err, syscall.ECONNREFUSED): // an ICMP error for an earlier datagram, not the flow's end
		default:
			p.end(client, f, true)
			return
		}
	}
}

// relayReply waits for the server's next datagram on f and sends it to
// client, with a buffer taken only once the datagram is there.
func (p *Proxy) relayReply(client netip.AddrPort, f *flow) error {
	if err := readable(f.conn); err != nil {
		return err
	}
	buf := buffers.Get().(*[MaxDatagram + 1]byte)
	defer buffers.Put(buf)
	n, err := f.conn.Read(buf[:])
	if err != nil {
		return err
	}
	p.touch(f)
	p.Listen.WriteToUDPAddrPort(buf[:n], client) // a lost reply is the network's
	return nil
}

// readable waits until c has a datagram or an error to read (or its read
// deadline passes: os.ErrDeadlineExceeded).
func readable(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var peek [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return err != unix.EAGAIN && err != unix.EINTR
	})
	return err
}

// expiry is when f ends unless a datagram passes before.
func (p *Proxy) expiry(f *flow) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return f.last.Add(p.Idle)
}

// touch marks f active now.
func (p *Proxy) touch(f *flow) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f.last = time.Now()
}

// end closes client's flow f and forgets it when it has had no datagram
// for p.Idle, or in any case with force, and reports whether it did. The
// check and the removal are one step, so a datagram that flowOf has just
// given to f is not lost with it. Ending the last flow wakes Serve, which
// then returns (a datagram queued meanwhile stays on Listen).
func (p *Proxy) end(client netip.AddrPort, f *flow, force bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !force && time.Since(f.last) < p.Idle {
		return false
	}
	delete(p.flows, client)
	f.conn.Close()
	if len(p.flows) == 0 {
		p.Listen.SetReadDeadline(time.Now())
	}
	return true
}
