package nettest

import (
	"strings"
	"testing"
)

// TestDockerPrune: docker container prune removes the containers that do
// not run (created or exited), each with its unit and writable layer, and
// leaves a running one; --filter until= an hour ago keeps the new ones
// and label= narrows the set. docker network prune removes the networks
// no container is on (label= narrows the set) and keeps the one a
// running container is on, the one a created container names and the
// default network. docker system prune does both (and prunes images, and
// asks for the build cache, which cove does not have), with a label!
// filter on all of them.
func TestDockerPrune(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	docker := dockerCLI(t)
	t.Cleanup(func() {
		docker("rm", "-f", "pr-up", "pr-made", "pr-ran", "pr-kept", "pr-later")
		docker("network", "rm", "pr-used", "pr-free", "pr-lab", "pr-held")
	})
	for _, args := range [][]string{
		{"network", "create", "pr-used"}, {"network", "create", "pr-free"}, {"network", "create", "pr-held"},
		{"network", "create", "--label", "team=shop", "pr-lab"},
		{"run", "-d", "--name", "pr-up", "--network", "pr-used", dockerImage, "sleep", "1000"},
		{"create", "--name", "pr-made", dockerImage, "true"},
		{"run", "--name", "pr-ran", "-l", "drop=yes", dockerImage, "sh", "-c", "echo x > /written"},
		{"run", "--name", "pr-kept", dockerImage, "true"},
	} {
		if r := docker(args...); r.Code != 0 {
			t.Fatalf("docker %s: exit %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
		}
	}
	id := func(name string) string { return strings.TrimSpace(docker("inspect", "-f", "{{.Id}}", name).Stdout) }
	ids := map[string]string{"pr-made": id("pr-made"), "pr-ran": id("pr-ran"), "pr-kept": id("pr-kept")}
	if r := inside(t, "test", "-e", "/var/lib/cove/containers/pr-ran/upper/written"); r.Code != 0 {
		t.Fatal("pr-ran's writable layer has no /written")
	}
	prune := func(what string, args ...string) string {
		t.Helper()
		r := docker(append([]string{what, "prune", "-f"}, args...)...)
		if r.Code != 0 {
			t.Fatalf("docker %s prune -f %s: exit %d: %s", what, strings.Join(args, " "), r.Code, r.Stderr)
		}
		return r.Stdout
	}
	if out := prune("container", "--filter", "until=1h"); strings.Contains(out, "Deleted") {
		t.Errorf("docker container prune --filter until=1h removed containers created just now:\n%s", out)
	}
	if out := prune("container", "--filter", "label=drop=yes"); !strings.Contains(out, "Deleted Containers:\n"+ids["pr-ran"]+"\n\n") ||
		strings.Contains(out, "Total reclaimed space: 0B") {
		t.Errorf("docker container prune --filter label=drop=yes, want pr-ran (%s) alone, and its writable layer's bytes reclaimed:\n%s", ids["pr-ran"], out)
	}
	if r := inside(t, "test", "-e", "/var/lib/cove/containers/pr-ran"); r.Code == 0 {
		t.Error("pr-ran's writable layer is still there after the prune")
	}
	out := prune("container")
	for _, n := range []string{"pr-made", "pr-kept"} {
		if !strings.Contains(out, ids[n]+"\n") {
			t.Errorf("docker container prune did not remove %s (%s):\n%s", n, ids[n], out)
		}
	}
	if r := docker("ps", "-a", "--format", "{{.Names}} {{.State}}"); r.Stdout != "pr-up running\n" {
		t.Errorf("docker ps -a after the prunes: %q, want pr-up running alone", r.Stdout)
	}
	if r := docker("create", "--name", "pr-later", "--network", "pr-held", dockerImage, "true"); r.Code != 0 {
		t.Fatalf("docker create --network pr-held: exit %d: %s", r.Code, r.Stderr)
	}
	if out := prune("network", "--filter", "label=team=shop"); out != "Deleted Networks:\npr-lab\n\n" {
		t.Errorf("docker network prune --filter label=team=shop: %q, want pr-lab alone", out)
	}
	if out := prune("network"); out != "Deleted Networks:\npr-free\n\n" {
		t.Errorf("docker network prune: %q, want pr-free alone (pr-up is on pr-used, pr-later names pr-held)", out)
	}
	if r := docker("network", "ls", "--format", "{{.Name}}"); r.Stdout != "cove\npr-held\npr-used\n" {
		t.Errorf("docker network ls after the prune: %q", r.Stdout)
	}
	if r := docker("rm", "-f", "pr-up"); r.Code != 0 {
		t.Fatalf("docker rm -f pr-up: exit %d: %s", r.Code, r.Stderr)
	}
	later := id("pr-later")
	if out := prune("system", "--filter", "label!=never"); !strings.Contains(out, "Deleted Containers:\n"+later+"\n") || !strings.Contains(out, "Deleted Networks:\npr-held\npr-used\n") || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("docker system prune after pr-up's removal, want pr-later (%s), pr-held and pr-used removed:\n%s", later, out)
	}
	if r := inside(t, "test", "-e", "/etc/cove/networks/pr-used.toml"); r.Code == 0 {
		t.Error("pr-used's network file is still there after docker system prune")
	}
}
