package stored

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/internal/hostconf"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// Complete returns c, an image container's launcher configuration as its
// unit gives it, completed from the store: the image's layers (top first)
// and digest, and what its configuration supplies (launch.WithImage). The
// image must be in the store: pulling is the pull unit's or cove's job,
// never the launcher's. With c.Image.Digest already set (the launcher
// recorded it), that exact image is used even if the name has moved.
func (s *Store) Complete(c launch.Config) (launch.Config, error) {
	ref := c.Image.Ref
	if c.Image.Digest != "" {
		ref = c.Image.Digest
	}
	rec, err := s.Lookup(ref)
	if err != nil {
		return c, fmt.Errorf("image %s: %w (pull it first: cove pull %s)", c.Image.Ref, err, c.Image.Ref)
	}
	dirs, err := s.LayerDirs(rec)
	if err != nil {
		return c, err
	}
	return c.WithImage(rec.RunConfig(), rec.Digest.String(), dirs)
}

// RunConfig is what of rec's configuration a container of it runs by:
// entrypoint, command, environment, working directory, user.
func (rec ImageRecord) RunConfig() launch.ImageConfig {
	cfg := rec.Config.Config
	return launch.ImageConfig{Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd, Env: cfg.Env, WorkingDir: cfg.WorkingDir, User: cfg.User}
}

// OpenDefault opens the host's store, at the root cove's host settings
// give (hostconf.ImageStore: [images] store; launch.ImagesDir when they
// give none),
// with the registries of DefaultRegistriesFile (none when the file does
// not exist).
func OpenDefault() (*Store, error) {
	root, err := hostconf.ImageStore(hostconf.Path)
	if err != nil {
		return nil, fmt.Errorf("open the image store: %w", err)
	}
	reg, err := LoadRegistries(DefaultRegistriesFile)
	if err != nil {
		return nil, err
	}
	return Open(root, reg)
}

// PrepareState creates an image container's state directory (mode 0700:
// its upper layer holds the container's files with their owners) and
// Records in it the digest of the image the container runs (see
// RunningDigest): cove exec, health probes and the image users of rmi and
// prune go by it, not by the name, which a later pull may move. The record
// is durable, so that a crash cannot let a prune take the image of a
// container that starts again after it, unless throwaway: the state of a
// removed run goes at its stop, and a crash ends the run for good (what
// it leaves, cove rm finds by the directory: HasContainerState).
func PrepareState(dir string, digest string, throwaway bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("container state: %w", err)
	}
	write := WriteFileAtomic
	if throwaway {
		write = ReplaceFile
	}
	if err := write(dir, filepath.Join(dir, digestFile), []byte(digest+"\n")); err != nil {
		return fmt.Errorf("container state: %w", err)
	}
	return nil
}

// digestFile is the name of the running image's digest in a container's
// state directory.
const digestFile = "image-digest"

// RunningDigest returns the digest of the image container name was last
// started on, or "" if it has no state.
func RunningDigest(name string) string {
	if spec.ValidRef(name) != nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(launch.ContainerDir(name), digestFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// HasVMState reports whether VM name has a state directory (its overlays,
// NVRAM, TPM state: launch.VMState), which only cove rm removes.
func HasVMState(name string) bool { return hasState(name, launch.VMState) }

// HasContainerState reports whether workload name has an image
// container's state directory (launch.ContainerDir), with or without the
// record of its image's digest: a removed run's is not synced, and a crash
// during the run may leave the directory with the record empty or gone.
func HasContainerState(name string) bool { return hasState(name, launch.ContainerDir) }

// hasState reports whether workload name has the state directory dir(name).
func hasState(name string, dir func(string) string) bool {
	if spec.ValidRef(name) != nil {
		return false
	}
	_, err := os.Stat(dir(name))
	return err == nil
}

// RemoveState deletes the state directory of workload name, if it has
// one: a container's writable layer, a VM's overlays, NVRAM and TPM state
// (launch.VMState).
func RemoveState(name string) error {
	if err := spec.ValidRef(name); err != nil {
		return fmt.Errorf("remove container state: %w", err)
	}
	if err := errors.Join(os.RemoveAll(launch.ContainerDir(name)), os.RemoveAll(launch.VMState(name))); err != nil {
		return fmt.Errorf("remove workload state: %w", err)
	}
	return nil
}
