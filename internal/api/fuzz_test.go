package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/supervisor"
)

// fakeBackend is an in-memory Backend for the request-decoding tests and
// the fuzz target only: it knows workloads "web" (a running container)
// and "vm1" (a stopped VM) and never fails otherwise. Real operations are
// tested against systemd in tests/api_test.go.
type fakeBackend struct{}

func (fakeBackend) List(context.Context) ([]Workload, error) {
	return []Workload{fakeWorkload("web"), fakeWorkload("vm1")}, nil
}

func (f fakeBackend) ListStates(ctx context.Context) ([]Workload, error) { return f.List(ctx) }

func (fakeBackend) Status(_ context.Context, name string) (Workload, error) {
	if name != "web" && name != "vm1" {
		return Workload{}, fmt.Errorf("status of cove-%s.service: %w", name, supervisor.ErrNotFound)
	}
	return fakeWorkload(name), nil
}

func (f fakeBackend) Start(ctx context.Context, name string) error   { return f.known(ctx, name) }
func (f fakeBackend) Stop(ctx context.Context, name string) error    { return f.known(ctx, name) }
func (f fakeBackend) Restart(ctx context.Context, name string) error { return f.known(ctx, name) }
func (f fakeBackend) Remove(ctx context.Context, name string) error  { return f.known(ctx, name) }
func (f fakeBackend) Pause(ctx context.Context, name string) error   { return f.known(ctx, name) }
func (f fakeBackend) Unpause(ctx context.Context, name string) error { return f.known(ctx, name) }

func (f fakeBackend) Kill(ctx context.Context, name string, _ syscall.Signal) error {
	return f.known(ctx, name)
}

func (f fakeBackend) Logs(ctx context.Context, name string, _ supervisor.LogOptions, w io.Writer) error {
	io.WriteString(w, "line one\nline two\n")
	return nil
}

func (fakeBackend) Diff(context.Context, Sources) (declared.Plan, error) {
	return declared.Plan{{Name: "web", Kind: declared.Unchanged}}, nil
}

func (fakeBackend) Apply(_ context.Context, _ Sources, log io.Writer) (declared.Plan, error) {
	io.WriteString(log, "added web\n")
	return declared.Plan{{Name: "web", Kind: declared.Added}}, nil
}

// ImageUses: web uses the image registry.example/web:1 (which the
// request tests' empty store does not have).
func (fakeBackend) ImageUses(context.Context) ([]ImageUse, error) {
	return []ImageUse{{Workload: "web", Ref: "registry.example/web:1"}}, nil
}

// known fails for workloads other than web and vm1.
func (f fakeBackend) known(ctx context.Context, name string) error {
	_, err := f.Status(ctx, name)
	return err
}

// fakeWorkload is web (running container) or anything else (stopped VM).
func fakeWorkload(name string) Workload {
	w := Workload{Workload: supervisor.Workload{Name: name, Unit: "cove-" + name + ".service", Kind: "vm", ActiveState: "inactive", SubState: "dead"}}
	if name == "web" {
		w.Kind, w.ActiveState, w.SubState, w.MainPID, w.Started = "container", "active", "running", 42, time.Now().Add(-time.Minute)
	}
	return w
}

// serve answers raw (an HTTP/1.1 request) as the server would for a
// caller of role r; ok is false if raw is not a request.
func serve(t testing.TB, raw []byte, r role) (*httptest.ResponseRecorder, bool) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, false
	}
	req = req.WithContext(withPeer(context.Background(), peer{known: true, uid: 1000, role: r}))
	rec := httptest.NewRecorder()
	NewServer(fakeBackend{}, testOptions(t)).ServeHTTP(rec, req)
	return rec, true
}

// testOptions are a server's options with everything it keeps on disk
// in temporary directories: an empty image store, no container records,
// no host settings, and no network but the default one, without leases.
func testOptions(t testing.TB) Options {
	dir := t.TempDir()
	return Options{Self: "/usr/bin/cove", Images: emptyStore(t), Containers: filepath.Join(dir, "created"), Settings: filepath.Join(dir, "cove.toml"),
		Networks: network.Lookup{Catalog: network.Catalog{Dir: filepath.Join(dir, "networks")}, Leases: network.Leases{Root: filepath.Join(dir, "leases")},
			Ports: network.PortClaims{Root: filepath.Join(dir, "ports")}}}
}

// emptyStore opens an empty image store in a temporary directory, with
// no registry settings.
func emptyStore(t testing.TB) func() (*image.Store, error) {
	dir := t.TempDir()
	return func() (*image.Store, error) { return image.Open(dir, nil) }
}

// FuzzRequest feeds arbitrary requests to the router and decoders: no
// panic, no 500 (the fake backend never fails), every error a 4xx or
// 501 with a JSON body.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{
		"GET /v1/workloads HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/workloads/web/stop HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1/workloads/web/logs?follow=1&lines=3 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 55\r\n\r\n{\"specs\":[{\"file\":\"a.toml\",\"content\":\"version = 1\\n\"}]}",
		"POST /v1/validate?file=a.toml HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nversion = 1",
		"POST /v1/apply HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{\"specs\":[{\"file\":\"../x\",\"content\":\"\"}]}",
		"POST /v1/diff HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n{\"prune\":true}",
		"GET /v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22cove.kind%3Dvm%22%5D%7D HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /containers/web/logs?stdout=1&tail=5 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1.41/containers/a3/json HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /_ping HTTP/1.1\r\nHost: x\r\n\r\n",
		"DELETE /v1/workloads/BAD%20NAME HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1.41/containers/web/kill?signal=HUP HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1.41/images/json?filters=%7B%22reference%22%3A%5B%22r.example%2F*%22%5D%7D HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /v1.41/images/127.0.0.1:5000/app/web:1.4/json HTTP/1.1\r\nHost: x\r\n\r\n",
		"DELETE /v1.41/images/sha256:0a1b?force=1 HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1.41/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(seed), uint8(roleRoot))
	}
	f.Fuzz(func(t *testing.T, raw []byte, r uint8) {
		if bytes.Contains(raw, []byte("images/create")) {
			return // a pull goes to the network (dockerimages_test.go pulls from a registry)
		}
		rec, ok := serve(t, raw, role(r%3))
		if !ok {
			return
		}
		code := rec.Code
		if code == http.StatusInternalServerError || code < 200 || code > 599 || code >= 500 && code != http.StatusNotImplemented {
			t.Fatalf("status %d for %q: %s", code, raw, rec.Body)
		}
		if code >= 400 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("status %d without a JSON body for %q: %q", code, raw, rec.Body)
		}
	})
}

// requestCase is a request, the role sending it, and the status and a
// substring of the answer it must get.
type requestCase struct {
	req  string
	role role
	want int
	body string // substring of the answer
}

// requestCases are the requests TestRequests sends. Long because it is
// one table, a line a case.
func requestCases() []requestCase {
	big := strings.Repeat("x", MaxBodyBytes+10)
	return []requestCase{
		{"GET /v1/workloads", roleMember, 200, `"name":"web"`},
		{"GET /v1/workloads?counters=false", roleMember, 200, `"name":"web"`},
		{"GET /v1/workloads?counters=maybe", roleMember, 400, `counters=\"maybe\": want 1, 0, true or false`},
		{"GET /v1/workloads", roleNone, 403, `"code":"forbidden"`},
		{"GET /v1/workloads/web", roleMember, 200, `"kind":"container"`},
		{"GET /v1/workloads/nope", roleMember, 404, `"code":"not_found"`},
		{"GET /v1/workloads/Bad..Name", roleMember, 400, `"code":"bad_request"`},
		{"GET /v1/nothing", roleMember, 404, `no such endpoint`},
		{"POST /v1/workloads/..%2Fetc/start", roleMember, 400, `workload name`},
		{"PUT /v1/workloads", roleMember, 405, `"code":"method_not_allowed"`},
		{"POST /v1/workloads/web/stop", roleMember, 204, ``},
		{"POST /v1/workloads/web/kill", roleMember, 403, `uid 1000 is not root`},
		{"DELETE /v1/workloads/web", roleMember, 403, `forbidden`},
		{"DELETE /v1/workloads/web", roleRoot, 204, ``},
		{"POST /v1/apply\n\n{}", roleMember, 403, `forbidden`},
		{"POST /v1/apply\n\n{}", roleRoot, 200, `"log":"added web\n"`},
		{"POST /v1/apply\n\n{\"specs\": 3}", roleRoot, 400, `bad request body`},
		{"POST /v1/apply\n\n{\"bogus\": 1}", roleRoot, 400, `unknown field`},
		{"POST /v1/apply\n\n{} {}", roleRoot, 400, `data after`},
		{"POST /v1/apply\n\n{\"specs\":[{\"file\":\"..\",\"content\":\"\"}]}", roleRoot, 400, `want a file name`},
		{"POST /v1/diff\n\n{\"specs\":[{\"file\":\"" + big + "\"}]}", roleRoot, 413, `payload_too_large`},
		{"POST /v1/validate\nContent-Type: application/json\n\n{\"specs\":[{\"file\":\"w.toml\",\"content\":\"version = 1\\nkind = \\\"container\\\"\\ncolour = 1\\n\"}]}", roleMember, 422, `"line":3,"col":1`},
		{"POST /v1/validate\n\nversion = 1", roleMember, 400, `?file=`},
		{"GET /v1/workloads/web/logs?lines=x", roleMember, 400, `lines=`},
		{"GET /v1/workloads/web/logs?lines=2", roleMember, 200, "line one\n"},
		{"GET /_ping", roleMember, 200, "OK"},
		{"GET /v1.41/version", roleMember, 200, `"ApiVersion":"1.41"`},
		{"GET /v1.41/containers/json", roleMember, 200, `"Names":["/web"]`},
		{"GET /v1.41/containers/json?all=1&filters={\"label\":[\"cove.kind=vm\"]}", roleMember, 200, `"Names":["/vm1"]`},
		{"GET /v1.41/containers/json?filters={\"ancestor\":[\"x\"]}", roleMember, 200, `[]`},
		{"GET /v1.41/containers/json?filters={\"health\":[\"none\"],\"network\":[\"host\"]}", roleMember, 200, `"Names":["/web"]`},
		{"GET /v1.41/containers/json?filters={\"health\":[\"healthy\"]}", roleMember, 200, `[]`},
		{"GET /v1.41/containers/json?filters={\"before\":[\"web\"]}", roleMember, 501, `before`},
		{"GET /v1.41/containers/" + dockerID("web")[:12] + "/json", roleMember, 200, `"Name":"/web"`},
		{"GET /v1.41/containers/nope/json", roleMember, 404, `No such container: nope`},
		{"GET /v1.41/containers/web/logs", roleMember, 400, `at least one stream`},
		{"GET /v1.41/containers/web/logs?stdout=1&details=1", roleMember, 501, `details`},
		{"GET /v1.41/containers/web/logs?stdout=1&timestamps=1&since=1700000000.5&until=0&tail=0", roleMember, 200, "line one"},
		{"GET /v1.41/containers/web/logs?stdout=1&since=yesterday", roleMember, 400, `{"message":"since: time \"yesterday\": want Unix seconds`},
		{"GET /v1.41/containers/web/logs?stdout=1&tail=-1", roleMember, 400, `tail=\"-1\": want all or a count of lines`},
		{"GET /v1/workloads/web/logs?since=1.2.3", roleMember, 400, `"message":"logs of web: since: time \"1.2.3\"`},
		{"GET /v1/workloads/web/logs?lines=none&timestamps=1&until=2024-05-01T10:00:00Z", roleMember, 200, "line one"},
		{"GET /v1/workloads/web/logs?timestamps=yes", roleMember, 400, `timestamps=\"yes\": want 1, 0, true or false`},
		{"POST /v1.41/containers/web/kill?signal=HUP", roleRoot, 204, ``},
		{"POST /v1.41/containers/web/kill?signal=FOO", roleRoot, 400, `{"message":"Invalid signal: FOO"}`},
		{"POST /v1.41/containers/web/stop?signal=TERM", roleMember, 501, `signal`},
		{"POST /v1.41/containers/web/restart?t=x", roleMember, 400, `t=\"x\": want an integer`},
		{"POST /v1/workloads/web/kill?signal=SIGTERM", roleRoot, 204, ``},
		{"POST /v1/workloads/web/kill?signal=0", roleRoot, 400, `"message":"kill web: Invalid signal: 0"`},
		{"GET /v1.41/containers/web/logs?stdout=1", roleMember, 200, "\x01\x00\x00\x00\x00\x00\x00\x12line one\nline two\n"},
		{"POST /v1.41/containers/web/start", roleMember, 304, ``},
		{"POST /v1.41/containers/vm1/stop", roleMember, 304, ``},
		{"POST /v1.41/containers/vm1/kill", roleRoot, 409, `not running`},
		{"GET /v1.41/images/json", roleMember, 200, "[]\n"},
		{"GET /v1.41/images/json", roleNone, 403, `permission denied`},
		{"GET /v1.41/images/json?filters={\"reference\":[\"x\"],\"dangling\":[\"true\"],\"label\":[\"a=b\"]}", roleMember, 200, "[]\n"},
		{"GET /v1.41/images/json?filters={\"before\":[\"x\"]}", roleMember, 501, `cove does not implement the \"before\" filter`},
		{"GET /v1.41/images/json?filters={\"dangling\":[\"maybe\"]}", roleMember, 400, `Invalid filter 'dangling=maybe'`},
		{"GET /v1.41/images/json?all=x", roleMember, 400, `all=\"x\"`},
		{"GET /v1.41/images/127.0.0.1:5000/app/web:1.4/json", roleMember, 404, `{"message":"No such image: 127.0.0.1:5000/app/web:1.4"}`},
		{"GET /v1.41/images/sha256:0a1b2c/json", roleMember, 404, `No such image: sha256:0a1b2c`},
		{"GET /v1.41/images/web/json", roleMember, 404, `No such image: web`},
		{"GET /v1.41/images/a%20b/json", roleMember, 400, `image reference \"a b\"`},
		{"GET /v1.41/images/web/history", roleMember, 404, `No such image: web`},
		{"POST /v1.41/images/web/tag?repo=x", roleRoot, 404, `No such image: web`},
		{"POST /v1.41/images/web/tag?repo=x", roleMember, 403, `uid 1000 is not root`},
		{"POST /v1.41/images/web/tag", roleRoot, 400, `repo is missing`},
		{"POST /v1.41/images/web/tag?repo=sha256:0a1b", roleRoot, 400, `reads as an image ID`},
		{"GET /v1.41/images/web/get", roleRoot, 404, `No such image: web`},
		{"GET /v1.41/images/get?names=web", roleRoot, 404, `No such image: web`},
		{"GET /v1.41/images/get", roleRoot, 400, `names is missing`},
		{"GET /v1.41/images/get?names=web", roleMember, 403, `uid 1000 is not root`},
		{"POST /v1.41/images/load", roleRoot, 400, `import the archive`},
		{"POST /v1.41/images/load?quiet=x", roleRoot, 400, `quiet=\"x\"`},
		{"POST /v1.41/images/load", roleMember, 403, `uid 1000 is not root`},
		{"GET /v1.41/containers/web/archive", roleRoot, 400, `path cannot be empty`},
		{"HEAD /v1.41/containers/web/archive?path=/", roleMember, 403, ``},
		{"GET /v1.41/containers/web/archive?path=/", roleMember, 403, `uid 1000 is not root`},
		{"PUT /v1.41/containers/nosuch/archive?path=/", roleRoot, 404, `No such container: nosuch`},
		{"PUT /v1.41/containers/web/archive?path=/&copyUIDGID=x", roleRoot, 400, `copyUIDGID=\"x\"`},
		{"PUT /v1.41/containers/vm1/archive?path=/", roleRoot, 409, `is not running`},
		{"PUT /v1.41/images/json", roleMember, 405, `allowed: GET`},
		{"POST /v1.41/images/create?fromImage=r.example/web&tag=1", roleMember, 403, `uid 1000 is not root`},
		{"POST /v1.41/images/create?fromImage=web&tag=1", roleRoot, 400, `pull web:1: cove does not assume docker.io`},
		{"POST /v1.41/images/create?fromImage=docker.io/library/web&tag=1", roleRoot, 400, `no registry host`},
		{"POST /v1.41/images/create?tag=1", roleRoot, 400, `fromImage is missing`},
		{"POST /v1.41/images/create?fromSrc=-", roleRoot, 400, `tar stream ends`},
		{"POST /v1.41/images/create?fromSrc=http://x.example/r.tar", roleRoot, 400, `fetches no URL`},
		{"POST /v1.41/images/create?fromSrc=-&repo=a&changes=RUN+x", roleRoot, 400, `RUN is not an instruction`},
		{"POST /v1.41/images/create?fromSrc=-&repo=sha256:abc", roleRoot, 400, `image ID`},
		{"POST /v1.41/images/create?fromImage=r.example/web&changes=CMD+x", roleRoot, 400, `import's parameter`},
		{"POST /v1.41/images/create?fromImage=r.example/web&platform=x/y/z/w", roleRoot, 400, `platform`},
		{"POST /v1.41/images/create?fromImage=r.example/web\nX-Registry-Auth: !!!", roleRoot, 400, `X-Registry-Auth`},
		{"DELETE /v1.41/images/r.example/web:1", roleMember, 403, `uid 1000 is not root`},
		{"DELETE /v1.41/images/r.example/web:1", roleRoot, 404, `No such image: r.example/web:1`},
		{"DELETE /v1.41/images/r.example/web:1?force=maybe", roleRoot, 400, `force=`},
		{"POST /v1.41/images/prune", roleMember, 403, `uid 1000 is not root`},
		{"POST /v1.41/images/prune", roleRoot, 200, `{"ImagesDeleted":[],"SpaceReclaimed":0}`},
		{"POST /v1.41/images/prune?filters={\"until\":[\"1h\"],\"label!\":[\"a\"]}", roleRoot, 200, `{"ImagesDeleted":[],"SpaceReclaimed":0}`},
		{"POST /v1.41/images/prune?filters={\"before\":[\"x\"]}", roleRoot, 501, `before`},
		{"POST /v1.41/containers/create", roleMember, 403, `uid 1000 is not root`},
		{"POST /v1.41/containers/create\n\n{}", roleRoot, 400, `Config.Image is empty`},
		{"POST /v1.41/containers/create?name=x\n\n{\"Image\":\"r.example/web:1\",\"Bogus\":1}", roleRoot, 404, `{"message":"No such image: r.example/web:1"}`},
		{"POST /v1.41/containers/create?name=Web\n\n{\"Image\":\"r.example/web:1\"}", roleRoot, 400, `Invalid container name (Web)`},
		{"POST /v1.41/containers/create\n\n{\"Image\": 3}", roleRoot, 400, `bad request body`},
		{"POST /v1.41/containers/web/update\n\n{\"Memory\":134217728}", roleRoot, 409, `not created through Docker's API`},
		{"POST /v1.41/containers/web/update\n\n{\"CpuShares\":512,\"CpuRealtimePeriod\":1000,\"Memory\":0,\"CpusetCpus\":\"\"}", roleRoot, 400, `not CpuRealtimePeriod, CpuShares`},
		{"POST /v1.41/containers/web/update\n\n{\"Memory\":1}", roleMember, 403, `uid 1000 is not root`},
		{"POST /v1.41/containers/nope/update\n\n{}", roleRoot, 404, `No such container: nope`},
		{"POST /v1.41/containers/web/pause", roleMember, 204, ``},
		{"POST /v1.41/containers/nosuch/pause", roleMember, 404, `No such container: nosuch`},
		{"POST /v1.41/containers/web/unpause", roleMember, 409, `Container web is not paused`},
		{"POST /v1/workloads/web/pause", roleMember, 204, ``},
		{"POST /v1/workloads/nosuch/unpause", roleMember, 404, `no such workload`},
		{"POST /v1.41/containers/web/exec", roleRoot, 400, `No exec command specified`},
		{"POST /v1.41/containers/web/exec", roleMember, 403, `permission denied`},
		{"POST /v1.41/exec/0123abcd/start", roleRoot, 404, `No such exec instance: 0123abcd`},
		{"GET /v1.41/exec/0123abcd/json", roleRoot, 404, `No such exec instance: 0123abcd`},
		{"DELETE /v1.41/containers/web", roleMember, 403, `uid 1000 is not root`},
		{"DELETE /v1.41/containers/web", roleRoot, 409, `You cannot remove a running container`},
		{"DELETE /v1.41/containers/vm1?link=1", roleRoot, 501, `links`},
		{"DELETE /v1.41/containers/vm1?force=1&v=1", roleRoot, 204, ``},
		{"DELETE /v1.41/containers/nope", roleRoot, 404, `No such container: nope`},
		{"POST /v1.41/containers/vm1/wait", roleMember, 200, `{"StatusCode":0,"Error":null}`},
		{"POST /v1.41/containers/web/wait?condition=later", roleMember, 400, `invalid condition`},
		{"POST /v1.41/containers/nope/wait", roleMember, 404, `No such container: nope`},
		{"POST /v1.41/containers/vm1/attach?stream=1&stdout=1", roleRoot, 409, `only while it runs`},
		{"POST /v1.41/containers/web/attach?stdout=1", roleRoot, 501, `without stream`},
		{"GET /v1.41/containers/web/start", roleMember, 405, `method not allowed`},
		{"GET /v1.41/networks", roleMember, 200, `[{"Name":"cove","Id":"` + dockerNetworkID("cove") + `","Created":"0001-01-01T00:00:00Z","Scope":"local","Driver":"bridge"`},
		{"GET /v1.41/networks?filters={\"name\":[\"ov\"],\"id\":[\"" + dockerNetworkID("cove")[:6] + "\"]}", roleMember, 200, `"Name":"cove"`},
		{"GET /v1.41/networks?filters={\"name\":[\"web\"]}", roleMember, 200, "[]\n"},
		{"GET /v1.41/networks?filters={\"driver\":[\"bridge\"]}", roleMember, 501, `cove does not implement the \"driver\" filter`},
		{"GET /v1.41/networks", roleNone, 403, `permission denied`},
		{"GET /v1.41/networks/cove", roleMember, 200, `"Options":{"com.docker.network.bridge.name":"cove0"}`},
		{"GET /v1.41/networks/bridge", roleMember, 200, `"Name":"cove"`},
		{"GET /v1.41/networks/" + dockerNetworkID("cove")[:12], roleMember, 200, `"Subnet":"10.77.0.0/16","Gateway":"10.77.0.1"`},
		{"GET /v1.41/networks/nope", roleMember, 404, `{"message":"network nope not found"}`},
		{"GET /v1.41/networks/No%20pe", roleMember, 400, `network \"No pe\": want a network's name or ID`},
		{"POST /v1.41/networks/create", roleRoot, 400, `network create: a name is required`},
		{"POST /v1.41/networks/create", roleMember, 403, `permission denied`},
		{"POST /v1.41/networks/create\n\n{\"Name\":\"x\",\"Driver\":\"overlay\"}", roleRoot, 400, `driver \"overlay\" is not supported`},
		{"POST /v1.41/networks/create\n\n{\"Name\":\"x\",\"IPAM\":{\"Config\":[{\"Subnet\":\"10.9.0.0/24\",\"IPRange\":\"10.9.0.0/25\"}]}}", roleRoot, 400, `--ip-range`},
		{"POST /v1.41/networks/create\n\n{\"Name\":\"x\",\"Options\":{\"com.docker.network.driver.mtu\":\"1400\"}}", roleRoot, 400, `option \"com.docker.network.driver.mtu\" is not supported`},
		{"DELETE /v1.41/networks/nope", roleRoot, 404, `network nope not found`},
		{"POST /v1.41/networks/prune?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D", roleRoot, 501, `cove does not implement the \"dangling\" filter`},
		{"POST /v1.41/containers/prune?filters=%7B%22until%22%3A%5B%22yesterday%22%5D%7D", roleRoot, 400, `until \"yesterday\"`},
		{"POST /v1.41/containers/prune", roleMember, 403, `uid 1000 is not root`},
		{"POST /v1.41/build/prune", roleRoot, 200, `{"CachesDeleted":[],"SpaceReclaimed":0}`},
		{"POST /v1.41/containers/create?name=x\n\n{\"Image\":\"r.example/web:1\",\"HostConfig\":{\"NetworkMode\":\"nope\"}}", roleRoot, 404, `No such image`},
	}
}

// TestRequests pins the status of typical good and malformed requests.
func TestRequests(t *testing.T) {
	for _, tc := range requestCases() {
		method, rest, _ := strings.Cut(tc.req, " ")
		target, body, _ := strings.Cut(rest, "\n\n")
		target, headers, _ := strings.Cut(target, "\n")
		target = strings.ReplaceAll(target, `"`, "%22")
		if headers != "" {
			headers += "\r\n"
		}
		raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s", method, target, headers, len(body), body)
		rec, ok := serve(t, []byte(raw), tc.role)
		if !ok {
			t.Fatalf("%s: not a request", tc.req[:min(len(tc.req), 80)])
		}
		if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s (role %s): %d %q, want %d with %q", tc.req[:min(len(tc.req), 80)], tc.role, rec.Code, rec.Body.String(), tc.want, tc.body)
		}
	}
}
