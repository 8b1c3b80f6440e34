package image

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/cove-project/cove/internal/instruction"
)

// Annotations of an OCI index entry that may name its image.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerName = "io.containerd.image.name"
)

// dockerEntry is one image of a docker-archive's manifest.json.
type dockerEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// dockerTargets resolves every image a docker-archive's manifest.json
// lists. The archive has no registry manifest, so one is made for each
// image: its config, and its layer files as they are (hashed here, their
// compression told by their magic bytes).
func dockerTargets(ctx context.Context, src *dirSource, plat v1.Platform) ([]*target, error) {
	data, err := src.readFile(dockerManifest, maxManifestBytes)
	if err != nil {
		return nil, err
	}
	var entries []dockerEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("%s: %w", dockerManifest, err)
	}
	var ts []*target
	for i, e := range entries {
		t, err := dockerTarget(ctx, src, e, plat)
		if err != nil {
			return nil, fmt.Errorf("%s: image %d (%v): %w", dockerManifest, i, e.RepoTags, err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// dockerTarget makes the manifest of the docker-archive image e and
// resolves it.
func dockerTarget(ctx context.Context, src *dirSource, e dockerEntry, plat v1.Platform) (*target, error) {
	cfg, err := src.readFile(e.Config, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.DockerManifestSchema2,
		Config: v1.Descriptor{MediaType: types.DockerConfigJSON, Size: int64(len(cfg)), Digest: sha256Of(cfg)}}
	src.paths[m.Config.Digest] = e.Config
	for _, p := range e.Layers {
		d, err := src.hashFile(p)
		if err != nil {
			return nil, fmt.Errorf("layer: %w", err)
		}
		src.paths[d.Digest] = p
		m.Layers = append(m.Layers, d)
	}
	if ociOnly(m.Layers) {
		m.MediaType, m.Config.MediaType = types.OCIManifestSchema1, types.OCIConfigJSON
	}
	t, err := madeTarget(ctx, src, m, plat)
	if err != nil {
		return nil, err
	}
	t.names = e.RepoTags // importFrom makes them store names
	return t, nil
}

// ociOnly tells whether a layer is one only an OCI manifest can hold
// (zstd); the manifest is then made an OCI one.
func ociOnly(ls []v1.Descriptor) bool {
	for _, l := range ls {
		if l.MediaType == types.OCILayerZStd {
			return true
		}
	}
	return false
}

// madeTarget resolves an image whose manifest m the import made.
func madeTarget(ctx context.Context, src blobSource, m v1.Manifest, plat v1.Platform) (*target, error) {
	data, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	t := &target{src: src, manifest: fetched{data: data, digest: sha256Of(data), mediaType: m.MediaType}, platform: plat}
	return t, t.resolveConfig(ctx)
}

// hashFile is the layer descriptor of the member p: its digest, size,
// and media type by the compression its first bytes show.
func (d *dirSource) hashFile(p string) (v1.Descriptor, error) {
	f, _, err := d.open(p)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer f.Close()
	hc := &hashCounter{r: f, h: sha256.New()}
	br := bufio.NewReaderSize(hc, 64<<10)
	head, _ := br.Peek(len(zstdMagic))
	if _, err := io.Copy(io.Discard, br); err != nil {
		return v1.Descriptor{}, fmt.Errorf("%s: %w", p, err)
	}
	return v1.Descriptor{MediaType: layerMediaType(sniff(head), false), Size: hc.n, Digest: hc.digest()}, nil
}

// layerMediaType is the media type of a layer compressed as c: Docker's
// unless oci (zstd has only OCI's).
func layerMediaType(c codec, oci bool) types.MediaType {
	switch {
	case c == zstandard:
		return types.OCILayerZStd
	case oci && c == gzipped:
		return types.OCILayer
	case oci:
		return types.OCIUncompressedLayer
	case c == gzipped:
		return types.DockerLayer
	}
	return types.DockerUncompressedLayer
}

// ociTargets resolves every image an OCI image layout's index.json
// lists (an index there is followed by the platform, as a pull does).
func ociTargets(ctx context.Context, src *dirSource, plat v1.Platform) ([]*target, error) {
	var layout struct {
		Version string `json:"imageLayoutVersion"`
	}
	data, err := src.readFile(ociLayoutFile, 4096)
	if err == nil {
		err = json.Unmarshal(data, &layout)
	}
	if err == nil && layout.Version != "1.0.0" {
		err = fmt.Errorf("imageLayoutVersion %q is not supported (only 1.0.0)", layout.Version)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ociLayoutFile, err)
	}
	if data, err = src.readFile("index.json", maxManifestBytes); err != nil {
		return nil, err
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var ts []*target
	for _, d := range idx.Manifests {
		if p := d.Platform; p != nil && (p.OS != plat.OS || p.Architecture != plat.Architecture) {
			continue // a multi-arch index.json: this entry is another platform's
		}
		t, err := ociTarget(ctx, src, d, plat)
		if err != nil {
			return nil, fmt.Errorf("index.json: %s: %w", d.Digest, err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// ociTarget resolves the image (or index) d of a layout's index.json.
func ociTarget(ctx context.Context, src blobSource, d v1.Descriptor, plat v1.Platform) (*target, error) {
	fetch := func(d v1.Descriptor) (fetched, error) {
		f, err := fetchDoc(ctx, src, "manifest", d, maxManifestBytes)
		if err == nil {
			f.mediaType, err = manifestMediaType(f.data)
		}
		return f, err
	}
	top, err := fetch(d)
	if err != nil {
		return nil, err
	}
	t := &target{src: src, manifest: top, platform: plat}
	if err := t.descend(ctx, fetch); err != nil {
		return nil, err
	}
	var names []string
	for _, k := range []string{annotationContainerName, annotationRefName} {
		if n := d.Annotations[k]; strings.ContainsAny(n, "/:") { // not a bare tag
			names = append(names, n)
		}
	}
	t.names = names // importFrom makes them store names
	return t, nil
}

// rootfsTargets makes a one-layer image of the root file system tarball
// at path (surveyed as sv): the file is the layer blob as it is, and the
// config is empty but for the platform, the layer's diffID and what
// opt's changes set; with changes, a message or RootFS (docker import)
// it is dated now, with a history entry of the message ("Imported from
// -" without one).
func rootfsTargets(ctx context.Context, path string, sv tarSurvey, plat v1.Platform, opt ImportOptions) ([]*target, error) {
	var conf v1.Config
	if err := instruction.Apply(&conf, opt.Changes); err != nil {
		return nil, err
	}
	doc := map[string]any{
		"architecture": plat.Architecture, "os": plat.OS, "config": conf,
		"rootfs": map[string]any{"type": "layers", "diff_ids": []v1.Hash{sv.diffID}},
	}
	if opt.RootFS || opt.Message != "" || len(opt.Changes) > 0 {
		now := v1.Time{Time: time.Now().UTC()}
		doc["created"] = now
		doc["history"] = []v1.History{{Created: now, Comment: cmp.Or(opt.Message, "Imported from -")}}
		if opt.Message != "" {
			doc["comment"] = opt.Message
		}
	}
	if plat.Variant != "" {
		doc["variant"] = plat.Variant
	}
	cfg, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfg)), Digest: sha256Of(cfg)},
		Layers: []v1.Descriptor{{MediaType: layerMediaType(sv.codec, true), Size: sv.size, Digest: sv.digest}}}
	src := memSource{docs: map[v1.Hash][]byte{m.Config.Digest: cfg}, next: fileSource{path: path, digest: sv.digest}}
	t, err := madeTarget(ctx, src, m, plat)
	if err != nil {
		return nil, err
	}
	return []*target{t}, nil
}
