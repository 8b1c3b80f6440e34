package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cove-project/cove/supervisor"
)

// Wait conditions of POST /containers/ID/wait.
const (
	waitNotRunning = "not-running"
	waitNextExit   = "next-exit"
	waitRemoved    = "removed"
)

// dockerWaitResponse is the answer to POST /containers/ID/wait.
type dockerWaitResponse struct {
	StatusCode int                `json:"StatusCode"`
	Error      *dockerWaitFailure `json:"Error"`
}

// dockerWaitFailure is a wait's error.
type dockerWaitFailure struct {
	Message string `json:"Message"`
}

// sighting is what a wait sees of a container at one moment.
type sighting struct {
	state string // Docker's state; "" when the container is gone
	code  int    // the last exit status
	run   *run   // its latest run started by this helper, or nil
}

// sight looks at container name.
func (s *Server) sight(ctx context.Context, name string) (sighting, error) {
	sg := sighting{run: s.runs.get(name)}
	ct, err := s.container(ctx, name)
	switch {
	case err == nil:
		sg.state, sg.code = dockerState(ct.Workload), ct.ExitCode
	case !errors.Is(err, supervisor.ErrNotFound):
		return sg, err
	}
	return sg, nil
}

// dockerWait answers POST /containers/ID/wait?condition=: not-running
// (the default: at once unless it runs), next-exit (the end of its next
// run, or of the current one), removed (until it is gone, as with
// AutoRemove). As Docker does, the status line goes out at once (the
// docker CLI asks before it starts the container, and waits for the
// headers), the body {"StatusCode": N, "Error": null} when the condition
// holds.
func (s *Server) dockerWait(c *call) {
	cond := c.r.URL.Query().Get("condition")
	switch cond {
	case "":
		cond = waitNotRunning
	case waitNotRunning, waitNextExit, waitRemoved:
	default:
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("invalid condition: %.32q: want not-running, next-exit or removed", cond)))
		return
	}
	ct, ok := s.lookupContainer(c)
	if !ok {
		return
	}
	first, err := s.sight(c.ctx(), ct.Name)
	if err != nil {
		c.failWith(err)
		return
	}
	c.w.Header().Set("Content-Type", "application/json")
	fw := c.stream(true)
	code, err := s.waitFor(c.ctx(), ct.Name, cond, first)
	if c.ctx().Err() != nil {
		return
	}
	resp := dockerWaitResponse{StatusCode: code}
	if err != nil {
		resp.Error = &dockerWaitFailure{Message: err.Error()}
	}
	json.NewEncoder(fw).Encode(resp)
}

// waitFor waits until cond holds for container name, seen first as
// first, and returns the exit status. It looks again every so often
// (sooner at first), and as soon as a run of this helper ends.
func (s *Server) waitFor(ctx context.Context, name, cond string, first sighting) (int, error) {
	wasUp, last := isUp(first.state), first.code
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		cur, err := s.sight(ctx, name)
		if err != nil {
			return last, err
		}
		if cur.state != "" {
			last = cur.code
		} else if cur.run != nil && ended(cur.run) {
			last = cur.run.code
		}
		wasUp = wasUp || isUp(cur.state)
		if waited(cond, first, cur, wasUp) {
			return last, nil
		}
		var runDone <-chan struct{}
		if cur.run != nil {
			runDone = cur.run.done
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-runDone:
		case <-time.After(delay):
		}
	}
}

// waited reports whether cond holds now (cur), for a wait that began
// when the container was seen as first; wasUp tells whether it has been
// seen running since.
func waited(cond string, first, cur sighting, wasUp bool) bool {
	gone := cur.state == ""
	switch cond {
	case waitNotRunning:
		return !isUp(cur.state)
	case waitRemoved: // and what its run's end removes (anonymous volumes) gone too
		return gone && (cur.run == nil || ended(cur.run))
	}
	if isUp(cur.state) {
		return false
	}
	if cur.run != nil && cur.run != first.run { // a run started since: its end
		return ended(cur.run) || gone
	}
	return wasUp || gone
}

// ended reports whether r has ended.
func ended(r *run) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}
