package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cove-project/cove/internal/image/stored"
)

// PushOptions tune a push; the zero value is the defaults.
type PushOptions struct {
	// Dest is the name the image is pushed to (a registry's, as the
	// pushed name must be); "" means the name it was found by.
	Dest string
	// Keychain gives the registry's credentials; nil means
	// DefaultKeychain.
	Keychain authn.Keychain
	// Progress, when set, gets per-layer events, each naming the layer by
	// its diff ID in the store (its Digest too: the pushed digest is
	// known only once it is written): Waiting for every layer first, then
	// for each AlreadyExists (mounted, or there already), or Uploading and
	// Done; calls are serialized.
	Progress func(Progress)
}

// ErrNotPushable is wrapped by a push's refusal of a name that names no
// registry (or the store's own, LocalRegistry).
var ErrNotPushable = errors.New("not a registry's name")

// Pushed is what a push wrote: the manifest's digest and size.
type Pushed struct {
	Digest v1.Hash
	Size   int64
}

// Push uploads the image ref names (as Lookup finds it) to the registry
// opt.Dest names (by default ref itself: then a name with a registry, as
// the store has it, "REGISTRY/REPO[:TAG]"), under that name, with the
// registry's settings (TLS, plain HTTP only when listed insecure) and
// opt's credentials. A destination of the store's own (LocalRegistry) or
// without a registry is refused (Pushable): give the image the
// registry's name (Name), or push it to one.
//
// A layer whose original blob the registry it came from has (in the
// repository it was pulled from, a committed image's base layer in its
// base's: a cross-repository mount, or in the destination already), when
// the destination is on that registry, is not sent; after one refused
// mount none is tried. Any other is written anew from its directory
// (writeLayerTar), as Save does, gzip-compressed, into the store's tmp/
// (the layers are leased, so no prune removes one meanwhile), and
// uploaded. When no layer had to be written anew, the stored config and
// manifest are pushed as they are: the image keeps its ID (the digest of
// the platform's manifest it was pulled by). Otherwise the config is the
// stored one with the layers' diff IDs, the manifest is of the image's
// kind (Docker's or OCI's), and the pushed digest is a new one.
func (s *Store) Push(ctx context.Context, ref string, opt PushOptions) (Pushed, error) {
	if opt.Dest == "" {
		opt.Dest = ref
	}
	p, err := s.push(ctx, ref, opt)
	if err != nil {
		return Pushed{}, fmt.Errorf("push %s to %s: %w", ref, opt.Dest, s.fullDisk(err))
	}
	return p, nil
}

func (s *Store) push(ctx context.Context, ref string, opt PushOptions) (Pushed, error) {
	dst, ropts, err := s.pushTarget(ctx, opt)
	if err != nil {
		return Pushed{}, err
	}
	w, err := s.beginPull()
	if err != nil {
		return Pushed{}, err
	}
	defer w.end()
	imgs, err := s.saveSet([]string{ref})
	if err == nil {
		err = s.leaseSaved(w, imgs)
	}
	if err != nil {
		return Pushed{}, err
	}
	rec := imgs[0].rec
	stored, err := s.storedManifest(rec) // read before the layers are written: a prune may remove them meanwhile
	if err != nil {
		return Pushed{}, err
	}
	p := pushing{s: s, w: w, dst: dst, ropts: ropts, prog: &progress{fn: opt.Progress},
		img: &pushedImage{layers: map[v1.Hash]partial.CompressedLayer{}, mt: rec.MediaType}}
	if err := p.layers(ctx, rec); err != nil {
		return Pushed{}, err
	}
	if err := p.manifest(rec, stored); err != nil {
		return Pushed{}, err
	}
	img, err := partial.CompressedToImage(p.img)
	if err == nil {
		err = remote.Write(dst, img, ropts...)
	}
	if err != nil {
		return Pushed{}, fmt.Errorf("write the manifest: %w", plainHTTPHint(err, dst.Context().RegistryStr()))
	}
	return Pushed{Digest: sha256Of(p.img.manifest), Size: int64(len(p.img.manifest))}, nil
}

// Pushable refuses, wrapping ErrNotPushable, a name a push cannot go to:
// one without a registry, or the store's own (LocalRegistry/…).
func Pushable(ref string) error {
	if !stored.HasRegistry(ref) {
		return fmt.Errorf("%w: %q names no registry: give the image the name it has in the registry first (docker tag, or cove commit NAME REGISTRY/REPO:TAG)", ErrNotPushable, ref)
	}
	if host, _, _ := strings.Cut(ref, "/"); host == LocalRegistry {
		return fmt.Errorf("%w: %s/… names images of this host's store: give the image a registry's name first (docker tag)", ErrNotPushable, LocalRegistry)
	}
	return nil
}

// pushTarget is the reference opt.Dest names, and the remote options
// that reach its registry as a pull would, with opt's credentials.
func (s *Store) pushTarget(ctx context.Context, opt PushOptions) (name.Tag, []remote.Option, error) {
	ref := opt.Dest
	if err := Pushable(ref); err != nil {
		return name.Tag{}, nil, err
	}
	dst, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, nil, err
	}
	set := s.Registry(dst.RegistryStr())
	if set.Insecure {
		dst, _ = name.NewTag(ref, name.Insecure) // parsed once already
	}
	base, err := baseTransport(set)
	if err != nil {
		return name.Tag{}, nil, fmt.Errorf("registry %s: %w", dst.RegistryStr(), err)
	}
	kc := opt.Keychain
	if kc == nil {
		kc = DefaultKeychain()
	}
	return dst, []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(transport.NewUserAgent(base, "cove"))}, nil
}

// pushing is one push's state: where it goes, the image it makes, and
// whether every layer is the one the image was pulled with.
type pushing struct {
	s        *Store
	w        *pullWork
	dst      name.Tag
	ropts    []remote.Option
	prog     *progress
	img      *pushedImage
	descs    []v1.Descriptor // the manifest's layers
	diffs    []v1.Descriptor // their diff IDs (as digests)
	rendered bool            // some layer was written anew
}

// layers puts each of rec's layers in the registry: its original blob
// mounted from the repository it came from (rec.Source: the image's, or
// a committed image's base's), when that is on the destination's registry
// and still has it (no byte sent: the layer keeps its digest), or else
// written anew from its directory, gzipped, and uploaded.
func (p *pushing) layers(ctx context.Context, rec ImageRecord) error {
	for _, l := range rec.Layers {
		p.prog.emit(storedJob(l), Waiting, 0)
	}
	mountable := true
	for i, l := range rec.Layers {
		if from, ok := p.mountSource(rec.Source(l)); ok && mountable {
			err := mountLayer(p.dst.Context(), from, l, p.ropts)
			if err == nil {
				p.prog.emit(storedJob(l), AlreadyExists, l.Size)
				p.add(keptLayer{l}, v1.Descriptor{MediaType: l.MediaType, Size: l.Size, Digest: l.Digest}, l.DiffID)
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			mountable = false // one refused: the source no longer has the image's blobs; each try would leave an upload open
		}
		fl := &fileLayer{path: filepath.Join(p.w.dir(), fmt.Sprintf("layer-%d.tar.gz", i)), stored: l.DiffID}
		var err error
		fl.desc, fl.diffID, err = writeLayerFile(ctx, fl.path, p.s.LayerDir(l.DiffID), nil, gzipped, rec.MediaType != types.DockerManifestSchema2)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.DiffID, err)
		}
		if err := pushLayer(ctx, p.dst.Context(), fl, p.ropts, p.prog); err != nil {
			return err
		}
		p.add(fl, fl.desc, fl.diffID)
		p.rendered = true
	}
	return nil
}

// add notes a layer put in the registry.
func (p *pushing) add(l partial.CompressedLayer, d v1.Descriptor, diffID v1.Hash) {
	p.img.layers[d.Digest] = l
	p.descs = append(p.descs, d)
	p.diffs = append(p.diffs, v1.Descriptor{Digest: diffID})
}

// mountSource is the repository repo ("REGISTRY/REPO", a layer's
// Source), when it is on the destination's registry (a blob mount works
// within one registry).
func (p *pushing) mountSource(repo string) (name.Repository, bool) {
	if repo == "" {
		return name.Repository{}, false
	}
	from, err := name.NewRepository(repo)
	if err != nil || from.RegistryStr() != p.dst.RegistryStr() {
		return name.Repository{}, false
	}
	return from, true
}

// storedBlobs are an image's config and manifest as the store has them.
type storedBlobs struct {
	config, manifest []byte
	doc              map[string]json.RawMessage // the config's fields, unparsed
}

// storedManifest reads rec's config and manifest from the store.
func (s *Store) storedManifest(rec ImageRecord) (storedBlobs, error) {
	var b storedBlobs
	var err error
	if b.config, err = os.ReadFile(s.BlobPath(rec.ConfigDigest)); err != nil {
		return b, fmt.Errorf("read the stored config %s: %w", rec.ConfigDigest, err)
	}
	if b.manifest, err = os.ReadFile(s.BlobPath(rec.Digest)); err != nil {
		return b, fmt.Errorf("read the stored manifest %s: %w", rec.Digest, err)
	}
	b.doc, err = parseConfigDoc(rec, b.config)
	return b, err
}

// manifest makes the config and manifest to push: the stored ones, byte
// for byte, when every layer is the original (the image keeps its ID,
// its platform manifest's digest); else the stored config with the
// layers' diff IDs (withDiffIDs) and a manifest of the image's kind.
func (p *pushing) manifest(rec ImageRecord, stored storedBlobs) error {
	if !p.rendered {
		p.img.config, p.img.manifest = stored.config, stored.manifest
		return nil
	}
	cfg := withDiffIDs(stored.doc, p.diffs)
	p.img.config, p.img.manifest = cfg, mustJSON(manifestOf(rec.MediaType, cfg, p.descs))
	return nil
}

// keptLayer is a stored layer's original blob, which the store does not
// keep (it keeps the layer unpacked): a mount can put it in a registry,
// nothing can read it.
type keptLayer struct{ l LayerRecord }

// errNotKept is keptLayer's answer to a read.
var errNotKept = errors.New("the store keeps layers unpacked, not their blobs")

func (k keptLayer) Digest() (v1.Hash, error)            { return k.l.Digest, nil }
func (k keptLayer) DiffID() (v1.Hash, error)            { return k.l.DiffID, nil }
func (k keptLayer) Size() (int64, error)                { return k.l.Size, nil }
func (k keptLayer) MediaType() (types.MediaType, error) { return k.l.MediaType, nil }
func (k keptLayer) Compressed() (io.ReadCloser, error)  { return nil, errNotKept }

// mountLayer mounts stored layer l's original blob into repo from the
// repository from (on the same registry), or finds it there already; an
// error when the registry has it in neither (no byte is sent).
func mountLayer(repo, from name.Repository, l LayerRecord, ropts []remote.Option) error {
	layer, err := partial.CompressedToLayer(keptLayer{l})
	if err != nil {
		return err
	}
	return remote.WriteLayer(repo, &remote.MountableLayer{Layer: layer, Reference: from.Tag("latest")}, ropts...)
}

// pushLayer uploads l to repo unless the registry has it, reporting its
// bytes to report.
func pushLayer(ctx context.Context, repo name.Repository, l *fileLayer, ropts []remote.Option, prog *progress) error {
	layer, err := partial.CompressedToLayer(l)
	if err != nil {
		return err
	}
	job := l.job()
	updates := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			if u.Error == nil { // the error is WriteLayer's too
				prog.emit(job, Uploading, u.Complete)
			}
		}
	}()
	err = remote.WriteLayer(repo, layer, append(ropts, remote.WithProgress(updates))...)
	<-done
	if err != nil {
		return fmt.Errorf("upload layer %s: %w", l.desc.Digest, plainHTTPHint(err, repo.RegistryStr()))
	}
	prog.emit(job, Done, l.desc.Size)
	return nil
}

// fileLayer is a compressed layer blob in a file, its descriptor and
// diff ID known (partial.CompressedLayer, with its DiffID), written from
// the store's layer stored.
type fileLayer struct {
	path           string
	desc           v1.Descriptor
	diffID, stored v1.Hash
}

// job is l as a push's progress events name it: by the stored layer's
// diff ID (the name it has before it is written, as Docker's push names
// layers), with the size to send.
func (l *fileLayer) job() layerJob {
	return layerJob{desc: v1.Descriptor{Digest: l.stored, Size: l.desc.Size}, diffID: l.stored}
}

// storedJob is the stored layer l as a push's progress events name it
// before it is written (its size unknown yet).
func storedJob(l LayerRecord) layerJob {
	return layerJob{desc: v1.Descriptor{Digest: l.DiffID}, diffID: l.DiffID}
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// pushedImage is the image a push writes (partial.CompressedImageCore).
type pushedImage struct {
	config, manifest []byte
	mt               types.MediaType
	layers           map[v1.Hash]partial.CompressedLayer // by compressed digest
}

func (p *pushedImage) RawConfigFile() ([]byte, error)      { return p.config, nil }
func (p *pushedImage) RawManifest() ([]byte, error)        { return p.manifest, nil }
func (p *pushedImage) MediaType() (types.MediaType, error) { return p.mt, nil }

// LayerByDigest implements partial.CompressedImageCore.
func (p *pushedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := p.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("no layer %s in the image pushed", h)
}
