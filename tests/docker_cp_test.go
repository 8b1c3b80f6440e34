package tests

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dockerCopy: docker cp into and out of a running container with a user
// namespace of its own, through its root and a volume. Owners are the
// container's IDs both ways (the CLI's own without -a, the container
// user's with -a); a symlink resolves in the container, never out of
// it; a missing path gets Docker's message. Once it is stopped, what it
// wrote is still there to copy out.
func dockerCopy(t *testing.T, docker func(...string) result, ref string) {
	// Off the host's network, an image container has a user namespace.
	if r := docker("run", "-d", "--name", "cp", "--network", "none", "-v", "cpdata:/data", ref, "sleep", "1000"); r.Code != 0 {
		t.Fatalf("docker run -d: exit %d: %s", r.Code, r.Stderr)
	}
	defer docker("volume", "rm", "cpdata")
	defer docker("rm", "-f", "cp")
	if r := docker("exec", "cp", "cat", "/proc/self/uid_map"); len(strings.Fields(r.Stdout)) != 3 || strings.Fields(r.Stdout)[1] == "0" {
		t.Fatalf("the container's uid_map %q (exit %d, %s): want a user namespace of its own", r.Stdout, r.Code, r.Stderr)
	}
	dir := filepath.Join(workDir, "cp")
	defer os.RemoveAll(dir)
	for p, text := range map[string]string{"in/a.txt": "alpha\n", "in/sub/b.txt": "beta\n"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "in/a.txt"), 1234, 1234); err != nil {
		t.Fatal(err)
	}
	copies := [][]string{
		{filepath.Join(dir, "in"), "cp:/tmp/"},                   // a directory into one
		{filepath.Join(dir, "in/a.txt"), "cp:/data/renamed.txt"}, // a file into a volume, renamed
		{"-a", filepath.Join(dir, "in/sub/b.txt"), "cp:/www/"},   // -a: the container user's
	}
	for _, c := range copies {
		if r := docker(append([]string{"cp"}, c...)...); r.Code != 0 {
			t.Errorf("docker cp %q: exit %d: %s", c, r.Code, r.Stderr)
		}
	}
	check := "cat /tmp/in/a.txt /tmp/in/sub/b.txt /data/renamed.txt; stat -c %u:%g /tmp/in/a.txt /tmp/in/sub/b.txt /www/b.txt"
	if r := docker("exec", "cp", "sh", "-c", check); r.Stdout != "alpha\nbeta\nalpha\n1234:1234\n0:0\n1000:1000\n" {
		t.Errorf("the container's view of what was copied in (exit %d): %q %s", r.Code, r.Stdout, r.Stderr)
	}
	docker("exec", "cp", "sh", "-c", "echo made > /tmp/made; ln -s ../../../../.. /tmp/up")
	out := filepath.Join(dir, "out")
	if r := docker("cp", "cp:/tmp/in", out); r.Code != 0 {
		t.Errorf("docker cp out of the container: exit %d: %s", r.Code, r.Stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out, "sub/b.txt")); string(b) != "beta\n" {
		t.Errorf("docker cp cp:/tmp/in %s: sub/b.txt holds %q (%v)", out, b, err)
	}
	wantTar(t, docker("cp", "cp:/tmp/made", "-"), "made", "made\n", 1000)
	wantTar(t, docker("cp", "cp:/tmp/up/data/renamed.txt", "-"), "renamed.txt", "alpha\n", 1234)
	if r := docker("cp", "cp:/proc", "-"); tarNames(r.Stdout) != "proc/" { // the kernel's, not files
		t.Errorf("docker cp cp:/proc -: exit %d, entries %q: %s", r.Code, tarNames(r.Stdout), r.Stderr)
	}
	if r := docker("cp", "cp:/tmp/up"+dir+"/in/a.txt", "-"); r.Code == 0 || !strings.Contains(r.Stderr, "No such container:path") { // the CLI's words for a 404
		t.Errorf("docker cp of a host file through a symlink that climbs out: exit %d: %s", r.Code, r.Stderr)
	}
	if r := docker("cp", filepath.Join(dir, "in"), "cp:/nope/x/"); r.Code == 0 {
		t.Errorf("docker cp into a missing directory succeeded")
	}
	// docker export: the root's files, not the volume's nor /proc's.
	if names := tarNames(docker("export", "cp").Stdout) + "\n"; !strings.Contains(names, "\ntmp/made\n") || !strings.Contains(names, "\ndata/\n") ||
		strings.Contains(names, "renamed.txt") || strings.Contains(names, "proc/self") {
		t.Errorf("docker export of the running container: %d entries, tmp/made and data/ among them: %v; the volume's or /proc's: %v",
			strings.Count(names, "\n"), strings.Contains(names, "\ntmp/made\n"), strings.Contains(names, "renamed.txt") || strings.Contains(names, "proc/self"))
	}
	// docker diff: what its writable layer holds against the image's.
	docker("exec", "cp", "rm", "/www/index.html")
	if r := docker("diff", "cp"); !containsAll(r.Stdout, "C /www\n", "D /www/index.html\n", "A /tmp/made\n", "A /tmp/in/sub/b.txt\n") {
		t.Errorf("docker diff cp: exit %d, %q %s", r.Code, r.Stdout, r.Stderr)
	}
	docker("stop", "-t", "1", "cp")
	wantTar(t, docker("cp", "cp:/tmp/made", "-"), "made", "made\n", 1000) // its writable layer stays
}

// wantTar checks that r, docker cp's output to "-", is a tar stream of
// one file, name, holding body, owned by uid.
func wantTar(t *testing.T, r result, name, body string, uid int) {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(r.Stdout))
	hdr, err := tr.Next()
	if err != nil {
		t.Errorf("docker cp to -: exit %d, %v: %s", r.Code, err, r.Stderr)
		return
	}
	b, _ := io.ReadAll(tr)
	if hdr.Name != name || string(b) != body || hdr.Uid != uid {
		t.Errorf("docker cp to -: %s owned by %d holding %q; want %s owned by %d holding %q", hdr.Name, hdr.Uid, b, name, uid, body)
	}
}

// dockerCopyStopped: docker cp into a created container, before its
// first start, and out of it once it has exited, with and without a
// user namespace (--network none, host): the run sees the file with its
// owner, and what the run wrote comes out, by docker cp and docker
// export. A path under a volume, which is mounted only while the
// container runs, is refused.
func dockerCopyStopped(t *testing.T, docker func(...string) result, ref string) {
	conf := filepath.Join(workDir, "conf.txt")
	if err := os.WriteFile(conf, []byte("conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(conf)
	if err := os.Chown(conf, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	const run = "cat /etc/conf.txt; stat -c %u /etc/conf.txt; echo result > /tmp/out"
	for _, network := range []string{"none", "host"} {
		name := "cp-" + network
		if r := docker("create", "--name", name, "--network", network, "-v", name+":/data", ref, "sh", "-c", run); r.Code != 0 {
			t.Fatalf("docker create: exit %d: %s", r.Code, r.Stderr)
		}
		defer docker("volume", "rm", name)
		defer docker("rm", "-f", name)
		// Read before its first start: its image's files, and nothing made.
		wantTar(t, docker("cp", name+":/etc/motd", "-"), "motd", "motd from layer 2\n", 0)
		if r := inside(t, "test", "-e", "/var/lib/cove/containers/"+name); r.Code == 0 {
			t.Errorf("docker cp out of the created %s made its state directory", name)
		}
		if r := docker("cp", conf, name+":/etc/conf.txt"); r.Code != 0 {
			t.Errorf("docker cp into the created %s: exit %d: %s", name, r.Code, r.Stderr)
		}
		if r := docker("ps", "-a", "--filter", "name="+name, "--format", "{{.Status}}"); r.Stdout != "Created\n" {
			t.Errorf("docker ps of %s after a copy into it: %q, want Created", name, r.Stdout)
		}
		if r := docker("rename", name, name+"-x"); r.Code == 0 || !strings.Contains(r.Stderr, "files were copied into") {
			t.Errorf("docker rename of %s after a copy into it: exit %d: %s", name, r.Code, r.Stderr)
		}
		if r := docker("cp", conf, name+":/data/conf.txt"); r.Code == 0 || !strings.Contains(r.Stderr, "mounted only while the container runs") {
			t.Errorf("docker cp into a volume of the created %s: exit %d: %s", name, r.Code, r.Stderr)
		}
		if r := docker("start", "-a", name); r.Code != 0 || r.Stdout != "conf\n1234\n" {
			t.Errorf("docker start -a %s after the copy: exit %d, stdout %q, stderr %q", name, r.Code, r.Stdout, r.Stderr)
		}
		wantTar(t, docker("cp", name+":/tmp/out", "-"), "out", "result\n", 1000)
		if r := docker("diff", name); !containsAll(r.Stdout, "C /etc\n", "A /etc/conf.txt\n", "A /tmp/out\n") {
			t.Errorf("docker diff %s: exit %d, %q %s", name, r.Code, r.Stdout, r.Stderr)
		}
		if names := tarNames(docker("export", name).Stdout) + "\n"; !strings.Contains(names, "\netc/conf.txt\n") || !strings.Contains(names, "\ntmp/out\n") {
			t.Errorf("docker export of the exited %s: %d entries, without etc/conf.txt or tmp/out", name, strings.Count(names, "\n"))
		}
	}
}

// tarNames are the names of the entries of the tar stream s, one per line.
func tarNames(s string) string {
	var names []string
	tr := tar.NewReader(strings.NewReader(s))
	for hdr, err := tr.Next(); err == nil; hdr, err = tr.Next() {
		names = append(names, hdr.Name)
	}
	return strings.Join(names, "\n")
}

// containsAll reports whether s contains each of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// dockerCopyPython: testcontainers' way, through Debian's python3-docker:
// create a container, put_archive a file into it before its start, start
// it, wait, and get_archive the file back with its stat.
func dockerCopyPython(t *testing.T, docker func(...string) result, ref string) {
	defer docker("rm", "-f", "cp-py")
	py := fmt.Sprintf(`import docker, io, json, tarfile
c = docker.DockerClient(base_url=%q, version="1.41")
ct = c.containers.create(%q, ["sh", "-c", "cat /etc/py.txt"], name="cp-py", network_mode="none")
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as tf:
    ti = tarfile.TarInfo("py.txt"); ti.size = 3
    tf.addfile(ti, io.BytesIO(b"py\n"))
put = ct.put_archive("/etc", buf.getvalue())
ct.start()
rc = ct.wait()["StatusCode"]
bits, stat = ct.get_archive("/etc/py.txt")
with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tf:
    body = tf.extractfile("py.txt").read().decode()
print(json.dumps({"put": put, "rc": rc, "logs": ct.logs().decode(), "name": stat["name"], "size": stat["size"], "body": body}))
`, apiHost, ref)
	r := inside(t, "/usr/bin/python3", "-c", py)
	var got struct {
		Put              bool
		RC               int
		Logs, Name, Body string
		Size             int
	}
	if err := json.Unmarshal([]byte(r.Stdout), &got); err != nil {
		t.Fatalf("python3-docker put_archive, start, get_archive: exit %d, %v: %s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	if !got.Put || got.RC != 0 || got.Logs != "py\n" || got.Name != "py.txt" || got.Size != 3 || got.Body != "py\n" {
		t.Errorf("python3-docker put_archive, start, get_archive: %+v", got)
	}
}
