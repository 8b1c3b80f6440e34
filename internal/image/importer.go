package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/image/layer"
	"github.com/cove-project/cove/internal/image/stored"
)

// LocalRegistry is the registry part of every imported or tagged image's
// name (stored.LocalRegistry).
const LocalRegistry = stored.LocalRegistry

// ErrBadArchive is wrapped by import errors the input is at fault for:
// what it holds cannot be read as images (no manifest, a member refused,
// a limit passed, a config that does not parse), not a failure of the
// store.
var ErrBadArchive = errors.New("not an archive of images cove can import")

// badArchive marks err as ErrBadArchive, its text unchanged, unless the
// store failed (a system call's error that is not the input's refusal).
type badArchive struct{ err error }

func (e badArchive) Error() string { return e.err.Error() }

func (e badArchive) Unwrap() []error {
	var errno syscall.Errno
	if errors.As(e.err, &errno) && !errors.Is(e.err, layer.ErrRefused) && !errors.Is(e.err, layer.ErrLimit) {
		return []error{e.err}
	}
	return []error{e.err, ErrBadArchive}
}

// ImportOptions tune an import; the zero value is the defaults.
type ImportOptions struct {
	// Name names the imported image, "NAME[:TAG]" or
	// "localhost/NAME[:TAG]" (TAG defaults to latest); it is stored as
	// "localhost/NAME:TAG". Required for a root file system tarball; for
	// an archive it replaces the archive's own names and the archive must
	// hold one image.
	Name string
	// Platform is the image to pick from a multi-arch index and the
	// platform an image must be for; nil means this host's.
	Platform *v1.Platform
	// Limits bound each layer as a pull's do, and the archive too: its
	// members (MaxEntries) and their data bytes (MaxBytes), and the bytes
	// read from a pipe. A zero field means its default.
	Limits layer.Limits
	// Parallel is how many layers are unpacked at once; 0 means
	// DefaultParallel.
	Parallel int
	// Progress, when set, gets per-layer events; calls are serialized.
	Progress func(Progress)
	// RootFS takes the input as a root file system tarball, whatever it
	// holds, lets it go unnamed, and takes Name by docker tag's rules (a
	// registry's name is kept), as docker import does.
	RootFS bool
	// Changes are Dockerfile instructions applied to a root file system
	// tarball's configuration (package instruction), and Message is its
	// history entry's comment; either (or RootFS) dates the image now.
	Changes []string
	Message string
	// KeepRegistry keeps an archive's names that name a registry
	// ("registry.example/app:1") as they are, as docker load does: the
	// image is then that registry's to lookups (pull = "missing" does not
	// pull it), and a pull of the name replaces it. Without it every
	// name becomes "localhost/…". Names without a registry become
	// "localhost/…" either way.
	KeepRegistry bool
}

func (o ImportOptions) pull() PullOptions {
	return PullOptions{Platform: o.Platform, Limits: o.Limits, Parallel: o.Parallel, Progress: o.Progress}
}

// Import loads the images at path into the store: a docker-archive
// ("docker save": manifest.json, configs and layer tars, the archive
// plain, gzip or zstd), an oci-archive (a tar of an OCI image layout), an
// OCI image layout directory (or a docker-archive unpacked into one), or
// a root file system tarball (one layer; an empty config for this host's
// platform; opt.Name required). A path that is neither a regular file nor
// a directory (a pipe, /dev/stdin) is read once into the store's tmp/.
//
// Every image goes the way of a pull: its blobs are verified against
// their digests and sizes, its layers against the config's diff_ids, and
// they are unpacked in tmp/ and renamed into place; then its record and
// names are written. Names are "localhost/…" (see LocalRegistry; with
// opt.KeepRegistry, a name with a registry stays as it is): opt.Name,
// else the archive's own ("REPO:TAG" from manifest.json's
// RepoTags, or an index.json entry's io.containerd.image.name or
// org.opencontainers.image.ref.name when it names a repository) with any
// registry host dropped. An image without a name is stored unnamed.
//
// The archive is hostile input: only regular files and directories are
// unpacked (a symlink member only stands for the member it points to), a
// member name that is absolute or holds ".." is refused, and nothing is
// written outside the import's directory in tmp/.
//
// The records returned have as Names the names this import gave, not
// the names the image had before.
func (s *Store) Import(ctx context.Context, path string, opt ImportOptions) ([]ImageRecord, error) {
	recs, err := s.importFrom(ctx, opt, func(w *pullWork) (string, error) { return path, nil })
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, s.fullDisk(err))
	}
	return recs, nil
}

// ImportStream is Import of what r yields (docker load's request body): a
// docker-archive, an oci-archive or a root file system tarball, copied
// into the store's tmp/ first (at most opt.Limits' MaxBytes) and removed
// with the import's work directory.
func (s *Store) ImportStream(ctx context.Context, r io.Reader, opt ImportOptions) ([]ImageRecord, error) {
	recs, err := s.importFrom(ctx, opt, func(w *pullWork) (string, error) {
		return spool(r, filepath.Join(w.dir(), spoolName), opt.pull().limits().MaxBytes)
	})
	if err != nil {
		return nil, fmt.Errorf("import the archive: %w", s.fullDisk(err))
	}
	return recs, nil
}

// importFrom is Import in a work directory of its own, of the file or
// directory that input gives in it.
func (s *Store) importFrom(ctx context.Context, opt ImportOptions, input func(*pullWork) (string, error)) ([]ImageRecord, error) {
	var names []string
	if opt.Name != "" {
		var n string
		var err error
		if opt.RootFS { // docker tag's rules
			n, err = storeName(opt.Name, true)
		} else {
			n, err = localName(opt.Name, true)
		}
		if err != nil {
			return nil, err
		}
		names = []string{n}
	}
	w, err := s.beginPull()
	if err != nil {
		return nil, err
	}
	defer w.end()
	path, err := input(w)
	if err != nil {
		return nil, err
	}
	ts, err := s.importTargets(ctx, w, path, opt)
	if err != nil {
		return nil, badArchive{err}
	}
	for _, t := range ts {
		t.nameAs(storeNames(t.names, opt.KeepRegistry))
	}
	if names != nil {
		if len(ts) != 1 {
			return nil, fmt.Errorf("it holds %d images: import it without a name to keep theirs", len(ts))
		}
		ts[0].nameAs(names)
	}
	recs, err := s.place(ctx, w, ts, opt.pull())
	for i := range recs {
		recs[i].Names = ts[i].names // what this import named it, not its earlier names
	}
	return recs, err
}

// importTargets finds what kind of input path is and resolves its images.
func (s *Store) importTargets(ctx context.Context, w *pullWork, path string, opt ImportOptions) ([]*target, error) {
	lim := opt.pull().limits()
	plat := opt.pull().platform()
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	changes := len(opt.Changes) > 0 || opt.Message != ""
	if fi.IsDir() && changes {
		return nil, errors.New("changes and a message are for a root file system tarball: this is an OCI layout directory")
	}
	if fi.IsDir() {
		return layoutTargets(ctx, newDirSource(path, nil), plat)
	}
	if !fi.Mode().IsRegular() {
		if path, err = spoolFile(path, filepath.Join(w.dir(), spoolName), lim.MaxBytes); err != nil {
			return nil, err
		}
	}
	sv, err := surveyTar(path, lim)
	if err != nil {
		return nil, err
	}
	if !sv.archive() || opt.RootFS {
		if opt.Name == "" && !opt.RootFS {
			return nil, errors.New("it is a root file system tarball (no manifest.json, no oci-layout): give the image a name")
		}
		return rootfsTargets(ctx, path, sv, plat, opt)
	}
	if changes {
		return nil, errors.New("changes and a message are for a root file system tarball: this is an archive of images")
	}
	return archiveTargets(ctx, path, filepath.Join(w.dir(), "archive"), lim, plat)
}

// archiveTargets unpacks the archive at path into dir and resolves its
// images.
func archiveTargets(ctx context.Context, path, dir string, lim layer.Limits, plat v1.Platform) ([]*target, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	alias, err := extractArchive(path, dir, lim)
	if err != nil {
		return nil, err
	}
	return layoutTargets(ctx, newDirSource(dir, alias), plat)
}

// layoutTargets resolves the images of a docker-archive's manifest.json
// (preferred: Docker 25 and later write both) or an OCI image layout.
func layoutTargets(ctx context.Context, src *dirSource, plat v1.Platform) ([]*target, error) {
	var ts []*target
	var err error
	switch {
	case src.has(dockerManifest):
		ts, err = dockerTargets(ctx, src, plat)
	case src.has(ociLayoutFile):
		ts, err = ociTargets(ctx, src, plat)
	default:
		return nil, fmt.Errorf("neither %s (docker-archive) nor %s (OCI image layout) is in it", dockerManifest, ociLayoutFile)
	}
	if err == nil && len(ts) == 0 {
		err = errors.New("it holds no image")
	}
	return ts, err
}

// spoolName is the file in an import's work directory that a stream (a
// pipe, a request's body) is spooled into.
const spoolName = "input"

// spoolFile is spool of the non-regular file path (a pipe).
func spoolFile(path, dst string, max int64) (string, error) {
	in, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	return spool(in, dst, max)
}

// spool copies in to the new file dst, at most max bytes, and returns
// dst.
func spool(in io.Reader, dst string, max int64) (string, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(out, io.LimitReader(in, max+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > max {
		err = fmt.Errorf("%w: more than %d bytes", layer.ErrLimit, max)
	}
	return dst, err
}

// notAnID refuses name n when it, or its last path component, reads as
// an image ID ("sha256:…", or 64 hex digits before any tag), as Docker
// refuses such names: a lookup by ID must never find a name.
func notAnID(n string) error {
	last := n[strings.LastIndex(n, "/")+1:]
	repo, _, _ := strings.Cut(last, ":")
	if strings.HasPrefix(last, "sha256:") || len(repo) == 64 && stored.IsIDPrefix(repo) {
		return fmt.Errorf("image name %q reads as an image ID (sha256:HEX or 64 hex digits)", n)
	}
	return nil
}

// localName is the store name of an imported image called n ("NAME",
// "NAME:TAG", "REGISTRY/NAME:TAG"): "localhost/NAME:TAG", the tag latest
// when n has none. A registry host in n is dropped, unless explicit (the
// user's own name for the image), where any host but localhost is
// refused: the name would be taken for the registry's image. A name that
// reads as an image ID is refused (notAnID).
func localName(n string, explicit bool) (string, error) {
	if err := notAnID(n); err != nil {
		return "", err
	}
	rest := n
	if stored.HasRegistry(n) {
		host, after, _ := strings.Cut(n, "/")
		if explicit && host != LocalRegistry {
			return "", fmt.Errorf("image name %q names the registry %s: an image imported or tagged here is named %s/NAME[:TAG] (or NAME[:TAG]), never as a registry's", n, host, LocalRegistry)
		}
		rest = after
	}
	tag, err := name.NewTag(LocalRegistry + "/" + rest)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", n, err)
	}
	return stored.Canonical(tag), nil
}

// nameAs makes names (canonical, "localhost/…") t's names, and the first
// one's repository its repository.
func (t *target) nameAs(names []string) {
	t.names, t.repo = names, ""
	if len(names) > 0 {
		if tag, err := name.NewTag(names[0]); err == nil {
			t.repo = stored.RepoName(tag.Context())
		}
	}
}

// storeNames maps an archive's names for an image to store names (see
// ImportOptions.KeepRegistry), skipping what is no image name.
func storeNames(ns []string, keepRegistry bool) []string {
	var out []string
	for _, n := range ns {
		if l, err := storeName(n, keepRegistry); err == nil && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// storeName is the store name of n: with keepRegistry, a name with a
// registry as it is (canonical, the tag latest when it has none), any
// other as localName's; one that reads as an image ID is refused
// (notAnID).
func storeName(n string, keepRegistry bool) (string, error) {
	if !keepRegistry || !stored.HasRegistry(n) {
		return localName(n, false)
	}
	if err := notAnID(n); err != nil {
		return "", err
	}
	tag, err := name.NewTag(n)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", n, err)
	}
	return stored.Canonical(tag), nil
}
