package tty

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// DetachKey (Ctrl-]) ends an attached session without stopping what runs,
// as telnet's escape and cove console's.
const DetachKey = 0x1d

// CopyInput copies in to w until in ends or DetachKey is read; the bytes
// before the key are written, the key and what follows it are not. It
// reports whether the key was read.
func CopyInput(w io.Writer, in io.Reader) (detached bool, err error) {
	buf := make([]byte, 1024)
	for {
		n, err := in.Read(buf)
		for i := 0; i < n; i++ {
			if buf[i] != DetachKey {
				continue
			}
			var werr error
			if i > 0 { // an empty write would be an empty message to a relay: its end
				_, werr = w.Write(buf[:i])
			}
			return true, werr
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false, werr
			}
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// Session relays between the user's terminal and a pty's master.
type Session struct {
	master   *os.File
	user     *os.File // the user's terminal, nil when the input is none
	restore  func()
	winch    chan os.Signal
	output   chan struct{} // closed when the master's output ended
	detached chan struct{} // closed when the detach key was read
	close    sync.Once
}

// Attach relays master's output to out, and in (when not nil) to master
// until in ends or the user presses DetachKey. When in is a terminal it
// is put into raw mode (every key, Ctrl-C included, goes to the program;
// the pty's line discipline turns it into a signal) and its window size is
// copied to master now and on each SIGWINCH. Close restores the terminal;
// call it on every path.
func Attach(master, in *os.File, out io.Writer) (*Session, error) {
	return AttachVia(master, master, in, out)
}

// AttachVia is Attach through stream, a relay's client connection (see
// Relay): the output is read from stream and the input written to it;
// master only gets the window size.
func AttachVia(master *os.File, stream io.ReadWriter, in *os.File, out io.Writer) (*Session, error) {
	s := &Session{master: master, restore: func() {}, output: make(chan struct{}),
		detached: make(chan struct{})}
	if in != nil && IsTerminal(in) {
		s.user = in
		if err := s.makeRaw(); err != nil {
			return nil, err
		}
		s.forwardResize()
	}
	go func() {
		defer close(s.output)
		// Ends with EIO once every slave is closed (the program ended), or
		// EOF from a relay. The buffer holds a relay's largest message.
		io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{stream}, make([]byte, 2*chunk))
	}()
	if in == nil {
		return s, nil
	}
	go func() {
		if detached, _ := CopyInput(stream, in); detached {
			close(s.detached)
		}
	}()
	return s, nil
}

// makeRaw puts the user's terminal into raw mode and arranges its
// restoration.
func (s *Session) makeRaw() error {
	var old *term.State
	err := control(s.user, func(fd int) (err error) {
		old, err = term.MakeRaw(fd)
		return err
	})
	if err != nil {
		return fmt.Errorf("put the terminal %s into raw mode: %w", s.user.Name(), err)
	}
	s.restore = func() { control(s.user, func(fd int) error { return term.Restore(fd, old) }) }
	return nil
}

// forwardResize copies the user's window size to the master now and on
// every SIGWINCH until Close.
func (s *Session) forwardResize() {
	s.winch = make(chan os.Signal, 1)
	signal.Notify(s.winch, unix.SIGWINCH)
	s.copySize()
	go func() {
		for range s.winch {
			s.copySize()
		}
	}()
}

// copySize copies the user's window size to the master; a terminal that
// cannot say its size leaves the master's as it is.
func (s *Session) copySize() {
	if ws, err := Size(s.user); err == nil {
		SetSize(s.master, ws)
	}
}

// Detached is closed when the user pressed the detach key.
func (s *Session) Detached() <-chan struct{} { return s.detached }

// Ended is closed when the master's output ended: no process holds the
// slave any more.
func (s *Session) Ended() <-chan struct{} { return s.output }

// Drain waits until the output has ended, for at most timeout: after the
// program ended, what it wrote last is still to be copied.
func (s *Session) Drain(timeout time.Duration) {
	select {
	case <-s.output:
	case <-time.After(timeout):
	}
}

// Close stops forwarding the window size and restores the user's
// terminal. It does not close the master. It may be called more than once.
func (s *Session) Close() {
	s.close.Do(func() {
		if s.winch != nil {
			signal.Stop(s.winch)
			close(s.winch)
		}
		s.restore()
	})
}
