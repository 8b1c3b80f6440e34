package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/image/layer"
)

// maxAliasHops bounds the chain of symlink members followed to a file.
const maxAliasHops = 8

// dirSource serves an import's blobs from the directory dir: an OCI
// image layout's blobs/sha256/HEX, or the files a docker-archive's
// manifest.json names (paths). Every file is opened beneath the
// directory (openat2 RESOLVE_BENEATH: no absolute symlink, no ".." out of
// it) and must be a regular file. alias are an unpacked archive's
// symlink members (member → the member it points to), which are never
// made on disk.
type dirSource struct {
	dir   string
	alias map[string]string
	paths map[v1.Hash]string
}

// newDirSource is the source of the directory dir.
func newDirSource(dir string, alias map[string]string) *dirSource {
	return &dirSource{dir: dir, alias: alias, paths: map[v1.Hash]string{}}
}

// blob implements blobSource: the file for h, which must be size bytes.
func (d *dirSource) blob(_ context.Context, h v1.Hash, size int64) (io.ReadCloser, error) {
	if err := checkDigest(h); err != nil {
		return nil, err
	}
	p, ok := d.paths[h]
	if !ok {
		p = "blobs/sha256/" + h.Hex
	}
	f, n, err := d.open(p)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", h, err)
	}
	if n != size {
		f.Close()
		return nil, fmt.Errorf("blob %s: %s has %d bytes, the manifest says %d: refused", h, p, n, size)
	}
	return f, nil
}

// has tells whether the member p is there (as a file).
func (d *dirSource) has(p string) bool {
	f, _, err := d.open(p)
	if err == nil {
		f.Close()
	}
	return err == nil
}

// open opens the regular file p (a slash-separated path inside the
// directory, aliases followed) and returns its size.
func (d *dirSource) open(p string) (*os.File, int64, error) {
	rel, err := d.resolve(p)
	if err != nil {
		return nil, 0, err
	}
	root, err := os.OpenFile(d.dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, err
	}
	defer root.Close()
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(int(root.Fd()), rel, &how)
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
		return nil, 0, fmt.Errorf("%s leads out of %s (through a symlink): %w: openat2: %w", p, d.dir, layer.ErrRefused, err)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", p, &os.PathError{Op: "openat2", Path: rel, Err: err})
	}
	f := os.NewFile(uintptr(fd), rel)
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (%s): %w", p, fi.Mode().Type(), layer.ErrRefused)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// resolve checks the member name p and follows aliases.
func (d *dirSource) resolve(p string) (string, error) {
	rel, err := memberName(p)
	for i := 0; err == nil && d.alias[rel] != ""; i++ {
		if i == maxAliasHops {
			return "", fmt.Errorf("%s: more than %d symlinks: %w", p, maxAliasHops, layer.ErrRefused)
		}
		rel = d.alias[rel]
	}
	return rel, err
}

// readFile reads the member p, refusing more than max bytes.
func (d *dirSource) readFile(p string, max int64) ([]byte, error) {
	f, _, err := d.open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readAtMost(f, max)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return data, nil
}

// memberName checks an archive member's or manifest path's name and
// returns it clean and relative: absolute names and names with a ".."
// component are refused.
func memberName(p string) (string, error) {
	if p == "" || path.IsAbs(p) {
		return "", fmt.Errorf("name %q is empty or absolute: %w", p, layer.ErrRefused)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return "", fmt.Errorf("name %q has a \"..\" component: %w", p, layer.ErrRefused)
	}
	return path.Clean(p), nil
}

// memSource serves blobs an import made itself (a root file system's
// config), then asks next.
type memSource struct {
	docs map[v1.Hash][]byte
	next blobSource
}

// blob implements blobSource.
func (m memSource) blob(ctx context.Context, h v1.Hash, size int64) (io.ReadCloser, error) {
	if data, ok := m.docs[h]; ok {
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	return m.next.blob(ctx, h, size)
}

// fileSource serves the one blob digest: the file path.
type fileSource struct {
	path   string
	digest v1.Hash
}

// blob implements blobSource.
func (f fileSource) blob(_ context.Context, h v1.Hash, size int64) (io.ReadCloser, error) {
	if h != f.digest {
		return nil, fmt.Errorf("blob %s: %w", h, os.ErrNotExist)
	}
	file, err := os.OpenFile(f.path, os.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	fi, err := file.Stat()
	if err == nil && (!fi.Mode().IsRegular() || fi.Size() != size) {
		err = errors.New("changed since it was read: refused")
	}
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("blob %s (%s): %w", h, f.path, err)
	}
	return file, nil
}
