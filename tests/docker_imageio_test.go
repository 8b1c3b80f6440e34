package tests

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDockerSaveLoadTag: the docker CLI's tag, save and load against
// cove's store. A pulled image tagged with a short name and with a
// registry's name (127.0.0.1:1, where no registry listens); docker save
// of both writes one docker-archive naming the image twice; after both
// names are removed, docker load of the archive brings them back
// (localhost/ for the short one, the registry's kept) and docker run
// --pull=never runs the image by either name; a second load changes
// nothing; a garbage archive is refused with its reason and adds
// nothing; a tag of a missing image is Docker's "No such image".
func TestDockerSaveLoadTag(t *testing.T) {
	needAPI(t)
	docker, ref := dockerWithImage(t)
	const short, remote = "saveme:1", "127.0.0.1:1/test/saved:1"
	for _, n := range []string{short, remote} {
		if r := docker("tag", ref, n); r.Code != 0 {
			t.Fatalf("docker tag %s %s: exit %d: %s", ref, n, r.Code, r.Stderr)
		}
	}
	archive := filepath.Join(workDir, "saved.tar")
	if r := docker("save", "-o", archive, short, remote); r.Code != 0 {
		t.Fatalf("docker save: exit %d: %s", r.Code, r.Stderr)
	}
	defer os.Remove(archive)
	if tags := archiveTags(t, archive); !slices.Equal(tags, []string{"localhost/saveme:1", remote}) {
		t.Errorf("docker save: the archive names %v", tags)
	}
	before := docker("images", "-q").Stdout
	for _, n := range []string{short, remote} {
		if r := docker("rmi", n); r.Code != 0 || !strings.Contains(r.Stdout, "Untagged") {
			t.Fatalf("docker rmi %s: exit %d: %s%s", n, r.Code, r.Stdout, r.Stderr)
		}
	}
	for range 2 {
		r := docker("load", "-i", archive)
		if r.Code != 0 || r.Stdout != "Loaded image: localhost/saveme:1\nLoaded image: "+remote+"\n" {
			t.Fatalf("docker load: exit %d: %q %s", r.Code, r.Stdout, r.Stderr)
		}
	}
	for _, n := range []string{short, "localhost/saveme:1", remote} {
		if r := docker("run", "--rm", "--pull=never", n, "cat", "/etc/motd"); r.Code != 0 || r.Stdout != "motd from layer 2\n" {
			t.Errorf("docker run of the loaded %s: exit %d: %q %s", n, r.Code, r.Stdout, r.Stderr)
		}
	}
	dockerLoadRefused(t, docker)
	if r := docker("tag", "nosuch:1", "other:1"); r.Code == 0 || !strings.Contains(r.Stderr, "No such image: nosuch:1") {
		t.Errorf("docker tag of a missing image: exit %d: %s", r.Code, r.Stderr)
	}
	for _, n := range []string{short, remote} {
		docker("rmi", n)
	}
	if after := docker("images", "-q").Stdout; len(strings.Fields(after)) > len(strings.Fields(before))+1 {
		t.Errorf("images before the load:\n%safter:\n%s", before, after)
	}
}

// dockerLoadRefused: docker load of a tar that is no image archive fails
// with the import's reason, and the store's images stay as they were.
func dockerLoadRefused(t *testing.T, docker func(...string) result) {
	t.Helper()
	before := docker("images", "-q").Stdout
	bad := filepath.Join(workDir, "bad.tar")
	f, err := os.Create(bad)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(bad)
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: 2})
	tw.Write([]byte("{}"))
	tw.Close()
	f.Close()
	if r := docker("load", "-i", bad); r.Code == 0 || !strings.Contains(r.Stderr, "manifest.json") {
		t.Errorf("docker load of a bad archive: exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
	}
	if after := docker("images", "-q").Stdout; after != before {
		t.Errorf("images before a refused load:\n%safter:\n%s", before, after)
	}
}

// archiveTags are the RepoTags of the docker-archive at path's
// manifest.json, in order.
func archiveTags(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no manifest.json in %s: %v", path, err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		data, _ := io.ReadAll(tr)
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("manifest.json: %v: %s", err, data)
		}
		var tags []string
		for _, e := range m {
			tags = append(tags, e.RepoTags...)
		}
		return tags
	}
}
