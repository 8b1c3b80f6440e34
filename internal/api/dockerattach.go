package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
	"golang.org/x/sys/unix"
)

// Timing of attach streams.
const (
	attachTimeout = time.Minute            // how long an attach waits for the start it precedes
	drainTime     = 200 * time.Millisecond // how long it reads what is left in the pipes once the run ended
)

// attachOptions are the query of POST /containers/ID/attach.
type attachOptions struct{ stdin, stdout, stderr bool }

// attachQuery reads stream (required: an attach is a stream), logs
// (ignored: a container that has not started has no output yet), stdin,
// stdout and stderr; detachKeys does not apply without a TTY.
func attachQuery(q url.Values) (attachOptions, *Error) {
	var o attachOptions
	var stream, logs bool
	for _, p := range []struct {
		key string
		v   *bool
	}{{"stream", &stream}, {"logs", &logs}, {"stdin", &o.stdin}, {"stdout", &o.stdout}, {"stderr", &o.stderr}} {
		var err *Error
		if *p.v, err = queryBool(q, p.key); err != nil {
			return o, err
		}
	}
	if !stream {
		return o, errorf(CodeNotImplemented, "cove does not implement attach without stream: read the output with the logs endpoint")
	}
	return o, nil
}

// attachment is the standard input, output and error of a container's
// next run, piped to an attach request: the run gets one end of each
// pipe (systemd passes them to the payload), the request the other. A
// container with a terminal (Tty) gets a console socket instead, whose
// other end becomes a client of the terminal's relay (package tty).
type attachment struct {
	in          *os.File // the run's stdin: a pipe's read end, or /dev/null
	inW         *os.File // the request's end of stdin, or nil
	outR, outW  *os.File
	errR, errW  *os.File
	host, stage *os.File  // with a terminal: the console socket's ends (the request's, the run's)
	start       chan *run // the run once started, or nil: no start is coming
}

// newAttachment makes the pipes (stdin: a pipe too, else /dev/null), or
// for a container with a terminal (terminal, its size at the start: not
// nil) the console socket.
func newAttachment(stdin bool, terminal *unix.Winsize) (*attachment, error) {
	a := &attachment{start: make(chan *run, 1)}
	if terminal != nil {
		var err error
		if a.host, a.stage, err = tty.NewSocket(terminal); err != nil {
			return nil, fmt.Errorf("attach: %w", err)
		}
		return a, nil
	}
	var err error
	if a.outR, a.outW, err = os.Pipe(); err == nil {
		a.errR, a.errW, err = os.Pipe()
	}
	if err == nil && stdin {
		a.in, a.inW, err = os.Pipe()
	} else if err == nil {
		a.in, err = os.Open(os.DevNull)
	}
	if err != nil {
		a.closeAll()
		return nil, fmt.Errorf("attach: %w", err)
	}
	return a, nil
}

// closeRunEnds closes the helper's copies of the run's ends, once
// systemd has its own (or the start failed): the request then sees the
// end of the output when the payload and systemd close theirs.
func (a *attachment) closeRunEnds() { closeFiles(a.in, a.outW, a.errW, a.stage) }

// closeAll closes every end.
func (a *attachment) closeAll() {
	closeFiles(a.in, a.inW, a.outR, a.outW, a.errR, a.errW, a.host, a.stage)
}

// stdio is what the run gets: the pipes, or the console socket (its
// output goes to the journal through the terminal's relay, the
// launcher's own words there too).
func (a *attachment) stdio() *supervisor.Stdio {
	if a.stage != nil {
		return &supervisor.Stdio{In: a.stage}
	}
	return &supervisor.Stdio{In: a.in, Out: a.outW, Err: a.errW}
}

// closeFiles closes the files that are not nil.
func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// started tells the attach request how its start went (r nil: failed);
// a is nil when no request waits.
func (a *attachment) started(r *run) {
	if a != nil {
		a.start <- r
	}
}

// attach registers a as the attachment of name's next run; false if one
// is waiting already.
func (rs *containerRuns) attach(name string, a *attachment) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.attached[name] != nil {
		return false
	}
	rs.attached[name] = a
	return true
}

// waiting reports whether an attach request waits for name's start.
func (rs *containerRuns) waiting(name string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.attached[name] != nil
}

// takeAttachment removes and returns name's attachment, or nil.
func (rs *containerRuns) takeAttachment(name string) *attachment {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	a := rs.attached[name]
	delete(rs.attached, name)
	return a
}

// untake removes a if it is still name's attachment: then no start took
// it.
func (rs *containerRuns) untake(name string, a *attachment) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.attached[name] != a {
		return false
	}
	delete(rs.attached, name)
	return true
}

// dropAttachment ends the attach request waiting for name's start.
func (rs *containerRuns) dropAttachment(name string) { rs.takeAttachment(name).started(nil) }

// runAttached starts u with att's pipes as its stdio (none: the
// journal's). A run with a terminal that nobody attaches to gets a
// console socket all the same, let go once it has started (its relay
// keeps the terminal).
func (s *Server) runAttached(ctx context.Context, runner Runner, u units.Unit, att *attachment, terminal *unix.Winsize) (io.Closer, error) {
	switch {
	case att == nil && terminal == nil:
		return runner.RunTransient(ctx, u, nil)
	case att == nil:
		att, err := newAttachment(false, terminal)
		if err != nil {
			return nil, err
		}
		defer att.closeAll()
		hold, err := startAttached(ctx, runner, u, att)
		if err == nil {
			// The launcher sent the master before the start ended.
			if master, err := tty.Receive(att.host); err == nil {
				master.Close()
			}
		}
		return hold, err
	}
	return startAttached(ctx, runner, u, att)
}

// startAttached starts u with att's ends as its stdio.
func startAttached(ctx context.Context, runner Runner, u units.Unit, att *attachment) (io.Closer, error) {
	hold, err := runner.RunTransient(ctx, u, att.stdio())
	att.closeRunEnds()
	if err != nil {
		err = att.withOutput(err)
		att.started(nil)
	}
	return hold, err
}

// maxFailedOutput bounds what a failed start's error quotes of its output.
const maxFailedOutput = 8 << 10

// withOutput adds to the error of a failed start what the run wrote: the
// launcher says why on its stderr, which is the attach pipe, not the
// journal (so the error has no log lines of its own).
func (a *attachment) withOutput(err error) error {
	var out []string
	deadline := time.Now().Add(drainTime)
	for _, f := range []*os.File{a.errR, a.outR} {
		if f == nil { // a terminal's: the launcher's words are in the journal
			continue
		}
		f.SetReadDeadline(deadline)
		b, _ := io.ReadAll(io.LimitReader(f, maxFailedOutput))
		if t := strings.TrimSpace(string(b)); t != "" {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return err
	}
	return fmt.Errorf("%w\n%s", err, strings.Join(out, "\n"))
}

// dockerAttach answers POST /containers/ID/attach?stream=1&stdin=&stdout=&stderr=
// for a container about to start (docker run, docker start -a): the
// connection is hijacked (101, Docker's raw stream) and, once the start
// comes, carries the run's stdout and stderr as multiplexed frames
// (stream 1 and 2) and, with stdin, the client's input to the payload
// until it closes its side. It ends when the run has ended. For a
// running container see attachRunning.
func (s *Server) dockerAttach(c *call) {
	o, qerr := attachQuery(c.r.URL.Query())
	if qerr != nil {
		c.fail(qerr)
		return
	}
	ct, ok := s.lookupContainer(c)
	if !ok {
		return
	}
	if isUp(dockerState(ct.Workload)) {
		if ct.rec != nil && ct.rec.Config.Tty {
			s.attachTerminal(c, ct, o)
			return
		}
		s.attachRunning(c, ct, o)
		return
	}
	if ct.rec == nil {
		c.fail(errorf(CodeConflict, fmt.Sprintf("cove attaches to container %s only while it runs: it was not created through Docker's API, so no start of it comes here", ct.Name)))
		return
	}
	a, err := newAttachment(o.stdin, ct.rec.Config.terminal())
	if err != nil {
		c.failWith(err)
		return
	}
	if !s.runs.attach(ct.Name, a) {
		a.closeAll()
		c.fail(errorf(CodeConflict, fmt.Sprintf("an attach to container %s is waiting for its start already", ct.Name)))
		return
	}
	conn, in := hijack(c, "attach "+ct.Name)
	if conn == nil {
		if s.runs.untake(ct.Name, a) {
			a.closeAll()
		}
		return
	}
	defer conn.Close()
	if a.host != nil {
		s.streamTerminal(c.ctx(), ct.Name, conn, in, a, o)
		return
	}
	s.streamAttach(c.ctx(), ct.Name, conn, in, a, o)
}

// attachRunning attaches to running container ct: the connection is
// hijacked and carries what the run writes from now on (read from the
// journal, where its output goes: stdout and stderr as one stream, 1)
// until the run ends; the client's input is read and dropped, as Docker
// drops it for a container started without an open stdin (a running
// cove container's stdin is not the helper's to give).
func (s *Server) attachRunning(c *call, ct dockerContainer, o attachOptions) {
	first, err := s.sight(c.ctx(), ct.Name)
	if err != nil {
		c.failWith(err)
		return
	}
	conn, in := hijack(c, "attach "+ct.Name)
	if conn == nil {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.ctx()))
	defer cancel()
	go func() {
		io.Copy(io.Discard, in) // to the client's half-close (the docker CLI's without stdin) or its going away
		watchHangup(ctx, conn, cancel)
	}()
	go func() {
		s.waitFor(ctx, ct.Name, waitNotRunning, first)
		time.Sleep(runEndGrace) // the journal's last lines of the run
		cancel()
	}()
	var out io.Writer = io.Discard
	if o.stdout || o.stderr {
		out = muxWriter{w: conn, stream: 1}
	}
	s.backend.Logs(ctx, ct.Name, supervisor.LogOptions{Follow: true, Lines: supervisor.NoLines}, out)
}

// watchHangup calls gone once conn's peer has closed it (POLLHUP: both
// directions; a half-close is not one), looking every hangupCheck until
// ctx ends: a client that leaves an attach to a quiet container is
// noticed without a write failing.
func watchHangup(ctx context.Context, conn net.Conn, gone func()) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	t := time.NewTicker(hangupCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hung := false
		rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLHUP}}
			n, _ := unix.Poll(fds, 0)
			hung = n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0
		})
		if hung {
			gone()
			return
		}
	}
}

// hangupCheck is how often watchHangup looks.
const hangupCheck = time.Second

// runEndGrace is how long an attach to a running container still reads
// the journal after the run ended: its last lines may reach the journal
// after systemd saw the exit.
const runEndGrace = 500 * time.Millisecond

// hijack takes the connection over for what (an operation, in an error)
// and answers Docker's upgrade to a raw stream (101 when the client asked
// for an upgrade, else 200), without deadlines from then on. A nil
// connection means it could not: it answered the error, or the client
// went away.
func hijack(c *call, what string) (net.Conn, *bufio.Reader) {
	conn, brw, err := http.NewResponseController(c.w).Hijack()
	if err != nil {
		c.failWith(fmt.Errorf("%s: %w", what, err))
		return nil, nil
	}
	conn.SetDeadline(time.Time{})
	status, upgrade := "200 OK", ""
	if c.r.Header.Get("Upgrade") != "" {
		status, upgrade = "101 UPGRADED", "Connection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	fmt.Fprintf(brw, "HTTP/1.1 %s\r\nContent-Type: application/vnd.docker.raw-stream\r\n%sApi-Version: %s\r\nOstype: linux\r\n\r\n",
		status, upgrade, dockerAPIVersion)
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil
	}
	return conn, brw.Reader
}

// streamAttach waits for the start, then copies the run's output to conn
// as frames (and conn's input to the run's stdin) until the output ends
// or, after the run ended, what is left in the pipes is read. A client
// that goes away stops nothing: the output is read and dropped.
func (s *Server) streamAttach(ctx context.Context, name string, conn net.Conn, in io.Reader, a *attachment, o attachOptions) {
	defer a.closeAll()
	r := s.awaitStart(ctx, name, a)
	if r == nil {
		return
	}
	if a.inW != nil {
		go func() {
			io.Copy(a.inW, in)
			a.inW.Close()
		}()
	}
	wait := copyStreams(conn, a.outR, a.errR, o)
	copied := make(chan struct{})
	go drainAfter(ctx, r, copied, a.outR, a.errR)
	wait()
	close(copied)
}

// copyStreams copies out and errs to w as Docker's frames of streams 1
// and 2, each only if o wants it (else it is read and dropped), and
// returns a function that waits for both copies to end.
func copyStreams(w io.Writer, out, errs *os.File, o attachOptions) (wait func()) {
	fr := &frames{w: w}
	var wg sync.WaitGroup
	wg.Go(func() { fr.copy(out, 1, o.stdout) })
	wg.Go(func() { fr.copy(errs, 2, o.stderr) })
	return wg.Wait
}

// awaitStart waits for the start a precedes: its run, or nil when none
// comes (the start failed, the container was removed, the client went
// away, or attachTimeout passed).
func (s *Server) awaitStart(ctx context.Context, name string, a *attachment) *run {
	t := time.NewTimer(attachTimeout)
	defer t.Stop()
	select {
	case r := <-a.start:
		return r
	case <-ctx.Done():
	case <-t.C:
	}
	if s.runs.untake(name, a) {
		return nil
	}
	return <-a.start // a start took it: it tells how it went
}

// drainAfter sets a read deadline drainTime ahead on the pipes once the
// run has ended (or the request is cancelled), unless the copies ended
// first: the payload has written everything, but systemd keeps its ends
// of the pipes open while the unit stays loaded as exited.
func drainAfter(ctx context.Context, r *run, copied <-chan struct{}, pipes ...*os.File) {
	select {
	case <-r.done:
	case <-ctx.Done():
	case <-copied:
		return
	}
	deadline := time.Now().Add(drainTime)
	for _, p := range pipes {
		p.SetReadDeadline(deadline)
	}
}

// frames writes Docker's multiplexed stream (muxWriter) from several
// pipes. After a write error it drops everything.
type frames struct {
	mu     sync.Mutex
	w      io.Writer
	broken bool
}

// copy reads f to its end, writing what it reads as frames of stream
// when want.
func (fr *frames) copy(f *os.File, stream byte, want bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 && want {
			fr.frame(stream, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// frame writes p as one frame of stream.
func (fr *frames) frame(stream byte, p []byte) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.broken {
		return
	}
	if _, err := (muxWriter{w: fr.w, stream: stream}).Write(p); err != nil {
		fr.broken = true
	}
}
