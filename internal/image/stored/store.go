package stored

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Store is an image store rooted at a directory. Its methods are safe for
// concurrent use, by goroutines and by processes sharing the root.
type Store struct {
	root string
	reg  *Registries
}

// Open returns the store at root for reading: it creates nothing, and a
// store whose directories do not exist yet holds no image (the generator
// looks images up at boot, when the file system the store is on may not
// be mounted yet; the stop stage reads a record). A writer calls Create
// first. reg supplies the registry settings for pulls and the search
// registries for short names; nil means none (every name must carry its
// registry, TLS is verified with the system's roots, no plain HTTP).
func Open(root string, reg *Registries) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("open image store %q: not an absolute path", root)
	}
	if reg == nil {
		reg = &Registries{}
	}
	return &Store{root: filepath.Clean(root), reg: reg}, nil
}

// Create makes the store's directories (mode 0700) where they are
// missing, as a pull, an import or a tag needs them.
func (s *Store) Create() error {
	for _, d := range []string{s.root, s.BlobsDir(), s.LayersDir(), s.ImagesDir(), s.TmpDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create image store %s: %w", s.root, err)
		}
	}
	return nil
}

// Registry is the settings of the registry at host (Registries.Settings).
func (s *Store) Registry(host string) Registry { return s.reg.Settings(host) }

// Root is the store's root directory.
func (s *Store) Root() string { return s.root }

func (s *Store) BlobsDir() string  { return filepath.Join(s.root, "blobs", "sha256") }
func (s *Store) LayersDir() string { return filepath.Join(s.root, "layers", "sha256") }
func (s *Store) ImagesDir() string { return filepath.Join(s.root, "images", "sha256") }
func (s *Store) TmpDir() string    { return filepath.Join(s.root, "tmp") }
func (s *Store) NamesPath() string { return filepath.Join(s.root, "names.json") }
func (s *Store) LockPath() string  { return filepath.Join(s.root, ".lock") }

// BlobPath is where the manifest, index or config h is kept.
func (s *Store) BlobPath(h v1.Hash) string { return filepath.Join(s.BlobsDir(), h.Hex) }

// OpaqueXattr, set to "y" on a directory of an unpacked layer, hides the
// entries the layers below have there: overlayfs's form of an OCI opaque
// whiteout (package layer writes it, the store's readers honour it).
const OpaqueXattr = "trusted.overlay.opaque"

// IsWhiteout reports whether an entry of an unpacked layer, of file mode
// and device number rdev (stat's st_mode and st_rdev), is a whiteout: a
// character device 0:0 hiding the entry of its name below, overlayfs's
// form of an OCI whiteout.
func IsWhiteout(mode uint32, rdev uint64) bool { return mode&unix.S_IFMT == unix.S_IFCHR && rdev == 0 }

// LayerDir is the unpacked layer whose uncompressed digest is diffID.
func (s *Store) LayerDir(diffID v1.Hash) string { return filepath.Join(s.LayersDir(), diffID.Hex) }

// RecordPath is the record of the image whose manifest digest is h.
func (s *Store) RecordPath(h v1.Hash) string { return filepath.Join(s.ImagesDir(), h.Hex+".json") }

// Exists reports whether path exists; errors other than "not there" are
// returned.
func Exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if err == nil {
		return true, nil
	}
	if os.IsNotExist(err) {
		return false, nil
	}
	return false, err
}
