package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/hostconf"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// Limits of the server.
const (
	// MaxBodyBytes is the largest request body; a larger one gets 413.
	MaxBodyBytes = 1 << 20
	// DefaultMaxConns is how many connections are served at once; more
	// wait in the socket's backlog.
	DefaultMaxConns = 128

	maxHeaderBytes    = 64 << 10
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second // whole request, body included
	writeTimeout      = 30 * time.Second // from the end of the headers to the end of the answer
	idleConnTimeout   = 10 * time.Second // keep-alive connections without a request
	jobTimeout        = 15 * time.Minute // write deadline of requests that wait for systemd jobs
	shutdownGrace     = 5 * time.Second  // for requests still running at shutdown
	errorTrailer      = "Cove-Error"     // trailer naming an error after a stream started
)

// Options configure a Server.
type Options struct {
	// Self is the cove binary: the launcher units are compiled for when
	// validating.
	Self string
	// Paths are where declared specs live (Docker's image and command
	// fields come from them).
	Paths declared.Paths
	// Log receives audit records (unless stderr is the journal, which gets
	// them with fields) and server errors.
	Log io.Writer
	// MaxConns caps concurrent connections (DefaultMaxConns if 0).
	MaxConns int
	// Images opens the image store of Docker's image endpoints, once per
	// request; nil means image.OpenDefault (/var/lib/cove/images unless
	// cove.toml moves it, with the registries of
	// /etc/cove/registries.toml).
	Images func() (*image.Store, error)
	// Containers is the directory of the records of containers created
	// through Docker's API ("" means Paths.Created, or
	// declared.Default's when Paths has none).
	Containers string
	// Settings is cove's host settings file ("" means hostconf.Path):
	// its run network is what Docker's default network means.
	Settings string
	// Networks reads cove's networks for Docker's network endpoints and
	// creates (one without a catalog directory means network.Host).
	Networks network.Lookup
}

// Server answers the API with a Backend. It is an http.Handler; Serve runs
// it on a listener with cove's limits, timeouts and idle exit.
type Server struct {
	backend Backend
	opt     Options
	audit   *auditor
	v1      []route
	docker  []route
	records containerRecords // Docker's created containers
	runs    *containerRuns   // the runs this helper started from them
	execs   execTable        // Docker's exec instances
}

// NewServer returns a server that carries requests out with b.
func NewServer(b Backend, opt Options) *Server {
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	if opt.MaxConns <= 0 {
		opt.MaxConns = DefaultMaxConns
	}
	if opt.Images == nil {
		opt.Images = image.OpenDefault
	}
	if opt.Containers == "" {
		opt.Containers = cmp.Or(opt.Paths.Created, declared.Default.Created)
	}
	if opt.Settings == "" {
		opt.Settings = hostconf.Path
	}
	if opt.Networks.Catalog.Dir == "" {
		opt.Networks = network.Host
	}
	return &Server{backend: b, opt: opt, audit: newAuditor(opt.Log), v1: v1Routes(), docker: dockerRoutes(),
		records: containerRecords{dir: opt.Containers}, runs: newContainerRuns()}
}

// Serve answers requests on l until ctx ends or, with idle > 0, no
// request has been running for idle (then it returns nil: under socket
// activation systemd starts the helper again on the next connection).
// Requests still running when ctx ends are cancelled and get shutdownGrace
// to finish.
func (s *Server) Serve(ctx context.Context, l net.Listener, idle time.Duration) error {
	base, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &http.Server{
		Handler:           s,
		ConnContext:       connContext,
		BaseContext:       func(net.Listener) context.Context { return base },
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleConnTimeout,
		ErrorLog:          log.New(s.opt.Log, "cove-api: ", 0),
	}
	var idleC <-chan struct{}
	if idle > 0 {
		t := newIdleTracker(idle)
		srv.ConnState = t.ConnState
		idleC = t.Idle()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(limitListen(l, s.opt.MaxConns)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve API on %s: %w", l.Addr(), err)
	case <-ctx.Done():
		cancel()
	case <-idleC:
	}
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	<-errc
	return nil
}

// route is one endpoint.
type route struct {
	method  string
	path    string // segments; "{name}" matches one workload name (or Docker id), "{net}" one network name (or Docker id), "{ref}" one or more segments (an image reference)
	need    role
	mutates bool // audited
	bigBody bool // its body is not bounded by MaxBodyBytes: the handler bounds it
	handle  func(*Server, *call)
}

// call is one request being answered.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	path   string // the endpoint: the escaped path without a Docker version prefix
	name   string // the {name} or {net} segment or the {ref} segments, validated
	docker bool   // Docker's error format
	peer   peer
}

// ServeHTTP routes a request: the caller's role, the endpoint (404 for an
// unknown /v1 path, 501 for an unknown Docker one, 405 for a wrong
// method), the role the endpoint needs (403), the workload name (400),
// the body limit; then the endpoint's handler. A panic is answered with
// 500, never a crash.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{w: w, r: r, peer: peerOf(r.Context())}
	c.path, c.docker = endpoint(r.URL.EscapedPath())
	defer s.recoverPanic(c)
	if c.docker {
		w.Header().Set("Api-Version", dockerAPIVersion)
		w.Header().Set("Ostype", "linux")
	}
	request := r.Method + " " + c.path
	if c.peer.role == roleNone {
		s.audit.record(c.peer, false, request)
		c.fail(errorf(CodeForbidden, forbidden(c.peer, "use the cove API")))
		return
	}
	rt, allowed := s.find(c)
	if rt == nil {
		c.failNoRoute(allowed)
		return
	}
	if c.peer.role < rt.need {
		s.audit.record(c.peer, false, request)
		c.fail(errorf(CodeForbidden, forbidden(c.peer, request)))
		return
	}
	if err := checkName(rt.path, c.name); err != nil {
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("%s: %s", request, err)))
		return
	}
	if rt.mutates {
		s.audit.record(c.peer, true, request)
	}
	if !rt.bigBody {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	}
	rt.handle(s, c)
}

// maxImageRef bounds an image reference in a path (Docker's names are at
// most 255 bytes, plus a tag or digest).
const maxImageRef = 512

// checkName checks the name a route's pattern matched: a workload name
// for {name}, a network name for {net} (Docker IDs are such names too),
// an image reference of printable characters for {ref}.
func checkName(pattern, name string) error {
	switch {
	case strings.Contains(pattern, "{name}"):
		if err := spec.ValidRef(name); err != nil {
			return fmt.Errorf("workload name %.80q: %w", name, err)
		}
	case strings.Contains(pattern, "{net}"):
		if err := plan.ValidName(name); err != nil {
			return fmt.Errorf("network %.80q: want a network's name or ID: %w", name, err)
		}
	case strings.Contains(pattern, "{ref}"):
		if len(name) > maxImageRef || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return fmt.Errorf("image reference %.80q: want at most %d printable characters without spaces", name, maxImageRef)
		}
	}
	return nil
}

// forbidden says why the peer may not do what.
func forbidden(p peer, what string) string {
	if !p.known {
		return fmt.Sprintf("permission denied: %s: the caller's credentials are unknown", what)
	}
	need := "root"
	if p.role == roleNone {
		need = "root or a member of group " + Group
	}
	return fmt.Sprintf("permission denied: %s: uid %d is not %s", what, p.uid, need)
}

// find returns the route of c's method and path, setting c.name. With no
// route it returns the methods the path allows, if any; a {ref} or {net}
// pattern matches too much to say (GET /images/NAME/history is Docker's,
// not a wrong method for DELETE /images/{ref}; POST /networks/create is
// Docker's too), so it never counts.
func (s *Server) find(c *call) (*route, []string) {
	routes := s.v1
	if c.docker {
		routes = s.docker
	}
	var allowed []string
	for i := range routes {
		name, ok := match(routes[i].path, c.path)
		if !ok {
			continue
		}
		if routes[i].method == c.r.Method {
			c.name = name
			return &routes[i], nil
		}
		if !strings.Contains(routes[i].path, "{ref}") && !strings.Contains(routes[i].path, "{net}") {
			allowed = append(allowed, routes[i].method)
		}
	}
	return nil, allowed
}

// match reports whether the escaped path fits pattern, returning the
// {name} or {net} segment unescaped (so "a%2Fb" is one segment, and a bad
// name), or the {ref} segments (see matchRef).
func match(pattern, path string) (string, bool) {
	if strings.Contains(pattern, "{ref}") {
		return matchRef(pattern, path)
	}
	ps, qs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(qs) {
		return "", false
	}
	name := ""
	for i, p := range ps {
		switch {
		case (p == "{name}" || p == "{net}") && qs[i] != "":
			var err error
			if name, err = url.PathUnescape(qs[i]); err != nil {
				name = qs[i]
			}
		case p != qs[i]:
			return "", false
		}
	}
	return name, true
}

// matchRef matches a pattern with one {ref}: the path must start and end
// as the pattern does around it, and {ref} is the non-empty rest,
// unescaped, slashes and all (image names have them:
// /images/127.0.0.1:5000/app/web:1.4/json).
func matchRef(pattern, path string) (string, bool) {
	prefix, suffix, _ := strings.Cut(pattern, "{ref}")
	if len(path) <= len(prefix)+len(suffix) || !strings.HasPrefix(path, prefix) || !strings.HasSuffix(path, suffix) {
		return "", false
	}
	ref := path[len(prefix) : len(path)-len(suffix)]
	if unescaped, err := url.PathUnescape(ref); err == nil {
		ref = unescaped
	}
	return ref, true
}

// endpoint splits a request path into cove's /v1 space and Docker's, and
// strips Docker's version prefix (/v1.41/containers/json →
// /containers/json; Docker clients also send paths without one).
func endpoint(path string) (string, bool) {
	if path == "/v1" || strings.HasPrefix(path, "/v1/") {
		return path, false
	}
	rest, ok := strings.CutPrefix(path, "/v")
	if !ok {
		return path, true
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 || !isVersion(rest[:i]) {
		return path, true
	}
	return rest[i:], true
}

// isVersion reports whether v is MAJOR.MINOR in digits.
func isVersion(v string) bool {
	major, minor, ok := strings.Cut(v, ".")
	return ok && isDigits(major) && isDigits(minor)
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// recoverPanic answers a panicking handler with 500 and logs the stack.
func (s *Server) recoverPanic(c *call) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	fmt.Fprintf(s.opt.Log, "cove-api: panic serving %s %s: %v\n%s", c.r.Method, c.path, v, debug.Stack())
	c.fail(errorf(CodeInternal, fmt.Sprintf("%s %s: internal error", c.r.Method, c.path)))
}

// failNoRoute answers a request that matches no route.
func (c *call) failNoRoute(allowed []string) {
	request := c.r.Method + " " + c.path
	switch {
	case len(allowed) > 0:
		c.w.Header().Set("Allow", strings.Join(allowed, ", "))
		c.fail(errorf(CodeMethodNotAllowed, fmt.Sprintf("%s: method not allowed (allowed: %s)", request, strings.Join(allowed, ", "))))
	case c.docker:
		c.fail(errorf(CodeNotImplemented, "cove does not implement "+request))
	default:
		c.fail(errorf(CodeNotFound, "no such endpoint: "+request))
	}
}

// ctx is the request's context: it ends when the client goes away.
func (c *call) ctx() context.Context { return c.r.Context() }

// fail answers with e: cove's error body, or Docker's {"message": …}.
func (c *call) fail(e *Error) {
	c.w.Header().Del("Trailer")
	if c.docker {
		c.reply(e.Status(), dockerError{Message: e.Message})
		return
	}
	c.reply(e.Status(), e)
}

// failWith answers with the classified err.
func (c *call) failWith(err error) { c.fail(asError(err)) }

// reply answers with status and v as JSON.
func (c *call) reply(status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(errorf(CodeInternal, fmt.Sprintf("encode answer to %s %s: %v", c.r.Method, c.path, err)))
	}
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	c.w.WriteHeader(status)
	c.w.Write(append(body, '\n'))
}

// decode reads the JSON body into v; an empty body leaves v as it is.
// Unknown fields, trailing data and malformed JSON are answered with 400,
// a body over MaxBodyBytes with 413; then it returns false.
func (c *call) decode(v any) bool {
	dec := json.NewDecoder(c.r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if extra := dec.Decode(&json.RawMessage{}); extra != io.EOF {
			err = errors.Join(errors.New("data after the JSON value"), extra)
		}
	} else if err == io.EOF {
		err = nil
	}
	if err != nil {
		c.failBody(err)
		return false
	}
	return true
}

// failBody answers an error reading the body: 413 when over the limit,
// else 400.
func (c *call) failBody(err error) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		c.fail(errorf(CodeTooLarge, fmt.Sprintf("%s %s: request body larger than %d bytes", c.r.Method, c.path, MaxBodyBytes)))
		return
	}
	c.fail(errorf(CodeBadRequest, fmt.Sprintf("%s %s: bad request body: %v", c.r.Method, c.path, err)))
}

// long lifts the server's timeouts for a request that waits for systemd
// (its body must have been read): no read deadline, a write deadline of
// jobTimeout. Errors (a recorder in tests) are ignored.
func (c *call) long() {
	rc := http.NewResponseController(c.w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Now().Add(jobTimeout))
}

// stream lifts the server's timeouts for a streaming answer and returns a
// writer that flushes every write. When follow is set, the headers go out
// at once, so the client sees the stream start before the first line.
func (c *call) stream(follow bool) *flushWriter {
	rc := http.NewResponseController(c.w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	fw := &flushWriter{w: c.w, rc: rc}
	if follow {
		fw.start()
	}
	return fw
}

// idleReader reads a long request body, re-arming the connection's read
// deadline before every read: the body may take as long as it keeps
// coming, with no pause longer than readTimeout. At its end (or an error)
// it lifts the deadline, so that the server's watch for the client going
// away does not time out while the handler works on.
type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (i idleReader) Read(p []byte) (int, error) {
	i.rc.SetReadDeadline(time.Now().Add(readTimeout))
	n, err := i.r.Read(p)
	if err != nil {
		i.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// idleWriter writes a long answer, re-arming the connection's write
// deadline before every write: a client that stops reading for
// writeTimeout ends it.
type idleWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (i idleWriter) Write(p []byte) (int, error) {
	i.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return i.w.Write(p)
}

// flushWriter writes to a response and flushes after every write (the
// log streams: journalctl writes one entry at a time).
type flushWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool // the status line went out: errors go in the trailer
}

// start sends the headers.
func (f *flushWriter) start() {
	f.started = true
	f.w.WriteHeader(http.StatusOK)
	f.rc.Flush()
}

// Write writes p and flushes it.
func (f *flushWriter) Write(p []byte) (int, error) {
	f.started = true
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	if err := f.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return n, err
	}
	return n, nil
}

// finish ends a stream that fw carried: with no error, nothing; before
// anything was sent, an error answer; after, the error in the trailer.
func (c *call) finish(fw *flushWriter, err error) {
	switch {
	case err == nil:
	case !fw.started:
		c.failWith(err)
	default:
		c.w.Header().Set(errorTrailer, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
}
