package image

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultAuthFile holds cove's own registry credentials (cove login).
const DefaultAuthFile = "/etc/cove/auth.json"

// DefaultKeychain looks up credentials in DefaultAuthFile first, then in
// the usual Docker and podman places ($DOCKER_CONFIG/config.json,
// ~/.docker/config.json, $REGISTRY_AUTH_FILE, credential helpers).
func DefaultKeychain() authn.Keychain {
	return authn.NewMultiKeychain(FileKeychain(DefaultAuthFile), authn.DefaultKeychain)
}

// FileKeychain reads credentials from a file in the format of Docker's
// config.json ("auths": {"host[:port]": {"auth": base64("user:pass")}} or
// "username"/"password"/"identitytoken"). The file is read at each
// lookup; a missing file or host means anonymous.
func FileKeychain(path string) authn.Keychain { return fileKeychain(path) }

type fileKeychain string

// Resolve implements authn.Keychain.
func (k fileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	data, err := os.ReadFile(string(k))
	if os.IsNotExist(err) {
		return authn.Anonymous, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	var f struct {
		Auths map[string]authn.AuthConfig `json:"auths"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("credentials %s: %w", k, err)
	}
	want := authKey(target.RegistryStr())
	for key, cfg := range f.Auths {
		if authKey(key) == want {
			return authn.FromConfig(cfg), nil
		}
	}
	return authn.Anonymous, nil
}

// authKey reduces a config.json key ("https://host/v1/", "host:5000") to
// the registry host, with Docker Hub's aliases made one.
func authKey(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key, _, _ = strings.Cut(key, "/")
	switch key {
	case "docker.io", "registry-1.docker.io":
		return name.DefaultRegistry
	}
	return key
}
