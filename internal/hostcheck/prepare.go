package hostcheck

import (
	"fmt"
	"os"

	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/spec"
)

// Prepare checks a spec against this host before anything starts: for a
// VM what PrepareVM checks and pins; for a container, that the rootfs is
// a directory (with pull = "never": the image is in the store; an
// image's STOPSIGNAL is pinned, PinStopSignal, unless pull = "always")
// and that every bind mount's source exists; for both, that the network
// they join exists and their ip and ports are free there
// (checkNetwork). Errors name the spec key and its position.
func Prepare(s *spec.Spec) error {
	if s.Kind == spec.KindVM {
		return orNil(append(prepareVM(s), checkNetwork(s)...))
	}
	if s.Container == nil {
		return nil
	}
	var errs spec.Errors
	if c := s.Container; c.Image != "" {
		if c.Pull == spec.PullNever || s.Service.StopSignal == "" { // one store lookup for both
			rec, err := lookupImage(c.Image)
			errs = append(errs, checkImage(s, err)...)
			if pinsStopSignal(c) {
				pinStopSignal(s, rec, err)
			}
		}
	} else if st, err := os.Stat(c.Rootfs); err != nil || !st.IsDir() {
		errs = append(errs, s.KeyError("container.rootfs", fmt.Sprintf("%s is not a directory; it must hold the container's files (e.g. /bin/sh)", c.Rootfs)))
	}
	errs = append(errs, checkNetwork(s)...)
	for i, m := range s.Container.Mounts {
		if m.Type != spec.MountBind {
			continue
		}
		if _, err := os.Stat(m.Source); err != nil {
			errs = append(errs, s.KeyError(fmt.Sprintf("container.mount[%d].source", i+1), fmt.Sprintf("%s does not exist; create it or fix the path", m.Source)))
		}
	}
	return orNil(errs)
}

// orNil is errs as an error: nil when there are none (a nil spec.Errors
// in an error interface is not nil).
func orNil(errs spec.Errors) error {
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// lookupImage finds image ref in the store.
func lookupImage(ref string) (stored.ImageRecord, error) {
	st, err := stored.OpenDefault() // a reader: it creates no store
	if err != nil {
		return stored.ImageRecord{}, err
	}
	return st.Lookup(ref)
}

// checkImage checks that an image container with pull = "never" has its
// image in the store (with another policy a pull brings it); lookupErr
// is lookupImage's error.
func checkImage(s *spec.Spec, lookupErr error) spec.Errors {
	if s.Container.Pull != spec.PullNever || lookupErr == nil {
		return nil
	}
	return spec.Errors{s.KeyError("container.image", fmt.Sprintf("%v; with pull = \"never\" the image must be in the store (cove pull %s)", lookupErr, s.Container.Image))}
}

// PinStopSignal gives an image container whose spec sets no stop_signal
// its image's STOPSIGNAL, as Docker does, when the image is in the store
// and its STOPSIGNAL is one ParseSignal reads (the unit's KillSignal= is
// written before the launcher ever sees the image, so the spec carries
// it). Without the image (pulled at the first start) the unit keeps
// SIGTERM until the spec is applied or run again.
func PinStopSignal(s *spec.Spec) {
	if s.Service.StopSignal != "" {
		return
	}
	rec, err := lookupImage(s.Container.Image)
	pinStopSignal(s, rec, err)
}

// PinStopSignalOf is PinStopSignal with image rec, the spec's, in hand
// (cove run's, after it pulled the image Prepare could not find).
func PinStopSignalOf(s *spec.Spec, rec stored.ImageRecord) { pinStopSignal(s, rec, nil) }

// pinStopSignal is PinStopSignal with the image already looked up.
func pinStopSignal(s *spec.Spec, rec stored.ImageRecord, lookupErr error) {
	if s.Service.StopSignal != "" || lookupErr != nil {
		return
	}
	if sig := rec.Config.Config.StopSignal; sig != "" {
		if _, err := spec.ParseSignal(sig); err == nil {
			s.Service.StopSignal = sig
		}
	}
}

// pinsStopSignal says whether the store's copy of container c's image
// gives its STOPSIGNAL: not with pull = "always", whose image is pulled
// anew before each start (cove run pins the pulled one's:
// PinStopSignalOf).
func pinsStopSignal(c *spec.Container) bool { return c.Pull != spec.PullAlways }

// PinAsPrepared pins what Prepare pins of a spec, without its checks: an
// image container's STOPSIGNAL (pinsStopSignal, PinStopSignal). A spec
// read back (an applied copy) then compares with a Prepared one.
func PinAsPrepared(s *spec.Spec) {
	if c := s.Container; c != nil && c.Image != "" && pinsStopSignal(c) {
		PinStopSignal(s)
	}
}

// ImagesForUnits looks s's container image up once for the unit compiler
// (the generator, cove render, apply's live changes): it pins the image's
// STOPSIGNAL where the spec sets none (pinsStopSignal, PinStopSignal) and
// returns, for units.NeedsPullUnit, whether an image is in the store.
func ImagesForUnits(s *spec.Spec) func(ref string) bool {
	c := s.Container
	if c == nil || c.Image == "" || !pinsStopSignal(c) {
		return ImagePresent
	}
	rec, err := lookupImage(c.Image)
	pinStopSignal(s, rec, err)
	return func(ref string) bool {
		if ref == c.Image {
			return err == nil
		}
		return ImagePresent(ref)
	}
}

// ImagePresent reports whether image ref is in the store.
func ImagePresent(ref string) bool {
	_, err := lookupImage(ref)
	return err == nil
}
