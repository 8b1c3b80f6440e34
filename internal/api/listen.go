package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/cove-project/cove/internal/ondemand"
)

// Listen returns the socket to serve on. With addr "" it is the one socket
// systemd passed (socket activation). Otherwise addr must be
// unix:///PATH: a stale socket file at PATH is replaced, and the socket
// gets the process's umask (development use).
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		return activatedListener()
	}
	path, err := unixPath(addr)
	if err != nil {
		return nil, err
	}
	if st, err := os.Lstat(path); err == nil && st.Mode()&fs.ModeSocket != 0 {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen on %s: remove stale socket: %w", addr, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// activatedListener returns the one listening socket systemd passed.
func activatedListener() (net.Listener, error) {
	conns, got, err := ondemand.Sockets("cove-api.socket (or give --listen unix:///PATH)")
	if err != nil {
		return nil, err
	}
	if len(got) != 1 || len(conns) != 0 {
		for _, c := range conns {
			c.Close()
		}
		for _, l := range got {
			l.Close()
		}
		return nil, fmt.Errorf("sockets from systemd: want exactly one listening socket, got %d "+
			"(start cove-api.socket, or give --listen unix:///PATH)", len(got)+len(conns))
	}
	return got[0], nil
}

// unixPath returns PATH of a unix:///PATH address.
func unixPath(addr string) (string, error) {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok || !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("address %q: want unix:///ABSOLUTE/PATH", addr)
	}
	return path, nil
}

// limitListener accepts at most cap(sem) connections at a time; more wait
// in the kernel's backlog until one closes.
type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// limitListen wraps l to allow at most n open connections.
func limitListen(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, sem: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

// Close closes the listener and wakes an Accept waiting for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	err := l.Listener.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// limitConn gives its slot back when closed, and tells those that asked
// (notifyClose).
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
	mu      sync.Mutex
	closed  []func()
}

// SyscallConn is the underlying connection's (syscall.Conn), for
// watchHangup; an error when it has none.
func (c *limitConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a connection with a file descriptor")
	}
	return sc.SyscallConn()
}

// notifyClose makes Close call f.
func (c *limitConn) notifyClose(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = append(c.closed, f)
}

// Close closes the connection and frees its slot (once).
func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.release()
		c.mu.Lock()
		fs := c.closed
		c.mu.Unlock()
		for _, f := range fs {
			f()
		}
	})
	return err
}
