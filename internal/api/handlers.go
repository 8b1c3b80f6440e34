package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
)

// v1Routes are cove's own endpoints (docs/api.md).
func v1Routes() []route {
	const get, post, del = http.MethodGet, http.MethodPost, http.MethodDelete
	return []route{
		{method: get, path: "/v1/workloads", need: roleMember, handle: (*Server).list},
		{method: get, path: "/v1/workloads/{name}", need: roleMember, handle: (*Server).status},
		{method: del, path: "/v1/workloads/{name}", need: roleRoot, mutates: true, handle: job(Backend.Remove)},
		{method: post, path: "/v1/workloads/{name}/start", need: roleMember, mutates: true, handle: job(Backend.Start)},
		{method: post, path: "/v1/workloads/{name}/stop", need: roleMember, mutates: true, handle: job(Backend.Stop)},
		{method: post, path: "/v1/workloads/{name}/restart", need: roleMember, mutates: true, handle: job(Backend.Restart)},
		{method: post, path: "/v1/workloads/{name}/kill", need: roleRoot, mutates: true, handle: (*Server).kill},
		{method: post, path: "/v1/workloads/{name}/pause", need: roleMember, mutates: true, handle: job(Backend.Pause)},
		{method: post, path: "/v1/workloads/{name}/unpause", need: roleMember, mutates: true, handle: job(Backend.Unpause)},
		{method: get, path: "/v1/workloads/{name}/logs", need: roleMember, handle: (*Server).logs},
		{method: post, path: "/v1/validate", need: roleMember, handle: (*Server).validate},
		{method: post, path: "/v1/diff", need: roleMember, handle: (*Server).diff},
		{method: post, path: "/v1/apply", need: roleRoot, mutates: true, handle: (*Server).apply},
	}
}

// list answers GET /v1/workloads?counters=: every workload; with
// counters=false without its cgroup's counters (Backend.ListStates).
func (s *Server) list(c *call) {
	list := s.backend.List
	if q := c.r.URL.Query(); q.Has("counters") {
		counters, qerr := queryBool(q, "counters")
		if qerr != nil {
			c.fail(qerr)
			return
		}
		if !counters {
			list = s.backend.ListStates
		}
	}
	ws, err := list(c.ctx())
	if err != nil {
		c.failWith(err)
		return
	}
	if ws == nil {
		ws = []Workload{}
	}
	c.reply(http.StatusOK, ws)
}

// status answers GET /v1/workloads/NAME.
func (s *Server) status(c *call) {
	w, err := s.backend.Status(c.ctx(), c.name)
	if err != nil {
		c.failWith(err)
		return
	}
	c.reply(http.StatusOK, w)
}

// job returns the handler of an operation on one workload: it waits for
// op and answers 204.
func job(op func(Backend, context.Context, string) error) func(*Server, *call) {
	return func(s *Server, c *call) {
		c.long()
		if err := op(s.backend, c.ctx(), c.name); err != nil {
			c.failWith(err)
			return
		}
		c.w.WriteHeader(http.StatusNoContent)
	}
}

// kill answers POST /v1/workloads/NAME/kill?signal=: SIGKILL, or the
// signal given, to the main process.
func (s *Server) kill(c *call) {
	op, err := killOp(c.r.URL.Query())
	if err != nil {
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("kill %s: %s", c.name, err.Message)))
		return
	}
	job(op)(s, c)
}

// logs answers GET /v1/workloads/NAME/logs?follow=&lines=&since=&until=&timestamps=:
// the journal as text/plain, flushed line by line. An error after the
// first line is in the Cove-Error trailer.
func (s *Server) logs(c *call) {
	opt, err := logOptions(c.r.URL.Query())
	if err != nil {
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("logs of %s: %s", c.name, err.Message)))
		return
	}
	h := c.w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Trailer", errorTrailer)
	fw := c.stream(opt.Follow)
	c.finish(fw, s.backend.Logs(c.ctx(), c.name, opt, fw))
}

// logOptions reads logQuery's parameters and lines: a count, 0 for all,
// "none" for none (supervisor.NoLines).
func logOptions(q url.Values) (supervisor.LogOptions, *Error) {
	opt, err := logQuery(q)
	if err != nil {
		return opt, err
	}
	opt.Lines, err = queryLines(q, "lines", "a count of lines (0 for all) or none", map[string]int{"": 0, "none": supervisor.NoLines})
	return opt, err
}

// validate answers POST /v1/validate: every problem of every spec (422
// spec_invalid), or the valid specs. The body is a SpecsRequest, or with
// another Content-Type than application/json one TOML spec named by the
// file query parameter.
func (s *Server) validate(c *call) {
	files, ok := c.specFiles()
	if !ok {
		return
	}
	if len(files) == 0 {
		c.fail(errorf(CodeBadRequest, "validate: no specs given"))
		return
	}
	var bad spec.Errors
	good := []ValidSpec{}
	for _, f := range files {
		sp, err := s.check(f)
		if err != nil {
			bad = append(bad, asSpecErrors(f.File, err)...)
			continue
		}
		good = append(good, ValidSpec{File: f.File, Name: sp.Name, Kind: sp.Kind})
	}
	if len(bad) > 0 {
		c.fail(&Error{Code: CodeSpecInvalid, Message: bad.Error(), Errors: details(bad)})
		return
	}
	c.reply(http.StatusOK, ValidateResponse{OK: true, Specs: good})
}

// check parses f and compiles it as cove validate does.
func (s *Server) check(f SpecFile) (*spec.Spec, error) {
	sp, err := spec.Parse(f.File, []byte(f.Content), "")
	if err != nil {
		return nil, err
	}
	if _, err := units.Compile(sp, units.Options{Launcher: s.opt.Self}); err != nil {
		return nil, err
	}
	return sp, nil
}

// asSpecErrors makes any error of checking file a list of spec errors.
func asSpecErrors(file string, err error) spec.Errors {
	if es, only := specErrors(err); only {
		return es
	}
	return spec.Errors{{File: file, Msg: err.Error()}}
}

// specFiles reads the specs of a validate request: a JSON SpecsRequest,
// or one raw TOML spec named by ?file=.
func (c *call) specFiles() ([]SpecFile, bool) {
	mt, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if mt == "application/json" {
		var req SpecsRequest
		if !c.decode(&req) {
			return nil, false
		}
		return req.Specs, true
	}
	file := c.r.URL.Query().Get("file")
	if file == "" {
		c.fail(errorf(CodeBadRequest, "validate: a TOML body needs ?file=NAME.toml (or send application/json)"))
		return nil, false
	}
	data, err := io.ReadAll(c.r.Body)
	if err != nil {
		c.failBody(err)
		return nil, false
	}
	return []SpecFile{{File: file, Content: string(data)}}, true
}

// diff answers POST /v1/diff: the plan of an apply, changing nothing.
func (s *Server) diff(c *call) {
	var req SpecsRequest
	if !c.decode(&req) {
		return
	}
	s.withSources(c, req, func(src Sources, st *staged) {
		plan, err := s.backend.Diff(c.ctx(), src)
		if err != nil {
			c.fail(st.relabel(err))
			return
		}
		c.reply(http.StatusOK, PlanResponse{Plan: planChanges(plan)})
	})
}

// apply answers POST /v1/apply: the plan carried out and the log. On
// failure the error body carries the log of what was done.
func (s *Server) apply(c *call) {
	var req SpecsRequest
	if !c.decode(&req) {
		return
	}
	c.long()
	s.withSources(c, req, func(src Sources, st *staged) {
		var log bytes.Buffer
		plan, err := s.backend.Apply(c.ctx(), src, &log)
		if err != nil {
			e := st.relabel(err)
			e.Log = log.String()
			c.fail(e)
			return
		}
		c.reply(http.StatusOK, PlanResponse{Plan: planChanges(plan), Log: log.String()})
	})
}

// withSources stages req's specs as files and runs f with them; without
// specs, f gets empty Sources (what the host declares).
func (s *Server) withSources(c *call, req SpecsRequest, f func(Sources, *staged)) {
	st, err := stage(req.Specs)
	if err != nil {
		c.fail(err)
		return
	}
	defer st.Close()
	f(Sources{Paths: st.paths, Prune: req.Prune}, st)
}

// planChanges is the JSON form of a plan.
func planChanges(p declared.Plan) []Change {
	out := make([]Change, len(p))
	for i, c := range p {
		out[i] = Change{Name: c.Name, Kind: c.Kind, Keys: c.Keys}
	}
	return out
}

// planOf turns the JSON form back into a plan (without specs).
func planOf(cs []Change) declared.Plan {
	p := make(declared.Plan, len(cs))
	for i, c := range cs {
		p[i] = declared.Change{Name: c.Name, Kind: c.Kind, Keys: c.Keys}
	}
	return p
}
