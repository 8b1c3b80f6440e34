package image

import (
	"bytes"
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// resolveConfig parses t's manifest, fetches and verifies its config
// from t's source, and pairs each layer with its diffID.
func (t *target) resolveConfig(ctx context.Context) error {
	m, err := v1.ParseManifest(bytes.NewReader(t.manifest.data))
	if err != nil {
		return fmt.Errorf("manifest %s: %w", t.manifest.digest, err)
	}
	if !m.Config.MediaType.IsConfig() {
		return fmt.Errorf("manifest %s: config media type %q is not an image config", t.manifest.digest, m.Config.MediaType)
	}
	if t.config, err = fetchConfig(ctx, t.src, m.Config); err != nil {
		return err
	}
	if t.cfg, err = v1.ParseConfigFile(bytes.NewReader(t.config.data)); err != nil {
		return fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if err := checkPlatform(t); err != nil {
		return err
	}
	return pairLayers(t, m)
}

// fetchConfig fetches the config blob d from src: at most
// maxConfigBytes, exactly d.Size bytes, and d.Digest.
func fetchConfig(ctx context.Context, src blobSource, d v1.Descriptor) (fetched, error) {
	return fetchDoc(ctx, src, "config", d, maxConfigBytes)
}

// fetchDoc fetches the small blob d (what: "config", "manifest") from
// src: at most max bytes, exactly d.Size bytes, and d.Digest.
func fetchDoc(ctx context.Context, src blobSource, what string, d v1.Descriptor, max int64) (fetched, error) {
	if err := checkDigest(d.Digest); err != nil {
		return fetched{}, fmt.Errorf("%s: %w", what, err)
	}
	if d.Size < 0 || d.Size > max {
		return fetched{}, fmt.Errorf("%s %s: size %d is not within 0..%d", what, d.Digest, d.Size, max)
	}
	body, err := src.blob(ctx, d.Digest, d.Size)
	if err != nil {
		return fetched{}, err
	}
	defer body.Close()
	data, err := readAtMost(body, d.Size)
	if err != nil {
		return fetched{}, fmt.Errorf("%s %s: %w", what, d.Digest, err)
	}
	f := fetched{data: data, digest: sha256Of(data), mediaType: d.MediaType}
	if int64(len(data)) != d.Size || f.digest != d.Digest {
		return fetched{}, fmt.Errorf("%s %s: the source sent %d bytes with digest %s (want %d bytes): refused", what, d.Digest, len(data), f.digest, d.Size)
	}
	return f, nil
}

// checkPlatform refuses an image built for another OS or architecture,
// and records the image's platform.
func checkPlatform(t *target) error {
	cfg := t.cfg
	if cfg.OS != "" && cfg.OS != t.platform.OS || cfg.Architecture != "" && cfg.Architecture != t.platform.Architecture {
		return fmt.Errorf("image %s is for %s/%s, this host wants %s", t.manifest.digest, cfg.OS, cfg.Architecture, t.platform)
	}
	if cfg.Variant != "" {
		t.platform.Variant = cfg.Variant
	}
	return nil
}

// pairLayers checks that the config's rootfs lists one sha256 diffID per
// manifest layer and that each layer's media type is one the store can
// unpack, and fills t.layers.
func pairLayers(t *target, m *v1.Manifest) error {
	ids := t.cfg.RootFS.DiffIDs
	if t.cfg.RootFS.Type != "layers" || len(ids) != len(m.Layers) {
		return fmt.Errorf("image %s: config has rootfs %q with %d diff_ids for %d layers", t.manifest.digest, t.cfg.RootFS.Type, len(ids), len(m.Layers))
	}
	for i, d := range m.Layers {
		comp, err := compressionOf(d.MediaType)
		if err == nil {
			err = checkDigest(d.Digest)
		}
		if err == nil {
			err = checkDigest(ids[i])
		}
		if err == nil && d.Size < 0 {
			err = fmt.Errorf("negative size %d", d.Size)
		}
		if err != nil {
			return fmt.Errorf("image %s: layer %d (%s): %w", t.manifest.digest, i, d.Digest, err)
		}
		t.layers = append(t.layers, layerJob{desc: d, diffID: ids[i], comp: comp})
	}
	return nil
}
