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
// mounts the same volume (created at its first use, with what the image
// has there). It returns the names, which the record keeps (docker rm -v
// and --rm remove those volumes: dropAnonymousVolumes), and which the
// create makes (createAnonymousVolumes). Targets are checked with the
// other mounts (containerSpec).
func anonymousVolumes(req *dockerCreate, imageVolumes map[string]struct{}) []string {
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
	var names []string
	for i := range h.Mounts {
		m := &h.Mounts[i]
		if m.Type == spec.MountVolume && m.Source == "" {
			m.Source = randomVolumeName()
			names = append(names, m.Source)
		}
		mounted[path.Clean(m.Target)] = true
	}
	wanted := maps.Clone(req.Volumes)
	if wanted == nil {
		wanted = map[string]struct{}{}
	}
	maps.Copy(wanted, imageVolumes)
	for _, target := range slices.Sorted(maps.Keys(wanted)) {
		if mounted[path.Clean(target)] {
			continue
		}
		m := dockerMountCreate{Type: spec.MountVolume, Source: randomVolumeName(), Target: target}
		h.Mounts = append(h.Mounts, m)
		mounted[path.Clean(target)] = true
		names = append(names, m.Source)
	}
	return names
}

// anonymousLabel marks an anonymous volume, as Docker's label does:
// docker rm -v removes the volumes with it that a removed container
// mounted (and compose's recreated container mounts its predecessor's by
// name, so they go with it too).
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

// dropAnonymousVolumes removes the anonymous volumes (anonymousLabel)
// that removed container rec mounted and no other workload uses (docker
// rm -v; the end of an AutoRemove container's run); a failure is logged,
// and the volume stays for docker volume prune.
func (s *Server) dropAnonymousVolumes(ctx context.Context, rec *containerRecord) {
	sp, err := rec.spec()
	if err != nil || sp.Container == nil {
		return
	}
	var mine []string
	for _, m := range sp.Container.Mounts {
		if v, err := volume.Default().Get(m.Source); m.Type == spec.MountVolume && err == nil && hasLabel(v.Labels, anonymousLabel) {
			mine = append(mine, m.Source)
		}
	}
	if len(mine) == 0 {
		return
	}
	users, err := s.VolumeUsers(ctx)
	if err != nil {
		fmt.Fprintf(s.opt.Log, "cove api: remove the anonymous volumes of container %s: %v\n", rec.Name, err)
		return
	}
	for _, v := range mine {
		if slices.ContainsFunc(users[v], func(u string) bool { return u != rec.Name }) {
			continue
		}
		if err := volume.Default().Remove(v); err != nil && !errors.Is(err, volume.ErrNotFound) {
			fmt.Fprintf(s.opt.Log, "cove api: remove the anonymous volumes of container %s: %v\n", rec.Name, err)
		}
	}
}

// hasLabel reports whether ls has key.
func hasLabel(ls map[string]string, key string) bool {
	_, ok := ls[key]
	return ok
}
