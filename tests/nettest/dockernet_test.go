package nettest

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/cove-project/cove/tests/harness"
)

// TestDockerNetworkCreate: the real docker CLI creates a network through
// cove's API (its file, the subnet asked for), runs a container on it
// (an address of that subnet), cannot remove it while the container is
// on it (the refusal names it) and removes it after; without a subnet it
// gets a free one; what cove's networks cannot be is refused; a network
// cove network create makes with a label and without IPv6 is listed so by
// docker network ls --filter label=.
func TestDockerNetworkCreate(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	docker := dockerCLI(t)
	t.Cleanup(func() { docker("rm", "-f", "dn1"); docker("network", "rm", "dnet", "dfree") })
	if r := docker("network", "create", "--subnet", "10.86.0.0/24", "dnet"); r.Code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(r.Stdout) {
		t.Fatalf("docker network create --subnet 10.86.0.0/24 dnet: exit %d, %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if f := must(t, "cat", "/etc/cove/networks/dnet.toml"); !strings.Contains(f, `subnet4 = "10.86.0.0/24"`) {
		t.Errorf("dnet's network file:\n%s", f)
	}
	if r := docker("run", "-d", "--name", "dn1", "--network", "dnet", dockerImage, "sleep", "1000"); r.Code != 0 {
		t.Fatalf("docker run --network dnet: exit %d: %s", r.Code, r.Stderr)
	}
	addr := docker("inspect", "-f", "{{.NetworkSettings.Networks.dnet.IPAddress}}", "dn1").Stdout
	if a, err := netip.ParseAddr(strings.TrimSpace(addr)); err != nil || !netip.MustParsePrefix("10.86.0.0/24").Contains(a) {
		t.Errorf("dn1's address on dnet: %q, want one of 10.86.0.0/24", addr)
	}
	if r := docker("network", "rm", "dnet"); r.Code == 0 || !strings.Contains(r.Stderr, "in use by dn1") {
		t.Errorf("docker network rm of a network in use: exit %d: %s", r.Code, r.Stderr)
	}
	docker("rm", "-f", "dn1")
	if r := docker("network", "rm", "dnet"); r.Code != 0 {
		t.Errorf("docker network rm dnet: exit %d: %s", r.Code, r.Stderr)
	}
	if r := inside(t, "test", "-e", "/etc/cove/networks/dnet.toml"); r.Code == 0 {
		t.Error("dnet's network file is still there after docker network rm")
	}
	if r := docker("network", "create", "dfree"); r.Code != 0 {
		t.Fatalf("docker network create dfree: exit %d: %s", r.Code, r.Stderr)
	}
	if sub := docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "dfree").Stdout; !strings.HasPrefix(sub, "10.7") {
		t.Errorf("dfree's subnet: %q, want a free /24 of 10.78.0.0/15", sub)
	}
	for _, args := range [][]string{{"network", "create", "-d", "overlay", "dover"}, {"network", "create", "dfree"}, {"network", "rm", "cove"}} {
		if r := docker(args...); r.Code == 0 {
			t.Errorf("docker %s: exit 0, want a refusal", strings.Join(args, " "))
		}
	}
	if r := docker("network", "rm", "dfree"); r.Code != 0 {
		t.Errorf("docker network rm dfree: exit %d: %s", r.Code, r.Stderr)
	}
	dockerCreatesAtOnce(t, docker)
	mustCove(t, "network", "create", "--ipv6=false", "--label", "team=shop", "dlab")
	if f := must(t, "cat", "/etc/cove/networks/dlab.toml"); !strings.Contains(f, "ipv6 = false") || !strings.Contains(f, "[network.labels]\nteam = \"shop\"") {
		t.Errorf("dlab's network file:\n%s", f)
	}
	if r := docker("network", "ls", "--filter", "label=team=shop", "--format", "{{.Name}} {{.IPv6}}"); strings.TrimSpace(r.Stdout) != "dlab false" {
		t.Errorf("docker network ls --filter label=team=shop: %q %s", r.Stdout, r.Stderr)
	}
	mustCove(t, "network", "rm", "dlab")
}

// dockerCreatesAtOnce: four docker network creates without a subnet at
// the same time (docker compose creates a project's networks in
// parallel) get four different subnets.
func dockerCreatesAtOnce(t *testing.T, docker func(args ...string) result) {
	t.Helper()
	bin := harness.DockerCLI(t, sb)
	names := []string{"dpar1", "dpar2", "dpar3", "dpar4"}
	t.Cleanup(func() { docker(append([]string{"network", "rm"}, names...)...) })
	script := "for n in " + strings.Join(names, " ") + "; do " + bin + " -H unix:///run/cove/api.sock network create $n >/dev/null & pids=\"$pids $!\"; done; " +
		"for p in $pids; do wait $p || exit 1; done"
	if r := inside(t, "sh", "-c", script); r.Code != 0 {
		t.Fatalf("four docker network creates at once: exit %d: %s", r.Code, r.Stderr)
	}
	seen := map[string]string{}
	for _, n := range names {
		sub := strings.TrimSpace(docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", n).Stdout)
		if other, dup := seen[sub]; dup || sub == "" {
			t.Errorf("networks %s and %s created at once both have subnet %q", other, n, sub)
		}
		seen[sub] = n
	}
}
