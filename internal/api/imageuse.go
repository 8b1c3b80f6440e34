package api

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// ImageUse is one workload's use of an image: the reference its declared
// spec, or its loaded unit's launcher, names the image by.
type ImageUse struct {
	Workload string
	Ref      string
}

// ImageUser is a Backend that can tell which workloads use images, as
// cove rmi does. Local is one. Docker's image removal and prune need it;
// with another Backend they fail.
type ImageUser interface {
	// ImageUses lists every workload's image reference (a workload may
	// appear twice: declared and loaded).
	ImageUses(ctx context.Context) ([]ImageUse, error)
}

var _ ImageUser = (*Local)(nil)

// ImageUses lists the images the declared specs and the loaded units
// (their launchers' --image, a VM's oci: disks) name, and those VMs'
// overlays were made from.
func (l *Local) ImageUses(ctx context.Context) ([]ImageUse, error) {
	var uses []ImageUse
	err := l.eachWorkload(ctx, func(sp *spec.Spec) {
		for _, im := range sp.Images() {
			uses = append(uses, ImageUse{Workload: sp.Name, Ref: im.Ref})
		}
	}, func(name string, lc launch.Config) {
		if lc.Image.Ref == "" {
			return
		}
		uses = append(uses, ImageUse{Workload: name, Ref: lc.Image.Ref})
		if d := stored.RunningDigest(name); d != "" { // what it runs, if its name has moved since
			uses = append(uses, ImageUse{Workload: name, Ref: d})
		}
	})
	if err != nil {
		return nil, err
	}
	vms, err := l.vmImageUses(ctx)
	return append(uses, vms...), err
}

// vmImageUses lists the images of loaded VMs' "oci:" disks (a cove run
// -d VM may not have started yet) and those VMs' overlays were made from
// (kept until cove rm, the VM's unit loaded or not).
func (l *Local) vmImageUses(ctx context.Context) ([]ImageUse, error) {
	c, err := l.connect(ctx)
	if err != nil {
		return nil, err
	}
	loaded, err := c.VMConfigs(ctx, "")
	if err != nil {
		return nil, err
	}
	var uses []ImageUse
	for vm, vc := range loaded {
		for _, im := range hostcheck.RunningVM(vm, vc).Images() {
			uses = append(uses, ImageUse{Workload: vm, Ref: im.Ref})
		}
	}
	for vm, digests := range stored.OverlayImages() {
		for _, d := range digests {
			uses = append(uses, ImageUse{Workload: vm, Ref: d})
		}
	}
	return uses, nil
}

// eachWorkload calls onDeclared with every declared spec that loads (those
// that do not cannot be started either), then onLoaded with the launcher
// configuration of every loaded unit, running or not (a unit gone
// meanwhile is skipped).
func (l *Local) eachWorkload(ctx context.Context, onDeclared func(*spec.Spec), onLoaded func(name string, lc launch.Config)) error {
	if err := l.paths.EachSpec(onDeclared); err != nil {
		return err
	}
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	ws, err := c.List(ctx)
	if err != nil {
		return err
	}
	for _, w := range ws {
		t, err := c.Probe(ctx, w.Name)
		if err != nil {
			continue // gone meanwhile
		}
		if lc, err := launch.ParseArgs(t.Launch); err == nil {
			onLoaded(w.Name, lc)
		}
	}
	return nil
}

// imageUsers maps the manifest digests of the images in st to the
// workloads that use them: whose reference st resolves to that image.
func (s *Server) imageUsers(ctx context.Context, st *image.Store) (map[string][]string, error) {
	iu, ok := s.backend.(ImageUser)
	if !ok {
		return nil, errors.New("find the workloads that use images: the API's backend cannot tell")
	}
	uses, err := iu.ImageUses(ctx)
	if err != nil {
		return nil, fmt.Errorf("find the workloads that use images: %w", err)
	}
	for name, rec := range s.records.list() { // containers created through Docker's API, started or not
		uses = append(uses, ImageUse{Workload: name, Ref: rec.Image})
	}
	out := map[string][]string{}
	for _, u := range uses {
		rec, err := st.Lookup(u.Ref)
		if err != nil {
			continue // not in the store: it uses no image there
		}
		d := rec.Digest.String()
		if !slices.Contains(out[d], u.Workload) {
			out[d] = append(out[d], u.Workload)
		}
	}
	return out, nil
}
