package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"

	"github.com/cove-project/cove/internal/image/stored"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Bounds on the small documents of an image.
const (
	maxManifestBytes = 4 << 20
	maxConfigBytes   = 4 << 20
)

// manifestAccept are the manifest and index media types a pull accepts.
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2),
}, ",")

// fetched is a manifest, index or config whose digest has been computed
// from its bytes (and checked, where a digest was asked for).
type fetched struct {
	data      []byte
	digest    v1.Hash
	mediaType types.MediaType
}

// blobSource opens blobs by digest and stated size: a registry endpoint
// for a pull (client), an image archive or layout for an import. The
// caller bounds and verifies what it reads.
type blobSource interface {
	blob(ctx context.Context, d v1.Hash, size int64) (io.ReadCloser, error)
}

// target is a resolved pull or import: where its blobs come from, the
// verified documents, the layers to fetch (bottom first), and the names
// (canonical, as in names.json) and repository to record it under.
type target struct {
	src      blobSource
	names    []string
	repo     string
	index    *fetched
	manifest fetched
	config   fetched
	cfg      *v1.ConfigFile
	platform v1.Platform
	layers   []layerJob
}

// layerJob is one layer of the manifest with its diffID from the config.
type layerJob struct {
	desc   v1.Descriptor
	diffID v1.Hash
	comp   codec
	from   string // LayerRecord.From
}

// resolve finds ref on its mirrors, in order, then on its registry, and
// returns the first endpoint's verified manifest and config. The errors
// of all endpoints are joined when none has it.
func (s *Store) resolve(ctx context.Context, ref name.Reference, opt PullOptions) (*target, error) {
	var errs []error
	for _, repo := range s.endpoints(ref.Context()) {
		c, err := s.newClient(ctx, repo, opt.keychain())
		if err == nil {
			var t *target
			t, err = c.resolveOn(ctx, ref, opt.platform())
			if err == nil {
				return t, nil
			}
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// endpoints are the repositories to try for repo: its mirrors, then repo.
func (s *Store) endpoints(repo name.Repository) []name.Repository {
	var eps []name.Repository
	for _, m := range s.Registry(repo.RegistryStr()).Mirrors {
		host, prefix, _ := strings.Cut(m, "/")
		reg, err := name.NewRegistry(host)
		if err != nil {
			continue // validated when loaded
		}
		eps = append(eps, reg.Repo(path.Join(prefix, repo.RepositoryStr())))
	}
	return append(eps, repo)
}

// resolveOn resolves ref on c's endpoint: the manifest (through an index
// by the platform), the config, and the checks that tie them together.
func (c *client) resolveOn(ctx context.Context, ref name.Reference, plat v1.Platform) (*target, error) {
	top, err := c.fetchManifest(ctx, ref.Identifier(), -1)
	if err != nil {
		return nil, err
	}
	t := &target{src: c, names: []string{stored.Canonical(ref)}, repo: stored.RepoName(ref.Context()), manifest: top, platform: plat}
	err = t.descend(ctx, func(d v1.Descriptor) (fetched, error) {
		return c.fetchManifest(ctx, d.Digest.String(), d.Size)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// descend resolves t from its top manifest: an index is followed, by
// t's platform, to the image manifest fetch returns (and kept as t's
// index); then the config is fetched and checked.
func (t *target) descend(ctx context.Context, fetch func(v1.Descriptor) (fetched, error)) error {
	if top := t.manifest; top.mediaType.IsIndex() {
		d, err := pickPlatform(top, t.platform)
		if err != nil {
			return err
		}
		if t.manifest, err = fetch(d); err != nil {
			return err
		}
		t.index = &top
		if !t.manifest.mediaType.IsImage() {
			return fmt.Errorf("index %s: entry %s for %s is %s, not an image manifest", top.digest, d.Digest, t.platform, t.manifest.mediaType)
		}
	}
	return t.resolveConfig(ctx)
}

// fetchManifest fetches the manifest or index id (a tag or a digest),
// at most maxManifestBytes. A digest id must match the content, and size
// (unless negative) its length.
func (c *client) fetchManifest(ctx context.Context, id string, size int64) (fetched, error) {
	what := c.repo.String() + "@" + id
	if !strings.HasPrefix(id, "sha256:") {
		what = c.repo.String() + ":" + id
	}
	resp, err := c.get(ctx, c.url("manifests", id), manifestAccept)
	if err != nil {
		return fetched{}, fmt.Errorf("fetch manifest %s: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := readAtMost(resp.Body, maxManifestBytes)
	if err != nil {
		return fetched{}, fmt.Errorf("fetch manifest %s: %w", what, err)
	}
	f := fetched{data: data, digest: sha256Of(data)}
	if strings.HasPrefix(id, "sha256:") && f.digest.String() != id {
		return fetched{}, fmt.Errorf("manifest %s: the registry sent content whose digest is %s: refused", what, f.digest)
	}
	if size >= 0 && int64(len(data)) != size {
		return fetched{}, fmt.Errorf("manifest %s: %d bytes, the index says %d: refused", what, len(data), size)
	}
	if f.mediaType, err = manifestMediaType(data); err != nil {
		return fetched{}, fmt.Errorf("manifest %s: %w", what, err)
	}
	return f, nil
}

// readAtMost reads r to its end, refusing more than max bytes.
func readAtMost(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than the %d bytes allowed", max)
	}
	return data, nil
}

// sha256Of is the sha256 digest of data.
func sha256Of(data []byte) v1.Hash {
	sum := sha256.Sum256(data)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// hashOf is the digest h (a sha256) has summed.
func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// manifestMediaType is the media type a manifest or index states in its
// own body (never the unverified Content-Type header); an OCI document
// without one is told by its fields.
func manifestMediaType(data []byte) (types.MediaType, error) {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     types.MediaType `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return "", fmt.Errorf("not a manifest: %w", err)
	}
	if probe.SchemaVersion != 2 {
		return "", fmt.Errorf("schema version %d is not supported (only 2: OCI and Docker schema 2)", probe.SchemaVersion)
	}
	mt := probe.MediaType
	switch {
	case mt == "" && probe.Manifests != nil:
		mt = types.OCIImageIndex
	case mt == "" && probe.Config != nil:
		mt = types.OCIManifestSchema1
	}
	switch mt {
	case types.OCIImageIndex, types.OCIManifestSchema1, types.DockerManifestList, types.DockerManifestSchema2:
		return mt, nil
	}
	return "", fmt.Errorf("media type %q is not an image manifest or index", mt)
}

// pickPlatform is the index's image manifest for plat (OS and
// architecture; the variant too when plat names one).
func pickPlatform(idx fetched, plat v1.Platform) (v1.Descriptor, error) {
	im, err := v1.ParseIndexManifest(bytes.NewReader(idx.data))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("index %s: %w", idx.digest, err)
	}
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue
		}
		p := *d.Platform
		have = append(have, p.String())
		if p.OS == plat.OS && p.Architecture == plat.Architecture && (plat.Variant == "" || p.Variant == plat.Variant) {
			if err := checkDigest(d.Digest); err != nil {
				return v1.Descriptor{}, fmt.Errorf("index %s: %w", idx.digest, err)
			}
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("index %s has no image for %s (it has %v)", idx.digest, plat, have)
}

// checkDigest accepts only sha256 digests: the store is laid out by them.
func checkDigest(h v1.Hash) error {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return fmt.Errorf("digest %q is not sha256", h)
	}
	return nil
}
