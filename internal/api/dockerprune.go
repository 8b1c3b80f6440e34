package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/volume"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// pruneRoutes are Docker's prunes of containers, networks and the build
// cache (docker container prune, network prune, system prune; images and
// volumes have theirs beside their other endpoints).
func pruneRoutes() []route {
	const post = http.MethodPost
	return []route{
		{method: post, path: "/containers/prune", need: roleRoot, mutates: true, handle: (*Server).pruneContainers},
		{method: post, path: "/networks/prune", need: roleRoot, mutates: true, handle: (*Server).pruneNetworks},
		{method: post, path: "/build/prune", need: roleRoot, handle: (*Server).pruneBuildCache},
	}
}

// pruneContainers answers POST /containers/prune?filters=: removes every
// container that does not run (created, exited, failed), as docker rm
// without force does, with its writable layer; label (KEY, KEY=VALUE)
// and until (created before: a duration back from now, Unix seconds or
// an RFC 3339 time) narrow the set. A declared workload is cove apply's
// and a VM is no container: neither is pruned. A container whose removal
// fails stays, unnamed in the answer, as in Docker. SpaceReclaimed is
// the size of the writable layers removed.
func (s *Server) pruneContainers(c *call) {
	f, ferr := parseFilters(c.r.URL.Query().Get("filters"), []string{"label", "until"})
	var until time.Time
	if ferr == nil {
		until, ferr = untilFilter(f, time.Now())
	}
	if ferr != nil {
		c.fail(ferr)
		return
	}
	ws, err := s.backend.ListStates(c.ctx())
	if err != nil {
		c.failWith(err)
		return
	}
	c.long()
	specs, recs := s.specIndex(), s.records.list()
	out := struct {
		ContainersDeleted []string `json:"ContainersDeleted"`
		SpaceReclaimed    int64    `json:"SpaceReclaimed"`
	}{ContainersDeleted: []string{}}
	for _, w := range withRecords(ws, recs) {
		sp := viewSpec(specs, recs[w.Name], w.Name)
		d := summary(w, sp)
		recordSummary(&d, recs[w.Name])
		_, declared := specs[w.Name]
		if declared || w.Kind != spec.KindContainer || isUp(dockerState(w)) || !f.labelsMatch(labels(w, sp)) ||
			!until.IsZero() && (d.Created == 0 || !time.Unix(d.Created, 0).Before(until)) {
			continue
		}
		if n, ok := s.pruneContainer(c.ctx(), w.Name); ok {
			out.ContainersDeleted = append(out.ContainersDeleted, dockerID(w.Name))
			out.SpaceReclaimed += n
		}
	}
	c.reply(http.StatusOK, out)
}

// pruneContainer removes container name if it still does not run, and
// returns its writable layer's size before the removal.
func (s *Server) pruneContainer(ctx context.Context, name string) (int64, bool) {
	ct, err := s.container(ctx, name)
	if err != nil || isUp(dockerState(ct.Workload)) {
		return 0, false
	}
	size, _ := volume.DirSize(launch.ContainerDir(name))
	return size, s.removeContainer(ctx, ct) == nil
}

// untilFilter reads the until filter (Docker's timestamps: a duration
// back from now such as "24h", Unix seconds with an optional fraction,
// an RFC 3339 time, or a local "2006-01-02T15:04:05" or "2006-01-02");
// the zero time when there is none.
func untilFilter(f filters, now time.Time) (time.Time, *Error) {
	vs := f["until"]
	switch len(vs) {
	case 0:
		return time.Time{}, nil
	case 1:
	default:
		return time.Time{}, errorf(CodeBadRequest, "filters: more than one until filter")
	}
	v := vs[0]
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if sec, ns, ok := unixTime(v); ok {
		return time.Unix(sec, ns), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errorf(CodeBadRequest, fmt.Sprintf("filters: until %.64q: want a duration (24h), Unix seconds or an RFC 3339 time", v))
}

// unixTime reads Unix seconds with an optional fraction of at most nine
// digits ("1700000000.5").
func unixTime(v string) (sec, ns int64, ok bool) {
	s, frac, _ := strings.Cut(v, ".")
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil || len(frac) > 9 || strings.Trim(frac, "0123456789") != "" {
		return 0, 0, false
	}
	f, _ := strconv.ParseUint((frac + "000000000")[:9], 10, 64)
	return int64(n), int64(f), true
}

// pruneNetworks answers POST /networks/prune?filters=: removes every
// network nothing uses (Networker.RemoveNetwork: no workload holds a
// lease on it and no declared spec names it) and no container created
// through Docker's API names (Docker would remove a stopped container's
// network, which its next start then lacks); label filters narrow the
// set. The default network stays, as Docker's bridge does.
func (s *Server) pruneNetworks(c *call) {
	f, ferr := parseFilters(c.r.URL.Query().Get("filters"), []string{"label"})
	if ferr != nil {
		c.fail(ferr)
		return
	}
	nw, ok := s.networker(c, "network prune")
	if !ok {
		return
	}
	v, err := s.opt.Networks.Read()
	if err != nil {
		c.failWith(err)
		return
	}
	c.long()
	out := struct {
		NetworksDeleted []string `json:"NetworksDeleted"`
	}{NetworksDeleted: []string{}}
	named := recordedNetworks(s.records.list())
	for _, n := range v.Networks {
		if n.Name == plan.DefaultName || named[n.Name] || !f.labelsMatch(n.Labels) {
			continue
		}
		err := nw.RemoveNetwork(c.ctx(), n.Name)
		switch {
		case err == nil:
			out.NetworksDeleted = append(out.NetworksDeleted, n.Name)
		case !errors.Is(err, declared.ErrNetworkInUse):
			c.fail(networkRefusal(err))
			return
		}
	}
	c.reply(http.StatusOK, out)
}

// recordedNetworks are the networks the containers of recs join (a
// record whose spec cannot be made joins none).
func recordedNetworks(recs map[string]*containerRecord) map[string]bool {
	named := map[string]bool{}
	for _, r := range recs {
		if sp, err := r.spec(); err == nil {
			for _, n := range sp.Join().Networks() {
				named[n] = true
			}
		}
	}
	return named
}

// pruneBuildCache answers POST /build/prune: cove builds no images, so
// it has no build cache and removes nothing (docker system prune asks).
func (s *Server) pruneBuildCache(c *call) {
	c.reply(http.StatusOK, struct {
		CachesDeleted  []string `json:"CachesDeleted"`
		SpaceReclaimed int64    `json:"SpaceReclaimed"`
	}{CachesDeleted: []string{}})
}
