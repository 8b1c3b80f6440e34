package api

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cove-project/cove/internal/health"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/spec"
)

// containerFilters are the filter keys GET /containers/json implements:
// filters.match's and psFilter's.
var containerFilters = []string{"name", "id", "label", "status", "ancestor", "health", "exited", "network", "volume"}

// psFilter holds what the list filters of docker ps need beyond a
// workload's own state: the image IDs the ancestor filters name, and the
// store to find a listed container's image in (each reference once).
type psFilter struct {
	f         filters
	ancestors map[string]bool   // Docker image IDs (sha256:CONFIG)
	st        *image.Store      // nil: no ancestor filter, or no store
	ids       map[string]string // image reference → Docker image ID ("": not in the store)
}

// newPSFilter checks f's health and exited values (400, as Docker's) and
// resolves its ancestor filters in the store open opens (only for those;
// one that cannot be opened has no image): an image name, name:tag,
// name@digest or (a prefix of) an ID, as Docker's; one not in the store
// matches no container.
func newPSFilter(f filters, open func() (*image.Store, error)) (*psFilter, *Error) {
	for _, v := range f["health"] {
		if !slices.Contains([]string{health.Starting, health.Healthy, health.Unhealthy, "none"}, v) {
			return nil, errorf(CodeBadRequest, fmt.Sprintf("Unrecognised filter value for health: %.32s", v))
		}
	}
	for _, v := range f["exited"] {
		if _, err := strconv.Atoi(v); err != nil {
			return nil, errorf(CodeBadRequest, fmt.Sprintf("filters: exited %.32q is not an exit status", v))
		}
	}
	p := &psFilter{f: f}
	if len(f["ancestor"]) == 0 {
		return p, nil
	}
	p.ancestors, p.ids = map[string]bool{}, map[string]string{}
	if st, err := open(); err == nil {
		p.st = st
		for _, v := range f["ancestor"] {
			if img, err := resolveImage(st, dockerShortName(v)); err == nil {
				p.ancestors[dockerImageID(img.rec)] = true
			}
		}
	}
	return p, nil
}

// match reports whether list entry d of workload w (spec sp: nil when
// unknown) passes the filters beyond filters.match: ancestor (its image),
// health (starting, healthy, unhealthy or none), exited (the exit status
// of an exited container), network (a network's name or ID it is on or
// joins), volume (a mount's volume name, source or destination).
func (p *psFilter) match(w Workload, sp *spec.Spec, d dockerSummary) bool {
	f := p.f
	return f.anyOf("ancestor", func(string) bool { return p.ancestors[p.imageID(d)] }) &&
		f.anyOf("health", func(v string) bool { return v == healthStatus(w, sp) }) &&
		f.anyOf("exited", func(v string) bool { n, _ := strconv.Atoi(v); return d.State == "exited" && n == w.ExitCode }) &&
		f.anyOf("network", func(v string) bool { return slices.ContainsFunc(networkNames(d), networkNamed(v)) }) &&
		f.anyOf("volume", func(v string) bool {
			return slices.ContainsFunc(d.Mounts, func(m dockerMount) bool { return v == m.Name || v == m.Source || v == m.Destination })
		})
}

// imageID is the Docker image ID of the image d runs: its record's, or
// that of the image its spec names in the store; "" for none.
func (p *psFilter) imageID(d dockerSummary) string {
	if d.ImageID != "" || p.st == nil {
		return d.ImageID
	}
	if d.Image == "" || strings.HasPrefix(d.Image, "/") { // a rootfs, a VM's kernel
		return ""
	}
	id, seen := p.ids[d.Image]
	if !seen {
		if img, err := resolveImage(p.st, dockerShortName(d.Image)); err == nil {
			id = dockerImageID(img.rec)
		}
		p.ids[d.Image] = id
	}
	return id
}

// healthStatus is w's health as docker ps --filter health= names it:
// none without a health check or for a container created and never
// started (as Docker's), else starting until its first result.
func healthStatus(w Workload, sp *spec.Spec) string {
	if sp == nil || sp.Health == nil || w.ActiveState == createdState {
		return "none"
	}
	return cmp.Or(w.Health, health.Starting)
}

// networkNames are the networks list entry d is on or joins, and its
// network mode (host, none).
func networkNames(d dockerSummary) []string {
	names := []string{d.HostConfig.NetworkMode}
	for n := range d.NetworkSettings.Networks {
		names = append(names, n)
	}
	return names
}

// networkNamed matches a network by name or by a prefix of its Docker ID
// (docker network ls shows twelve digits), as Docker's.
func networkNamed(v string) func(string) bool {
	return func(name string) bool { return name == v || v != "" && strings.HasPrefix(dockerNetworkID(name), v) }
}
