package api

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/internal/image"
)

// dockerBinary finds the docker CLI: on PATH, else where scripts/deps
// extracts it. Without one the test skips (under CI it fails).
func dockerBinary(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("docker"); err == nil {
		return bin
	}
	const extracted = "/var/cache/cove-tests/docker-cli/usr/bin/docker"
	if st, err := os.Stat(extracted); err == nil && st.Mode()&0o111 != 0 {
		return extracted
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no docker CLI on PATH or at " + extracted + " (scripts/deps extracts it)")
	}
	t.Skip("no docker CLI on PATH or at " + extracted + " (run scripts/deps)")
	return ""
}

// serveSocket serves srv on a unix socket in a temporary directory until
// the test ends, and returns its address.
func serveSocket(t *testing.T, srv *Server) string {
	t.Helper()
	l, path := listenTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l, 0) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "unix://" + path
}

// dockerRun runs the docker CLI against host with a private config
// directory, returning its output and exit status.
func dockerRun(t *testing.T, bin, host string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-H", host}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir(), "DOCKER_CLI_HINTS=false", "DOCKER_CONTEXT=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// TestDockerCLIImages: docker pull, images, image inspect and rmi work
// against the API (served on a socket, as root) with images from a real
// registry, and docker pull of a short name is refused with cove's
// reason.
func TestDockerCLIImages(t *testing.T) {
	needRegistry(t)
	bin := dockerBinary(t)
	reg := startRegistry(t, t.TempDir())
	p := pushImage(t, reg, "app/web:1.4", "hello", v1.Config{Env: []string{"GREETING=hi"}, Cmd: []string{"/bin/web"}})
	st := openStore(t, reg.Addr)
	host := serveSocket(t, NewServer(fakeBackend{}, Options{Images: func() (*image.Store, error) { return st, nil }, Containers: t.TempDir()}))
	docker := func(args ...string) (string, string, int) { return dockerRun(t, bin, host, args...) }
	out, errOut, code := docker("pull", p.ref)
	for _, want := range []string{"1.4: Pulling from app/web", p.layer.Hex[:12] + ": Pull complete", "Digest: " + p.digest.String(), "Status: Downloaded newer image for " + p.ref} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("docker pull: exit %d, no %q:\n%s%s", code, want, out, errOut)
		}
	}
	row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(strings.TrimSuffix(p.ref, ":1.4")) + `\s+1\.4\s+` + p.config.Hex[:12] + `\s`)
	if out, errOut, code := docker("images"); code != 0 || !row.MatchString(out) {
		t.Errorf("docker images: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = docker("image", "inspect", "--format", "{{.Id}} {{json .Config.Env}} {{json .Config.Cmd}}", p.ref)
	if want := p.config.String() + ` ["GREETING=hi"] ["/bin/web"]`; code != 0 || strings.TrimSpace(out) != want {
		t.Errorf("docker image inspect: exit %d: %q, want %q %s", code, out, want, errOut)
	}
	if out, errOut, code := docker("pull", "web:1"); code == 0 || !strings.Contains(errOut, "cove does not assume docker.io") {
		t.Errorf("docker pull web:1: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = docker("rmi", p.ref)
	if code != 0 || !strings.Contains(out, "Untagged: "+p.ref) || !strings.Contains(out, "Deleted: "+p.config.String()) {
		t.Errorf("docker rmi: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := docker("images", "-q"); code != 0 || out != "" {
		t.Errorf("docker images -q after rmi: exit %d: %q %s", code, out, errOut)
	}
}
