package api

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestCreatedContainer: a container created through Docker's API and not
// started is a record only: the list and inspect show it as created with
// the request's image and command, wait (not-running) answers at once,
// a member may not start it, root removes it.
func TestCreatedContainer(t *testing.T) {
	dir := t.TempDir()
	rs := containerRecords{dir: dir}
	rec := &containerRecord{Name: "made", Created: time.Now().Add(-time.Minute), Image: testPinned, ImageID: "sha256:abc",
		Config: dockerCreate{Image: "r.example/app:1", Cmd: strSlice{"sleep", "9"}}}
	if err := rs.create(rec); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(fakeBackend{}, Options{Self: "/usr/bin/cove", Images: emptyStore(t), Containers: dir})
	call := func(r role, method, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, nil)
		req = req.WithContext(withPeer(context.Background(), peer{known: true, uid: 1000, role: r}))
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		return w
	}
	for _, tc := range []struct {
		role           role
		method, target string
		want           int
		body           string
	}{
		{roleMember, "GET", "/v1.41/containers/json?all=1", 200, `"Names":["/made"],"Image":"r.example/app:1","ImageID":"sha256:abc","Command":"sleep 9"`},
		{roleMember, "GET", "/v1.41/containers/json", 200, `"Names":["/web"]`},
		{roleMember, "GET", "/v1.41/containers/json?all=1&filters={%22status%22:[%22created%22]}", 200, `"State":"created","Status":"Created"`},
		{roleMember, "GET", "/v1.41/containers/made/json", 200, `"Status":"created"`},
		{roleMember, "GET", "/v1.41/containers/" + dockerID("made")[:10] + "/json", 200, `"Config":{"Hostname":"made","User":"","Env":null,"Cmd":["sleep","9"],"Image":"r.example/app:1"`},
		{roleMember, "POST", "/v1.41/containers/made/wait", 200, `{"StatusCode":0,"Error":null}`},
		{roleMember, "POST", "/v1.41/containers/made/start", 403, `start container made (a new transient unit): uid 1000 is not root`},
		{roleRoot, "POST", "/v1.41/containers/made/start", 500, `the API's backend cannot start transient units`},
		{roleRoot, "POST", "/v1.41/containers/made/stop", 304, ``},
		{roleRoot, "DELETE", "/v1.41/containers/made", 204, ``},
		{roleRoot, "GET", "/v1.41/containers/made/json", 404, `No such container: made`},
	} {
		w := call(tc.role, tc.method, tc.target)
		if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%s %s (%s): %d %s, want %d with %s", tc.method, tc.target, tc.role, w.Code, w.Body, tc.want, tc.body)
		}
	}
	if got, err := rs.read("made"); got != nil || err != nil {
		t.Errorf("the record is still there: %+v, %v", got, err)
	}
}
