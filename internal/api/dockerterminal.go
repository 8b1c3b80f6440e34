package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/launch"
)

// A Docker container created with Tty has a terminal kept by its relay in
// its unit (package tty), as cove run -t's: its output goes to the journal
// through the relay (so docker logs reads it, raw: a terminal has one
// stream) and to every attached client, raw as Docker sends a terminal's.

// terminalDrain is how long an attach still copies a terminal's output
// after the run ended: the relay ends it itself once it has copied the
// last of it.
const terminalDrain = 2 * time.Second

// streamTerminal is streamAttach for a container with a terminal: once the
// start comes, the request becomes a client of the terminal's relay over
// the console socket the run got (its master, which the launcher sent
// first, is let go: a resize reaches it through the relay's socket).
func (s *Server) streamTerminal(ctx context.Context, name string, conn net.Conn, in io.Reader, a *attachment, o attachOptions) {
	defer a.closeAll()
	r := s.awaitStart(ctx, name, a)
	if r == nil {
		return
	}
	master, err := tty.Receive(a.host)
	if err != nil {
		return
	}
	master.Close()
	relayRaw(ctx, conn, in, a.host, o, r.done)
}

// terminal is the size of the terminal a container with Tty gets at a
// start (its ConsoleSize, else tty.DefaultSize); nil without Tty.
func (c *dockerCreate) terminal() *unix.Winsize {
	if !c.Tty {
		return nil
	}
	return consoleSize(c.HostConfig.ConsoleSize)
}

// consoleSize is the terminal size a request's ConsoleSize ([rows,
// columns]) says, or tty.DefaultSize for [0, 0] (none given). The docker
// CLI since 23 sends the user's terminal's, so that the payload sees its
// size from the start and not only after the resize that follows.
func consoleSize(s [2]uint16) *unix.Winsize {
	if s == [2]uint16{} {
		ws := tty.DefaultSize
		return &ws
	}
	return &unix.Winsize{Row: s[0], Col: s[1]}
}

// relayWait is how long a request to a running container's terminal
// waits for its relay to listen (see tty.DialWait): the docker CLI sizes
// the terminal right after the start.
const relayWait = 2 * time.Second

// attachTerminal is attachRunning for a container with a terminal: the
// request becomes a client of its relay from now on, until the terminal
// ends or the client goes away.
func (s *Server) attachTerminal(c *call, ct dockerContainer, o attachOptions) {
	relay, master, err := tty.DialWait(launch.TerminalSocket(ct.Name), relayWait)
	if err != nil {
		if errors.Is(err, tty.ErrNoRelay) {
			err = dockerNotRunning(ct.Name)
		}
		c.failWith(err)
		return
	}
	master.Close()
	defer relay.Close()
	conn, in := hijack(c, "attach "+ct.Name)
	if conn == nil {
		return
	}
	defer conn.Close()
	relayRaw(context.WithoutCancel(c.ctx()), conn, in, relay, o, nil)
}

// relayRaw copies between a hijacked attach connection and relay, a client
// connection of a terminal's relay: the terminal's output (if o asks for
// stdout or stderr, else it is dropped) until the relay ends it, the run
// has ended (ended, nil: not watched) and terminalDrain has passed, or the
// client hangs up; the client's input to the terminal if o asks for stdin.
func relayRaw(ctx context.Context, conn net.Conn, in io.Reader, relay *os.File, o attachOptions, ended <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if o.stdin {
			// A relay reads one message of at most 64 KiB at a time.
			io.CopyBuffer(struct{ io.Writer }{relay}, in, make([]byte, 16<<10))
		} else {
			io.Copy(io.Discard, in)
		}
		watchHangup(ctx, conn, cancel)
	}()
	go func() {
		select {
		case <-ended:
			time.Sleep(terminalDrain)
		case <-ctx.Done():
		}
		relay.SetReadDeadline(time.Now())
	}()
	var out io.Writer = conn
	if !o.stdout && !o.stderr {
		out = io.Discard
	}
	io.CopyBuffer(struct{ io.Writer }{&dropWriter{w: out}}, struct{ io.Reader }{relay}, make([]byte, 64<<10))
}

// dockerResize answers POST /containers/ID/resize?h=ROWS&w=COLUMNS: the
// terminal of a running container gets that size (through its relay's
// socket); 200 for one without a terminal, 409 for one that does not
// run, 400 for a bad size.
func (s *Server) dockerResize(c *call) {
	size, qerr := resizeQuery(c.r.URL.Query())
	if qerr != nil {
		c.fail(qerr)
		return
	}
	ct, ok := s.lookupContainer(c)
	if !ok {
		return
	}
	if !isUp(dockerState(ct.Workload)) {
		c.fail(dockerNotRunning(ct.Name))
		return
	}
	if ct.rec == nil || !ct.rec.Config.Tty {
		c.w.WriteHeader(http.StatusOK)
		return
	}
	relay, master, err := tty.DialWait(launch.TerminalSocket(ct.Name), relayWait)
	if err != nil {
		c.failWith(err)
		return
	}
	defer relay.Close()
	defer master.Close()
	if err := tty.SetSize(master, size); err != nil {
		c.failWith(err)
		return
	}
	c.w.WriteHeader(http.StatusOK)
}

// resizeQuery reads a resize's query: h and w, the rows and columns.
func resizeQuery(q url.Values) (*unix.Winsize, *Error) {
	h, herr := strconv.ParseUint(q.Get("h"), 10, 16)
	w, werr := strconv.ParseUint(q.Get("w"), 10, 16)
	if herr != nil || werr != nil {
		return nil, errorf(CodeBadRequest, fmt.Sprintf("resize: want h and w, numbers of rows and columns: %q, %q", q.Get("h"), q.Get("w")))
	}
	return &unix.Winsize{Row: uint16(h), Col: uint16(w)}, nil
}
