package image

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/cove-project/cove/internal/image/stored"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/sys/unix"
)

// ErrLoginFailed is wrapped by Login's error when the registry refuses
// the credentials (401 or 403).
var ErrLoginFailed = errors.New("login failed")

// Credentials are a user's for one registry.
type Credentials struct {
	Registry string // host[:port], as in image names
	Username string
	Password string
}

// Login checks c against its registry and, when the registry accepts
// them, stores them in the auth file at authFile (DefaultAuthFile for
// cove login), where FileKeychain and so every pull finds them. The check
// is GET /v2/ with the credentials through go-containerregistry's
// transport, with reg's settings for the location (insecure, ca_file;
// nil: none): a registry with token auth first issues a token for them, one
// with basic auth gets them on the request; a 401 or 403 fails with
// ErrLoginFailed. A registry that asks for no credentials accepts any.
//
// The file has Docker's config.json format ("auths": {"HOST": {"auth":
// base64("USER:PASSWORD")}}); an entry for the same registry (under any
// key that means it) is replaced, everything else in the file kept. It is
// written atomically (a temporary file, fsynced, renamed), mode 0600,
// under an flock on its directory against a racing login or logout.
func Login(ctx context.Context, reg *Registries, authFile string, c Credentials) error {
	if err := stored.CheckHost(c.Registry); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if c.Username == "" || c.Password == "" {
		return fmt.Errorf("login to %s: a user name and a password are needed", c.Registry)
	}
	if err := verifyLogin(ctx, reg, c); err != nil {
		return fmt.Errorf("login to %s: %w", c.Registry, err)
	}
	entry := mustJSON(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))})
	return editAuthFile(authFile, func(auths map[string]json.RawMessage) error {
		dropAuths(auths, c.Registry)
		auths[c.Registry] = entry
		return nil
	})
}

// Logout removes the credentials for registry from the auth file at
// authFile (every key that means the registry), as Login writes it. It
// fails when there are none.
func Logout(authFile, registry string) error {
	if err := stored.CheckHost(registry); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if _, err := os.Stat(authFile); err != nil {
		return fmt.Errorf("logout from %s: not logged in (%w)", registry, err)
	}
	return editAuthFile(authFile, func(auths map[string]json.RawMessage) error {
		if !dropAuths(auths, registry) {
			return fmt.Errorf("logout from %s: not logged in (%s has no entry for it)", registry, authFile)
		}
		return nil
	})
}

// dropAuths deletes the entries of auths for registry, and tells whether
// there were any.
func dropAuths(auths map[string]json.RawMessage, registry string) bool {
	found := false
	for k := range auths {
		if authKey(k) == authKey(registry) {
			delete(auths, k)
			found = true
		}
	}
	return found
}

// verifyLogin sends GET /v2/ to c's registry with c's credentials.
func verifyLogin(ctx context.Context, reg *Registries, c Credentials) error {
	if reg == nil {
		reg = &Registries{}
	}
	set := reg.Settings(c.Registry)
	base, err := baseTransport(set)
	if err != nil {
		return err
	}
	var opts []name.Option
	if set.Insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRegistry(c.Registry, opts...)
	if err != nil {
		return err
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password})
	rt, err := transport.NewWithContext(ctx, r, auth, transport.NewUserAgent(base, "cove"), nil)
	if err != nil {
		return loginError(err, r.RegistryStr())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+r.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return loginError(err, r.RegistryStr())
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return loginError(err, r.RegistryStr())
	}
	return nil
}

// loginError marks a refusal of the credentials with ErrLoginFailed.
func loginError(err error, host string) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%w: the registry refused the credentials (%w)", ErrLoginFailed, err)
	}
	return plainHTTPHint(err, host)
}

// editAuthFile applies edit to the "auths" of the auth file at path
// (made if missing, with its directory) and writes the file back
// atomically, mode 0600, holding an flock on its directory. Other keys of
// the file are kept as they are; a file that is not JSON is left alone.
func editAuthFile(path string, edit func(map[string]json.RawMessage) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	defer d.Close() // releases the flock
	if err := flock(d, unix.LOCK_EX); err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	doc := map[string]json.RawMessage{}
	auths := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	if err == nil && len(data) > 0 {
		err = json.Unmarshal(data, &doc)
		if err == nil && doc["auths"] != nil {
			err = json.Unmarshal(doc["auths"], &auths)
		}
	}
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("credentials %s: %w", path, err)
	}
	if err := edit(auths); err != nil {
		return err
	}
	doc["auths"] = mustJSON(auths)
	out, err := json.MarshalIndent(doc, "", "\t")
	if err == nil {
		err = stored.WriteFileAtomic(dir, path, append(out, '\n'))
	}
	if err != nil {
		return fmt.Errorf("write credentials %s: %w", path, err)
	}
	return nil
}
