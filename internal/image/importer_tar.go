package image

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/image/layer"
)

// The files that tell an image archive from a root file system tarball.
const (
	dockerManifest = "manifest.json" // docker-archive
	ociLayoutFile  = "oci-layout"    // OCI image layout
)

// tarSurvey is what one read of a tar file (plain, gzip or zstd) tells:
// its compression, its digest and size as a layer blob, the digest of its
// uncompressed stream (its diffID as a layer), and which of
// dockerManifest and ociLayoutFile it has at its top.
type tarSurvey struct {
	codec  codec
	digest v1.Hash
	size   int64
	diffID v1.Hash
	top    map[string]bool
}

// archive tells whether the tar is an image archive.
func (sv tarSurvey) archive() bool { return sv.top[dockerManifest] || sv.top[ociLayoutFile] }

// hashCounter hashes and counts what is read through it.
type hashCounter struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *hashCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

func (c *hashCounter) digest() v1.Hash {
	return hashOf(c.h)
}

// surveyTar reads the tar file at path once, bounded by lim (entries,
// and data bytes as declared), with the stream rules of a pull's layer:
// the compression is told by the magic bytes, and at most maxTrailing
// bytes may follow the end of the archive.
func surveyTar(path string, lim layer.Limits) (tarSurvey, error) {
	f, err := os.Open(path)
	if err != nil {
		return tarSurvey{}, err
	}
	defer f.Close()
	file := &hashCounter{r: f, h: sha256.New()}
	br := bufio.NewReaderSize(file, 64<<10)
	head, _ := br.Peek(len(zstdMagic))
	sv := tarSurvey{codec: sniff(head), top: map[string]bool{}}
	dec, err := decompress(br, sv.codec)
	if err != nil {
		return sv, err
	}
	defer dec.Close()
	tarStream := &hashCounter{r: dec, h: sha256.New()}
	if err := sv.scan(tar.NewReader(tarStream), lim); err != nil {
		return sv, fmt.Errorf("reading it as a tar archive (%s): %w", sv.codec, err)
	}
	if n, err := io.Copy(io.Discard, io.LimitReader(tarStream, maxTrailing+1)); err != nil || n > maxTrailing {
		return sv, fmt.Errorf("after its tar archive's end: %d bytes (at most %d), %v: refused", n, maxTrailing, err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return sv, err
	}
	sv.digest, sv.size, sv.diffID = file.digest(), file.n, tarStream.digest()
	return sv, nil
}

// scan reads the entries of tr, counting them against lim, and notes
// the top-level files that make an image archive.
func (sv *tarSurvey) scan(tr *tar.Reader, lim layer.Limits) error {
	var c memberCount
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.add(hdr, lim); err != nil {
			return err
		}
		if n := path.Clean(strings.TrimLeft(hdr.Name, "/")); hdr.Typeflag == tar.TypeReg && (n == dockerManifest || n == ociLayoutFile) {
			sv.top[n] = true
		}
	}
}

// memberCount counts an archive's members and their data bytes.
type memberCount struct{ entries, bytes int64 }

// add charges hdr, refusing what passes lim.
func (c *memberCount) add(hdr *tar.Header, lim layer.Limits) error {
	c.entries++
	if lim.MaxEntries > 0 && c.entries > lim.MaxEntries {
		return fmt.Errorf("%w: more than %d members", layer.ErrLimit, lim.MaxEntries)
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	if hdr.Size < 0 || lim.MaxBytes > 0 && hdr.Size > lim.MaxBytes-c.bytes {
		return fmt.Errorf("%w: member %q: %d bytes after %d would pass %d", layer.ErrLimit, hdr.Name, hdr.Size, c.bytes, lim.MaxBytes)
	}
	c.bytes += hdr.Size
	return nil
}

// extractor unpacks an image archive into dir.
type extractor struct {
	dir   string
	lim   layer.Limits
	count memberCount
	alias map[string]string // symlink member → the member it points to
	seen  map[string]bool   // members other than directories
}

// extractArchive unpacks the image archive at path (plain, gzip or
// zstd) into the empty directory dir, bounded by lim: directories and
// regular files only (modes 0700 and 0600: the archive's owners, modes
// and times do not matter), each member once. A symlink member is not
// made: it is returned as an alias of the member it points to, which must
// be inside the archive. Any other member type, and any name that is
// absolute or has a ".." component, is refused.
func extractArchive(path, dir string, lim layer.Limits) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(len(zstdMagic))
	dec, err := decompress(br, sniff(head))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	x := &extractor{dir: dir, lim: lim, alias: map[string]string{}, seen: map[string]bool{}}
	tr := tar.NewReader(dec)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return x.alias, nil
		}
		if err != nil {
			return nil, fmt.Errorf("archive: after %d members: %w", x.count.entries, err)
		}
		if err := x.member(hdr, tr); err != nil {
			return nil, fmt.Errorf("archive member %q: %w", hdr.Name, err)
		}
	}
}

// member unpacks one member, whose data is r.
func (x *extractor) member(hdr *tar.Header, r io.Reader) error {
	if err := x.count.add(hdr, x.lim); err != nil || hdr.Typeflag == tar.TypeXGlobalHeader {
		return err
	}
	rel, err := memberName(hdr.Name)
	if err != nil || rel == "." {
		return err
	}
	if hdr.Typeflag != tar.TypeDir {
		if x.seen[rel] {
			return fmt.Errorf("%w: it appears twice", layer.ErrRefused)
		}
		x.seen[rel] = true
	}
	p := filepath.Join(x.dir, filepath.FromSlash(rel))
	switch hdr.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(p, 0o700)
	case tar.TypeReg:
		return writeMember(p, r, hdr.Size)
	case tar.TypeSymlink:
		return x.link(rel, hdr.Linkname)
	}
	return fmt.Errorf("%w: a %s (an image archive holds only files, directories and symlinks between them)", layer.ErrRefused, memberType(hdr.Typeflag))
}

// link notes the symlink member rel → target as an alias: target,
// relative to rel's directory, must name a path inside the archive.
func (x *extractor) link(rel, target string) error {
	if target == "" || path.IsAbs(target) {
		return fmt.Errorf("%w: a symlink to %q (only relative symlinks to other members are followed)", layer.ErrRefused, target)
	}
	to := path.Join(path.Dir(rel), target)
	if to == ".." || strings.HasPrefix(to, "../") || to == "." {
		return fmt.Errorf("%w: a symlink to %q, outside the archive", layer.ErrRefused, target)
	}
	x.alias[rel] = to
	return nil
}

// writeMember writes size bytes of r to the new file p (mode 0600),
// making its parent directories.
func writeMember(p string, r io.Reader, size int64) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, r, size)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// memberType names a tar entry type for a message.
func memberType(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("member of type %q", t)
}
