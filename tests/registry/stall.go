package registry

import (
	"io"
	"net"
	"sync"
)

// Stall is a TCP proxy on 127.0.0.1 in front of a registry that, while
// held, stops passing the registry's answers on a connection once that
// connection has carried a given number of bytes: a pull stalls in the
// middle of its first large blob, as on a network that stopped.
type Stall struct {
	Addr     string        // 127.0.0.1:PORT, the proxy's address
	Stalled  chan struct{} // closed when a connection first stalls
	upstream string
	after    int64
	l        net.Listener
	mu       sync.Mutex
	held     chan struct{} // open while held; closed by Release
	once     sync.Once
}

// StartStall proxies to upstream, stalling each connection's answers
// after after bytes until Release. Close stops it.
func StartStall(upstream string, after int64) (*Stall, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Stall{Addr: l.Addr().String(), Stalled: make(chan struct{}), upstream: upstream, after: after, l: l, held: make(chan struct{})}
	go s.serve()
	return s, nil
}

// Release lets every stalled and later connection through.
func (s *Stall) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.held:
	default:
		close(s.held)
	}
}

// Close stops accepting and releases what is held.
func (s *Stall) Close() {
	s.Release()
	s.l.Close()
}

func (s *Stall) serve() {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		go s.relay(c)
	}
}

// relay passes one connection through, holding its answers once after
// bytes have gone by.
func (s *Stall) relay(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", s.upstream)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(up, c); up.Close() }()
	if _, err := io.CopyN(c, up, s.after); err != nil {
		return
	}
	s.once.Do(func() { close(s.Stalled) })
	<-s.held
	_, _ = io.Copy(c, up)
}
