package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

// Archive formats Save writes.
const (
	FormatDockerArchive = "docker-archive" // "docker save"'s: manifest.json
	FormatOCIArchive    = "oci-archive"    // a tar of an OCI image layout
)

// savedImage is one image of a save with the names it is saved under.
type savedImage struct {
	rec   ImageRecord
	names []string
}

// Save writes the images refs name (as Lookup) to out as one archive of
// format (FormatDockerArchive or FormatOCIArchive). An image named by a
// name is saved under that name; one named by ID or digest, unnamed.
//
// The store keeps layers unpacked, not their blobs, so each layer is
// written anew from its directory (see writeLayerTar) as an uncompressed
// tar, whose digest is also its diffID; each config is the stored one
// with rootfs.diff_ids replaced by these; OCI manifests are made anew.
// So the saved layer digests are never the registry's (its blobs are
// compressed), the diffIDs only when the registry's tar happened to be
// byte for byte cove's rendering, and the image ID is new. What holds:
// importing the archive gives layers with the same files, modes, owners,
// times, symlinks, hard links, xattrs, whiteouts and opaque directories;
// and saving that import again gives the same layer digests (the
// rendering is a function of the unpacked layer).
//
// The layers are leased while they are read, so a prune cannot remove
// them; each is rendered into the store's tmp/ first (its size must lead
// its tar entry), one at a time.
func (s *Store) Save(ctx context.Context, out io.Writer, refs []string, format string) error {
	if format != FormatDockerArchive && format != FormatOCIArchive {
		return fmt.Errorf("save: format %q is not %s or %s", format, FormatDockerArchive, FormatOCIArchive)
	}
	w, err := s.beginPull()
	if err != nil {
		return err
	}
	defer w.end()
	imgs, err := s.saveSet(refs)
	if err == nil {
		err = s.leaseSaved(w, imgs)
	}
	if err == nil {
		a := &archiveWriter{tw: tar.NewWriter(out), oci: format == FormatOCIArchive, tmp: w.dir(), layers: map[v1.Hash]v1.Descriptor{}}
		err = a.write(ctx, s, imgs)
	}
	if err != nil {
		return fmt.Errorf("save %s: %w", strings.Join(refs, " "), s.fullDisk(err))
	}
	return nil
}

// saveSet looks refs up: each image once, with the names refs used.
func (s *Store) saveSet(refs []string) ([]*savedImage, error) {
	names, err := s.ReadNames()
	if err != nil {
		return nil, err
	}
	var imgs []*savedImage
	for _, ref := range refs {
		rec, key, err := s.Find(names, ref)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(imgs, func(si *savedImage) bool { return si.rec.Digest == rec.Digest })
		if i < 0 {
			imgs = append(imgs, &savedImage{rec: rec})
			i = len(imgs) - 1
		}
		if key != "" && !slices.Contains(imgs[i].names, key) {
			imgs[i].names = append(imgs[i].names, key)
		}
	}
	return imgs, nil
}

// leaseSaved leases the layers of imgs for the save's work w, then
// checks they are (still) in the store.
func (s *Store) leaseSaved(w *pullWork, imgs []*savedImage) error {
	var ids []v1.Hash
	for _, si := range imgs {
		for _, l := range si.rec.Layers {
			ids = append(ids, l.DiffID)
		}
	}
	if err := w.lease(ids); err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := os.Stat(s.LayerDir(id)); err != nil {
			return fmt.Errorf("layer %s: %w", id, err)
		}
	}
	return nil
}

// archiveWriter writes one archive: blobs under blobs/sha256/, then the
// format's index (index.json and oci-layout, or manifest.json).
type archiveWriter struct {
	tw     *tar.Writer
	oci    bool
	tmp    string                    // where layers are rendered
	layers map[v1.Hash]v1.Descriptor // store diffID → saved layer blob
	index  []v1.Descriptor           // oci: index.json's entries
	docker []dockerEntry             // docker: manifest.json's entries
}

// write writes every image of imgs, then the index, and ends the tar.
func (a *archiveWriter) write(ctx context.Context, s *Store, imgs []*savedImage) error {
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := a.tw.WriteHeader(archiveHeader(dir, tar.TypeDir, 0)); err != nil {
			return err
		}
	}
	for _, si := range imgs {
		if err := a.image(ctx, s, si); err != nil {
			return fmt.Errorf("image %s: %w", si.rec.Digest, err)
		}
	}
	var err error
	if a.oci {
		err = a.ociIndex()
	} else {
		err = a.file(dockerManifest, mustJSON(a.docker))
	}
	if err != nil {
		return err
	}
	return a.tw.Close()
}

// image writes si's layers (those not written yet), its new config and,
// for OCI, its manifest, and notes its index entries.
func (a *archiveWriter) image(ctx context.Context, s *Store, si *savedImage) error {
	var descs []v1.Descriptor
	for _, l := range si.rec.Layers {
		d, ok := a.layers[l.DiffID]
		if !ok {
			var err error
			if d, err = a.layer(ctx, s.LayerDir(l.DiffID)); err != nil {
				return fmt.Errorf("layer %s: %w", l.DiffID, err)
			}
			a.layers[l.DiffID] = d
		}
		descs = append(descs, d)
	}
	cfg, err := s.savedConfig(si.rec, descs)
	if err != nil {
		return err
	}
	cd, err := a.blob(cfg, types.OCIConfigJSON)
	if err != nil {
		return err
	}
	if !a.oci {
		e := dockerEntry{Config: blobName(cd.Digest), RepoTags: si.names}
		for _, d := range descs {
			e.Layers = append(e.Layers, blobName(d.Digest))
		}
		a.docker = append(a.docker, e)
		return nil
	}
	return a.ociManifest(si, cd, descs)
}

// ociManifest writes si's OCI manifest and notes an index.json entry
// for each of its names (one without annotations when it has none).
func (a *archiveWriter) ociManifest(si *savedImage, cfg v1.Descriptor, layers []v1.Descriptor) error {
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfg, Layers: layers}
	md, err := a.blob(mustJSON(m), types.OCIManifestSchema1)
	if err != nil {
		return err
	}
	if len(si.names) == 0 {
		a.index = append(a.index, md)
	}
	for _, n := range si.names {
		d := md
		_, tag, _ := strings.Cut(n[strings.LastIndex(n, "/")+1:], ":")
		d.Annotations = map[string]string{annotationContainerName: n, annotationRefName: tag}
		a.index = append(a.index, d)
	}
	return nil
}

// ociIndex writes oci-layout and index.json.
func (a *archiveWriter) ociIndex() error {
	if err := a.file(ociLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: a.index}
	return a.file("index.json", mustJSON(idx))
}

// layer renders the layer directory dir into a file in a.tmp, hashing
// it, then copies it into the archive as its blob.
func (a *archiveWriter) layer(ctx context.Context, dir string) (v1.Descriptor, error) {
	f, err := os.CreateTemp(a.tmp, "layer-*.tar")
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	d, _, err := renderLayer(ctx, dir, f, nil, uncompressed, a.oci)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := a.tw.WriteHeader(archiveHeader(blobName(d.Digest), tar.TypeReg, d.Size)); err != nil {
		return d, err
	}
	_, err = io.CopyN(a.tw, f, d.Size)
	return d, err
}

// renderLayer writes the layer directory dir (see writeLayerTar, IDs
// mapped by ids) to f from its start, as a blob compressed as c
// (uncompressed or gzipped), and returns the blob's descriptor (its media
// type layerMediaType's, an OCI layer's if oci) and the layer's diff ID
// (the descriptor's digest too when uncompressed). A dir that does not
// exist is an empty layer.
func renderLayer(ctx context.Context, dir string, f *os.File, ids IDMap, c codec, oci bool) (v1.Descriptor, v1.Hash, error) {
	hu := sha256.New()
	blob, blobHash := io.Writer(f), hu // uncompressed: the blob is the tar
	var zw *gzip.Writer
	if c == gzipped {
		hc := sha256.New()
		zw = gzip.NewWriter(io.MultiWriter(f, hc))
		blob, blobHash = zw, hc
	}
	tw := io.MultiWriter(blob, hu)
	var err error
	if _, serr := os.Lstat(dir); errors.Is(serr, os.ErrNotExist) {
		err = tar.NewWriter(tw).Close()
	} else {
		err = writeLayerTar(ctx, dir, tw, ids)
	}
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	return v1.Descriptor{MediaType: layerMediaType(c, oci), Size: size, Digest: hashOf(blobHash)}, hashOf(hu), nil
}

// writeLayerFile is renderLayer into the new file path.
func writeLayerFile(ctx context.Context, path, dir string, ids IDMap, c codec, oci bool) (v1.Descriptor, v1.Hash, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return v1.Descriptor{}, v1.Hash{}, err
	}
	defer f.Close()
	return renderLayer(ctx, dir, f, ids, c, oci)
}

// manifestOf is the manifest of an image of kind (the media type of its
// manifest: Docker's schema 2 or OCI's) with the config cfg and layers.
func manifestOf(kind types.MediaType, cfg []byte, layers []v1.Descriptor) v1.Manifest {
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Layers: layers,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfg)), Digest: sha256Of(cfg)}}
	if kind == types.DockerManifestSchema2 {
		m.MediaType, m.Config.MediaType = types.DockerManifestSchema2, types.DockerConfigJSON
	}
	return m
}

// blob writes data as a blob of media type mt and returns its descriptor.
func (a *archiveWriter) blob(data []byte, mt types.MediaType) (v1.Descriptor, error) {
	d := v1.Descriptor{MediaType: mt, Size: int64(len(data)), Digest: sha256Of(data)}
	return d, a.file(blobName(d.Digest), data)
}

// file writes the archive member name holding data.
func (a *archiveWriter) file(name string, data []byte) error {
	if err := a.tw.WriteHeader(archiveHeader(name, tar.TypeReg, int64(len(data)))); err != nil {
		return err
	}
	_, err := a.tw.Write(data)
	return err
}

// archiveHeader is the header of an archive member: root's, mode 0644
// (0755 for a directory), at the epoch, so that the archive depends only
// on what it holds.
func archiveHeader(name string, typ byte, size int64) *tar.Header {
	mode := int64(0o644)
	if typ == tar.TypeDir {
		mode = 0o755
	}
	return &tar.Header{Name: name, Typeflag: typ, Size: size, Mode: mode, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
}

// blobName is the archive member of the blob d.
func blobName(d v1.Hash) string { return "blobs/sha256/" + d.Hex }

// savedConfig is rec's config as stored, with rootfs.diff_ids replaced
// by the digests of the saved (uncompressed) layers; every other field is
// kept as it was, unknown ones too.
func (s *Store) savedConfig(rec ImageRecord, layers []v1.Descriptor) ([]byte, error) {
	doc, err := s.configDoc(rec)
	if err != nil {
		return nil, err
	}
	return withDiffIDs(doc, layers), nil
}

// configDoc is rec's config as stored, its fields unparsed.
func (s *Store) configDoc(rec ImageRecord) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(s.BlobPath(rec.ConfigDigest))
	if err != nil {
		return nil, fmt.Errorf("read the stored config %s: %w", rec.ConfigDigest, err)
	}
	return parseConfigDoc(rec, data)
}

// parseConfigDoc is rec's config data, its fields unparsed.
func parseConfigDoc(rec ImageRecord, data []byte) (map[string]json.RawMessage, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", rec.ConfigDigest, err)
	}
	return doc, nil
}

// withDiffIDs is the config doc with rootfs.diff_ids the digests of
// layers (uncompressed), as JSON.
func withDiffIDs(doc map[string]json.RawMessage, layers []v1.Descriptor) []byte {
	rootfs := v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{}}
	for _, l := range layers {
		rootfs.DiffIDs = append(rootfs.DiffIDs, l.Digest)
	}
	doc["rootfs"] = mustJSON(rootfs)
	return mustJSON(doc)
}

// mustJSON marshals v, which cannot fail for the types used here.
func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("image: marshal %T: %v", v, err))
	}
	return data
}
