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
	"github.com/cove-project/cove/internal/network"
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

// pruneFilters are the filter keys of Docker's prunes: label (KEY,
// KEY=VALUE: must hold), label! (must not) and until (created at or
// before: untilFilter).
var pruneFilters = []string{"label", "label!", "until"}

// readPruneFilters reads a prune's filters (keys: pruneFilters, and
// more: an endpoint's own) and its until time (zero: none).
func readPruneFilters(c *call, more ...string) (filters, time.Time, *Error) {
	f, err := parseFilters(c.r.URL.Query().Get("filters"), append(more, pruneFilters...))
	if err != nil {
		return nil, time.Time{}, err
	}
	until, err := untilFilter(f, time.Now())
	return f, until, err
}

// pruneContainers answers POST /containers/prune?filters=: removes every
// container that does not run (created, exited, failed: stopped), as
// docker rm without force does, with its writable layer, where the
// filters (pruneFilters) hold. A declared workload (an instance of a
// replicated one too) is cove apply's and a VM is no container: neither
// is pruned. A container whose removal fails, or that a start claims
// meanwhile, stays, unnamed in the answer, its error logged, as Docker
// does. SpaceReclaimed is the size of the writable layers removed. 500
// when the declared specs cannot be read: nothing is removed then.
func (s *Server) pruneContainers(c *call) {
	f, until, ferr := readPruneFilters(c)
	if ferr != nil {
		c.fail(ferr)
		return
	}
	specs, err := s.declaredSpecs()
	var ws []Workload
	if err == nil {
		ws, err = s.backend.ListStates(c.ctx())
	}
	if err != nil {
		c.failWith(fmt.Errorf("container prune: %w", err))
		return
	}
	c.long()
	recs := s.records.list()
	out := struct {
		ContainersDeleted []string `json:"ContainersDeleted"`
		SpaceReclaimed    int64    `json:"SpaceReclaimed"`
	}{ContainersDeleted: []string{}}
	for _, w := range withRecords(ws, recs) {
		if !prunable(w, recs[w.Name], specs, f, until) {
			continue
		}
		n, err := s.pruneContainer(c.ctx(), w.Name)
		if err != nil {
			fmt.Fprintf(s.opt.Log, "cove api: container prune: %v\n", err)
			continue
		}
		out.ContainersDeleted = append(out.ContainersDeleted, dockerID(w.Name))
		out.SpaceReclaimed += n
	}
	c.reply(http.StatusOK, out)
}

// prunable reports whether container prune may remove w (rec: its
// record, nil for none): a container that no spec of specs declares
// (by its base name: an instance's), stopped, with the filters' labels,
// and created by until (the zero time: whenever; a container whose
// creation is unknown is kept then).
func prunable(w Workload, rec *containerRecord, specs specIndex, f filters, until time.Time) bool {
	if _, declared := specs[spec.BaseName(w.Name)]; declared || w.Kind != spec.KindContainer || !stopped(w) {
		return false
	}
	created := createdAt(w, rec)
	if !until.IsZero() && (created.IsZero() || created.After(until)) {
		return false
	}
	return f.labelsMatch(labels(w, viewSpec(specs, rec, w.Name)))
}

// stopped reports whether w neither runs nor is starting or stopping:
// created (no unit), its unit inactive or failed, or active with its
// payload exited (a unit the helper keeps loaded after its run, as
// Docker keeps an exited container).
func stopped(w Workload) bool {
	switch w.ActiveState {
	case createdState, "inactive", "failed":
		return true
	}
	return w.ActiveState == "active" && w.SubState == "exited"
}

// createdAt is when w was created, as Docker's list shows it: its
// record's creation, else its last start (zero: unknown).
func createdAt(w Workload, rec *containerRecord) time.Time {
	if rec != nil {
		return rec.Created
	}
	return w.Started
}

// pruneContainer removes container name, holding its start's claim
// (containerRuns.claim), if it is still stopped then, and returns its
// writable layer's size before the removal.
func (s *Server) pruneContainer(ctx context.Context, name string) (int64, error) {
	if !s.runs.claim(name) {
		return 0, claimConflict(name)
	}
	defer s.runs.unclaim(name)
	ct, err := s.container(ctx, name)
	if err != nil {
		return 0, err
	}
	if !stopped(ct.Workload) {
		return 0, fmt.Errorf("container %s: it started meanwhile", name)
	}
	size, _ := volume.DirSize(launch.ContainerDir(name)) // its writable layer: the overlay is mounted in the container's namespace only
	return size, s.removeClaimed(ctx, ct)
}

// untilFilter reads the until filter as Docker's daemon reads a
// timestamp: a duration back from now ("24h"; "0" is the Unix epoch),
// Unix seconds with an optional fraction, or a date with an optional
// time to the hour, minute, second or a fraction, with a zone (Z, +01:00;
// a date alone -07:00) as given, without one at the local zone's offset
// now (dockerTimeLayout); the zero time when there is none.
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
	if d, err := time.ParseDuration(v); err == nil && v != "0" {
		return now.Add(-d), nil
	}
	if t, err := time.ParseInLocation(dockerTimeLayout(v), v, time.FixedZone(now.Zone())); err == nil {
		return t, nil
	}
	if sec, ns, ok := unixTime(v); ok {
		return time.Unix(sec, ns), nil
	}
	return time.Time{}, errorf(CodeBadRequest, fmt.Sprintf("filters: until %.64q: want a duration (24h), Unix seconds or a time (2006-01-02, 2006-01-02T15:04, 2006-01-02T15:04:05Z)", v))
}

// dockerTimeLayout is the layout Docker reads the date and time v with:
// one with a zone when v has Z, + or a third "-", to the precision v
// gives.
func dockerTimeLayout(v string) string {
	zoned := strings.ContainsAny(v, "zZ+") || strings.Count(v, "-") == 3
	zone := ""
	if zoned {
		zone = "Z07:00"
	}
	switch {
	case strings.Contains(v, "."):
		return "2006-01-02T15:04:05.999999999" + zone
	case strings.Contains(v, "T"):
		colons := strings.Count(v, ":")
		if zoned && !strings.ContainsAny(v, "zZ") && colons > 0 {
			colons-- // the zone's own
		}
		return []string{"2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05"}[min(colons, 2)] + zone
	}
	return "2006-01-02" + zone
}

// unixTime reads Unix seconds with an optional fraction
// ("1700000000.5"; digits past the ninth are dropped).
func unixTime(v string) (sec, ns int64, ok bool) {
	s, frac, _ := strings.Cut(v, ".")
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil || strings.Trim(frac, "0123456789") != "" {
		return 0, 0, false
	}
	f, _ := strconv.ParseUint((frac + "000000000")[:9], 10, 64)
	return int64(n), int64(f), true
}

// pruneNetworks answers POST /networks/prune?filters=: removes every
// network nothing uses (Networker.RemoveNetwork: no workload holds a
// lease on it and no declared spec names it) and no container created
// through Docker's API names (Docker would remove a stopped container's
// network, which its next start then lacks), where the filters
// (pruneFilters; until: the file's modification time) hold. The default
// network stays, as Docker's bridge does. A network whose removal fails
// stays, its error logged, as in Docker.
func (s *Server) pruneNetworks(c *call) {
	f, until, ferr := readPruneFilters(c)
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
		if n.Name == plan.DefaultName || named[n.Name] || !f.labelsMatch(n.Labels) || !until.IsZero() && s.networkCreated(n).After(until) {
			continue
		}
		err := nw.RemoveNetwork(c.ctx(), n.Name)
		switch {
		case err == nil:
			out.NetworksDeleted = append(out.NetworksDeleted, n.Name)
		case !errors.Is(err, declared.ErrNetworkInUse) && !errors.Is(err, network.ErrUnknown):
			fmt.Fprintf(s.opt.Log, "cove api: network prune: %v\n", err)
		}
	}
	c.reply(http.StatusOK, out)
}

// recordedNetworks are the networks the containers of recs join: their
// specs' (containerSpec), or for a record whose spec cannot be made, the
// networks its request names (Docker's default: the run network it was
// created with).
func recordedNetworks(recs map[string]*containerRecord) map[string]bool {
	named := map[string]bool{}
	for _, r := range recs {
		sp, err := r.spec()
		if err != nil {
			named[firstNetwork(&r.Config, r.RunNetwork)] = true
			for n := range r.Config.NetworkingConfig.EndpointsConfig {
				named[dockerNetworkName(n, r.RunNetwork)] = true
			}
			continue
		}
		for _, n := range sp.Join().Networks() {
			named[n] = true
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
