package api

import (
	"cmp"
	"fmt"
	"maps"

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
	d.Config.ExposedPorts = maps.Clone(cfg.ExposedPorts)
	for _, p := range specPorts(c.Ports) {
		if d.Config.ExposedPorts == nil {
			d.Config.ExposedPorts = map[string]struct{}{}
		}
		d.Config.ExposedPorts[fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto)] = struct{}{}
	}
	d.Config.Volumes = maps.Clone(cfg.Volumes)
	labels := maps.Clone(cfg.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, d.Config.Labels)
	d.Config.Labels = labels
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
