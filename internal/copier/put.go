package copier

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"

	"github.com/cove-project/cove/internal/image/layer"
	"golang.org/x/sys/unix"
)

// PutOptions are Docker's options of a copy into a container.
type PutOptions struct {
	// NoOverwriteDirNonDir refuses an entry that would replace a
	// directory with a non-directory or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID gives every entry the user and group the container's
	// configuration names (Docker's copyUIDGID: the container's user),
	// when it names one, rather than the container IDs its header names.
	CopyUIDGID bool
}

// Put extracts the uncompressed tar stream r into the directory at path
// p of the container (a symlink at its end followed), as Docker's PUT
// /containers/ID/archive does, with package layer's Extract: an entry
// replaces what is there (a directory over a directory merges), its
// owner is mapped into the container's user namespace (an ID it does not
// map is refused), and devices are left out in a container with a user
// namespace of its own. A path that is not there wraps ErrNotFound, one
// that is no directory ErrNotDir, one under Unmounted ErrMounted, a
// directory on a read-only mount ErrReadOnly, an entry refused (one
// under Unmounted too) layer.ErrRefused. What was extracted before an
// error stays, as in Docker.
func (r Root) Put(p string, body io.Reader, o PutOptions) error {
	abs := absPath(p)
	resolved, mounts, err := r.resolveMounted(abs)
	if err != nil {
		return err
	}
	dir, err := r.openDir(abs)
	if err != nil {
		return err
	}
	defer dir.Close()
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(dir.Fd()), &fs); err != nil {
		return fmt.Errorf("statfs %s: %w", p, err)
	}
	if fs.Flags&unix.ST_RDONLY != 0 {
		return fmt.Errorf("%s: %w", p, ErrReadOnly)
	}
	owner, err := r.owner(o.CopyUIDGID)
	if err != nil {
		return err
	}
	err = r.asContainerRoot(func() error {
		_, err := layer.Extract(dir, body, layer.ExtractOptions{
			NoOverwriteDirNonDir: o.NoOverwriteDirNonDir,
			SkipDevices:          !r.Maps.Host(),
			Owner:                owner,
			Check:                func(rel string) error { return checkMounted(mounts, path.Join(resolved, rel)) },
		})
		return err
	})
	if errors.Is(err, unix.EROFS) {
		err = fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}

// asContainerRoot runs f, for a container with a user namespace of its
// own, on a thread whose file system user and group are the host IDs of
// the container's root, with its file system capabilities kept: a file
// made through an idmapped mount (a volume of such a container) is its
// maker's, which must be an ID the mount maps. The thread, its
// credentials changed, ends with f.
func (r Root) asContainerRoot(f func() error) error {
	if r.Maps.Host() {
		return f()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		defer func() {
			if v := recover(); v != nil { // as net/http would recover it in the request's goroutine
				errc <- fmt.Errorf("extract as the container's root: panic: %v", v)
			}
		}()
		if err := setFSIDs(int(r.Maps.UID.Base), int(r.Maps.GID.Base)); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// setFSIDs makes uid and gid the calling thread's file system user and
// group, and raises again the capabilities a file system user other than
// root loses (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, ...).
func setFSIDs(uid, gid int) error {
	_ = unix.Setfsgid(gid) // setfs[ug]id report what they did only by what they return: checked below
	_ = unix.Setfsuid(uid)
	if now, _ := unix.SetfsuidRetUid(uid); now != uid { // setfsuid reports no error but in what it returns
		return fmt.Errorf("become the container's root (host uid %d): setfsuid: the thread's is %d", uid, now)
	}
	if now, _ := unix.SetfsgidRetGid(gid); now != gid {
		return fmt.Errorf("become the container's root (host gid %d): setfsgid: the thread's is %d", gid, now)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: capget: %w", err)
	}
	data[0].Effective, data[1].Effective = data[0].Permitted, data[1].Permitted
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("keep the file system capabilities: capset: %w", err)
	}
	return nil
}

// openDir opens the directory at the container path abs.
func (r Root) openDir(abs string) (*os.File, error) {
	fd, err := r.openIn(abs, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOTDIR) {
		if fd, err := r.openIn(strings.TrimSuffix(abs, "/"), unix.O_PATH); err == nil { // it is there: no directory
			unix.Close(fd)
			return nil, fmt.Errorf("%s: %w", abs, ErrNotDir)
		}
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), strings.TrimSuffix(abs, "/")), nil
}

// owner gives an extracted entry its owner: with payload, the user the
// container's configuration names (r.Owner), if any; else the container
// IDs its header names, on the host.
func (r Root) owner(payload bool) (func(uid, gid int) (int, int, error), error) {
	if payload {
		uid, gid, set, err := r.Owner()
		if err != nil || set {
			return func(int, int) (int, int, error) { return uid, gid, nil }, err
		}
	}
	return func(uid, gid int) (int, int, error) {
		hu, hg, err := r.Maps.ToHost(uint32(uid), uint32(gid))
		return int(hu), int(hg), err
	}, nil
}
