package tty

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPair allocates a real pty pair from /dev/ptmx, closed when t ends.
func openPair(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, slave, err := Open("/dev/ptmx")
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	return master, slave
}

// reader collects what is read from f in the background.
type reader struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func collect(f io.Reader) *reader {
	r := &reader{}
	go func() {
		b := make([]byte, 256)
		for {
			n, err := f.Read(b)
			r.mu.Lock()
			r.buf.Write(b[:n])
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return r
}

func (r *reader) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestOpenSizes(t *testing.T) {
	master, slave := openPair(t)
	if !IsTerminal(slave) || !IsTerminal(master) {
		t.Fatal("a pty's ends are not terminals")
	}
	if IsTerminal(os.NewFile(uintptr(mustPipe(t)), "pipe")) {
		t.Error("a pipe is a terminal")
	}
	if err := SetSize(master, &unix.Winsize{Row: 33, Col: 101}); err != nil {
		t.Fatal(err)
	}
	ws, err := Size(slave)
	if err != nil || ws.Row != 33 || ws.Col != 101 {
		t.Errorf("slave's size %+v, %v; want 33x101", ws, err)
	}
}

func mustPipe(t *testing.T) int {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[1]) })
	return p[0]
}

// TestConsoleSocket: the stage allocates a pty of the size cove asked
// for and cove receives its master, which reads what the slave writes.
func TestConsoleSocket(t *testing.T) {
	host, stage, err := NewSocket(&unix.Winsize{Row: 24, Col: 132})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	m, slave, err := Serve(stage, "/dev/ptmx")
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	m.Close() // the stage does not need its copy
	stage.Close()
	defer slave.Close()
	master, err := Receive(host)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if ws, err := Size(master); err != nil || ws.Row != 24 || ws.Col != 132 {
		t.Errorf("received pty's size %+v, %v; want 24x132", ws, err)
	}
	out := collect(master)
	slave.Write([]byte("from the payload\n"))
	waitFor(t, "the slave's output on the received master", func() bool { return out.String() == "from the payload\r\n" })
}

// TestConsoleSocketNoTerminal: a stage that ends without sending a
// terminal ends the wait with ErrNoTerminal; closing cove's end ends it
// too.
func TestConsoleSocketNoTerminal(t *testing.T) {
	host, stage, err := NewSocket(&unix.Winsize{Row: 1, Col: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	stage.Close()
	if _, err := Receive(host); !errors.Is(err, ErrNoTerminal) {
		t.Errorf("Receive after the stage closed: %v, want ErrNoTerminal", err)
	}
	host2, stage2, err := NewSocket(&unix.Winsize{Row: 1, Col: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer stage2.Close()
	done := make(chan error)
	go func() { _, err := Receive(host2); done <- err }()
	time.Sleep(50 * time.Millisecond)
	host2.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Receive on a closed socket succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("closing cove's end did not end Receive")
	}
}

func TestServeRefusesOtherInput(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello"))
	w.Close()
	if _, _, err := Serve(r, "/dev/ptmx"); err == nil || !strings.Contains(err.Error(), "console socket") {
		t.Errorf("Serve on a pipe: %v", err)
	}
}

// writes records what is written, and how many writes were empty.
type writes struct {
	bytes.Buffer
	empty int
}

func (w *writes) Write(p []byte) (int, error) {
	if len(p) == 0 {
		w.empty++
	}
	return w.Buffer.Write(p)
}

func TestCopyInput(t *testing.T) {
	for _, c := range []struct {
		in, out  string
		detached bool
	}{
		{"abc", "abc", false},
		{"ab\x1dcd", "ab", true},
		{"\x1d", "", true},
	} {
		w := &writes{}
		detached, err := CopyInput(w, strings.NewReader(c.in))
		if err != nil || detached != c.detached || w.String() != c.out {
			t.Errorf("CopyInput(%q): %q, detached %v, %v; want %q, %v", c.in, w.String(), detached, err, c.out, c.detached)
		}
		if w.empty > 0 {
			t.Errorf("CopyInput(%q) wrote nothing %d times: a relay takes an empty message as the client's end", c.in, w.empty)
		}
	}
}

// session is a program running on a pty, and the user's terminal (another
// pty: the test types on userKeys and reads the screen from it) attached
// to it.
type session struct {
	*Session
	user, userKeys, master, slave *os.File
	screen                        *reader
}

// attach starts cmd with the program pty's slave as its controlling
// terminal and stdio, and attaches the user's terminal to its master.
func attach(t *testing.T, cmd *exec.Cmd) *session {
	t.Helper()
	s := &session{}
	s.userKeys, s.user = openPair(t)
	s.master, s.slave = openPair(t)
	if err := SetSize(s.userKeys, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.slave, s.slave, s.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var err error
	if s.Session, err = Attach(s.master, s.user, s.user); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.screen = collect(s.userKeys)
	return s
}

// TestSessionRelaysRawWithSignalsAndSize: the user's terminal is raw while
// attached and restored after; keys reach the program, Ctrl-C as SIGINT
// from the program's line discipline; the program's output reaches the
// screen; the program's pty has the user's size, also after a resize.
func TestSessionRelaysRawWithSignalsAndSize(t *testing.T) {
	cmd := exec.Command("sh", "-c", `stty size; read line; echo "got $line"; trap 'echo interrupted; exit 0' INT; echo waiting; while :; do sleep 0.05; done`)
	s := attach(t, cmd)
	if tio, err := unix.IoctlGetTermios(int(s.user.Fd()), unix.TCGETS); err != nil || tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 {
		t.Errorf("the user's terminal is not raw while attached: lflag %#x, %v", tio.Lflag, err)
	}
	waitFor(t, "the initial size", func() bool { return strings.Contains(s.screen.String(), "40 120") })
	s.userKeys.Write([]byte("hello\r"))
	waitFor(t, "the line to reach the program", func() bool { return strings.Contains(s.screen.String(), "got hello") })
	waitFor(t, "the trap", func() bool { return strings.Contains(s.screen.String(), "waiting") })
	s.userKeys.Write([]byte{0x03})
	waitFor(t, "Ctrl-C to interrupt the program", func() bool { return strings.Contains(s.screen.String(), "interrupted") })

	SetSize(s.userKeys, &unix.Winsize{Row: 50, Col: 90})
	unix.Kill(os.Getpid(), unix.SIGWINCH) // the user's terminal's foreground would get it
	waitFor(t, "the resize to reach the program's pty", func() bool {
		ws, err := Size(s.slave)
		return err == nil && ws.Row == 50 && ws.Col == 90
	})

	cmd.Wait()
	s.slave.Close()
	select {
	case <-s.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("the output did not end when the program did")
	}
	s.Close()
	if tio, err := unix.IoctlGetTermios(int(s.user.Fd()), unix.TCGETS); err != nil || tio.Lflag&unix.ICANON == 0 {
		t.Errorf("the user's terminal was not restored: lflag %#x, %v", tio.Lflag, err)
	}
}

// TestSessionDetach: the detach key ends the session's input while the
// program still runs; what was typed before it is delivered.
func TestSessionDetach(t *testing.T) {
	cmd := exec.Command("cat")
	s := attach(t, cmd)
	s.userKeys.Write([]byte("before\r\x1dafter\r"))
	select {
	case <-s.Detached():
	case <-time.After(5 * time.Second):
		t.Fatal("the detach key did not detach")
	}
	waitFor(t, "the input before the key", func() bool { return strings.Contains(s.screen.String(), "before\r\n") })
	time.Sleep(100 * time.Millisecond)
	if strings.Contains(s.screen.String(), "after") {
		t.Errorf("input after the detach key was delivered: %q", s.screen.String())
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the program does not run after the detach: %v", err)
	}
}
