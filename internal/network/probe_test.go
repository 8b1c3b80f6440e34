package network

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/cove-project/cove/internal/network/plan"
)

// probe is one connection a test tries: from a namespace (and a local
// address, if src is set) to an address and port, over TCP (serve) or
// UDP (serveUDP). seen is the source address the server must see when it
// answers ("" for any).
type probe struct {
	what  string
	from  netns.NsHandle
	src   netip.Addr
	to    netip.Addr
	port  uint16
	proto string // plan.TCP (or "") or plan.UDP
	seen  netip.Addr
}

// probeTimeout bounds each connection attempt.
const probeTimeout = 500 * time.Millisecond

// try runs the probe once and returns the source address the server saw.
func (p probe) try() (string, error) {
	if p.proto == plan.UDP {
		return dialUDP(p.from, p.to, p.port, probeTimeout)
	}
	return dialFrom(p.from, p.src, p.to, p.port, probeTimeout)
}

// tryAll runs the probes at once (each on a thread of its own) and
// returns what each server saw, or the error.
func tryAll(ps []probe) ([]string, []error) {
	seen, errs := make([]string, len(ps)), make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { seen[i], errs[i] = p.try() })
	}
	wg.Wait()
	return seen, errs
}

// expectReach fails the test for each probe that is not answered, or
// answered with another source address than the probe's seen.
func expectReach(t *testing.T, ps ...probe) {
	t.Helper()
	seen, errs := tryAll(ps)
	// A probe that must be answered gets more tries for up to 5 s, so
	// that a loaded machine (a first neighbour exchange, a slow accept)
	// does not fail the test; one answer is enough.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var again []int
		for i := range ps {
			if errs[i] != nil {
				again = append(again, i)
			}
		}
		if len(again) == 0 {
			break
		}
		for _, i := range again {
			seen[i], errs[i] = ps[i].try()
		}
	}
	for i, p := range ps {
		switch {
		case errs[i] != nil:
			t.Errorf("%s (%v port %d): %v, want it answered", p.what, p.to, p.port, errs[i])
		case p.seen.IsValid() && seen[i] != p.seen.String():
			t.Errorf("%s (%v port %d): the server saw %s, want %v", p.what, p.to, p.port, seen[i], p.seen)
		}
	}
}

// expectBlocked fails the test for each probe that is answered.
func expectBlocked(t *testing.T, ps ...probe) {
	t.Helper()
	seen, errs := tryAll(ps)
	for i, p := range ps {
		if errs[i] == nil {
			t.Errorf("%s (%v port %d): answered (the server saw %s), want it blocked", p.what, p.to, p.port, seen[i])
		}
	}
}

// serveUDP answers each datagram to addr:port inside ns with the source
// address it came from, until the test ends.
func serveUDP(t *testing.T, ns netns.NsHandle, addr netip.Addr, port uint16) {
	t.Helper()
	var c net.PacketConn
	err := InNetns(ns, func() (err error) {
		c, err = net.ListenPacket("udp", netip.AddrPortFrom(addr, port).String())
		return err
	})
	if err != nil {
		t.Fatalf("listen on udp %v:%d: %v", addr, port, err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := c.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				c.WriteTo([]byte(from.(*net.UDPAddr).AddrPort().Addr().Unmap().String()), from)
			}
		}
	}()
}

// dialUDP sends one datagram from inside ns to addr:port and waits
// (bounded by timeout) for the answer: the source address the server saw.
func dialUDP(ns netns.NsHandle, addr netip.Addr, port uint16, timeout time.Duration) (string, error) {
	var seen string
	err := InNetns(ns, func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(addr, port).String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := c.Write([]byte("cove")); err != nil {
			return err
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		seen = strings.TrimSpace(string(buf[:n]))
		return err
	})
	return seen, err
}
