package image

import (
	"context"
	"crypto/sha256"
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
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"

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
	// Uploading and Done for each; calls are serialized.
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
// As Save, it writes each layer anew from its directory (writeLayerTar),
// gzip-compressed, into the store's tmp/ (leased, so no prune removes a
// layer meanwhile); the config is the stored one with these layers'
// diff IDs, and the manifest is of the image's kind (Docker's or OCI's).
// So the pushed digest is not the one the image was pulled by. A layer
// the registry has already is not sent again.
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
	img, layers, err := s.pushImage(ctx, w, imgs[0].rec, opt)
	if err != nil {
		return Pushed{}, err
	}
	for _, l := range layers {
		if err := pushLayer(ctx, dst.Context(), l, ropts, opt.Progress); err != nil {
			return Pushed{}, err
		}
	}
	if err := remote.Write(dst, img, ropts...); err != nil {
		return Pushed{}, fmt.Errorf("write the manifest: %w", plainHTTPHint(err, dst.Context().RegistryStr()))
	}
	m, err := img.RawManifest()
	if err != nil {
		return Pushed{}, err
	}
	return Pushed{Digest: sha256Of(m), Size: int64(len(m))}, nil
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

// pushImage writes rec's layers into w's directory, gzip-compressed, one
// at a time, and returns the image to push and its layers in order. Its
// config is read first, before a prune may remove it (the lease holds
// the layers only).
func (s *Store) pushImage(ctx context.Context, w *pullWork, rec ImageRecord, opt PushOptions) (v1.Image, []*fileLayer, error) {
	doc, err := s.configDoc(rec)
	if err != nil {
		return nil, nil, err
	}
	oci := rec.MediaType != types.DockerManifestSchema2
	p := &pushedImage{layers: map[v1.Hash]*fileLayer{}, mt: rec.MediaType}
	var descs, diffs []v1.Descriptor
	var layers []*fileLayer
	prog := &progress{fn: opt.Progress}
	for _, l := range rec.Layers {
		prog.emit(storedJob(l), Waiting, 0)
	}
	for i, l := range rec.Layers {
		fl, err := gzipLayer(ctx, s.LayerDir(l.DiffID), filepath.Join(w.dir(), fmt.Sprintf("layer-%d.tar.gz", i)), oci)
		if err != nil {
			return nil, nil, fmt.Errorf("layer %s: %w", l.DiffID, err)
		}
		fl.stored = l.DiffID
		p.layers[fl.digest], layers = fl, append(layers, fl)
		descs = append(descs, v1.Descriptor{MediaType: fl.mt, Size: fl.size, Digest: fl.digest})
		diffs = append(diffs, v1.Descriptor{Digest: fl.diffID})
	}
	cfg := withDiffIDs(doc, diffs)
	m := v1.Manifest{SchemaVersion: 2, MediaType: rec.MediaType, Layers: descs,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfg)), Digest: sha256Of(cfg)}}
	if !oci {
		m.Config.MediaType = types.DockerConfigJSON
	}
	p.config, p.manifest = cfg, mustJSON(m)
	img, err := partial.CompressedToImage(p)
	return img, layers, err
}

// pushLayer uploads l to repo unless the registry has it, reporting its
// bytes to report.
func pushLayer(ctx context.Context, repo name.Repository, l *fileLayer, ropts []remote.Option, report func(Progress)) error {
	layer, err := partial.CompressedToLayer(l)
	if err != nil {
		return err
	}
	prog, job := &progress{fn: report}, l.job()
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
		return fmt.Errorf("upload layer %s: %w", l.digest, plainHTTPHint(err, repo.RegistryStr()))
	}
	prog.emit(job, Done, l.size)
	return nil
}

// gzipLayer writes the layer directory dir (writeLayerTar) gzipped into
// the new file path, hashing both forms.
func gzipLayer(ctx context.Context, dir, path string, oci bool) (*fileLayer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hc, hu := sha256.New(), sha256.New()
	zw := gzip.NewWriter(io.MultiWriter(f, hc))
	if err := writeLayerTar(ctx, dir, io.MultiWriter(zw, hu), nil); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	return &fileLayer{path: path, digest: hashOf(hc), diffID: hashOf(hu), size: size, mt: layerMediaType(gzipped, oci)}, nil
}

// fileLayer is a compressed layer blob in a file, its digests known
// (partial.CompressedLayer, with its DiffID), written from the store's
// layer stored.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
	mt             types.MediaType
	stored         v1.Hash
}

// job is l as a push's progress events name it: by the stored layer's
// diff ID (the name it has before it is written, as Docker's push names
// layers), with the size to send.
func (l *fileLayer) job() layerJob {
	return layerJob{desc: v1.Descriptor{Digest: l.stored, Size: l.size}, diffID: l.stored}
}

// storedJob is the stored layer l as a push's progress events name it
// before it is written (its size unknown yet).
func storedJob(l LayerRecord) layerJob {
	return layerJob{desc: v1.Descriptor{Digest: l.DiffID}, diffID: l.DiffID}
}

func (l *fileLayer) Digest() (v1.Hash, error)           { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)           { return l.diffID, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *fileLayer) Size() (int64, error)               { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) {
	return l.mt, nil
}

// pushedImage is the image a push writes (partial.CompressedImageCore).
type pushedImage struct {
	config, manifest []byte
	mt               types.MediaType
	layers           map[v1.Hash]*fileLayer // by compressed digest
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
