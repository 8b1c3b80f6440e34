package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/tests/registry"
)

// needRegistry skips a test that pulls from a real registry unless it can:
// unpacking layers needs root, and the registry is Debian's
// docker-registry. Under CI it fails instead.
func needRegistry(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "unpacking layers needs root (chown, mknod, trusted.* xattrs)"
	} else if _, err := os.Stat(registry.Binary); err != nil {
		why = "no " + registry.Binary + " (apt-get install docker-registry, or run scripts/deps)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// pushed is a small image pushed to a test registry.
type pushed struct {
	ref                    string // ADDR/REPO:TAG
	digest, config, diffID v1.Hash
	layer                  v1.Hash // the compressed layer's digest
}

// pushImage builds an image of one layer holding a file with content,
// with config cfg, and pushes it to reg as repoTag.
func pushImage(t *testing.T, reg *registry.Registry, repoTag, content string, cfg v1.Config) pushed {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := registry.DirLayer(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.Image(cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	p := pushed{}
	if p.ref, err = reg.Push(repoTag, img); err != nil {
		t.Fatal(err)
	}
	p.digest, _ = img.Digest()
	p.config, _ = img.ConfigName()
	p.diffID, _ = l.DiffID()
	p.layer, _ = l.Digest()
	return p
}

// startRegistry starts a registry storing under dir, stopped when t ends.
func startRegistry(t *testing.T, dir string) *registry.Registry {
	t.Helper()
	reg, err := registry.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Close)
	return reg
}

// openStore opens a store in a temporary directory that may use plain
// HTTP to addr, with the search registries given.
func openStore(t *testing.T, addr string, search ...string) *image.Store {
	t.Helper()
	st, err := image.Open(t.TempDir(), &image.Registries{Search: search, Registry: []image.Registry{{Location: addr, Insecure: true}}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// usesBackend is the fake backend with the image uses given.
type usesBackend struct {
	fakeBackend
	uses []ImageUse
}

func (b usesBackend) ImageUses(context.Context) ([]ImageUse, error) { return b.uses, nil }

// imageCall answers one request to a server with store st and backend b,
// for a caller of role r.
func imageCall(t *testing.T, st *image.Store, b Backend, r role, method, target string, h http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	req = req.WithContext(withPeer(context.Background(), peer{known: true, uid: 0, role: r}))
	rec := httptest.NewRecorder()
	NewServer(b, Options{Images: func() (*image.Store, error) { return st, nil }, Containers: t.TempDir()}).ServeHTTP(rec, req)
	return rec
}

// messages reads a pull's stream: every line must be one JSON object.
func messages(t *testing.T, body string) []dockerMessage {
	t.Helper()
	var out []dockerMessage
	for _, line := range strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n") {
		var m dockerMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stream line %q: %v\n%s", line, err, body)
		}
		out = append(out, m)
	}
	return out
}

// hasStatus reports whether ms has a message with status and id.
func hasStatus(ms []dockerMessage, status, id string) bool {
	return slices.ContainsFunc(ms, func(m dockerMessage) bool { return m.Status == status && m.ID == id })
}

// TestDockerPull: a pull streams Docker's progress messages (the layer by
// the 12 digits of its digest, the digest, the status), and the image
// then shows in the list, in inspect with its config, and in info's
// count; a second pull finds every layer and says the image is up to
// date.
func TestDockerPull(t *testing.T) {
	needRegistry(t)
	reg := startRegistry(t, t.TempDir())
	cfg := v1.Config{Env: []string{"PATH=/bin", "GREETING=hi"}, Cmd: []string{"/bin/web", "-p", "80"}, WorkingDir: "/srv",
		Labels: map[string]string{"org.example.team": "web"}, ExposedPorts: map[string]struct{}{"80/tcp": {}}}
	noise := make([]byte, 600<<10) // incompressible: the store reports bytes every 256 KiB
	rand.Read(noise)
	p := pushImage(t, reg, "app/web:1.4", string(noise), cfg)
	st := openStore(t, reg.Addr)
	repo := strings.TrimSuffix(p.ref, ":1.4")
	rec := imageCall(t, st, fakeBackend{}, roleRoot, "POST", "/v1.41/images/create?fromImage="+repo+"&tag=1.4", nil)
	ms := messages(t, rec.Body.String())
	layer := p.layer.Hex[:12]
	n := len(ms)
	if rec.Code != 200 || ms[0] != (dockerMessage{Status: "Pulling from app/web", ID: "1.4"}) ||
		!hasStatus(ms, "Pull complete", layer) || !hasStatus(ms, "Download complete", layer) ||
		ms[n-2].Status != "Digest: "+p.digest.String() || ms[n-1].Status != "Status: Downloaded newer image for "+p.ref {
		t.Fatalf("pull: %d\n%s", rec.Code, rec.Body)
	}
	i := slices.IndexFunc(ms, func(m dockerMessage) bool { return m.Status == "Downloading" && m.ProgressDetail.Current > 0 })
	if i < 0 || ms[i].ProgressDetail.Total < 600<<10 || !strings.HasPrefix(ms[i].Progress, "[=") {
		t.Errorf("pull: no Downloading message with the bytes:\n%s", rec.Body)
	}
	rec = imageCall(t, st, fakeBackend{}, roleRoot, "POST", "/images/create?fromImage="+p.ref, nil)
	if ms := messages(t, rec.Body.String()); !hasStatus(ms, "Already exists", layer) || ms[len(ms)-1].Status != "Status: Image is up to date for "+p.ref {
		t.Errorf("second pull:\n%s", rec.Body)
	}
	checkListed(t, st, p)
	checkInspected(t, st, p, cfg)
	if rec := imageCall(t, st, fakeBackend{}, roleMember, "GET", "/info", nil); !strings.Contains(rec.Body.String(), `"Images":1,`) {
		t.Errorf("info after a pull: %s", rec.Body)
	}
}

// checkListed: GET /images/json shows the pulled image with Docker's ID
// (the config digest), its tag and digest, and the filters select it.
func checkListed(t *testing.T, st *image.Store, p pushed) {
	t.Helper()
	rec := imageCall(t, st, fakeBackend{}, roleMember, "GET", "/v1.41/images/json", nil)
	var got []dockerImageSummary
	json.Unmarshal(rec.Body.Bytes(), &got)
	repo := strings.TrimSuffix(p.ref, ":1.4")
	if rec.Code != 200 || len(got) != 1 || got[0].ID != p.config.String() || !slices.Equal(got[0].RepoTags, []string{p.ref}) ||
		!slices.Equal(got[0].RepoDigests, []string{repo + "@" + p.digest.String()}) || got[0].Size <= 0 ||
		got[0].Created <= 0 || got[0].Labels["org.example.team"] != "web" {
		t.Errorf("images: %d %s", rec.Code, rec.Body)
	}
	for filter, want := range map[string]int{
		`{"reference":["` + repo + `"]}`: 1, `{"reference":["` + p.ref + `"]}`: 1, `{"reference":["127.0.0.1:*/app/*"]}`: 1,
		`{"reference":["other.example/web"]}`: 0, `{"dangling":["true"]}`: 0, `{"label":["org.example.team=web"]}`: 1,
		`{"label":["org.example.team=db"]}`: 0,
	} {
		rec := imageCall(t, st, fakeBackend{}, roleMember, "GET", "/images/json?filters="+urlQuery(filter), nil)
		var got []dockerImageSummary
		if json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != 200 || len(got) != want {
			t.Errorf("images with filters %s: %d %s, want %d images", filter, rec.Code, rec.Body, want)
		}
	}
}

// urlQuery escapes s for a query.
func urlQuery(s string) string {
	return strings.NewReplacer(`"`, "%22", "{", "%7B", "}", "%7D", "[", "%5B", "]", "%5D", "*", "%2A").Replace(s)
}

// checkInspected: GET /images/NAME/json, by name or by a prefix of the
// Docker ID, gives the image config's fields and its layers' diffIDs.
func checkInspected(t *testing.T, st *image.Store, p pushed, cfg v1.Config) {
	t.Helper()
	for _, name := range []string{p.ref, p.config.Hex[:12], p.config.String(), p.digest.Hex[:12]} {
		rec := imageCall(t, st, fakeBackend{}, roleMember, "GET", "/v1.41/images/"+name+"/json", nil)
		var got dockerImageInspect
		json.Unmarshal(rec.Body.Bytes(), &got)
		c := got.Config
		if rec.Code != 200 || got.ID != p.config.String() || !slices.Equal(c.Env, cfg.Env) || !slices.Equal(c.Cmd, cfg.Cmd) ||
			c.WorkingDir != "/srv" || len(c.ExposedPorts) != 1 || got.Os != "linux" || got.RootFS.Type != "layers" ||
			!slices.Equal(got.RootFS.Layers, []string{p.diffID.String()}) || got.GraphDriver.Data["LowerDir"] == "" {
			t.Errorf("inspect %s: %d %s", name, rec.Code, rec.Body)
		}
	}
	if rec := imageCall(t, st, fakeBackend{}, roleMember, "GET", "/images/"+p.ref+"x/json", nil); rec.Code != 404 ||
		rec.Body.String() != `{"message":"No such image: `+p.ref+`x"}`+"\n" {
		t.Errorf("inspect of a missing image: %d %s", rec.Code, rec.Body)
	}
}

// TestDockerRemoveImage: removal needs root; an image a workload uses is
// refused (409) unless forced; removal untags and deletes, after which
// the image is gone from the list and inspect.
func TestDockerRemoveImage(t *testing.T) {
	needRegistry(t)
	reg := startRegistry(t, t.TempDir())
	p := pushImage(t, reg, "app/db:2", "db", v1.Config{Cmd: []string{"/bin/db"}})
	st := openStore(t, reg.Addr)
	if _, err := st.Pull(context.Background(), p.ref, image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	used := usesBackend{uses: []ImageUse{{Workload: "db", Ref: p.ref}}}
	target := "/v1.41/images/" + p.ref
	if rec := imageCall(t, st, used, roleMember, "DELETE", target, nil); rec.Code != 403 {
		t.Errorf("delete as a member: %d %s", rec.Code, rec.Body)
	}
	for _, name := range []string{p.ref, p.config.Hex[:12]} {
		if rec := imageCall(t, st, used, roleRoot, "DELETE", "/images/"+name, nil); rec.Code != 409 || !strings.Contains(rec.Body.String(), "is used by workload db") {
			t.Errorf("delete %s of a used image: %d %s", name, rec.Code, rec.Body)
		}
	}
	rec := imageCall(t, st, used, roleRoot, "DELETE", target+"?force=1", nil)
	want := `[{"Untagged":"` + p.ref + `"},{"Deleted":"` + p.config.String() + `"}]` + "\n"
	if rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("forced delete: %d %s, want %s", rec.Code, rec.Body, want)
	}
	if rec := imageCall(t, st, used, roleMember, "GET", "/images/json", nil); rec.Body.String() != "[]\n" {
		t.Errorf("images after delete: %s", rec.Body)
	}
	if rec := imageCall(t, st, used, roleMember, "GET", target+"/json", nil); rec.Code != 404 {
		t.Errorf("inspect after delete: %d %s", rec.Code, rec.Body)
	}
	if rec := imageCall(t, st, used, roleRoot, "DELETE", target, nil); rec.Code != 404 {
		t.Errorf("second delete: %d %s", rec.Code, rec.Body)
	}
}

// TestDockerPruneImages: a prune keeps what workloads use and, by
// default, every image with a name; dangling=false removes the unused
// named ones, with their layers.
func TestDockerPruneImages(t *testing.T) {
	needRegistry(t)
	reg := startRegistry(t, t.TempDir())
	a := pushImage(t, reg, "app/a:1", "a", v1.Config{})
	b := pushImage(t, reg, "app/b:1", "b", v1.Config{})
	st := openStore(t, reg.Addr)
	for _, p := range []pushed{a, b} {
		if _, err := st.Pull(context.Background(), p.ref, image.PullOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	used := usesBackend{uses: []ImageUse{{Workload: "a", Ref: a.ref}}}
	if rec := imageCall(t, st, used, roleRoot, "POST", "/images/prune", nil); rec.Body.String() != `{"ImagesDeleted":[],"SpaceReclaimed":0}`+"\n" {
		t.Errorf("prune of dangling images: %d %s", rec.Code, rec.Body)
	}
	rec := imageCall(t, st, used, roleRoot, "POST", "/images/prune?filters="+urlQuery(`{"dangling":["false"]}`), nil)
	var got dockerPruneReport
	json.Unmarshal(rec.Body.Bytes(), &got)
	want := []dockerDeleted{{Untagged: b.ref}, {Deleted: b.config.String()}}
	if rec.Code != 200 || !slices.Equal(got.ImagesDeleted, want) || got.SpaceReclaimed <= 0 {
		t.Errorf("prune with dangling=false: %d %s", rec.Code, rec.Body)
	}
	if recs, _ := st.List(); len(recs) != 1 || recs[0].Digest != a.digest {
		t.Errorf("after prune: %+v", recs)
	}
}

// TestDockerPullRefused: a name without a registry, as the docker CLI
// sends a short name or a client sends Docker Hub's form of one, is
// refused before any connection (the store has no search registries);
// with a search registry, Docker Hub's form means the short name there,
// never docker.io. A missing image is 404 before the stream starts.
func TestDockerPullRefused(t *testing.T) {
	st, err := image.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"web", "docker.io/library/web", "index.docker.io/library/web", "docker.io/team/web"} {
		rec := imageCall(t, st, fakeBackend{}, roleRoot, "POST", "/v1.41/images/create?fromImage="+from+"&tag=1", nil)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "cove does not assume docker.io") ||
			!strings.Contains(rec.Body.String(), "no registry host") || strings.Contains(rec.Body.String(), "Pulling") {
			t.Errorf("pull %s: %d %s", from, rec.Code, rec.Body)
		}
	}
	needRegistry(t)
	reg := startRegistry(t, t.TempDir())
	p := pushImage(t, reg, "web:1", "web", v1.Config{})
	st = openStore(t, reg.Addr, reg.Addr)
	rec := imageCall(t, st, fakeBackend{}, roleRoot, "POST", "/images/create?fromImage=docker.io/library/web&tag=1", nil)
	if ms := messages(t, rec.Body.String()); rec.Code != 200 || ms[len(ms)-2].Status != "Digest: "+p.digest.String() {
		t.Errorf("pull of docker.io/library/web with search registry %s: %d %s", reg.Addr, rec.Code, rec.Body)
	}
	rec = imageCall(t, st, fakeBackend{}, roleRoot, "POST", "/images/create?fromImage="+reg.Addr+"/nope&tag=1", nil)
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), "nope") {
		t.Errorf("pull of a missing image: %d %s", rec.Code, rec.Body)
	}
}

// TestDockerPullStreamError: a failure after the stream started (a layer
// blob that does not match its digest) ends it with Docker's error
// message, and nothing is stored.
func TestDockerPullStreamError(t *testing.T) {
	needRegistry(t)
	dir := t.TempDir()
	reg := startRegistry(t, dir)
	p := pushImage(t, reg, "app/bad:1", strings.Repeat("x", 1000), v1.Config{})
	blob := filepath.Join(dir, "data/docker/registry/v2/blobs/sha256", p.layer.Hex[:2], p.layer.Hex, "data")
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, reg.Addr)
	rec := imageCall(t, st, fakeBackend{}, roleRoot, "POST", "/images/create?fromImage="+p.ref, nil)
	ms := messages(t, rec.Body.String())
	last := ms[len(ms)-1]
	if rec.Code != 200 || ms[0].Status != "Pulling from app/bad" || last.Error == "" || last.ErrorDetail == nil ||
		last.ErrorDetail.Message != last.Error || !strings.Contains(last.Error, p.layer.String()) {
		t.Errorf("pull of a corrupt layer: %d\n%s", rec.Code, rec.Body)
	}
	if recs, _ := st.List(); len(recs) != 0 {
		t.Errorf("stored after a failed pull: %+v", recs)
	}
}

// TestDockerPullAuth: the credentials of X-Registry-Auth go to the
// registry it names; a header without credentials means the default
// keychain (here: none, so the registry's 401 stands).
func TestDockerPullAuth(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(t.TempDir(), "auth.json"))
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		seen = append(seen, auth)
		mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	st := openStore(t, addr)
	target := "/images/create?fromImage=" + addr + "/app&tag=1"
	header := func(js string) http.Header {
		return http.Header{"X-Registry-Auth": {base64.URLEncoding.EncodeToString([]byte(js))}}
	}
	rec := imageCall(t, st, fakeBackend{}, roleRoot, "POST", target, header(`{"username":"u","password":"p","serveraddress":"`+addr+`"}`))
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p"))
	if rec.Code != 404 || len(seen) == 0 || seen[0] != basic {
		t.Errorf("pull with credentials: %d %s; the registry saw %q", rec.Code, rec.Body, seen)
	}
	seen = nil
	rec = imageCall(t, st, fakeBackend{}, roleRoot, "POST", target, header(`{}`))
	if rec.Code < 400 || len(seen) != 0 {
		t.Errorf("pull without credentials: %d %s; the registry saw %q", rec.Code, rec.Body, seen)
	}
}

// TestProgressBar: Docker's bar and sizes.
func TestProgressBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		want        string
	}{
		{0, 3400000, "[>                                                  ]       0B/3.4MB"},
		{1234567, 3400000, "[==================>                                ]  1.235MB/3.4MB"},
		{3400000, 3400000, "[==================================================>]    3.4MB/3.4MB"},
		{999, 0, "    999B"},
	} {
		if got := progressBar(tc.done, tc.total); got != tc.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}

// TestRegistryAuth: X-Registry-Auth's credentials (base64url, padded or
// not) apply to the registry of its server address only; a header
// without credentials, or none, means the default keychain.
func TestRegistryAuth(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	js := `{"username":"u","password":"p","serveraddress":"https://r.example:5000/v1/"}`
	for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding} {
		kc, err := registryAuth(enc.EncodeToString([]byte(js)))
		if err != nil || kc == nil {
			t.Fatalf("registryAuth: %v, %v", kc, err)
		}
		for host, want := range map[string]string{"r.example:5000": "u", "other.example": ""} {
			reg, _ := name.NewRegistry(host)
			a, err := kc.Resolve(reg)
			if err != nil {
				t.Fatal(err)
			}
			if cfg, _ := a.Authorization(); cfg.Username != want {
				t.Errorf("credentials for %s: %+v, want user %q", host, cfg, want)
			}
		}
	}
	for _, h := range []string{"", base64.URLEncoding.EncodeToString([]byte(`{"serveraddress":"r.example"}`))} {
		if kc, err := registryAuth(h); kc != nil || err != nil {
			t.Errorf("registryAuth(%q) = %v, %v; want the default keychain", h, kc, err)
		}
	}
}

// TestHistoryOf: an image's history is its config's steps, newest first,
// a layer's step with that layer's size and an empty one's with 0; the
// newest has the image's ID and tags, the others "<missing>"; an image
// without history has none.
func TestHistoryOf(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := image.ImageRecord{Names: []string{"r.example/app:1"}, ConfigDigest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("c", 64)},
		Layers: []image.LayerRecord{{Size: 100}, {Size: 200}}}
	rec.Config.History = []v1.History{
		{Created: v1.Time{Time: created}, CreatedBy: "ADD rootfs /"},
		{CreatedBy: "ENV A=b", EmptyLayer: true},
		{CreatedBy: "COPY app /app", Comment: "c"},
	}
	got := historyOf(rec)
	want := []dockerHistoryItem{
		{ID: "sha256:" + strings.Repeat("c", 64), CreatedBy: "COPY app /app", Tags: []string{"r.example/app:1"}, Size: 200, Comment: "c"},
		{ID: "<missing>", CreatedBy: "ENV A=b"},
		{ID: "<missing>", Created: created.Unix(), CreatedBy: "ADD rootfs /", Size: 100},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("historyOf:\n%+v\nwant\n%+v", got, want)
	}
	if got := historyOf(image.ImageRecord{}); got == nil || len(got) != 0 {
		t.Errorf("the history of an image without one: %#v, want []", got)
	}
}
