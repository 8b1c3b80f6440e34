package nettest

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/tests/harness"
)

// TestSharedNetwork: a container with network = "container:web" is in
// web's network namespace, as Docker's --network container:web puts it:
// web's server answers it on 127.0.0.1, it has web's address and
// resolver configuration and resolves the network's names; its unit
// starts after web's and with it, stops with it, and restarts with it (in
// web's new namespace), also when web restarts by itself after a crash.
// cove run --network container:web and the docker CLI's do the same;
// ports there are refused before anything starts.
func TestSharedNetwork(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	journalOnFailure(t, 80)
	applySpec(t, "web", httpdSpec("", "restart = \"on-failure\"\nrestart_delay = \"100ms\""))
	applySpec(t, "side", `version = 1
kind = "container"
[container]
rootfs = "`+rootfs+`"
network = "container:web"
command = ["sleep", "1000"]
[service]
stop_timeout = "1s"
`)
	checkShares(t, "side", "web")
	if out := mustCove(t, "status", "side"); !regexp.MustCompile(`(?m)^Network:\s+container:web `).MatchString(out) {
		t.Errorf("cove status side does not name the namespace it shares:\n%s", out)
	}
	if got := show(t, "cove-side.service", "Requires"); !slices.Contains(strings.Fields(got), "cove-web.service") {
		t.Errorf("side's Requires = %q, want cove-web.service among them", got)
	}
	first := show(t, "cove-side.service", "InvocationID")
	must(t, "systemctl", "restart", "cove-web.service") // waits for web's job; side's follows
	eventually(t, 10*time.Second, "side to restart with web", func() bool {
		return show(t, "cove-side.service", "InvocationID") != first && show(t, "cove-side.service", "ActiveState") == "active"
	})
	checkShares(t, "side", "web")
	second := show(t, "cove-side.service", "InvocationID")
	must(t, "kill", "-9", show(t, "cove-web.service", "MainPID")) // a crash: web restarts by itself
	eventually(t, 15*time.Second, "side to restart after web's crash", func() bool {
		return show(t, "cove-side.service", "InvocationID") != second && show(t, "cove-side.service", "ActiveState") == "active"
	})
	checkShares(t, "side", "web")
	must(t, "systemctl", "stop", "cove-web.service")
	if st := show(t, "cove-side.service", "ActiveState"); st != "inactive" {
		t.Errorf("side is %s after web stopped, want inactive", st)
	}
	must(t, "systemctl", "start", "cove-side.service")
	if st := show(t, "cove-web.service", "ActiveState"); st != "active" {
		t.Errorf("starting side left web %s, want it started first", st)
	}
	checkShares(t, "side", "web")

	t.Cleanup(func() { inside(t, coveBin, "rm", "peek") })
	mustCove(t, "run", "-d", "--name", "peek", "--rootfs", rootfs, "--network", "container:web", "--", "sleep", "1000")
	checkShares(t, "peek", "web")
	r := inside(t, coveBin, "run", "--rm", "--rootfs", rootfs, "--network", "container:web", "-p", "8081:8080", "--", "true")
	if r.Code != 2 || !strings.Contains(r.Stderr, `shares web's addresses, ports and names: set ports on web`) {
		t.Errorf("cove run -p with network container:web: exit %d, %s", r.Code, r.Stderr)
	}
	checkDockerShares(t)
}

// checkShares checks that container name is in the network namespace of
// container of: the same namespace (by inode), the same eth0 address and
// resolver configuration, of's server on 127.0.0.1:8080 and of's name on
// the network's DNS.
func checkShares(t *testing.T, name, of string) {
	t.Helper()
	ns := func(w string) string {
		return strings.TrimSpace(must(t, "readlink", "/proc/"+show(t, "cove-"+w+".service", "MainPID")+"/ns/net"))
	}
	if a, b := ns(name), ns(of); a != b {
		t.Errorf("%s's network namespace is %s, %s's %s", name, a, of, b)
	}
	if got := fetch(t, name, "http://127.0.0.1:8080/"); got != of {
		t.Errorf("%s fetching 127.0.0.1:8080: %q, want %s's page", name, got, of)
	}
	if a, b := mustCove(t, "exec", name, "--", "cat", "/etc/resolv.conf"), mustCove(t, "exec", of, "--", "cat", "/etc/resolv.conf"); a != b || !strings.Contains(a, "nameserver") {
		t.Errorf("%s's resolv.conf:\n%s\n%s's:\n%s", name, a, of, b)
	}
	addr, _ := eth0Addr(t, of)
	if mine, _ := eth0Addr(t, name); mine != addr {
		t.Errorf("%s's eth0 has %s, %s's %s", name, mine, of, addr)
	}
	if got := lookup(t, name, of); got != addr {
		t.Errorf("%s resolving %s: %q, want %s", name, of, got, addr)
	}
}

// checkDockerShares runs the docker CLI's run --network container:web
// (web named by its name, then by its ID's prefix) through cove's API:
// the container reaches web's server on 127.0.0.1; one from an image
// (its own user namespace) serves on port 81 there.
func checkDockerShares(t *testing.T) {
	t.Helper()
	docker := dockerCLI(t)
	for _, ref := range []string{"web", dockerIDOf(t, docker, "web")[:12]} {
		r := docker("run", "--rm", "--network", "container:"+ref, dockerImage, "wget", "-O", "-", "http://127.0.0.1:8080/")
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "web" {
			t.Errorf("docker run --network container:%s wget 127.0.0.1:8080: exit %d\n%s%s", ref, r.Code, r.Stdout, r.Stderr)
		}
	}
	if r := docker("run", "--rm", "--network", "container:nosuch", dockerImage, "true"); r.Code == 0 || !strings.Contains(r.Stderr, "no such container: nosuch") {
		t.Errorf("docker run --network container:nosuch: exit %d\n%s", r.Code, r.Stderr)
	}
	// An image container has a user namespace of its own, which owns no
	// part of web's network namespace; it binds port 81 there all the same.
	t.Cleanup(func() { docker("rm", "-f", "dlow") })
	if r := docker("run", "-d", "--name", "dlow", "--network", "container:web", dockerImage,
		"/bin/sh", "-c", "mkdir -p /www && echo low > /www/index.html && exec httpd -f -p 81 -h /www"); r.Code != 0 {
		t.Fatalf("docker run -d --network container:web httpd -p 81: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if got := fetch(t, "side", "http://127.0.0.1:81/"); got != "low" {
		t.Errorf("side fetching the port 81 dlow serves in web's namespace: %q", got)
	}
	if r := docker("inspect", "-f", "{{.HostConfig.NetworkMode}}", "dlow"); strings.TrimSpace(r.Stdout) != "container:"+dockerIDOf(t, docker, "web") {
		t.Errorf("docker inspect dlow's NetworkMode: %q, want container:<web's ID>, as Docker shows it", r.Stdout)
	}
	if got := strings.TrimSpace(mustCove(t, "exec", "web", "--", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")); got != "0" {
		t.Errorf("web's net.ipv4.ip_unprivileged_port_start is %s, want 0", got)
	}
}

// dockerIDOf is the Docker ID of container name as docker inspect shows it.
func dockerIDOf(t *testing.T, docker func(args ...string) result, name string) string {
	t.Helper()
	r := docker("inspect", "-f", "{{.Id}}", name)
	if id := strings.TrimSpace(r.Stdout); r.Code == 0 && len(id) == 64 {
		return id
	}
	t.Fatalf("docker inspect %s: exit %d\n%s%s", name, r.Code, r.Stdout, r.Stderr)
	return ""
}

// TestDockerComposeSharedNetwork: docker compose v5's network_mode
// "service:web" (which it sends as container:ID) puts side in web's
// network namespace through cove's API: side reaches web's server on
// 127.0.0.1; a second up -d recreates nothing; down removes both.
func TestDockerComposeSharedNetwork(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	needDocker(t)
	bin := harness.ComposeV5(t, sb)
	file := `services:
  web:
    image: ` + dockerImage + `
    command: ["/bin/sh", "-c", "mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 8080 -h /www"]
  side:
    image: ` + dockerImage + `
    network_mode: "service:web"
    command: ["sleep", "1000"]
`
	compose := composeProject(t, bin, "/tmp/shared/compose.yaml", file, "down")
	if r := compose("up", "-d"); r.Code != 0 {
		t.Fatalf("docker compose up -d: exit %d:\n%s", r.Code, r.Stdout)
	}
	var r result
	for range 50 {
		if r = compose("exec", "-T", "side", "wget", "-qO-", "http://127.0.0.1:8080/"); r.Code == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.TrimSpace(r.Stdout) != "web" {
		t.Errorf("side (network_mode service:web) fetching 127.0.0.1:8080: exit %d:\n%s", r.Code, r.Stdout)
	}
	if r := compose("up", "-d"); r.Code != 0 || strings.Contains(r.Stdout, "Recreate") {
		t.Errorf("a second docker compose up -d (nothing changed): exit %d:\n%s", r.Code, r.Stdout)
	}
	if r := compose("down"); r.Code != 0 {
		t.Errorf("docker compose down: exit %d:\n%s", r.Code, r.Stdout)
	}
}
