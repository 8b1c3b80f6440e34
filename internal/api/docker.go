package api

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/userns"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// Docker Engine API versions cove answers to; the docker CLI negotiates
// down to dockerAPIVersion from /_ping's API-Version header.
const (
	dockerAPIVersion    = "1.41"
	dockerMinAPIVersion = "1.24"
)

// dockerError is Docker's error body.
type dockerError struct {
	Message string `json:"message"`
}

// dockerRoutes are the Docker Engine API endpoints cove implements; any
// other path is answered 501 (docs/api.md lists what each supports).
func dockerRoutes() []route {
	const get, head, post, del = http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete
	return append([]route{
		{method: get, path: "/_ping", need: roleMember, handle: (*Server).ping},
		{method: head, path: "/_ping", need: roleMember, handle: (*Server).ping},
		{method: get, path: "/version", need: roleMember, handle: (*Server).version},
		{method: get, path: "/info", need: roleMember, handle: (*Server).info},
		{method: get, path: "/containers/json", need: roleMember, handle: (*Server).containers},
		{method: get, path: "/containers/{name}/json", need: roleMember, handle: (*Server).inspect},
		{method: get, path: "/containers/{name}/logs", need: roleMember, handle: (*Server).dockerLogs},
		{method: get, path: "/containers/{name}/top", need: roleMember, handle: (*Server).top},
		{method: get, path: "/containers/{name}/stats", need: roleMember, handle: (*Server).dockerContainerStats},
		{method: get, path: "/events", need: roleMember, handle: (*Server).dockerEvents},
		{method: post, path: "/containers/{name}/start", need: roleMember, mutates: true, handle: (*Server).dockerStart},
		{method: post, path: "/containers/{name}/stop", need: roleMember, mutates: true, handle: (*Server).dockerStop},
		{method: post, path: "/containers/{name}/restart", need: roleMember, mutates: true, handle: (*Server).dockerRestart},
		{method: post, path: "/containers/{name}/kill", need: roleRoot, mutates: true, handle: (*Server).dockerKill},
		{method: post, path: "/containers/{name}/pause", need: roleMember, mutates: true, handle: (*Server).dockerPause},
		{method: post, path: "/containers/{name}/unpause", need: roleMember, mutates: true, handle: (*Server).dockerUnpause},
		{method: post, path: "/containers/create", need: roleRoot, mutates: true, handle: (*Server).createContainer},
		{method: post, path: "/containers/{name}/attach", need: roleRoot, mutates: true, handle: (*Server).dockerAttach},
		{method: post, path: "/containers/{name}/resize", need: roleRoot, handle: (*Server).dockerResize},
		{method: post, path: "/containers/{name}/wait", need: roleMember, handle: (*Server).dockerWait},
		{method: post, path: "/containers/{name}/rename", need: roleRoot, mutates: true, handle: (*Server).dockerRename},
		{method: post, path: "/containers/{name}/update", need: roleRoot, mutates: true, handle: (*Server).dockerUpdateContainer},
		{method: del, path: "/containers/{name}", need: roleRoot, mutates: true, handle: (*Server).dockerRemove},
	}, slices.Concat(imageRoutes(), imageIORoutes(), networkRoutes(), volumeRoutes(), dfRoutes(), execRoutes(), pruneRoutes(), archiveRoutes(), []route{commitRoute(), pushRoute()})...)
}

// ping answers GET and HEAD /_ping with the API version headers the
// docker CLI negotiates from.
func (s *Server) ping(c *call) {
	h := c.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", "false")
	c.w.WriteHeader(http.StatusOK)
	if c.r.Method == http.MethodGet {
		io.WriteString(c.w, "OK")
	}
}

// version answers GET /version.
func (s *Server) version(c *call) { c.reply(http.StatusOK, versionInfo()) }

// info answers GET /info.
func (s *Server) info(c *call) {
	ws, err := s.backend.ListStates(c.ctx())
	if err != nil {
		c.failWith(err)
		return
	}
	i := systemInfo(ws)
	i.Images = s.imageCount()
	c.reply(http.StatusOK, i)
}

// containers answers GET /containers/json?all=&limit=&filters=.
func (s *Server) containers(c *call) {
	q := c.r.URL.Query()
	all, err := queryBool(q, "all")
	if err != nil {
		c.fail(err)
		return
	}
	limit, err := queryInt(q, "limit", -1)
	if err != nil {
		c.fail(err)
		return
	}
	f, err := parseFilters(q.Get("filters"), containerFilters)
	if err != nil {
		c.fail(err)
		return
	}
	ps, err := newPSFilter(f, s.opt.Images)
	if err != nil {
		c.fail(err)
		return
	}
	ws, lerr := s.backend.ListStates(c.ctx()) // docker ps shows no counters
	if lerr != nil {
		c.failWith(lerr)
		return
	}
	specs, recs := s.specIndex(), s.records.list()
	out := []dockerSummary{}
	for _, w := range withRecords(ws, recs) {
		state := dockerState(w)
		if !all && !isUp(state) {
			continue
		}
		sp := viewSpec(specs, recs[w.Name], w.Name)
		if !f.match(w, state, sp) {
			continue
		}
		d := summary(w, sp)
		recordSummary(&d, recs[w.Name])
		if !ps.match(w, sp, d) {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, d)
	}
	c.reply(http.StatusOK, out)
}

// inspect answers GET /containers/ID/json.
func (s *Server) inspect(c *call) {
	ct, ok := s.lookupContainer(c)
	if !ok {
		return
	}
	d, _, _ := s.inspectOf(ct, viewSpec(s.specIndex(), ct.rec, ct.Name))
	c.reply(http.StatusOK, d)
}

// inspectOf is container ct, of spec sp (nil: none known), as docker
// inspect shows it: with its image's configuration, its user namespace
// IDs and its record's settings; and the record of its image (false when
// it has none in the store).
func (s *Server) inspectOf(ct dockerContainer, sp *spec.Spec) (d dockerInspect, img image.ImageRecord, hasImage bool) {
	d = inspectOf(ct.Workload, sp)
	if sp != nil && sp.Container != nil && sp.Container.Image != "" {
		if img, hasImage = s.containerImage(ct.Name, sp.Container); hasImage {
			withImageConfig(&d, sp.Container, img)
		}
	}
	if r, ok, _ := userns.Default().Lookup(ct.Name); ok {
		d.withIDs(r)
	}
	recordInspect(&d, ct.rec)
	return d, img, hasImage
}

// dockerLogs answers GET /containers/ID/logs in Docker's multiplexed
// stream format: every chunk of output as one stdout frame (journald does
// not keep stdout and stderr apart). A container created through
// Docker's API shows what was logged since its creation only.
func (s *Server) dockerLogs(c *call) {
	opt, stdout, err := dockerLogOptions(c.r.URL.Query())
	if err != nil {
		c.fail(err)
		return
	}
	ct, ok := s.lookupContainer(c)
	if !ok {
		return
	}
	if ct.rec != nil && opt.Since.Before(ct.rec.Created) { // not an earlier container's of that name
		opt.Since = ct.rec.Created
	}
	c.w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
	c.w.Header().Set("Trailer", errorTrailer)
	fw := c.stream(opt.Follow)
	if !stdout {
		fw.start()
		return
	}
	var out io.Writer = muxWriter{w: fw, stream: 1}
	if ct.rec != nil && ct.rec.Config.Tty { // a terminal's output is one stream, sent raw
		out = fw
	}
	c.finish(fw, s.backend.Logs(c.ctx(), ct.Name, opt, out))
}

// dockerNotRunning is Docker's 409 for container name, which does not run.
func dockerNotRunning(name string) *Error {
	return errorf(CodeConflict, fmt.Sprintf("Container %s is not running", name))
}

// dockerPaused is Docker's refusal of an exec in a paused container.
func dockerPaused(name string) *Error {
	return errorf(CodeConflict, fmt.Sprintf("Container %s is paused, unpause the container before exec", name))
}

// muxWriter frames every write as one frame of Docker's multiplexed
// stream: an 8-byte header (the stream, three zero bytes, the big-endian
// length) and the payload.
type muxWriter struct {
	w      io.Writer
	stream byte // 1 stdout, 2 stderr
}

// Write writes p as one frame.
func (m muxWriter) Write(p []byte) (int, error) {
	frame := make([]byte, 8, 8+len(p))
	frame[0] = m.stream
	binary.BigEndian.PutUint32(frame[4:], uint32(len(p)))
	if _, err := m.w.Write(append(frame, p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// dockerLogOptions reads the logs query: stdout and stderr (at least
// one), follow, timestamps, since and until (logQuery), tail ("all", or a
// count: 0 prints no old lines). details is not implemented (501).
func dockerLogOptions(q url.Values) (supervisor.LogOptions, bool, *Error) {
	opt, err := logQuery(q)
	if err != nil {
		return opt, false, err
	}
	var flags [3]bool
	for i, k := range []string{"stdout", "stderr", "details"} {
		if flags[i], err = queryBool(q, k); err != nil {
			return opt, false, err
		}
	}
	stdout, stderr, details := flags[0], flags[1], flags[2]
	switch {
	case !stdout && !stderr:
		return opt, false, errorf(CodeBadRequest, "Bad parameters: you must choose at least one stream")
	case details:
		return opt, false, errorf(CodeNotImplemented, "cove does not implement logs with details")
	}
	opt.Lines, err = queryLines(q, "tail", "all or a count of lines", map[string]int{"": 0, "all": 0, "0": supervisor.NoLines})
	return opt, stdout, err
}

// logQuery reads the query parameters both log endpoints take: follow
// and timestamps (booleans), since and until (supervisor.ParseLogTime).
func logQuery(q url.Values) (supervisor.LogOptions, *Error) {
	var opt supervisor.LogOptions
	var err *Error
	if opt.Follow, err = queryBool(q, "follow"); err != nil {
		return opt, err
	}
	if opt.Timestamps, err = queryBool(q, "timestamps"); err != nil {
		return opt, err
	}
	for _, p := range []struct {
		key string
		t   *time.Time
	}{{"since", &opt.Since}, {"until", &opt.Until}} {
		t, perr := supervisor.ParseLogTime(q.Get(p.key))
		if perr != nil {
			return opt, errorf(CodeBadRequest, fmt.Sprintf("%s: %v", p.key, perr))
		}
		*p.t = t
	}
	return opt, nil
}

// top answers GET /containers/ID/top: the processes of the workload's
// cgroup. ps_args is not implemented.
func (s *Server) top(c *call) {
	if c.r.URL.Query().Get("ps_args") != "" {
		c.fail(errorf(CodeNotImplemented, "cove does not implement top with ps_args"))
		return
	}
	w, ok := s.lookup(c)
	if !ok {
		return
	}
	if w.MainPID == 0 {
		c.fail(dockerNotRunning(w.Name))
		return
	}
	t, err := topOf(int(w.MainPID))
	if err != nil {
		c.failWith(fmt.Errorf("top of %s: %w", w.Unit, err))
		return
	}
	c.reply(http.StatusOK, t)
}

// dockerStart answers POST /containers/ID/start: 304 when running. A
// container created through Docker's API runs from its record
// (dockerStartRecord): a start compiles it into a transient unit.
func (s *Server) dockerStart(c *call) {
	ct, ok := s.lookupContainer(c)
	switch {
	case !ok:
	case ct.rec != nil && !isUp(dockerState(ct.Workload)):
		s.dockerStartRecord(c, ct)
	case dockerState(ct.Workload) == "paused":
		c.fail(errorf(CodeConflict, "cannot start a paused container, try unpause instead"))
	default:
		s.dockerJob(c, ct.Workload, dockerState(ct.Workload) != "running", Backend.Start)
	}
}

// dockerStop answers POST /containers/ID/stop: 304 when not running (or
// not even loaded: a created container).
func (s *Server) dockerStop(c *call) {
	if err := stopQuery(c.r.URL.Query()); err != nil {
		c.fail(err)
		return
	}
	if ct, ok := s.lookupContainer(c); ok {
		s.dockerJob(c, ct.Workload, ct.loaded && dockerState(ct.Workload) != "exited", Backend.Stop)
	}
}

// dockerRestart answers POST /containers/ID/restart.
func (s *Server) dockerRestart(c *call) {
	if err := stopQuery(c.r.URL.Query()); err != nil {
		c.fail(err)
		return
	}
	ct, ok := s.lookupContainer(c)
	switch {
	case !ok:
	case ct.rec != nil:
		s.dockerRestartRecord(c, ct)
	default:
		s.dockerJob(c, ct.Workload, true, Backend.Restart)
	}
}

// stopQuery checks stop's and restart's query: t must be an integer (the
// unit's stop timeout applies, though); signal is not implemented.
func stopQuery(q url.Values) *Error {
	if q.Get("signal") != "" {
		return errorf(CodeNotImplemented, "cove does not implement stop or restart with a signal")
	}
	_, err := queryInt(q, "t", 0)
	return err
}

// dockerKill answers POST /containers/ID/kill?signal=: the signal
// (killOp) to the main process; 409 when not running.
func (s *Server) dockerKill(c *call) {
	op, err := killOp(c.r.URL.Query())
	if err != nil {
		c.fail(err)
		return
	}
	w, ok := s.lookup(c)
	if !ok {
		return
	}
	if w.MainPID == 0 {
		c.fail(dockerNotRunning(w.Name))
		return
	}
	s.dockerJob(c, w, true, op)
}

// dockerPause answers POST /containers/ID/pause: 409 when it does not run
// or is paused already, as Docker.
func (s *Server) dockerPause(c *call) {
	w, ok := s.lookup(c)
	switch state := dockerState(w); {
	case !ok:
	case state == "paused":
		c.fail(errorf(CodeConflict, fmt.Sprintf("Container %s is already paused", w.Name)))
	case state != "running":
		c.fail(dockerNotRunning(w.Name))
	default:
		s.dockerJob(c, w, true, Backend.Pause)
	}
}

// dockerUnpause answers POST /containers/ID/unpause: 409 when it is not
// paused, as Docker.
func (s *Server) dockerUnpause(c *call) {
	w, ok := s.lookup(c)
	switch {
	case !ok:
	case dockerState(w) != "paused":
		c.fail(errorf(CodeConflict, fmt.Sprintf("Container %s is not paused", w.Name)))
	default:
		s.dockerJob(c, w, true, Backend.Unpause)
	}
}

// killOp is the operation of a kill request: Backend.Kill with SIGKILL
// without a signal parameter, else with the signal as
// supervisor.ParseSignal reads it (400 "Invalid signal: S" when it
// cannot).
func killOp(q url.Values) (func(Backend, context.Context, string) error, *Error) {
	sig := syscall.SIGKILL
	if v := q.Get("signal"); v != "" {
		var err error
		if sig, err = supervisor.ParseSignal(v); err != nil {
			return nil, errorf(CodeBadRequest, err.Error())
		}
	}
	return func(b Backend, ctx context.Context, name string) error {
		return b.Kill(ctx, name, sig)
	}, nil
}

// dockerJob runs op on w like the /v1 endpoints, or answers 304 when it
// would change nothing.
func (s *Server) dockerJob(c *call, w Workload, changes bool, op func(Backend, context.Context, string) error) {
	if !changes {
		c.w.WriteHeader(http.StatusNotModified)
		return
	}
	c.name = w.Name
	job(op)(s, c)
}

// isHex reports whether s is lower-case hexadecimal.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return s != ""
}

// queryBool reads a boolean query parameter (absent: false).
func queryBool(q url.Values, key string) (bool, *Error) {
	v := q.Get(key)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errorf(CodeBadRequest, fmt.Sprintf("%s=%.32q: want 1, 0, true or false", key, v))
	}
	return b, nil
}

// queryLines reads a count of lines for LogOptions.Lines: a number, or
// one of the words of special, which says what each means. want says what
// a good value is.
func queryLines(q url.Values, key, want string, special map[string]int) (int, *Error) {
	v := q.Get(key)
	if n, ok := special[v]; ok {
		return n, nil
	}
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return 0, errorf(CodeBadRequest, fmt.Sprintf("%s=%.32q: want %s", key, v, want))
	}
	return int(n), nil
}

// queryInt reads an integer query parameter (absent: def).
func queryInt(q url.Values, key string, def int) (int, *Error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, errorf(CodeBadRequest, fmt.Sprintf("%s=%.32q: want an integer", key, v))
	}
	return int(n), nil
}
