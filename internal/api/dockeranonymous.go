package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"

	"github.com/cove-project/cove/internal/volume"
	"github.com/cove-project/cove/spec"
)

// anonymousVolumes names each anonymous volume of a create (docker run -v
// /data, that is Config.Volumes; a --mount of type volume without a
// source, as compose sends a service's anonymous volume) and each VOLUME
// of its image (imageVolumes) that nothing else of it mounts, as Docker
// does: a new volume name of 64 hex digits (randomVolumeName), written
// into req's HostConfig.Mounts, so that every start of the container
// mounts the same volume. It returns the names, which the record keeps
// and the create makes (createAnonymousVolumes; each is filled with what
// the image has there at its first use; docker rm -v and --rm remove
// them: dropAnonymousVolumes), and a warning for each image VOLUME no
// mount can have (spec.MountableTarget: "/", one in /proc, a relative
// one). A path is taken cleaned ("/data/" is "/data"); the create's own
// are checked with the other mounts (containerSpec).
func anonymousVolumes(req *dockerCreate, imageVolumes map[string]struct{}) (names, warnings []string) {
	h := &req.HostConfig
	mounted := map[string]bool{}
	for _, b := range h.Binds {
		if m, err := spec.ParseVolume(b); err == nil {
			mounted[path.Clean(m.Target)] = true
		}
	}
	for target := range h.Tmpfs {
		mounted[path.Clean(target)] = true
	}
	add := func(target string) {
		m := dockerMountCreate{Type: spec.MountVolume, Source: randomVolumeName(), Target: target}
		h.Mounts, names, mounted[target] = append(h.Mounts, m), append(names, m.Source), true
	}
	for i := range h.Mounts {
		m := &h.Mounts[i]
		if m.Type == spec.MountVolume && m.Source == "" {
			m.Source = randomVolumeName()
			names = append(names, m.Source)
		}
		mounted[path.Clean(m.Target)] = true
	}
	for _, target := range slices.Sorted(maps.Keys(req.Volumes)) {
		if t := path.Clean(target); !mounted[t] {
			add(t)
		}
	}
	for _, target := range slices.Sorted(maps.Keys(imageVolumes)) {
		switch t := path.Clean(target); {
		case mounted[t]:
		case !spec.MountableTarget(t):
			warnings = append(warnings, fmt.Sprintf("the image's VOLUME %q cannot be mounted: no volume there", target))
		default:
			add(t)
		}
	}
	return names, warnings
}

// anonymousLabel marks an anonymous volume, as Docker's label does
// (docker volume ls --filter label=com.docker.volume.anonymous).
const anonymousLabel = "com.docker.volume.anonymous"

// createAnonymousVolumes creates the anonymous volumes names of a new
// container, each with anonymousLabel; after a failure none is left.
func createAnonymousVolumes(names []string) error {
	for i, n := range names {
		if _, err := volume.Default().Create(n, volume.Options{Labels: map[string]string{anonymousLabel: ""}}); err != nil {
			removeVolumes(names[:i])
			return err
		}
	}
	return nil
}

// removeVolumes removes the volumes names, which nothing uses (errors
// are ignored: docker volume prune takes what is left).
func removeVolumes(names []string) {
	for _, n := range names {
		volume.Default().Remove(n)
	}
}

// dropAnonymousVolumes removes the anonymous volumes its create made
// for container rec (rec.AnonymousVolumes; not a volume it mounts by
// name, anonymous or not, as Docker's) that no other workload uses,
// once it is removed or about to be (docker rm -v; the end of an
// AutoRemove container's run); a failure is logged, and the volume
// stays for docker volume prune.
func (s *Server) dropAnonymousVolumes(ctx context.Context, rec *containerRecord) {
	if len(rec.AnonymousVolumes) == 0 {
		return
	}
	users, err := s.VolumeUsers(ctx)
	if err != nil {
		fmt.Fprintf(s.opt.Log, "cove api: remove the anonymous volumes of container %s: %v\n", rec.Name, err)
		return
	}
	for _, v := range rec.AnonymousVolumes {
		if slices.ContainsFunc(users[v], func(u string) bool { return u != rec.Name }) {
			continue
		}
		if err := volume.Default().Remove(v); err != nil && !errors.Is(err, volume.ErrNotFound) {
			fmt.Fprintf(s.opt.Log, "cove api: remove the anonymous volumes of container %s: %v\n", rec.Name, err)
		}
	}
}
