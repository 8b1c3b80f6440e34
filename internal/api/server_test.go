package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// TestEndpoint: Docker version prefixes are stripped, /v1 stays cove's.
func TestEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		docker   bool
	}{
		{"/v1/workloads", "/v1/workloads", false},
		{"/v1", "/v1", false},
		{"/v1.41/containers/json", "/containers/json", true},
		{"/v1.24/_ping", "/_ping", true},
		{"/_ping", "/_ping", true},
		{"/v1.x/containers/json", "/v1.x/containers/json", true},
		{"/v12/containers", "/v12/containers", true},
		{"/v1.41", "/v1.41", true},
	} {
		got, docker := endpoint(tc.in)
		if got != tc.want || docker != tc.docker {
			t.Errorf("endpoint(%q) = %q, %v; want %q, %v", tc.in, got, docker, tc.want, tc.docker)
		}
	}
}

// TestMatch: {name} matches exactly one non-empty segment, {ref} one or
// more (an image reference with its registry's port, unescaped).
func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, path, name string
		ok                  bool
	}{
		{"/v1/workloads/{name}/stop", "/v1/workloads/web/stop", "web", true},
		{"/v1/workloads/{name}/stop", "/v1/workloads//stop", "", false},
		{"/v1/workloads/{name}", "/v1/workloads/a/b", "", false},
		{"/v1/workloads", "/v1/workloads/", "", false},
		{"/images/{ref}/json", "/images/127.0.0.1:5000/app/web:1.4/json", "127.0.0.1:5000/app/web:1.4", true},
		{"/images/{ref}/json", "/images/sha256%3Aab/json", "sha256:ab", true},
		{"/images/{ref}/json", "/images/json", "", false},
		{"/images/{ref}/json", "/images//json", "", false},
		{"/images/{ref}/json", "/images/web/history", "", false},
		{"/images/{ref}", "/images/r.example/web@sha256:ab", "r.example/web@sha256:ab", true},
		{"/images/{ref}", "/images/", "", false},
	} {
		name, ok := match(tc.pattern, tc.path)
		if name != tc.name || ok != tc.ok {
			t.Errorf("match(%q, %q) = %q, %v", tc.pattern, tc.path, name, ok)
		}
	}
}

// TestRoleFor: root, members by primary or supplementary group, others.
func TestRoleFor(t *testing.T) {
	cove := func() (uint32, bool) { return 990, true }
	none := func() (uint32, bool) { return 0, false }
	for _, tc := range []struct {
		p      peer
		lookup func() (uint32, bool)
		want   role
	}{
		{peer{known: true, uid: 0, gid: 0}, none, roleRoot},
		{peer{known: true, uid: 1000, gid: 990}, cove, roleMember},
		{peer{known: true, uid: 1000, gid: 1000, groups: []uint32{27, 990}}, cove, roleMember},
		{peer{known: true, uid: 1000, gid: 1000, groups: []uint32{27}}, cove, roleNone},
		{peer{known: true, uid: 1000, gid: 990}, none, roleNone},
		{peer{uid: 0}, cove, roleNone},
	} {
		if got := roleFor(tc.p, tc.lookup); got != tc.want {
			t.Errorf("roleFor(%+v) = %s, want %s", tc.p, got, tc.want)
		}
	}
}

// TestProcGroups reads the Groups: line.
func TestProcGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	os.WriteFile(path, []byte("Name:\tx\nGroups:\t4 24 990 \nNSpid:\t1\n"), 0o644)
	gs, err := procGroups(path)
	if err != nil || len(gs) != 3 || gs[2] != 990 {
		t.Errorf("procGroups = %v, %v", gs, err)
	}
	if _, err := procGroups("/proc/self/status"); err != nil {
		t.Errorf("own status: %v", err)
	}
}

// listenTemp listens on a unix socket in a temporary directory.
func listenTemp(t *testing.T) (net.Listener, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api.sock")
	l, err := Listen("unix://" + path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

// TestPeerCred reads this process's own credentials over a socket.
func TestPeerCred(t *testing.T) {
	l, path := listenTemp(t)
	go func() {
		if c, err := net.Dial("unix", path); err == nil {
			time.Sleep(time.Second)
			c.Close()
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := peerOf(connContext(context.Background(), c))
	if !p.known || p.uid != uint32(os.Getuid()) || int(p.pid) != os.Getpid() {
		t.Errorf("peer = %+v, want uid %d pid %d", p, os.Getuid(), os.Getpid())
	}
	if os.Getuid() == 0 && p.role != roleRoot {
		t.Errorf("root's role = %s", p.role)
	}
}

// TestLimitListener: a second connection waits until the first closes.
func TestLimitListener(t *testing.T) {
	l, path := listenTemp(t)
	ll := limitListen(l, 1)
	for range 2 {
		go net.Dial("unix", path)
	}
	first, err := ll.Accept()
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan net.Conn, 1)
	go func() {
		c, _ := ll.Accept()
		second <- c
	}()
	select {
	case <-second:
		t.Fatal("second connection accepted over the limit")
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case c := <-second:
		c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("second connection not accepted after the first closed")
	}
	ll.Close()
	if _, err := ll.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v", err)
	}
}

// TestIdleTracker: a running request keeps the server busy however long
// it takes; once it ends, the idle period runs out.
func TestIdleTracker(t *testing.T) {
	l, path := listenTemp(t)
	tr := newIdleTracker(300 * time.Millisecond)
	release := make(chan struct{})
	srv := &http.Server{ConnState: tr.ConnState, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	})}
	go srv.Serve(l)
	defer srv.Close()
	done := make(chan error, 1)
	go func() {
		hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return net.Dial("unix", path)
		}}}
		resp, err := hc.Get("http://x/")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-tr.Idle():
		t.Fatal("idle while a request runs")
	case <-time.After(time.Second):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case <-tr.Idle():
	case <-time.After(2 * time.Second):
		t.Fatal("not idle after the request ended")
	}
}

// TestServeIdleExit: Serve returns nil after the idle period without
// requests.
func TestServeIdleExit(t *testing.T) {
	l, _ := listenTemp(t)
	start := time.Now()
	if err := NewServer(nil, Options{}).Serve(context.Background(), l, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle exit took %s", d)
	}
}

// clientOf returns a client of a test server that answers with handler
// on a socket of its own; both go when the test ends.
func clientOf(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	l, path := listenTemp(t)
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c, err := NewClient("unix://" + path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestClientErrors: the client turns error bodies into the errors the CLI
// prints: spec.Errors for spec_invalid, ErrNotFound for not_found, and
// the status when the body is not cove's.
func TestClientErrors(t *testing.T) {
	bodies := map[string]string{
		"/v1/workloads/gone":   `{"code":"not_found","message":"status of cove-gone.service: no such workload"}`,
		"/v1/diff":             `{"code":"spec_invalid","message":"x","errors":[{"file":"a.toml","line":3,"col":1,"key":"colour","message":"unknown key"}]}`,
		"/v1/workloads/broken": `not json`,
	}
	c := clientOf(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(map[bool]int{true: 404, false: 422}[strings.HasPrefix(r.URL.Path, "/v1/workloads")])
		w.Write([]byte(bodies[r.URL.Path]))
	})
	ctx := context.Background()
	if _, err := c.Status(ctx, "gone"); !errors.Is(err, supervisor.ErrNotFound) || err.Error() != "status of cove-gone.service: no such workload" {
		t.Errorf("not found: %v", err)
	}
	var se spec.Errors
	if _, err := c.Diff(ctx, Sources{}); !errors.As(err, &se) || err.Error() != "a.toml:3:1: colour: unknown key" {
		t.Errorf("spec errors: %v", err)
	}
	if _, err := c.Status(ctx, "broken"); err == nil || !strings.Contains(err.Error(), "404 Not Found") {
		t.Errorf("non-cove body: %v", err)
	}
	if _, err := NewClient("tcp://x"); err == nil {
		t.Errorf("tcp host accepted")
	}
}

// TestClientList: the client reads a list of workloads element by
// element: all of them, none for null, and an error naming the request
// (and no workloads) for an answer that is not an array, is cut short or
// is empty.
func TestClientList(t *testing.T) {
	body := ""
	c := clientOf(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) })
	for _, tc := range []struct{ body, want, err string }{
		{`[{"name":"a","kind":"container"}, {"name":"b","networks":[{"network":"cove"}]}]`, "a container; b cove", ""},
		{`[]`, "", ""},
		{`null`, "", ""},
		{`{"name":"a"}`, "", "want a JSON array, got {"},
		{`[{"name":"a"},`, "", "decode the answer: unexpected EOF"},
		{``, "", "decode the answer: unexpected EOF"},
	} {
		body = tc.body
		ws, err := c.ListStates(context.Background())
		var got []string
		for _, w := range ws {
			s := w.Name + " " + w.Kind
			for _, e := range w.Networks {
				s += e.Network
			}
			got = append(got, s)
		}
		if tc.err == "" && (err != nil || strings.Join(got, "; ") != tc.want) {
			t.Errorf("answer %s: %q, %v; want %q", tc.body, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || ws != nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "GET /v1/workloads?counters=false")) {
			t.Errorf("answer %s: error %v, want one naming the request and %q", tc.body, err, tc.err)
		}
	}
}

// TestIdleHijacked: a hijacked connection (a Docker attach) keeps the
// server busy until it is closed.
func TestIdleHijacked(t *testing.T) {
	tr := newIdleTracker(100 * time.Millisecond)
	conn, peer := net.Pipe()
	defer peer.Close()
	c := &limitConn{Conn: conn, release: func() {}}
	tr.ConnState(c, http.StateNew)
	tr.ConnState(c, http.StateActive)
	tr.ConnState(c, http.StateHijacked)
	select {
	case <-tr.Idle():
		t.Fatal("idle while a hijacked connection is open")
	case <-time.After(400 * time.Millisecond):
	}
	c.Close()
	select {
	case <-tr.Idle():
	case <-time.After(2 * time.Second):
		t.Fatal("not idle after the hijacked connection closed")
	}
}
