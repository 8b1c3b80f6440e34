package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/cove-project/cove/internal/enter"
	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/supervisor"
	"golang.org/x/sys/unix"
)

// dockerTerm is the TERM Docker gives a process with a terminal whose
// environment sets none.
const dockerTerm = "xterm"

// Docker's exec: a command run in a running container as cove exec runs
// it (Execer), by the helper, which holds the instances in memory: an
// instance lives as long as the helper (the docker CLI creates, starts
// and inspects one within a second).

// execRoutes are the Docker Engine API endpoints of exec.
func execRoutes() []route {
	return []route{
		{method: http.MethodPost, path: "/containers/{name}/exec", need: roleRoot, mutates: true, handle: (*Server).createExec},
		{method: http.MethodPost, path: "/exec/{name}/start", need: roleRoot, mutates: true, handle: (*Server).startExec},
		{method: http.MethodGet, path: "/exec/{name}/json", need: roleRoot, handle: (*Server).inspectExec},
		{method: http.MethodPost, path: "/exec/{name}/resize", need: roleRoot, handle: (*Server).resizeExec},
	}
}

// dockerExecCreate is the body of POST /containers/ID/exec, the fields
// cove reads.
type dockerExecCreate struct {
	AttachStdin, AttachStdout, AttachStderr bool
	Tty, Privileged                         bool
	Env, Cmd                                []string
	User, WorkingDir, DetachKeys            string
	ConsoleSize                             [2]uint16 // with Tty: [rows, columns] ([0, 0]: none given)
}

// execInstance is one exec: its container, what it runs and, once
// started, its state.
type execInstance struct {
	id, container string
	cfg           dockerExecCreate
	mu            sync.Mutex
	started       bool
	running       bool
	ended         time.Time // when the command ended (zero: not yet)
	exitCode      int
	pid           int
	master        *os.File      // with a terminal: its master, while the command runs
	size          *unix.Winsize // the terminal's size: at the start, or the client's last resize
}

// execTable holds the helper's exec instances by ID.
type execTable struct {
	mu sync.Mutex
	m  map[string]*execInstance
}

// add stores a new instance for container with cfg and returns it,
// dropping instances that ended more than execKept ago (their
// environment may hold secrets).
func (t *execTable) add(container string, cfg dockerExecCreate) *execInstance {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	e := &execInstance{id: hex.EncodeToString(b), container: container, cfg: cfg, size: consoleSize(cfg.ConsoleSize)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*execInstance{}
	}
	maps.DeleteFunc(t.m, func(_ string, old *execInstance) bool { return old.endedBefore(time.Now().Add(-execKept)) })
	t.m[e.id] = e
	return e
}

// execKept is how long an ended exec can still be inspected (the docker
// CLI asks for its exit status at once).
const execKept = 5 * time.Minute

// endedBefore reports whether e's command ended before t.
func (e *execInstance) endedBefore(t time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return !e.ended.IsZero() && e.ended.Before(t)
}

// get is the instance id, or nil.
func (t *execTable) get(id string) *execInstance {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

// createExec answers POST /containers/ID/exec: 201 with the new
// instance's Id; 409 when the container is not running, 400 without a
// command, for a privileged exec or one with a terminal.
func (s *Server) createExec(c *call) {
	var req dockerExecCreate
	if err := json.NewDecoder(c.r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		c.failBody(err)
		return
	}
	switch {
	case len(req.Cmd) == 0:
		c.fail(errorf(CodeBadRequest, "No exec command specified"))
		return
	case req.Privileged:
		c.fail(errorf(CodeBadRequest, "exec --privileged is not supported: a command in a cove container runs as restricted as its payload"))
		return
	}
	ct, ok := s.lookupContainer(c)
	if !ok {
		return
	}
	if ct.MainPID == 0 {
		c.fail(dockerNotRunning(ct.Name))
		return
	}
	if dockerState(ct.Workload) == "paused" {
		c.fail(dockerPaused(ct.Name))
		return
	}
	c.reply(http.StatusCreated, map[string]string{"Id": s.execs.add(ct.Name, req).id})
}

// execStart is the body of POST /exec/ID/start: ConsoleSize (the docker
// CLI since 23 sends it) overrides the create's.
type execStart struct {
	Detach, Tty bool
	ConsoleSize [2]uint16
}

// startExec answers POST /exec/ID/start: with Detach, 200 once the
// command runs (its output is dropped); otherwise the connection is
// hijacked and carries the command's stdout and stderr as multiplexed
// frames and, with AttachStdin, the client's input to it, until the
// command has ended. A client that goes away stops nothing. 404 for an
// unknown instance, 409 for one started before or a container that no
// longer runs or was paused since.
func (s *Server) startExec(c *call) {
	e := s.execs.get(c.name)
	if e == nil {
		c.fail(errorf(CodeNotFound, "No such exec instance: "+c.name))
		return
	}
	var body execStart
	if err := json.NewDecoder(c.r.Body).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		c.failBody(err)
		return
	}
	if !e.start(body.ConsoleSize) {
		c.fail(errorf(CodeConflict, fmt.Sprintf("Exec command %s has already run", e.id)))
		return
	}
	cmd, done, err := s.execCommand(c, e)
	if err != nil {
		if errors.Is(err, supervisor.ErrPaused) { // startable again once unpaused, as Docker's
			e.unstart()
		} else {
			e.end(-1)
		}
		c.fail(execError(e.container, err))
		return
	}
	switch {
	case body.Detach && e.cfg.Tty:
		done()
		e.end(-1)
		c.fail(errorf(CodeBadRequest, "exec -d with -t is not supported: nothing would read the terminal"))
	case body.Detach:
		s.runDetached(c, e, cmd, done)
	case e.cfg.Tty:
		s.runTTYExec(c, e, cmd, done)
	default:
		s.runAttachedExec(c, e, cmd, done)
	}
}

// execCommand is e's command, unstarted: it outlives the request (its
// client may go away); or why it cannot run (execError answers it).
func (s *Server) execCommand(c *call, e *execInstance) (*exec.Cmd, func(), error) {
	ex, ok := s.backend.(Execer)
	if !ok {
		return nil, nil, errorf(CodeInternal, "exec: the API's backend cannot run commands in containers")
	}
	env := e.cfg.Env
	if e.cfg.Tty {
		env = launch.WithTerm(env, dockerTerm)
	}
	o := enter.Overrides{User: e.cfg.User, Workdir: e.cfg.WorkingDir, Env: env, TTY: e.cfg.Tty}
	return ex.Exec(context.WithoutCancel(c.ctx()), e.container, e.cfg.Cmd, o)
}

// execError is Docker's answer to an exec in container that cannot run:
// 409 when it no longer runs or was paused since the exec was created,
// 400 for anything else.
func execError(container string, err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, supervisor.ErrNotRunning), errors.Is(err, isolate.ErrNotPayload):
		return dockerNotRunning(container)
	case errors.Is(err, supervisor.ErrPaused):
		return dockerPaused(container)
	}
	return errorf(CodeBadRequest, err.Error())
}

// runDetached starts cmd with no stdio and answers 200; a goroutine
// records its end.
func (s *Server) runDetached(c *call, e *execInstance, cmd *exec.Cmd, done func()) {
	if err := cmd.Start(); err != nil {
		done()
		e.end(-1)
		c.failWith(fmt.Errorf("exec in %s: %w", e.container, err))
		return
	}
	e.setPID(cmd.Process.Pid)
	go func() {
		defer done()
		e.end(exitCode(cmd.Wait()))
	}()
	c.w.WriteHeader(http.StatusOK)
}

// runAttachedExec runs cmd with its stdio on the hijacked connection
// (see startExec): pipes as a container's attach has them.
func (s *Server) runAttachedExec(c *call, e *execInstance, cmd *exec.Cmd, done func()) {
	defer done()
	a, err := newAttachment(e.cfg.AttachStdin, nil)
	if err != nil {
		e.end(-1)
		c.failWith(err)
		return
	}
	defer a.closeAll()
	conn, in := hijack(c, "exec in "+e.container)
	if conn == nil {
		e.end(-1)
		return
	}
	defer conn.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.in, a.outW, a.errW
	err = cmd.Start()
	a.closeRunEnds()
	if err != nil {
		fmt.Fprintf(muxWriter{w: conn, stream: 2}, "exec in %s: %v\n", e.container, err)
		e.end(126)
		return
	}
	e.setPID(cmd.Process.Pid)
	if a.inW != nil {
		go func() {
			io.Copy(a.inW, in) // until the client closes its side, or conn closes
			a.inW.Close()
		}()
	}
	wait := copyStreams(conn, a.outR, a.errR, attachOptions{stdout: e.cfg.AttachStdout, stderr: e.cfg.AttachStderr})
	e.end(exitCode(waitDrained(cmd, wait, a.outR, a.errR)))
}

// waitDrained waits for cmd and for copied, which waits for the copies of
// its output from pipes: once cmd has ended, the pipes are read for
// drainTime more, not until a process it left in the background closes
// them. It returns cmd's end.
func waitDrained(cmd *exec.Cmd, copied func(), pipes ...*os.File) error {
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	done := make(chan struct{})
	go func() {
		copied()
		close(done)
	}()
	select {
	case err := <-waited:
		for _, p := range pipes {
			p.SetReadDeadline(time.Now().Add(drainTime))
		}
		<-done
		return err
	case <-done:
		return <-waited
	}
}

// dropWriter writes to w until a write fails, then drops what it is
// given: a reader copying to it goes on reading (a command writing to a
// terminal whose client went away must not block).
type dropWriter struct {
	w      io.Writer
	broken bool
}

func (d *dropWriter) Write(p []byte) (int, error) {
	if !d.broken {
		if _, err := d.w.Write(p); err != nil {
			d.broken = true
		}
	}
	return len(p), nil
}

// exitCode is the exit status Docker reports for a command's end err:
// its code, 128+N for a death by signal N, -1 when it did not run.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

// start marks e started, its terminal (if any) of size ([rows, columns];
// [0, 0]: as created); false if it was started.
func (e *execInstance) start(size [2]uint16) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return false
	}
	e.started, e.running = true, true
	if size != [2]uint16{} {
		e.size = consoleSize(size)
	}
	return true
}

// unstart undoes start: e did not run (its container was paused).
func (e *execInstance) unstart() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.started, e.running = false, false
}

// terminalSize is the size e's terminal has now.
func (e *execInstance) terminalSize() *unix.Winsize {
	e.mu.Lock()
	defer e.mu.Unlock()
	ws := *e.size
	return &ws
}

// setPID records the command's process.
func (e *execInstance) setPID(pid int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pid = pid
}

// end records the command's exit code.
func (e *execInstance) end(code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running, e.exitCode, e.ended = false, code, time.Now()
}

// dockerExecInspect is GET /exec/ID/json's answer.
type dockerExecInspect struct {
	ID            string `json:"ID"`
	Running       bool   `json:"Running"`
	ExitCode      *int   `json:"ExitCode"` // null until the command has ended
	ProcessConfig struct {
		Entrypoint string   `json:"entrypoint"`
		Arguments  []string `json:"arguments"`
		Tty        bool     `json:"tty"`
		User       string   `json:"user"`
		Privileged bool     `json:"privileged"`
	} `json:"ProcessConfig"`
	OpenStdin   bool   `json:"OpenStdin"`
	OpenStderr  bool   `json:"OpenStderr"`
	OpenStdout  bool   `json:"OpenStdout"`
	CanRemove   bool   `json:"CanRemove"`
	ContainerID string `json:"ContainerID"`
	DetachKeys  string `json:"DetachKeys"`
	Pid         int    `json:"Pid"`
}

// inspectExec answers GET /exec/ID/json; 404 for an unknown instance.
func (s *Server) inspectExec(c *call) {
	e := s.execs.get(c.name)
	if e == nil {
		c.fail(errorf(CodeNotFound, "No such exec instance: "+c.name))
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d := dockerExecInspect{ID: e.id, Running: e.running, OpenStdin: e.cfg.AttachStdin, OpenStdout: e.cfg.AttachStdout, OpenStderr: e.cfg.AttachStderr,
		ContainerID: dockerID(e.container), DetachKeys: e.cfg.DetachKeys, Pid: e.pid}
	if e.started && !e.running {
		d.ExitCode = &e.exitCode
	}
	d.ProcessConfig.Entrypoint, d.ProcessConfig.Arguments, d.ProcessConfig.User, d.ProcessConfig.Tty = e.cfg.Cmd[0], e.cfg.Cmd[1:], e.cfg.User, e.cfg.Tty
	c.reply(http.StatusOK, d)
}

// resizeExec answers POST /exec/ID/resize?h=ROWS&w=COLUMNS: the
// terminal of a running exec gets that size (an exec without one has
// nothing to resize); 404 for an unknown instance, 400 for a bad size.
func (s *Server) resizeExec(c *call) {
	e := s.execs.get(c.name)
	if e == nil {
		c.fail(errorf(CodeNotFound, "No such exec instance: "+c.name))
		return
	}
	size, qerr := resizeQuery(c.r.URL.Query())
	if qerr != nil {
		c.fail(qerr)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.size = size
	if e.master != nil {
		if err := tty.SetSize(e.master, e.size); err != nil {
			c.failWith(err)
			return
		}
	}
	c.w.WriteHeader(http.StatusOK)
}

// runTTYExec runs cmd on a terminal of the container (enter.Overrides.TTY)
// whose master it relays raw on the hijacked connection: the client's
// input to it, its output back, until the command has ended.
func (s *Server) runTTYExec(c *call, e *execInstance, cmd *exec.Cmd, done func()) {
	defer done()
	host, stage, err := tty.NewSocket(e.terminalSize())
	if err != nil {
		e.end(-1)
		c.failWith(err)
		return
	}
	defer host.Close()
	conn, in := hijack(c, "exec in "+e.container)
	if conn == nil {
		stage.Close()
		e.end(-1)
		return
	}
	defer conn.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stage, conn, conn // the stage's own words before the terminal
	err = cmd.Start()
	stage.Close()
	if err != nil {
		fmt.Fprintf(conn, "exec in %s: %v\r\n", e.container, err)
		e.end(126)
		return
	}
	e.setPID(cmd.Process.Pid)
	master, err := tty.Receive(host)
	if err != nil {
		e.end(exitCode(cmd.Wait()))
		return
	}
	defer master.Close()
	e.setMaster(master)
	defer e.setMaster(nil)
	go io.Copy(master, in)
	copied := func() { io.Copy(&dropWriter{w: conn}, master) } // to EIO: the terminal's last holder closed it
	e.end(exitCode(waitDrained(cmd, copied, master)))
}

// setMaster records the terminal's master (nil: none now) and gives it
// the size the client asked for before it came (the docker CLI resizes
// right after the start).
func (e *execInstance) setMaster(m *os.File) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.master = m
	if m != nil {
		tty.SetSize(m, e.size) // best effort: the client resizes again when its terminal changes
	}
}
