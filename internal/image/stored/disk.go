package stored

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
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
		return d, err
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
// /disk in the topmost layer that has one, which must be a regular file
// (not a link). An image with none, or with more than one, is refused.
func (s *Store) DiskFile(rec ImageRecord) (string, error) {
	dirs, err := s.LayerDirs(rec)
	if err != nil {
		return "", err
	}
	for _, layer := range dirs {
		es, err := os.ReadDir(filepath.Join(layer, DiskDir))
		if errors.Is(err, fs.ErrNotExist) || err == nil && len(es) == 0 {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("image %s: %w", rec.Digest, err)
		}
		if len(es) != 1 || !es[0].Type().IsRegular() {
			return "", fmt.Errorf("image %s: /%s must hold exactly one regular file, a qcow2 or raw disk image; its layer %s has %d entries", rec.Digest, DiskDir, filepath.Base(layer), len(es))
		}
		return filepath.Join(layer, DiskDir, es[0].Name()), nil
	}
	return "", fmt.Errorf("image %s holds no disk image: a VM disk's oci: image has one qcow2 or raw file under /%s", rec.Digest, DiskDir)
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
