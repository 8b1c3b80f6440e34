package tty

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// startRelay runs a relay of a raw pty in the background, listening at a
// socket in a temporary directory; it returns the pty's slave (the
// payload's side), what the log got, the socket, and the relay's end.
func startRelay(t *testing.T) (slave *os.File, log *reader, sock string, ended chan error) {
	t.Helper()
	master, blocking := openPair(t)
	if _, err := term.MakeRaw(int(blocking.Fd())); err != nil {
		t.Fatal(err)
	}
	// A non-blocking copy, so that closing it ends a pending read and the
	// terminal ends with it.
	fd, err := unix.Dup(int(blocking.Fd()))
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		t.Fatal(err)
	}
	blocking.Close()
	slave = os.NewFile(uintptr(fd), "pty slave")
	t.Cleanup(func() { slave.Close() })
	logR, logW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logR.Close(); logW.Close() })
	r := NewRelay(master, logW, func(err error) { t.Errorf("log: %v", err) })
	sock = filepath.Join(t.TempDir(), "relay.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(ln)
	ended = make(chan error, 1)
	go func() {
		err := r.Run(nil, time.Second)
		ln.Close()
		ended <- err
	}()
	return slave, collect(logR), sock, ended
}

// TestRelay: what the payload writes reaches the log and every attached
// client; what a client sends reaches the payload; a client that detaches
// changes nothing for the others; when the payload's side closes, each
// client's output ends and nobody can attach any more.
func TestRelay(t *testing.T) {
	slave, log, sock, ended := startRelay(t)
	in := collect(slave)
	conn1, master1, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn1.Close()
	if !IsTerminal(master1) {
		t.Error("an attached client did not get the terminal's master")
	}
	master1.Close()
	out1 := collect(conn1)
	conn2, master2, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	master2.Close()
	out2 := collect(conn2)

	slave.WriteString("one.")
	waitFor(t, "both clients and the log to get the output", func() bool {
		return out1.String() == "one." && out2.String() == "one." && log.String() == "one."
	})
	conn2.WriteString("typed.")
	waitFor(t, "the payload to get a client's input", func() bool { return in.String() == "typed." })
	conn2.Close()
	slave.WriteString("two.")
	waitFor(t, "the other client to go on", func() bool { return out1.String() == "one.two." })

	slave.Close()
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("the relay ended with %v, want nil when the terminal ends", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the relay did not end when the payload's side closed")
	}
	conn1.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(conn1); err != nil || len(b) != 0 {
		t.Errorf("after the end a client reads %q, %v; want EOF", b, err)
	}
	if _, _, err := Dial(sock); !errors.Is(err, ErrNoRelay) {
		t.Errorf("Dial after the end: %v, want ErrNoRelay", err)
	}
}

// TestRelayNeverBlocksThePayload: a payload writing far more than a
// pty's buffer is never held up, neither with nobody attached nor by a
// client that does not read; the log gets all of it.
func TestRelayNeverBlocksThePayload(t *testing.T) {
	slave, log, sock, _ := startRelay(t)
	conn, master, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	master.Close()
	big := bytes.Repeat([]byte("0123456789abcdef"), 512<<10/16*8) // 4 MiB
	wrote := make(chan error, 1)
	go func() { _, err := slave.Write(big); wrote <- err }()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the payload's write blocked behind a client that does not read")
	}
	waitFor(t, "the log to get all of it", func() bool { return len(log.String()) == len(big) })
	if !strings.HasPrefix(log.String(), "0123456789abcdef") {
		t.Error("the log's copy is not the output")
	}
}

// TestRelayEndsWithAStalledClient: a client that stops reading does not
// keep the relay from ending when the terminal does: it gets the drain
// time to take what is queued for it, no more.
func TestRelayEndsWithAStalledClient(t *testing.T) {
	slave, _, sock, ended := startRelay(t)
	conn, master, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	master.Close()
	block := bytes.Repeat([]byte("x"), 4096)
	for range 100 { // under the client's backlog, over what its socket holds
		if _, err := slave.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	slave.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not end while a client did not read")
	}
}
