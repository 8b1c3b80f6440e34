package api

import (
	"cmp"
	"fmt"
	"maps"
	"strings"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// withImageConfig completes d, the inspect of image container c, with
// its image's configuration as Docker shows a container's Config: the
// image's entrypoint and command unless c replaces them (Docker's rules,
// launch.ImageConfig.Commands, as the launcher runs them), its
// environment under c's, its working directory and user unless c sets
// them, its exposed ports with c's published ones, its volumes, and its
// labels under c's (and cove's own).
func withImageConfig(d *dockerInspect, c *spec.Container, rec image.ImageRecord) {
	img, cfg := rec.RunConfig(), rec.Config.Config
	entry, cmd := img.Commands(c.Entrypoint, c.Command)
	d.Config.Entrypoint, d.Config.Cmd = entry, cmd
	if argv := append(append([]string{}, entry...), cmd...); len(argv) > 0 {
		d.Path, d.Args = argv[0], argv[1:]
	}
	d.Config.Env = launch.MergeEnv(img.Env, d.Config.Env)
	d.Config.WorkingDir = cmp.Or(c.Workdir, img.WorkingDir)
	if !c.User.Set {
		d.Config.User = img.User
	}
	d.Config.ExposedPorts = exposedPorts(cfg.ExposedPorts, specPorts(c.Ports))
	d.Config.Volumes = maps.Clone(cfg.Volumes)
	labels := maps.Clone(cfg.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, d.Config.Labels)
	d.Config.Labels = labels
}

// exposedPorts are an image's exposed ports with the container ports of
// published, as Docker keys them: "PORT/PROTO" (an image's bare "80" is
// "80/tcp"); nil when there are none.
func exposedPorts(image map[string]struct{}, published []Port) map[string]struct{} {
	var out map[string]struct{}
	add := func(key string) {
		if out == nil {
			out = map[string]struct{}{}
		}
		out[key] = struct{}{}
	}
	for k := range image {
		if !strings.Contains(k, "/") {
			k += "/tcp"
		}
		add(k)
	}
	for _, p := range published {
		add(fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto))
	}
	return out
}

// containerImage is the image record of image container name (spec
// container c): the one it last started on, else the one its spec names;
// false when the store has neither.
func (s *Server) containerImage(name string, c *spec.Container) (image.ImageRecord, bool) {
	st, err := s.opt.Images()
	if err != nil {
		return image.ImageRecord{}, false
	}
	rec, err := st.Lookup(cmp.Or(stored.RunningDigest(name), c.Image))
	return rec, err == nil
}
