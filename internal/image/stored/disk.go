package stored

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"golang.org/x/sys/unix"
)

// DiskDir is the directory of an image that holds its disk image (the
// containerDisk convention KubeVirt uses): one qcow2 or raw file.
const DiskDir = "disk"

// CompleteDisk returns d, a VM disk whose base is "oci:REF", with the base
// resolved to the disk file of the image in the store: at the overlay's
// first start the image REF names now, whose digest it records beside
// the overlay (launch.OverlayImageSuffix) before the overlay exists;
// later, the image that record names. The image must be in the store
// (pulling is the pull unit's or cove's job). Other disks are returned
// as they are.
func (s *Store) CompleteDisk(d launch.VMDisk) (launch.VMDisk, error) {
	ref, ok := spec.OCIImage(d.Base)
	if !ok {
		return d, nil
	}
	record := d.Path + launch.OverlayImageSuffix
	rec, err := s.overlayImage(ref, d.Path, record)
	if err != nil {
		return d, err
	}
	if d.Base, err = s.DiskFile(rec); err != nil {
		return d, fmt.Errorf("disk image %s: %w", ref, err)
	}
	if err := os.MkdirAll(filepath.Dir(record), 0o700); err != nil {
		return d, fmt.Errorf("record the image of %s: %w", d.Path, err)
	}
	if err := WriteFileAtomic(filepath.Dir(record), record, []byte(rec.Digest.String()+"\n")); err != nil {
		return d, fmt.Errorf("record the image of %s: %w", d.Path, err)
	}
	return d, nil
}

// overlayImage finds the image an overlay at path was made from (by the
// digest in record), or for a new overlay the one ref names.
func (s *Store) overlayImage(ref, path, record string) (ImageRecord, error) {
	b, err := os.ReadFile(record)
	switch {
	case err == nil:
		if _, statErr := os.Stat(path); statErr == nil {
			digest := strings.TrimSpace(string(b))
			rec, err := s.Lookup(digest)
			if err != nil {
				return rec, fmt.Errorf("overlay %s was made from image %s (%s), which is no longer in the store: %w", path, ref, digest, err)
			}
			return rec, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return ImageRecord{}, err
	}
	rec, err := s.Lookup(ref)
	if err != nil {
		return rec, fmt.Errorf("image %s: %w (pull it first: cove pull %s)", ref, err, ref)
	}
	return rec, nil
}

// DiskFile returns the disk image file of image rec: the one entry of
// its /disk as the image's layers merge it (top first, as overlayfs does:
// a whiteout, a character device 0:0, hides a lower entry; an opaque
// directory, xattr trusted.overlay.opaque "y", hides every lower one),
// which must be a regular file. A /disk that is not a directory (a
// symbolic link included: the layers are read on the host, where a link
// would lead out of the store), an image with no disk file or with more
// than one is refused.
func (s *Store) DiskFile(rec ImageRecord) (string, error) {
	dirs, err := s.LayerDirs(rec)
	if err != nil {
		return "", err
	}
	seen := map[string]bool{} // names a higher layer has (or hid)
	var files []string
	for _, layer := range dirs {
		dir := filepath.Join(layer, DiskDir)
		st, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("image %s: %w", rec.Digest, err)
		}
		if whiteout(st) {
			break // /disk deleted: nothing lower counts
		}
		if !st.IsDir() {
			return "", fmt.Errorf("image %s: /%s in layer %s is a %s, not a directory", rec.Digest, DiskDir, filepath.Base(layer), st.Mode().Type())
		}
		more, err := diskEntries(dir, seen)
		if err != nil {
			return "", fmt.Errorf("image %s: %w", rec.Digest, err)
		}
		files = append(files, more...)
		if opaque(dir) {
			break
		}
	}
	if len(files) != 1 {
		return "", fmt.Errorf("image %s holds %d files under /%s; a VM disk's image holds one qcow2 or raw file there (%s)", rec.Digest, len(files), DiskDir, strings.Join(files, ", "))
	}
	return files[0], nil
}

// diskEntries returns the regular files of one layer's /disk (dir) that
// no higher layer has or hid, and adds its names to seen; any other kind
// of entry is refused.
func diskEntries(dir string, seen map[string]bool) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range es {
		if seen[e.Name()] {
			continue
		}
		seen[e.Name()] = true
		info, err := e.Info()
		switch {
		case err != nil:
			return nil, err
		case whiteout(info):
		case !info.Mode().IsRegular():
			return nil, fmt.Errorf("/%s/%s is a %s, not a regular file", DiskDir, e.Name(), info.Mode().Type())
		default:
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	return files, nil
}

// whiteout reports whether the entry st describes is a whiteout
// (IsWhiteout).
func whiteout(st fs.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && IsWhiteout(sys.Mode, sys.Rdev)
}

// opaque reports whether directory dir hides the lower layers' entries
// (OpaqueXattr).
func opaque(dir string) bool {
	buf := make([]byte, 1)
	n, err := unix.Lgetxattr(dir, OpaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// OverlayImages maps each VM with a state directory to the digests of the
// images its overlays were made from (see CompleteDisk): they are in use
// until cove rm removes the overlays.
func OverlayImages() map[string][]string {
	files, _ := filepath.Glob(filepath.Join(launch.VMStateDir, "*", "*"+launch.OverlayImageSuffix)) // a bad pattern is impossible
	out := map[string][]string{}
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			vm := filepath.Base(filepath.Dir(f))
			out[vm] = append(out[vm], strings.TrimSpace(string(b)))
		}
	}
	return out
}
