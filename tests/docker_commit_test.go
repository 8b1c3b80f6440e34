package tests

import (
	"regexp"
	"strings"
	"testing"
)

// dockerCommit: docker commit of a running container with a user
// namespace of its own makes an image of what it wrote (a new file with
// its owner, a deleted file) with --change applied, runs as such, and
// shows its author, comment and command in docker inspect and docker
// history; the container runs on, unfrozen. A change docker commit does
// not take is refused and makes no image. cove commit makes one of the
// stopped container.
func dockerCommit(t *testing.T, docker func(...string) result, ref string) {
	if r := docker("run", "-d", "--name", "cm", "--network", "none", ref, "sleep", "1000"); r.Code != 0 {
		t.Fatalf("docker run -d: exit %d: %s", r.Code, r.Stderr)
	}
	defer docker("rmi", "localhost/committed:1", "localhost/committed:2")
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
	mustCove(t, "commit", "-c", "LABEL stage=two", "cm", "committed:2")
	if out := docker("run", "--rm", "committed:2", "cat", "/tmp/made").Stdout; out != "made\n" {
		t.Errorf("a container of committed:2 (cove commit of the stopped one): %q", out)
	}
	if out := docker("image", "inspect", "-f", "{{.Config.Labels.stage}}", "committed:2").Stdout; out != "two\n" {
		t.Errorf("committed:2's label stage: %q", out)
	}
}
