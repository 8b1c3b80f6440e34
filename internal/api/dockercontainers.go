package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// createdState is the ActiveState and SubState of a container created
// through Docker's API that never started: no unit has them, dockerState
// calls it "created".
const createdState = "created"

// dockerContainer is what a Docker container ID names: a workload, a
// container created through Docker's API, or both (a started one).
type dockerContainer struct {
	Workload                  // systemd's, or made from the record when the unit is not loaded
	rec      *containerRecord // nil: a workload not created through Docker's API
	loaded   bool             // systemd has the unit
}

// launchConfig is ct's launcher configuration when its record gives it,
// or nil: its unit's.
func (ct dockerContainer) launchConfig() (*launch.Config, error) {
	if ct.rec == nil {
		return nil, nil
	}
	c, err := ct.rec.launchConfig()
	return &c, err
}

// container finds the container called name: its loaded unit and record,
// or its record alone (created, or exited and unloaded since). An
// AutoRemove record whose run ended while no helper watched it is stale:
// it is removed with its anonymous volumes, and the container is not
// found.
func (s *Server) container(ctx context.Context, name string) (dockerContainer, error) {
	rec, rerr := s.records.read(name)
	w, err := s.backend.Status(ctx, name)
	switch {
	case err == nil && !createdWithState(w, rec):
		return dockerContainer{Workload: w, rec: rec, loaded: true}, nil
	case err == nil:
		err = fmt.Errorf("container %s: %w", name, supervisor.ErrNotFound) // its record says more
	case !errors.Is(err, supervisor.ErrNotFound):
		return dockerContainer{}, err
	case rerr != nil:
		return dockerContainer{}, rerr
	case rec != nil && stale(rec):
		s.records.remove(name)
		s.dropAnonymousVolumes(context.WithoutCancel(ctx), rec) // its record is gone: no later try
		rec = nil
	}
	if rec == nil {
		return dockerContainer{}, err
	}
	return dockerContainer{Workload: recordWorkload(rec), rec: rec}, nil
}

// createdWithState reports whether w, a workload found with no unit but
// the state it keeps (isCollected), is a recorded container that never
// started: a docker cp before its first start made that state, and it is
// still created.
func createdWithState(w Workload, rec *containerRecord) bool {
	return rec != nil && !rec.Started && isCollected(w)
}

// stale reports whether rec, whose unit is not loaded, is of a container
// that should have gone with the end of its run.
func stale(rec *containerRecord) bool { return rec.Started && rec.Config.HostConfig.AutoRemove }

// recordWorkload is the workload of a record whose unit is not loaded:
// created, or exited with the last run's status.
func recordWorkload(rec *containerRecord) Workload {
	w := supervisor.Workload{Name: rec.Name, Unit: spec.UnitName(rec.Name), Kind: spec.KindContainer,
		ActiveState: "inactive", SubState: "dead", ExitCode: rec.ExitCode}
	if !rec.Started {
		w.ActiveState, w.SubState = createdState, createdState
	}
	return Workload{Workload: w}
}

// lookup finds the workload a Docker path names (see lookupContainer).
func (s *Server) lookup(c *call) (Workload, bool) {
	ct, ok := s.lookupContainer(c)
	return ct.Workload, ok
}

// lookupContainer finds the container a Docker path names: by name, else
// by a unique prefix of its Docker ID. Otherwise it answers (404 when
// there is none) and returns false.
func (s *Server) lookupContainer(c *call) (dockerContainer, bool) {
	return s.lookupContainerNamed(c, c.name)
}

// lookupContainerNamed is lookupContainer for the container ref names
// (a body's, say, rather than the path's).
func (s *Server) lookupContainerNamed(c *call, ref string) (dockerContainer, bool) {
	ct, err := s.findContainer(c.ctx(), ref)
	switch {
	case err == nil:
		return ct, true
	case errors.Is(err, supervisor.ErrNotFound):
		c.fail(errorf(CodeNotFound, "No such container: "+ref))
	default:
		c.failWith(err)
	}
	return dockerContainer{}, false
}

// findContainer finds the container ref names: by name, else by a
// unique prefix of its Docker ID; supervisor.ErrNotFound when there is
// none.
func (s *Server) findContainer(ctx context.Context, ref string) (dockerContainer, error) {
	ct, err := s.container(ctx, ref)
	if err == nil || !errors.Is(err, supervisor.ErrNotFound) || !isHex(ref) {
		return ct, err
	}
	name, err := s.byIDPrefix(ctx, ref)
	if err != nil {
		return ct, err
	}
	if name == "" {
		return ct, fmt.Errorf("container %s: %w", ref, supervisor.ErrNotFound)
	}
	return s.container(ctx, name)
}

// byIDPrefix returns the one container whose Docker ID starts with
// prefix, or "" when none does; when none does, one whose record had
// such an ID before a rename (docker compose gives the container it
// makes in place of NAME the same temporary name each time, so a
// current ID wins over a former one).
func (s *Server) byIDPrefix(ctx context.Context, prefix string) (string, error) {
	ws, err := s.backend.ListStates(ctx)
	if err != nil {
		return "", err
	}
	var found, formerly []string
	recs := s.records.list()
	for _, w := range withRecords(ws, recs) {
		if strings.HasPrefix(dockerID(w.Name), prefix) {
			found = append(found, w.Name)
		}
		if rec := recs[w.Name]; rec != nil && slices.ContainsFunc(rec.FormerIDs, func(id string) bool { return strings.HasPrefix(id, prefix) }) {
			formerly = append(formerly, w.Name)
		}
	}
	if len(found) == 0 {
		found = formerly
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", errorf(CodeBadRequest, fmt.Sprintf("multiple IDs found with provided prefix: %s", prefix))
}

// withRecords adds to ws, systemd's workloads, the recorded containers
// whose units are not loaded (stale ones left out), sorted by name.
func withRecords(ws []Workload, recs map[string]*containerRecord) []Workload {
	loaded := map[string]bool{}
	out := []Workload{}
	for _, w := range ws {
		if !createdWithState(w, recs[w.Name]) {
			loaded[w.Name] = true
			out = append(out, w)
		}
	}
	for name, rec := range recs {
		if !loaded[name] && !stale(rec) {
			out = append(out, recordWorkload(rec))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// viewSpec is the spec Docker's views show of name: its declared spec,
// else its record's, else nil.
func viewSpec(specs specIndex, rec *containerRecord, name string) *spec.Spec {
	if sp := specs.load(name); sp != nil || rec == nil {
		return sp
	}
	sp, _ := rec.spec()
	return sp
}

// recordSummary completes a list entry from the container's record: the
// image as the request named it, its ID, the creation time.
func recordSummary(d *dockerSummary, rec *containerRecord) {
	if rec == nil {
		return
	}
	d.Image, d.ImageID, d.Created = rec.Config.Image, rec.ImageID, rec.Created.Unix()
}

// recordInspect completes an inspection from the container's record.
func recordInspect(d *dockerInspect, rec *containerRecord) {
	if rec == nil {
		return
	}
	d.Image, d.Config.Image, d.Created = rec.ImageID, rec.Config.Image, rfc3339(rec.Created)
	d.Config.OpenStdin, d.Config.Tty, d.Config.Healthcheck = rec.Config.OpenStdin, rec.Config.Tty, rec.Config.Healthcheck
	d.HostConfig.AutoRemove = rec.Config.HostConfig.AutoRemove
	if d.State.Status == "created" {
		d.State.StartedAt = rfc3339(time.Time{})
	}
}
