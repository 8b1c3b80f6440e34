package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
)

// Runner is a Backend that starts transient workloads, as cove run does;
// Local is one. Docker's container start needs it; with another Backend
// it fails.
type Runner interface {
	// RunTransient starts u as a transient unit, its standard input,
	// output and error from stdio (nil: /dev/null and the journal), and
	// returns a hold that keeps the unit loaded, even after it ends, until
	// closed: so its exit status can be read.
	RunTransient(ctx context.Context, u units.Unit, stdio *supervisor.Stdio) (io.Closer, error)
	// Unload stops workload name and unloads its unit, keeping its state
	// (an image container's writable layer, unlike Remove).
	Unload(ctx context.Context, name string) error
	// StartHealth starts a run's health check, its timer and its probe
	// service (units.CompileHealth), as cove run does.
	StartHealth(ctx context.Context, timer, svc units.Unit) error
}

var _ Runner = (*Local)(nil)

// RunTransient starts u on a connection of its own, which holds the
// unit's reference (supervisor.Conn.StartTransient) until it is closed.
func (l *Local) RunTransient(ctx context.Context, u units.Unit, stdio *supervisor.Stdio) (io.Closer, error) {
	c, err := supervisor.Connect(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	// Docker's start has no warnings to give: a [::1] proxy that could
	// not start (a *supervisor.ProxyError) shows as a failed socket unit.
	if err := c.StartTransient(ctx, u, stdio, nil); err != nil && !errors.As(err, new(*supervisor.ProxyError)) {
		c.Close()
		return nil, err
	}
	return closerFunc(c.Close), nil
}

// StartHealth starts the transient timer and probe service of a run's
// health check (supervisor.Conn.StartPair).
func (l *Local) StartHealth(ctx context.Context, timer, svc units.Unit) error {
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	return c.StartPair(ctx, timer, svc)
}

// Unload stops and unloads workload name (supervisor.Conn.Remove).
func (l *Local) Unload(ctx context.Context, name string) error {
	return l.do(ctx, name, func(c *supervisor.Conn, ctx context.Context, name string) error {
		_, err := c.Remove(ctx, name)
		return err
	})
}

// closerFunc is a Close without an error.
type closerFunc func()

// Close calls f.
func (f closerFunc) Close() error {
	f()
	return nil
}

// containerRuns are the runs this helper started from container records,
// the attachments waiting for a start, and the starts under way.
type containerRuns struct {
	mu       sync.Mutex
	runs     map[string]*run
	attached map[string]*attachment
	starting map[string]bool
}

// newContainerRuns returns an empty containerRuns.
func newContainerRuns() *containerRuns {
	return &containerRuns{runs: map[string]*run{}, attached: map[string]*attachment{}, starting: map[string]bool{}}
}

// run is one run of a container started by this helper: watchRun holds
// its unit loaded until it ends, then records its exit status.
type run struct {
	hold io.Closer
	poke chan struct{} // look again now (the unit was stopped)
	done chan struct{} // closed when the run has ended
	code int           // the exit status, once done
}

// get returns the latest run of name, or nil.
func (rs *containerRuns) get(name string) *run {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.runs[name]
}

// claim marks a start of name as under way; false if one already is.
func (rs *containerRuns) claim(name string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.starting[name] {
		return false
	}
	rs.starting[name] = true
	return true
}

// claimConflict is the 409 for a change of container name while another
// holds its claim (claim).
func claimConflict(name string) *Error {
	return errorf(CodeConflict, fmt.Sprintf("a start, rename, removal or update of container %s is under way", name))
}

// claimWithin claims name (claim), waiting up to d for another claim to
// end; false when none could be had by then, or ctx ended.
func (rs *containerRuns) claimWithin(ctx context.Context, name string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !rs.claim(name) {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(claimPoll):
		}
	}
	return true
}

// unclaim ends claim.
func (rs *containerRuns) unclaim(name string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.starting, name)
}

// finish makes the run of name, if any, notice that its unit stopped,
// and waits (bounded) until it has let the unit go.
func (rs *containerRuns) finish(ctx context.Context, name string) {
	r := rs.get(name)
	if r == nil {
		return
	}
	select {
	case r.poke <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
	}
}

// dockerStartRecord starts a recorded container: a fresh transient unit
// from its record (its unit, if loaded, unloaded first; the writable
// layer stays), attached to a waiting attach request if there is one.
func (s *Server) dockerStartRecord(c *call, ct dockerContainer) {
	name := ct.Name
	if !s.rootFor(c, "start container "+name+" (a new transient unit)") {
		return
	}
	if !s.runs.claim(name) {
		c.fail(claimConflict(name))
		return
	}
	defer s.runs.unclaim(name)
	unlock, ok := s.lockName(c, "start", name) // until the start's end: a cove run of that name then finds the unit
	if !ok {
		return
	}
	defer unlock()
	rec, ok := s.stillRecorded(c, name)
	if !ok {
		return
	}
	ct.rec = rec // as it is now: an update since the lookup is in it
	c.long()
	att := s.runs.takeAttachment(name)
	hold, err := s.startRun(c.ctx(), ct, att)
	if err != nil {
		c.failWith(err)
		return
	}
	werr := s.records.update(name, func(rec *containerRecord) (bool, error) {
		rec.Started, rec.ExitCode = true, 0
		return true, nil
	})
	r := s.runs.begin(name, hold)
	att.started(r)
	go s.watchRun(name, r)
	if werr != nil {
		c.failWith(werr)
		return
	}
	c.w.WriteHeader(http.StatusNoContent)
}

// stillRecorded returns name's record, read after its start was
// claimed (a rename or an update since the lookup, which claim the name
// too, is seen), or answers 404 (or the error reading it) and returns
// false.
func (s *Server) stillRecorded(c *call, name string) (*containerRecord, bool) {
	rec, err := s.records.read(name)
	switch {
	case err != nil:
		c.failWith(err)
	case rec == nil:
		c.fail(errorf(CodeNotFound, "No such container: "+name))
	default:
		return rec, true
	}
	return nil, false
}

// startRun starts a new run of ct from its record, with att's pipes
// when an attach waits; att learns of a failure.
func (s *Server) startRun(ctx context.Context, ct dockerContainer, att *attachment) (io.Closer, error) {
	runner, ok := s.backend.(Runner)
	if !ok {
		att.started(nil)
		return nil, errors.New("start " + ct.Name + ": the API's backend cannot start transient units")
	}
	u, sp, err := s.runUnit(ct.rec)
	if err == nil {
		err = s.unloadOld(ctx, runner, ct)
	}
	if err != nil {
		att.started(nil)
		return nil, err
	}
	hold, err := s.runAttached(ctx, runner, u, att, ct.rec.Config.terminal())
	if err != nil {
		s.startFailed(ctx, runner, ct.rec)
		return hold, err
	}
	if timer, svc, ok := units.CompileHealth(sp, units.Options{Launcher: s.opt.Self}); ok {
		if err := runner.StartHealth(ctx, timer, svc); err != nil { // a start without its check is a failed start
			hold.Close()
			s.startFailed(ctx, runner, ct.rec)
			att.started(nil)
			return nil, err
		}
	}
	return hold, nil
}

// rootFor answers 403 and returns false unless the caller is root: a
// member may start, stop and restart workloads, but a container created
// through Docker's API becomes a new transient unit at each start.
func (s *Server) rootFor(c *call, what string) bool {
	if c.peer.role >= roleRoot {
		return true
	}
	s.audit.record(c.peer, false, c.r.Method+" "+c.path)
	c.fail(errorf(CodeForbidden, forbidden(c.peer, what)))
	return false
}

// unloadOld lets go of a container's previous run: its run's hold, and
// its unit if loaded (a restart reuses nothing of it but the writable
// layer).
func (s *Server) unloadOld(ctx context.Context, runner Runner, ct dockerContainer) error {
	s.runs.finish(ctx, ct.Name)
	if !ct.loaded {
		return nil
	}
	if err := runner.Unload(ctx, ct.Name); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
		return err
	}
	return nil
}

// dockerRestartRecord restarts a recorded container: stopped if it
// runs, then started from its record.
func (s *Server) dockerRestartRecord(c *call, ct dockerContainer) {
	if !s.rootFor(c, "restart container "+ct.Name+" (a new transient unit)") {
		return
	}
	if ct.loaded && isUp(dockerState(ct.Workload)) {
		c.long()
		if err := s.backend.Stop(c.ctx(), ct.Name); err != nil {
			c.failWith(err)
			return
		}
		var err error
		if ct, err = s.container(c.ctx(), ct.Name); err != nil {
			c.failWith(err)
			return
		}
	}
	s.dockerStartRecord(c, ct)
}

// runUnit compiles rec's spec into the unit of a run, as cove run does,
// and returns the spec too. Its image must still be in the store.
func (s *Server) runUnit(rec *containerRecord) (units.Unit, *spec.Spec, error) {
	sp, err := rec.spec()
	if err != nil {
		return units.Unit{}, nil, err
	}
	if st, err := s.opt.Images(); err == nil {
		if _, err := st.Lookup(rec.Image); errors.Is(err, image.ErrNotFound) {
			return units.Unit{}, nil, errorf(CodeNotFound, fmt.Sprintf("start %s: No such image: %s", rec.Name, rec.Config.Image))
		}
	}
	hostcheck.PinStopSignal(sp) // the image's STOPSIGNAL, unless --stop-signal
	u, err := units.Compile(sp, units.Options{Launcher: s.opt.Self})
	if err != nil {
		return units.Unit{}, nil, err
	}
	u = units.ForRun(u, units.RunOptionsFor(sp, rec.Config.HostConfig.AutoRemove, rec.Config.Tty))
	if rec.Config.Tty {
		u, err = units.WithTerminal(u, dockerTerm)
	}
	return u, sp, err
}

// startFailed cleans up after a failed start: the failed unit is
// unloaded; the container stays created, or goes with AutoRemove.
func (s *Server) startFailed(ctx context.Context, runner Runner, rec *containerRecord) {
	runner.Unload(context.WithoutCancel(ctx), rec.Name)
	if rec.Config.HostConfig.AutoRemove {
		s.records.remove(rec.Name)
		declared.ForgetState(rec.Name)
		eventlog.Removed(rec.Name)
		s.dropAnonymousVolumes(context.WithoutCancel(ctx), rec)
	}
}

// forget drops the latest run of name (a removed container's).
func (rs *containerRuns) forget(name string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.runs, name)
}

// begin records a new run of name holding hold.
func (rs *containerRuns) begin(name string, hold io.Closer) *run {
	r := &run{hold: hold, poke: make(chan struct{}, 1), done: make(chan struct{})}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.runs[name] = r
	return r
}

// watchRun follows run r of container name until it has ended (its unit
// no longer runs and will not restart): it records the exit status (or,
// with AutoRemove, removes the record), lets the unit go (then systemd
// collects an AutoRemove unit) and closes r.done.
func (s *Server) watchRun(name string, r *run) {
	ctx := context.Background()
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		w, err := s.backend.Status(ctx, name)
		if errors.Is(err, supervisor.ErrNotFound) {
			break
		}
		if err == nil && !isUp(dockerState(w)) {
			r.code = w.ExitCode
			break
		}
		select {
		case <-time.After(delay):
		case <-r.poke:
		}
	}
	var removed *containerRecord
	s.records.update(name, func(rec *containerRecord) (bool, error) {
		if rec.Config.HostConfig.AutoRemove {
			eventlog.Removed(name) // systemd collects the unit
			removed = rec
			return false, errRemove
		}
		rec.ExitCode = r.code
		return true, nil
	})
	r.hold.Close()
	if removed != nil {
		s.dropAnonymousVolumes(ctx, removed) // as Docker's --rm does; a wait for the removal waits for r.done
	}
	close(r.done)
}

// isUp reports whether a container in Docker state state runs, or will
// run again by itself.
func isUp(state string) bool { return state == "running" || state == "paused" || state == "restarting" }

// dockerRemove answers DELETE /containers/ID?force=&v=&link=: a running
// container needs force (then it is killed first); the unit goes as with
// cove rm (its writable layer too), and the record; with v, its
// anonymous volumes too (dropAnonymousVolumes).
func (s *Server) dockerRemove(c *call) {
	force, volumes, err := removeQuery(c.r.URL.Query())
	if err != nil {
		c.fail(err)
		return
	}
	ct, ok := s.lookupContainer(c)
	if !ok {
		return
	}
	switch state := dockerState(ct.Workload); {
	case force || !isUp(state):
	case state == "paused":
		c.fail(errorf(CodeConflict, fmt.Sprintf("You cannot remove a paused container %s. Unpause and then stop the container before attempting removal or force remove", dockerID(ct.Name))))
		return
	default:
		c.fail(errorf(CodeConflict, fmt.Sprintf("You cannot remove a running container %s. Stop the container before attempting removal or force remove", dockerID(ct.Name))))
		return
	}
	c.long()
	if err := s.removeContainer(c.ctx(), ct); err != nil {
		c.failWith(err)
		return
	}
	if volumes && ct.rec != nil {
		s.dropAnonymousVolumes(context.WithoutCancel(c.ctx()), ct.rec) // its record is gone: no later try
	}
	c.w.WriteHeader(http.StatusNoContent)
}

// removeQuery reads the query of a removal: force, v (the anonymous
// volumes too); link is not implemented.
func removeQuery(q url.Values) (force, volumes bool, err *Error) {
	force, err = queryBool(q, "force")
	if err == nil {
		volumes, err = queryBool(q, "v")
	}
	if err != nil {
		return false, false, err
	}
	if link, err := queryBool(q, "link"); err != nil || link {
		return false, false, cmpErr(err, errorf(CodeNotImplemented, "cove does not implement links"))
	}
	return force, volumes, nil
}

// cmpErr is a if not nil, else b.
func cmpErr(a, b *Error) *Error {
	if a != nil {
		return a
	}
	return b
}

// removeContainer kills a running container, removes its unit, lets its
// run go, and removes its record and a waiting attachment, claiming the
// container's start (containerRuns.claim) up to its record's removal so
// that no docker start of it begins meanwhile. A container whose unit is
// not loaded is claimed first: a start under way is a conflict, and so is
// one that loaded its unit since the container was looked up (nothing is
// removed). A loaded one's unit goes first, which ends a start under way
// as Docker's rm -f does, and, for a container with a record, so does
// each unit such a start loads until the claim is had
// (claimEndingStarts): no run is left without its record. A loaded one
// made through Docker's API that does not run is claimed first, waiting
// up to removeWait (a docker cp holds its claim while it has its files),
// and removed as it is then.
func (s *Server) removeContainer(ctx context.Context, ct dockerContainer) error {
	name := ct.Name
	switch {
	case ct.loaded && ct.rec != nil && stopped(ct.Workload): // a docker cp may hold its files (files): claimed first
		if !s.runs.claimWithin(ctx, name, removeWait) { // the copy's end, or a start's
			return claimConflict(name)
		}
		defer s.runs.unclaim(name)
		now, err := s.container(ctx, name) // started since, maybe
		if err == nil {
			err = s.removeRun(ctx, name, isUp(dockerState(now.Workload)))
		}
		if err != nil {
			return err
		}
	case ct.loaded:
		if err := s.removeRun(ctx, name, isUp(dockerState(ct.Workload))); err != nil {
			return err
		}
		if ct.rec != nil { // a start of its record may be under way
			if err := s.claimEndingStarts(ctx, name); err != nil {
				return err
			}
			defer s.runs.unclaim(name)
		}
	case !s.runs.claim(name):
		return claimConflict(name)
	default:
		defer s.runs.unclaim(name)
		return s.removeClaimed(ctx, ct)
	}
	return s.forgetRemoved(ct)
}

// removeClaimed removes container ct, which does not run, while its
// start is claimed (containerRuns.claim): its unit goes as with cove rm,
// or, not loaded, once it has not started since (notStartedSince); then
// its record (forgetRemoved).
func (s *Server) removeClaimed(ctx context.Context, ct dockerContainer) error {
	var err error
	if ct.loaded {
		err = s.removeRun(ctx, ct.Name, false)
	} else {
		err = s.notStartedSince(ctx, ct)
	}
	if err != nil {
		return err
	}
	return s.forgetRemoved(ct)
}

// forgetRemoved drops what the helper holds of container ct, whose unit
// is gone, and its record.
func (s *Server) forgetRemoved(ct dockerContainer) error {
	s.runs.dropAttachment(ct.Name)
	s.runs.forget(ct.Name)
	if ct.rec == nil {
		return nil
	}
	if !ct.loaded { // else Remove recorded it
		eventlog.Removed(ct.Name)
	}
	return s.records.remove(ct.Name)
}

// removeRun kills name's payload (with kill), removes its unit as cove
// rm does (its writable layer too) and lets its run go.
func (s *Server) removeRun(ctx context.Context, name string, kill bool) error {
	if kill {
		s.backend.Kill(ctx, name, syscall.SIGKILL) // not waiting for the stop timeout; errors: Remove says
	}
	if err := s.backend.Remove(ctx, name); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
		return err
	}
	s.runs.finish(ctx, name)
	return nil
}

// claimEndingStarts claims the start of container name, whose unit was
// removed, for the rest of its removal. A start under way (docker start
// or restart) holds the claim and may load a new unit after that
// removal: each unit loaded is removed (ending the start) until the claim
// is had, and then once more, so that nothing started runs on.
func (s *Server) claimEndingStarts(ctx context.Context, name string) error {
	for {
		claimed := s.runs.claim(name)
		now, err := s.container(ctx, name)
		if err == nil && now.loaded {
			err = s.removeRun(ctx, name, true)
		}
		if err != nil && !errors.Is(err, supervisor.ErrNotFound) {
			if claimed {
				s.runs.unclaim(name)
			}
			return err
		}
		if claimed {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove container %s: wait for its start under way to end: %w", name, ctx.Err())
		case <-time.After(claimPoll):
		}
	}
}

// removeWait bounds how long a removal waits for a copy or a start of a
// container that did not run to end.
const removeWait = 10 * time.Second

// claimPoll is how often a removal looks again at a start under way.
const claimPoll = 20 * time.Millisecond

// notStartedSince returns a conflict when container ct, found with no
// unit loaded, has had one loaded since (a start that ended before its
// removal claimed it), else drops the writable layer of a container made
// through Docker's API (a run's, or a docker cp's before its first
// start).
func (s *Server) notStartedSince(ctx context.Context, ct dockerContainer) error {
	switch now, err := s.container(ctx, ct.Name); {
	case err != nil && !errors.Is(err, supervisor.ErrNotFound):
		return err
	case err == nil && now.loaded:
		return errorf(CodeConflict, fmt.Sprintf("container %s started while it was being removed: remove it again", ct.Name))
	}
	if ct.rec != nil { // its writable layer and IDs: a run's, or a docker cp's before its first start
		return declared.ForgetState(ct.Name)
	}
	return nil
}
