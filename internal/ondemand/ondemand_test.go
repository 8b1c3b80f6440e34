package ondemand

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSocketsNone checks that no passed socket is an error that names
// the socket unit.
func TestSocketsNone(t *testing.T) {
	t.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	t.Setenv("LISTEN_FDS", "0")
	c, l, err := Sockets("cove-x@net.socket")
	if err == nil || !strings.Contains(err.Error(), "cove-x@net.socket") {
		t.Errorf("Sockets without sockets: %v %v, error %v", c, l, err)
	}
}

// TestFileSocket checks that a datagram socket becomes a PacketConn, a
// stream socket a Listener, and that both are duplicates that outlive
// the file.
func TestFileSocket(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, s := range []interface{ File() (*os.File, error) }{pc.(*net.UDPConn), l.(*net.TCPListener)} {
		f, err := s.File()
		if err != nil {
			t.Fatal(err)
		}
		c, ln, err := fileSocket(f)
		f.Close()
		switch {
		case err != nil:
			t.Errorf("%T: %v", s, err)
		case c != nil && c.LocalAddr().String() == pc.LocalAddr().String():
			c.Close()
		case ln != nil && ln.Addr().String() == l.Addr().String():
			ln.Close()
		default:
			t.Errorf("%T: got %v, %v", s, c, ln)
		}
	}
}

// TestIdleWait: Wait goes on while requests are answered (however long
// one takes), returns nil once none came for d, returns an error that
// arrives, and returns nil when ctx ends.
func TestIdleWait(t *testing.T) {
	a := NewIdle()
	d := 200 * time.Millisecond
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- a.Wait(context.Background(), d, nil) }()
	a.Begin()
	time.Sleep(2 * d) // one long request
	a.End()
	ended := time.Now()
	select {
	case err := <-done:
		if err != nil || time.Since(ended) < d-20*time.Millisecond {
			t.Errorf("Wait returned %v %v after the request ended, %v after the start; want nil after %v", err, time.Since(ended), time.Since(start), d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return when idle")
	}

	errc := make(chan error, 1)
	errc <- errors.New("boom")
	if err := NewIdle().Wait(context.Background(), -1, errc); err == nil || err.Error() != "boom" {
		t.Errorf("Wait with an error on errc: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := NewIdle().Wait(ctx, -1, nil); err != nil {
		t.Errorf("Wait until ctx ends: %v", err)
	}
}
