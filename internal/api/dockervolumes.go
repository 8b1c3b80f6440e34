package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cove-project/cove/internal/volume"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// volumeRoutes are Docker's volume endpoints: list, create, inspect,
// remove, prune. A volume's name takes a {ref} segment, which any
// printable name matches; the handlers check it (spec.ValidVolumeName).
func volumeRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/volumes", need: roleMember, handle: (*Server).volumes},
		{method: http.MethodPost, path: "/volumes/create", need: roleRoot, mutates: true, handle: (*Server).createVolume},
		{method: http.MethodPost, path: "/volumes/prune", need: roleRoot, mutates: true, handle: (*Server).pruneVolumes},
		{method: http.MethodGet, path: "/volumes/{ref}", need: roleMember, handle: (*Server).inspectVolume},
		{method: http.MethodDelete, path: "/volumes/{ref}", need: roleRoot, mutates: true, handle: (*Server).removeVolume},
	}
}

// DockerVolume is a volume as Docker's API shows it (and cove volume
// inspect). UsageData is set by GET /system/df only.
type DockerVolume struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	Mountpoint string            `json:"Mountpoint"`
	CreatedAt  string            `json:"CreatedAt,omitempty"` // RFC 3339; "" declared, not created yet
	Labels     map[string]string `json:"Labels"`
	Options    map[string]string `json:"Options"`
	Scope      string            `json:"Scope"`
	UsageData  *VolumeUsage      `json:"UsageData,omitempty"`
}

// VolumeUsage is a volume's size in bytes and how many workloads use it.
type VolumeUsage struct {
	Size     int64 `json:"Size"`
	RefCount int64 `json:"RefCount"`
}

// DockerVolumeOf is v in Docker's terms.
func DockerVolumeOf(v volume.Volume) DockerVolume {
	d := DockerVolume{Name: v.Name, Driver: "local", Mountpoint: v.Mountpoint, Labels: v.Labels, Options: map[string]string{}, Scope: "local"}
	if d.Labels == nil {
		d.Labels = map[string]string{}
	}
	if !v.CreatedAt.IsZero() {
		d.CreatedAt = rfc3339(v.CreatedAt)
	}
	if v.Size != 0 {
		d.Options["size"] = spec.FormatSize(v.Size)
	}
	return d
}

// VolumeUse is one workload's use of a named volume.
type VolumeUse struct {
	Workload, Volume string
}

// VolumeUser is a Backend that can tell which workloads use volumes.
// Local is one. Docker's volume removal and prune need it; with another
// Backend they fail.
type VolumeUser interface {
	// VolumeUses lists the volumes of every declared spec and every
	// loaded unit, running or not (a workload may appear twice).
	VolumeUses(ctx context.Context) ([]VolumeUse, error)
}

var _ VolumeUser = (*Local)(nil)

// VolumeUses lists the volumes the declared specs and the loaded units
// (their launchers' --mount) mount.
func (l *Local) VolumeUses(ctx context.Context) ([]VolumeUse, error) {
	var uses []VolumeUse
	err := l.eachWorkload(ctx, func(sp *spec.Spec) {
		if sp.Container != nil {
			uses = append(uses, volumesOf(sp.Name, sp.Container.Mounts)...)
		}
	}, func(name string, lc launch.Config) {
		uses = append(uses, volumesOf(name, lc.Mounts)...)
	})
	return uses, err
}

// volumesOf lists workload's uses of volumes among its mounts.
func volumesOf(workload string, mounts []spec.Mount) []VolumeUse {
	var out []VolumeUse
	for _, m := range mounts {
		if m.Type == spec.MountVolume {
			out = append(out, VolumeUse{Workload: workload, Volume: m.Source})
		}
	}
	return out
}

// usersOf maps each volume of uses to the workloads that use it, sorted.
func usersOf(uses []VolumeUse) map[string][]string {
	out := map[string][]string{}
	for _, u := range uses {
		if !slices.Contains(out[u.Volume], u.Workload) {
			out[u.Volume] = append(out[u.Volume], u.Workload)
		}
	}
	for _, ws := range out {
		slices.Sort(ws)
	}
	return out
}

// VolumeUsers maps each volume to the workloads that use it: declared
// specs and loaded units (the backend's VolumeUses) and the containers
// created through Docker's API, started or not.
func (s *Server) VolumeUsers(ctx context.Context) (map[string][]string, error) {
	vu, ok := s.backend.(VolumeUser)
	if !ok {
		return nil, errors.New("find the workloads that use volumes: the API's backend cannot tell")
	}
	uses, err := vu.VolumeUses(ctx)
	if err != nil {
		return nil, fmt.Errorf("find the workloads that use volumes: %w", err)
	}
	for name, rec := range s.records.list() {
		if sp, err := rec.spec(); err == nil && sp.Container != nil {
			uses = append(uses, volumesOf(name, sp.Container.Mounts)...)
		}
	}
	return usersOf(uses), nil
}

// VolumeInUseError is the refusal to remove a volume that workloads use.
func VolumeInUseError(name string, users []string) error {
	return fmt.Errorf("remove volume %s: %w: used by %s (stop and remove them first)", name, errVolumeInUse, strings.Join(users, ", "))
}

// errVolumeInUse is wrapped by VolumeInUseError.
var errVolumeInUse = errors.New("volume is in use")

// volumeFilters are the filter keys GET /volumes implements.
var volumeFilters = []string{"name", "dangling", "label", "driver"}

// volumes answers GET /volumes?filters=: every volume, created or
// declared; dangling=true keeps those no workload uses, name a substring.
func (s *Server) volumes(c *call) {
	f, ferr := parseFilters(c.r.URL.Query().Get("filters"), volumeFilters)
	if ferr == nil {
		ferr = checkDangling(f)
	}
	if ferr != nil {
		c.fail(ferr)
		return
	}
	vs, err := volume.Default().List()
	if err != nil {
		c.failWith(err)
		return
	}
	var users map[string][]string
	if len(f["dangling"]) > 0 {
		if users, err = s.VolumeUsers(c.ctx()); err != nil {
			c.failWith(err)
			return
		}
	}
	out := []DockerVolume{}
	for _, v := range vs {
		d := DockerVolumeOf(v)
		if f.labelsMatch(d.Labels) &&
			f.anyOf("name", func(n string) bool { return strings.Contains(v.Name, n) }) &&
			f.anyOf("driver", func(n string) bool { return n == d.Driver }) &&
			f.anyOf("dangling", func(n string) bool { return (n == "true" || n == "1") == (len(users[v.Name]) == 0) }) {
			out = append(out, d)
		}
	}
	c.reply(http.StatusOK, struct {
		Volumes  []DockerVolume `json:"Volumes"`
		Warnings []string       `json:"Warnings"`
	}{out, []string{}})
}

// volumeCreate is the body of POST /volumes/create.
type volumeCreate struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	DriverOpts map[string]string `json:"DriverOpts"`
	Labels     map[string]string `json:"Labels"`
}

// createVolume answers POST /volumes/create: creates the volume (a
// random name if none is given, as Docker's), or returns the existing
// one of that name. Only the local driver, with one option: size (a
// volume with its own file system of that size).
func (s *Server) createVolume(c *call) {
	var req volumeCreate
	if !c.decode(&req) {
		return
	}
	if req.Driver != "" && req.Driver != "local" {
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("create volume %s: driver %q is not supported; cove's volumes are local directories (driver \"local\")", req.Name, req.Driver)))
		return
	}
	if req.Name == "" {
		req.Name = randomVolumeName()
	}
	o, err := volumeOptions(req)
	if err != nil {
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("create volume %s: %v", req.Name, err)))
		return
	}
	v, err := volume.Default().Create(req.Name, o)
	if err != nil {
		c.fail(volumeError(err))
		return
	}
	c.reply(http.StatusCreated, DockerVolumeOf(v))
}

// volumeOptions reads req's labels and driver options: only "size".
func volumeOptions(req volumeCreate) (volume.Options, error) {
	o := volume.Options{Labels: req.Labels}
	for k, v := range req.DriverOpts {
		if k != "size" {
			return o, fmt.Errorf("driver option %q is not supported (type, device, o: mounting a device or NFS share as a volume; use a bind mount of a host path); only size is", k)
		}
		n, err := spec.ParseSize(v)
		if err != nil {
			return o, fmt.Errorf("driver option size: %w", err)
		}
		o.Size = n
	}
	return o, nil
}

// randomVolumeName is a name for a volume created without one: 64 hex
// digits, as Docker's.
func randomVolumeName() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// inspectVolume answers GET /volumes/NAME.
func (s *Server) inspectVolume(c *call) {
	v, err := volume.Default().Get(c.name)
	if err != nil {
		c.fail(volumeError(err))
		return
	}
	c.reply(http.StatusOK, DockerVolumeOf(v))
}

// removeVolume answers DELETE /volumes/NAME: 409 while a workload (a
// declared spec, a loaded unit, a container created through Docker's
// API) uses it or a volume file declares it. force changes nothing.
func (s *Server) removeVolume(c *call) {
	if err := spec.ValidVolumeName(c.name); err != nil {
		c.fail(volumeError(err))
		return
	}
	users, err := s.VolumeUsers(c.ctx())
	if err != nil {
		c.failWith(err)
		return
	}
	if u := users[c.name]; len(u) > 0 {
		c.fail(volumeError(VolumeInUseError(c.name, u)))
		return
	}
	if err := volume.Default().Remove(c.name); err != nil {
		c.fail(volumeError(err))
		return
	}
	c.w.WriteHeader(http.StatusNoContent)
}

// pruneVolumes answers POST /volumes/prune?filters=: removes the created
// volumes that no workload uses and no volume file declares (API 1.41:
// named ones too). label filters narrow what is removed.
func (s *Server) pruneVolumes(c *call) {
	f, ferr := parseFilters(c.r.URL.Query().Get("filters"), []string{"label", "all"})
	if ferr != nil {
		c.fail(ferr)
		return
	}
	users, err := s.VolumeUsers(c.ctx())
	st := volume.Default()
	vs, lerr := st.List()
	if err = errors.Join(err, lerr); err != nil {
		c.failWith(err)
		return
	}
	keep := map[string]bool{}
	for _, v := range vs {
		keep[v.Name] = len(users[v.Name]) > 0 || !f.labelsMatch(v.Labels)
	}
	removed, reclaimed, err := st.Prune(keep)
	if err != nil {
		c.failWith(err)
		return
	}
	if removed == nil {
		removed = []string{}
	}
	c.reply(http.StatusOK, struct {
		VolumesDeleted []string `json:"VolumesDeleted"`
		SpaceReclaimed int64    `json:"SpaceReclaimed"`
	}{removed, reclaimed})
}

// volumeError is err as an API error: 404 for a missing volume, 409 for
// one in use or declared, 400 for a bad name, else 500.
func volumeError(err error) *Error {
	switch {
	case errors.Is(err, volume.ErrNotFound):
		return errorf(CodeNotFound, err.Error())
	case errors.Is(err, errVolumeInUse), errors.Is(err, volume.ErrDeclared):
		return errorf(CodeConflict, err.Error())
	case errors.Is(err, spec.ErrVolumeName), errors.Is(err, volume.ErrSize):
		return errorf(CodeBadRequest, err.Error())
	}
	return errorf(CodeInternal, err.Error())
}
