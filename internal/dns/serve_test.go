package dns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/cove-project/cove/internal/ondemand"
)

// childEnv makes the test binary the activated child of TestActivated.
const childEnv = "COVE_DNS_TEST_ACTIVATED_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(activatedChild())
	}
	os.Exit(m.Run())
}

// activatedChild is cove dns-serve with a fake zone, as systemd would
// start it: its sockets are fds 3 and up (LISTEN_FDS), and LISTEN_PID,
// which only the child knows, is set here. It exits 0 after 300 ms idle.
func activatedChild() int {
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	conns, lns, err := ondemand.Sockets("cove-dns@test.socket")
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 2
	}
	if os.Getenv("LISTEN_FDS") != "" || len(conns) != 1 || len(lns) != 1 {
		os.Stderr.WriteString("ondemand.Sockets left LISTEN_FDS set or split the sockets wrong\n")
		return 3
	}
	if err := Serve(context.Background(), conns, lns, Config{Zone: testZone(), Idle: 300 * time.Millisecond}); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	return 0
}

// TestActivated plays systemd: it holds a UDP and a TCP socket, sends a
// query while no responder runs, starts the child with the sockets, and
// checks that the waiting query and new ones are answered, that the
// child exits 0 when idle, and that a query after that waits for the
// next child.
func TestActivated(t *testing.T) {
	pc, l := listenPair(t)
	defer pc.Close()
	defer l.Close()
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	var files []*os.File
	for _, s := range []interface{ File() (*os.File, error) }{pc.(*net.UDPConn), l.(*net.TCPListener)} {
		f, err := s.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	for round := range 2 {
		client, err := net.Dial("udp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		if _, err := client.Write(packed(t, "web.test.", nil)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childEnv+"=1", "LISTEN_FDS=2")
		cmd.ExtraFiles = files
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		n, err := client.Read(buf)
		m := new(mdns.Msg)
		if err != nil || m.Unpack(buf[:n]) != nil || len(m.Answer) != 1 {
			t.Errorf("round %d: the query sent before the start: %v %v", round, m, err)
		}
		if m := query(t, "tcp", addr, "web.", mdns.TypeA); len(m.Answer) != 1 {
			t.Errorf("round %d: over TCP: %v", round, m)
		}
		waitExit(t, cmd, start)
	}
}

// waitExit waits for cmd and checks that it exited 0, idle (after 300
// ms), within 10 s.
func waitExit(t *testing.T, cmd *exec.Cmd, start time.Time) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the activated responder: %v", err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("it exited after %v, before being idle for 300 ms", d)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("the activated responder did not exit when idle")
	}
}

// TestIdle checks that Serve goes on while queries come, returns nil
// once none came for Idle, waits for a query being forwarded however
// long it takes, and closes its sockets.
func TestIdle(t *testing.T) {
	slow := startUpstream(t, func(req *mdns.Msg) *mdns.Msg {
		time.Sleep(700 * time.Millisecond)
		return answerA(1)(req)
	})
	pc, l := listenPair(t)
	addr := netip.MustParseAddrPort(pc.LocalAddr().String())
	done := make(chan error, 1)
	c := Config{Zone: testZone(), Idle: 300 * time.Millisecond, Upstreams: []netip.AddrPort{slow.addr}}
	go func() { done <- Serve(context.Background(), []net.PacketConn{pc}, []net.Listener{l}, c) }()
	for range 6 {
		time.Sleep(150 * time.Millisecond)
		query(t, "udp", addr, "web.test.", mdns.TypeA)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned while queries came: %v", err)
	default:
	}
	if m := query(t, "tcp", addr, "slow.example.", mdns.TypeA); m.Rcode != mdns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("a forward longer than Idle: %v", m)
	}
	last := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		if d := time.Since(last); d < 200*time.Millisecond {
			t.Errorf("Serve returned %v after the last query, want about 300 ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return when idle")
	}
	if _, _, err := pc.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the UDP socket after Serve: %v, want closed", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the TCP socket after Serve: %v, want closed", err)
	}
}

// TestServeNothing checks the errors of a Serve that cannot serve.
func TestServeNothing(t *testing.T) {
	if err := Serve(context.Background(), nil, nil, Config{Zone: testZone()}); err == nil {
		t.Error("Serve without sockets returned nil")
	}
	pc, l := listenPair(t)
	defer pc.Close()
	defer l.Close()
	if err := Serve(context.Background(), []net.PacketConn{pc}, nil, Config{}); err == nil {
		t.Error("Serve without a zone returned nil")
	}
}
