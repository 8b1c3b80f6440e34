package image

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The credentials authProxy accepts.
const (
	proxyUser     = "cove"
	proxyPassword = "s3cret"
	proxyToken    = "token-for-cove"
)

// authProxy puts auth in front of the real registry r, for the token
// flow Debian's docker-registry cannot serve without a token server, and
// for Basic auth beside the registry's own (htpasswdRegistry). With
// bearer, requests without the token get a Bearer challenge whose realm
// is the proxy's /token, which issues the token for proxyUser's basic
// credentials (the distribution token flow); else a Basic challenge.
// Authorized requests pass to the registry unchanged.
func authProxy(t *testing.T, r *testRegistry, bearer bool) string {
	t.Helper()
	backend := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: r.host})
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		user, pass, basic := req.BasicAuth()
		goodBasic := basic && user == proxyUser && pass == proxyPassword
		switch {
		case bearer && req.URL.Path == "/token" && goodBasic:
			_ = json.NewEncoder(w).Encode(map[string]string{"token": proxyToken})
		case bearer && req.URL.Path == "/token":
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		case bearer && req.Header.Get("Authorization") != "Bearer "+proxyToken:
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+srv.Listener.Addr().String()+`/token",service="cove-test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}`, http.StatusUnauthorized)
		case !bearer && !goodBasic:
			w.Header().Set("WWW-Authenticate", `Basic realm="cove-test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		default:
			req.Header.Del("Authorization")
			backend.ServeHTTP(w, req)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// insecure are registry settings allowing plain HTTP to host.
func insecure(host string) *Registries {
	return &Registries{Registry: []Registry{{Location: host, Insecure: true}}}
}

// readAuths reads the auths of an auth file, and checks its mode.
func readAuths(t *testing.T, path string) map[string]map[string]string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %o, want 0600", path, fi.Mode().Perm())
	}
	var doc struct {
		Auths map[string]map[string]string `json:"auths"`
	}
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Auths
}

// TestLoginWithAuth logs in to the registry behind basic auth and
// behind token auth (the test's proxy), and to the registry checking an
// htpasswd file itself: wrong credentials fail with ErrLoginFailed and
// write nothing; right ones are stored, an anonymous pull is refused and
// a pull with FileKeychain of the file succeeds.
func TestLoginWithAuth(t *testing.T) {
	needRoot(t)
	r := startRegistry(t, false)
	img, _ := threeLayerImage(t, true, ociGzip)
	r.push(t, "test/app:1", img)
	for _, c := range []struct{ what, host string }{
		{"basic auth (proxy)", authProxy(t, r, false)},
		{"token auth (proxy)", authProxy(t, r, true)},
		{"htpasswd (the registry's own)", htpasswdRegistry(t, r, proxyUser, proxyPassword)},
	} {
		what, host := c.what, c.host
		file := filepath.Join(t.TempDir(), "cove", "auth.json")
		err := Login(context.Background(), insecure(host), file, Credentials{Registry: host, Username: proxyUser, Password: "wrong"})
		wantErr(t, err, "login failed", "refused the credentials")
		if !errors.Is(err, ErrLoginFailed) {
			t.Fatalf("%s: login with a wrong password: %v, want ErrLoginFailed", what, err)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Errorf("%s: a failed login wrote %s: %v", what, file, err)
		}
		if err := Login(context.Background(), insecure(host), file, Credentials{Registry: host, Username: proxyUser, Password: proxyPassword}); err != nil {
			t.Fatalf("%s: login: %v", what, err)
		}
		if a := readAuths(t, file)[host]["auth"]; a != "Y292ZTpzM2NyZXQ=" { // base64("cove:s3cret")
			t.Errorf("%s: stored auth %q", what, a)
		}
		s := newStore(t, insecure(host))
		_, err = s.Pull(context.Background(), host+"/test/app:1", PullOptions{Keychain: testKeychain})
		wantErr(t, err, "UNAUTHORIZED")
		if _, err := s.Pull(context.Background(), host+"/test/app:1", PullOptions{Keychain: FileKeychain(file)}); err != nil {
			t.Errorf("%s: pull with the stored credentials: %v", what, err)
		}
	}
}

// TestLoginLogoutFile logs in to the registry without auth (GET /v2/
// answers 200: any credentials do) and checks the file: mode 0600, the
// entry replaced on a second login (also one Docker wrote under
// https://HOST/v1/), other registries' entries and other keys kept;
// logout removes it, and a second logout fails. A registry that does not
// answer fails the login.
func TestLoginLogoutFile(t *testing.T) {
	r := startRegistry(t, false)
	file := filepath.Join(t.TempDir(), "auth.json")
	other := `{"auths":{"other.example":{"auth":"b3RoZXI6eA=="},"https://` + r.host + `/v1/":{"auth":"b2xkOm9sZA=="}},"credHelpers":{"x.example":"pass"}}`
	if err := os.WriteFile(file, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, pass := range []string{"one", "two"} {
		if err := Login(context.Background(), insecure(r.host), file, Credentials{Registry: r.host, Username: "u", Password: pass}); err != nil {
			t.Fatal(err)
		}
	}
	auths := readAuths(t, file)
	if len(auths) != 2 || auths[r.host]["auth"] != "dTp0d28=" || auths["other.example"]["auth"] != "b3RoZXI6eA==" { // base64("u:two")
		t.Errorf("auths after two logins: %v", auths)
	}
	if data, _ := os.ReadFile(file); !strings.Contains(string(data), `"x.example": "pass"`) {
		t.Errorf("credHelpers lost:\n%s", data)
	}
	if err := Logout(file, r.host); err != nil {
		t.Fatal(err)
	}
	if auths := readAuths(t, file); len(auths) != 1 || auths["other.example"] == nil {
		t.Errorf("auths after logout: %v", auths)
	}
	wantErr(t, Logout(file, r.host), "not logged in")
	err := Login(context.Background(), insecure("127.0.0.1:1"), file, Credentials{Registry: "127.0.0.1:1", Username: "u", Password: "p"})
	wantErr(t, err, "127.0.0.1:1")
	if errors.Is(err, ErrLoginFailed) {
		t.Errorf("a registry that does not answer is not a refusal: %v", err)
	}
	wantErr(t, Login(context.Background(), nil, file, Credentials{Registry: "https://x/", Username: "u", Password: "p"}), "not a registry host")
}

// TestInsecureSkipsOnlyTheLocation skips the certificate check of the
// location listed insecure alone: another server the transport reaches
// (a token realm, a redirect) must still have a valid certificate.
func TestInsecureSkipsOnlyTheLocation(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://") // 127.0.0.1:PORT, a self-signed certificate
	for location, ok := range map[string]bool{addr: true, "registry.example:5000": false} {
		tr, err := baseTransport(Registry{Location: location, Insecure: true})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
		resp, err := tr.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		if (err == nil) != ok {
			t.Errorf("location %s listed insecure: a request to %s gave %v", location, addr, err)
		}
	}
}
