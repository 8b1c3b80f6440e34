package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cove-project/cove/tests/registry"
)

// dockerCommit: docker commit of a running container with a user
// namespace of its own makes an image of what it wrote (a new file with
// its owner, a deleted file) with --change applied, runs as such, and
// shows its author, comment and command in docker inspect and docker
// history; the container runs on, unfrozen. A change docker commit does
// not take is refused and makes no image. cove commit makes one of the
// stopped container, named for the registry, and both go there and back
// (dockerPush); docker export and import make an image of it too
// (dockerImport).
func dockerCommit(t *testing.T, docker func(...string) result, ref string, reg *registry.Registry) {
	if r := docker("run", "-d", "--name", "cm", "--network", "none", ref, "sleep", "1000"); r.Code != 0 {
		t.Fatalf("docker run -d: exit %d: %s", r.Code, r.Stderr)
	}
	pushed := reg.Addr + "/cove/pushed"
	defer docker("rmi", "localhost/committed:1", pushed+":1", pushed+":2")
	defer docker("rm", "-f", "cm")
	if r := docker("exec", "-u", "0", "cm", "sh", "-c", "echo made > /tmp/made && chown 1000:1000 /tmp/made && rm /www/index.html"); r.Code != 0 {
		t.Fatalf("docker exec: exit %d: %s", r.Code, r.Stderr)
	}
	images := docker("images", "-q").Stdout
	if r := docker("commit", "-c", "RUN true", "cm", "committed:bad"); r.Code == 0 || !strings.Contains(r.Stderr, "RUN is not an instruction") {
		t.Errorf("docker commit -c 'RUN true': exit %d: %s", r.Code, r.Stderr)
	}
	if after := docker("images", "-q").Stdout; after != images {
		t.Errorf("a refused commit changed docker images: %q, was %q", after, images)
	}
	r := docker("commit", "-a", "me", "-m", "why", "-c", `CMD ["cat", "/tmp/made"]`, "-c", "ENV COMMITTED=yes", "cm", "committed:1")
	if r.Code != 0 || !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(r.Stdout) {
		t.Fatalf("docker commit: exit %d, %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if st := docker("inspect", "-f", "{{.State.Status}}", "cm").Stdout; st != "running\n" {
		t.Errorf("the committed container is %q, want running (not left paused)", st)
	}
	if out := docker("run", "--rm", "committed:1").Stdout; out != "made\n" {
		t.Errorf("docker run committed:1 (its CMD): %q, want made", out)
	}
	check := "stat -c %u:%g /tmp/made; test -e /www/index.html || echo deleted; echo $COMMITTED; id -u"
	if out := docker("run", "--rm", "--network", "none", "committed:1", "sh", "-c", check).Stdout; out != "1000:1000\ndeleted\nyes\n1000\n" {
		t.Errorf("a container of committed:1 sees %q; want the file the container's uid 1000 owned, the deletion, the ENV, the image's user", out)
	}
	if out := docker("image", "inspect", "-f", "{{.Author}} {{.Config.Cmd}} {{len .RootFS.Layers}}", "committed:1").Stdout; !strings.HasPrefix(out, "me [cat /tmp/made] ") {
		t.Errorf("docker image inspect committed:1: %q", out)
	}
	if out := docker("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", "committed:1").Stdout; !strings.HasPrefix(out, "sleep 1000|why\n") {
		t.Errorf("docker history committed:1: %q; want the container's command and the comment first", out)
	}
	docker("stop", "-t", "1", "cm")
	mustCove(t, "commit", "-c", "LABEL stage=two", "cm", pushed+":2")
	if out := docker("image", "inspect", "-f", "{{.Config.Labels.stage}}", pushed+":2").Stdout; out != "two\n" {
		t.Errorf("%s:2's label stage: %q", pushed, out)
	}
	dockerPush(t, docker, pushed)
	dockerImport(t, docker)
}

// dockerImport: docker export of the stopped container, then docker
// import of that file with a change and a message, makes an image that
// runs with the container's files and shows the message in docker
// history; a URL to fetch is refused.
func dockerImport(t *testing.T, docker func(...string) result) {
	file := filepath.Join(workDir, "cm-export.tar")
	defer os.Remove(file)
	if r := docker("export", "-o", file, "cm"); r.Code != 0 {
		t.Fatalf("docker export -o: exit %d: %s", r.Code, r.Stderr)
	}
	defer docker("rmi", "localhost/imported:1")
	r := docker("import", "-c", `CMD ["cat", "/tmp/made"]`, "-c", "USER 1000", "-m", "from cm", file, "imported:1")
	if r.Code != 0 || !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(r.Stdout) {
		t.Fatalf("docker import: exit %d, %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("run", "--rm", "imported:1"); r.Stdout != "made\n" {
		t.Errorf("docker run imported:1: exit %d, %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if out := docker("history", "--format", "{{.Comment}}", "imported:1").Stdout; out != "from cm\n" {
		t.Errorf("docker history imported:1: %q", out)
	}
	if r := docker("import", "http://127.0.0.1:1/rootfs.tar", "fetched:1"); r.Code == 0 || !strings.Contains(r.Stderr, "fetches no URL") {
		t.Errorf("docker import of a URL: exit %d: %s", r.Code, r.Stderr)
	}
}

// dockerPush: docker push of the image committed:1 tagged for the test
// registry (its base layers mounted from the test image's repository, the
// new one uploaded), and cove push of pushed:2, reach the registry: removed from
// the store and pulled again, each runs with what the container wrote. A
// name that names no registry, or the store's own, is refused.
func dockerPush(t *testing.T, docker func(...string) result, pushed string) {
	docker("tag", "committed:1", pushed+":1")
	if r := docker("push", pushed+":1"); r.Code != 0 || !containsAll(r.Stdout, "The push refers to repository ["+pushed+"]", "Layer already exists", "Pushed", "1: digest: sha256:") {
		t.Errorf("docker push: exit %d: %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if out := mustCove(t, "push", "-q", pushed+":2"); !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(out) {
		t.Errorf("cove push -q: %q", out)
	}
	for _, bad := range []string{"committed:1", "localhost/committed:1"} {
		if r := docker("push", bad); r.Code == 0 || !strings.Contains(r.Stderr, "give the image") {
			t.Errorf("docker push %s: exit %d: %s", bad, r.Code, r.Stderr)
		}
	}
	docker("rmi", pushed+":1", pushed+":2")
	if r := docker("run", "--rm", pushed+":1"); r.Stdout != "made\n" || !strings.Contains(r.Stderr, "Downloaded newer image") {
		t.Errorf("docker run %s:1 pulled again: exit %d, %q %s", pushed, r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("run", "--rm", pushed+":2", "sh", "-c", "cat /tmp/made; test -e /www/index.html || echo deleted"); r.Stdout != "made\ndeleted\n" {
		t.Errorf("docker run %s:2 pulled again: exit %d, %q %s", pushed, r.Code, r.Stdout, r.Stderr)
	}
}
