package hostcheck

import (
	"fmt"
	"os"

	"github.com/cove-project/cove/spec"
)

// Prepare checks a spec against this host before anything starts: for a
// VM what PrepareVM checks and pins; for a container, that the rootfs is a
// directory and that every bind mount's source exists. Errors name the
// spec key and its position.
func Prepare(s *spec.Spec) error {
	if s.Kind == spec.KindVM {
		return PrepareVM(s)
	}
	if s.Container == nil {
		return nil
	}
	var errs spec.Errors
	if st, err := os.Stat(s.Container.Rootfs); err != nil || !st.IsDir() {
		errs = append(errs, s.KeyError("container.rootfs", fmt.Sprintf("%s is not a directory; it must hold the container's files (e.g. /bin/sh)", s.Container.Rootfs)))
	}
	for i, m := range s.Container.Mounts {
		if m.Type != spec.MountBind {
			continue
		}
		if _, err := os.Stat(m.Source); err != nil {
			errs = append(errs, s.KeyError(fmt.Sprintf("container.mount[%d].source", i+1), fmt.Sprintf("%s does not exist; create it or fix the path", m.Source)))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
