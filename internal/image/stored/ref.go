package stored

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// ErrNoRegistry is wrapped by errors for a name without a registry host
// when no search registries are configured: cove never assumes docker.io.
var ErrNoRegistry = errors.New("the name has no registry host and no search registries are configured")

// LocalRegistry is the registry part of every imported or tagged image's
// name: "localhost/NAME:TAG". No pull ever asks a registry for it (a
// registry on this host is reached as "localhost:PORT"), so such an
// image is never taken for a registry's, nor replaced by one.
const LocalRegistry = "localhost"

// Candidates are the references s may mean: s itself when it names its
// registry ("host.example/…", "host:port/…", "localhost/…"), else s under
// each search registry in order. A missing tag means "latest".
func (s *Store) Candidates(ref string) ([]name.Reference, error) {
	if HasRegistry(ref) {
		r, err := name.ParseReference(ref)
		if err != nil {
			return nil, fmt.Errorf("image reference %q: %w", ref, err)
		}
		return []name.Reference{r}, nil
	}
	if len(s.reg.Search) == 0 {
		return nil, fmt.Errorf("image reference %q: %w (write it as REGISTRY/%s, or set search in %s)", ref, ErrNoRegistry, ref, DefaultRegistriesFile)
	}
	var refs []name.Reference
	for _, host := range s.reg.Search {
		r, err := name.ParseReference(ref, name.WithDefaultRegistry(host))
		if err != nil {
			return nil, fmt.Errorf("image reference %q: %w", ref, err)
		}
		refs = append(refs, r)
	}
	return refs, nil
}

// HasRegistry tells whether ref's first path component is a registry
// host, by Docker's rule: it contains "." or ":" or is "localhost".
func HasRegistry(ref string) bool {
	first, _, ok := strings.Cut(ref, "/")
	return ok && (first == LocalRegistry || strings.ContainsAny(first, ".:"))
}

// Canonical is r's name in the names index: "REGISTRY/REPO:TAG" or
// "REGISTRY/REPO@sha256:HEX".
func Canonical(r name.Reference) string {
	repo := RepoName(r.Context())
	if d, ok := r.(name.Digest); ok {
		return repo + "@" + d.DigestStr()
	}
	return repo + ":" + r.Identifier()
}

// RepoName is "REGISTRY/REPO".
func RepoName(r name.Repository) string {
	return r.RegistryStr() + "/" + r.RepositoryStr()
}
