package nettest

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/network/plan"
)

// TestNamedNetworks: cove network create declares networks; containers on
// one reach each other by name (NAME and NAME.NETWORK, through the
// socket-activated responder on the gateway), names come and go with the
// containers within a second, a pinned ip is honoured, a published port
// answers from the outside, from the host through its uplink address and
// 127.0.0.1, and from another container through the host's address
// (hairpin); containers on different networks cannot reach each other
// (both ways), an internal network has no egress, and bad requests exit 2
// before anything starts. cove network rm leaves nothing behind.
func TestNamedNetworks(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoNetworkLeftovers(t, "web", "other", "sealed") })
	journalOnFailure(t, 120)
	makeOutside(t)
	serveOutside(t, 9000)
	mustCove(t, "network", "create", "--subnet4", "10.80.0.0/24", "web")
	mustCove(t, "network", "create", "other")
	mustCove(t, "network", "create", "--internal", "sealed")
	if out := mustCove(t, "network", "ls"); !regexp.MustCompile(`(?m)^other\s+cove-other\s+10\.78\.0\.0/24`).MatchString(out) {
		t.Errorf("cove network ls: other did not get the first free /24 of 10.78.0.0/15:\n%s", out)
	}

	front := runServer(t, "front", "web", "--ip", "10.80.0.50", "-p", "8080:8080")
	if front != netip.MustParseAddr("10.80.0.50") {
		t.Errorf("front got %v, want its pinned 10.80.0.50", front)
	}
	runServer(t, "client", "web")
	checkNetworkInspect(t, front)
	stranger := runServer(t, "stranger", "other")
	runServer(t, "hermit", "sealed")

	for _, name := range []string{"front", "front.web"} {
		if got := lookup(t, "client", name); got != front.String() {
			t.Errorf("client resolving %s: got %q, want %v", name, got, front)
		}
	}
	if got := fetch(t, "client", "http://front:8080/"); got != "front" {
		t.Errorf("client fetching http://front:8080/: got %q", got)
	}
	checkPublished(t, front)
	checkFlushAndReload(t)
	checkIsolated(t, "stranger", front)
	checkIsolated(t, "client", stranger)
	checkIsolated(t, "hermit", netip.MustParseAddr(outsideAddr))
	if got := fetch(t, "stranger", fmt.Sprintf("http://%s:9000/", outsideAddr)); got != uplinkAddr {
		t.Errorf("the outside saw stranger as %q, want the masqueraded %s", got, uplinkAddr)
	}

	checkRefused(t)
	mustCove(t, "stop", "front")
	eventually(t, time.Second, "front's name to go with it", func() bool {
		return lookup(t, "client", "front") == ""
	})
	must(t, "systemctl", "kill", "--signal=KILL", "cove-client.service")
	eventually(t, 10*time.Second, "client's lease, veth and tables to go after systemctl kill", func() bool {
		return inside(t, "ip", "link", "show", plan.HostIfName("web", "client")).Code != 0 &&
			!strings.Contains(must(t, "nft", "list", "tables"), plan.WorkloadTableName("client")) &&
			strings.TrimSpace(must(t, "ls", "/run/cove/networks/web/leases")) == ""
	})
}

// checkFlushAndReload: after an admin's "nft flush ruleset" the published
// port is gone; systemctl reload of the networks' units restores the
// networks' and their workloads' tables, and the port answers again, with
// the container still the same process. (The isolation checks that
// follow run on the restored tables.)
func checkFlushAndReload(t *testing.T) {
	t.Helper()
	pid := show(t, "cove-front.service", "MainPID")
	url := "http://" + uplinkAddr + ":8080/"
	must(t, "nft", "flush", "ruleset")
	if r := busybox(t, outsideNS, "timeout", "3", "wget", "-q", "-O", "-", url); r.Code == 0 {
		t.Errorf("the published port answered after nft flush ruleset: %q", r.Stdout)
	}
	for _, n := range []string{"web", "other", "sealed"} {
		must(t, "systemctl", "reload", "cove-network@"+n+".service")
	}
	tables := must(t, "nft", "list", "tables")
	for _, want := range []string{"table inet " + plan.TableName("web"), "table inet " + plan.WorkloadTableName("front"), "table bridge " + plan.WorkloadTableName("front"), "table bridge " + plan.WorkloadTableName("client")} {
		if !strings.Contains(tables, want) {
			t.Errorf("after reload, %q is missing:\n%s", want, tables)
		}
	}
	if r := busybox(t, outsideNS, "wget", "-q", "-O", "-", url); r.Code != 0 || strings.TrimSpace(r.Stdout) != "front" {
		t.Errorf("published port after reload: exit %d, %q %s", r.Code, r.Stdout, r.Stderr)
	}
	if got := show(t, "cove-front.service", "MainPID"); got != pid {
		t.Errorf("reload restarted front: MainPID %s, was %s", got, pid)
	}
}

// runServer runs a busybox httpd on port 8080 serving its hostname, on
// network net, with extra cove run flags; it is removed when the test
// ends. It returns the container's IPv4 address on eth0.
func runServer(t *testing.T, name, net string, flags ...string) netip.Addr {
	t.Helper()
	t.Cleanup(func() { inside(t, coveBin, "rm", name) })
	args := append([]string{"run", "-d", "--name", name, "--rootfs", rootfs, "--volatile", "--network", net, "--stop-timeout", "2s"}, flags...)
	mustCove(t, append(args, "--", "/bin/sh", "-c", "mkdir /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www")...)
	out := mustCove(t, "exec", name, "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
	m := regexp.MustCompile(`inet ([0-9.]+)/`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s's eth0 has no IPv4 address:\n%s", name, out)
	}
	return netip.MustParseAddr(m[1])
}

// lookup resolves name with nslookup inside container from, through its
// resolv.conf (the network's gateway); "" when it does not resolve.
func lookup(t *testing.T, from, name string) string {
	t.Helper()
	r := inside(t, coveBin, "exec", from, "--", "nslookup", "-type=a", name)
	m := regexp.MustCompile(`(?m)^Address:\s+([0-9.]+)$`).FindAllStringSubmatch(r.Stdout, -1)
	if r.Code != 0 || len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// busybox runs the rootfs's busybox applet in the namespace given
// ("" for the sandbox's own, the host of the containers).
func busybox(t *testing.T, netns string, args ...string) result {
	t.Helper()
	return fromRootfs(t, netns, "busybox", args...)
}

// fromRootfs runs the test rootfs's /bin/TOOL in the sandbox, in
// namespace netns ("": the sandbox's own).
func fromRootfs(t *testing.T, netns, tool string, args ...string) result {
	t.Helper()
	cmd := append([]string{filepath.Join(rootfs, "bin", tool)}, args...)
	if netns != "" {
		cmd = append([]string{"ip", "netns", "exec", netns}, cmd...)
	}
	return inside(t, cmd[0], cmd[1:]...)
}

// checkPublished checks that front's published port 8080 answers from the
// outside namespace through the uplink address, from the host through
// the uplink address and 127.0.0.1, and from client through the host's
// address (hairpin).
func checkPublished(t *testing.T, front netip.Addr) {
	t.Helper()
	for _, c := range []struct{ where, ns, url string }{
		{"the outside", outsideNS, "http://" + uplinkAddr + ":8080/"},
		{"the host (uplink address)", "", "http://" + uplinkAddr + ":8080/"},
		{"the host (127.0.0.1)", "", "http://127.0.0.1:8080/"},
	} {
		r := busybox(t, c.ns, "wget", "-q", "-O", "-", c.url)
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "front" {
			t.Errorf("published port from %s, %s: exit %d, %q %s", c.where, c.url, r.Code, r.Stdout, r.Stderr)
		}
	}
	if got := fetch(t, "client", "http://"+uplinkAddr+":8080/"); got != "front" {
		t.Errorf("client through the host's address (hairpin): got %q, want front", got)
	}
	if got := fetch(t, "front", "http://"+uplinkAddr+":8080/"); got != "front" {
		t.Errorf("front through the host's address to itself (hairpin): got %q, want front", got)
	}
}

// checkIsolated checks that container from cannot open a TCP connection
// to dst (port 8080, or the outside server's 9000).
func checkIsolated(t *testing.T, from string, dst netip.Addr) {
	t.Helper()
	port := 8080
	if dst.String() == outsideAddr {
		port = 9000
	}
	r := inside(t, coveBin, "exec", from, "--", "timeout", "3", "nc", dst.String(), fmt.Sprint(port))
	if r.Code == 0 {
		t.Errorf("%s reached %v:%d across networks", from, dst, port)
	}
}

// checkNetworkInspect: cove network inspect web shows its subnet, file,
// state, the lease of front at its pinned address, and its firewall
// table.
func checkNetworkInspect(t *testing.T, front netip.Addr) {
	t.Helper()
	var infos []struct {
		Name, Subnet4, File, State, Firewall string
		Leases                               map[string]string
	}
	out := mustCove(t, "network", "inspect", "web")
	if err := json.Unmarshal([]byte(out), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("cove network inspect web: %v\n%s", err, out)
	}
	n := infos[0]
	if n.Name != "web" || n.Subnet4 != "10.80.0.0/24" || n.File != "/etc/cove/networks/web.toml" || n.State != "active" ||
		n.Leases[front.String()] != "front" || !strings.Contains(n.Firewall, `table inet "cove-net-web"`) {
		t.Errorf("cove network inspect web: %+v", n)
	}
}

// checkRefused: an unknown network, an address outside the subnet, a
// port another container publishes, in a spec file and as flags, exit 2
// with the key (and FILE:LINE:COL for the file) and start nothing; a
// network whose subnet overlaps web's, in a network file (cove validate)
// and as cove network create, exits 2 (the file's error at
// the subnet's FILE:LINE:COL) and writes no network file.
func checkRefused(t *testing.T) {
	t.Helper()
	checkOverlapRefused(t)
	file := "/run/bad-net.toml"
	must(t, "sh", "-c", fmt.Sprintf("printf 'version = 1\\nkind = \"container\"\\n[container]\\nrootfs = \"%s\"\\ncommand = [\"/bin/true\"]\\nnetwork = \"nope\"\\n' > %s", rootfs, file))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", file}, file + `:6:1: container.network: unknown network "nope"`},
		{[]string{"run", "--name", "bad1", "--rootfs", rootfs, "--network", "web", "--ip", "10.81.0.5", "--", "/bin/true"}, "container.ip: 10.81.0.5 is not a host address of network web"},
		{[]string{"run", "--name", "bad2", "--rootfs", rootfs, "--network", "web", "--ip", "10.80.0.50", "--", "/bin/true"}, "10.80.0.50 is leased to workload front"},
		{[]string{"run", "--name", "bad3", "--rootfs", rootfs, "--network", "other", "-p", "8080:80", "--", "/bin/true"}, "already published by workload front"},
		{[]string{"run", "--name", "bad4", "--rootfs", rootfs, "--network", "sealed", "-p", "8085:80", "--", "/bin/true"}, "network sealed is internal"},
	} {
		r := inside(t, coveBin, c.args...)
		if r.Code != 2 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("cove %s: exit %d, %s; want exit 2 and %q", strings.Join(c.args, " "), r.Code, r.Stderr, c.want)
		}
	}
	for _, name := range []string{"bad-net", "bad1", "bad2", "bad3", "bad4"} {
		if st := show(t, "cove-"+name+".service", "LoadState"); st != "not-found" {
			t.Errorf("refused %s left a unit (%s)", name, st)
		}
	}
}

// checkOverlapRefused: see checkRefused.
func checkOverlapRefused(t *testing.T) {
	t.Helper()
	file := "/run/clash/networks/clash.toml"
	must(t, "sh", "-c", "mkdir -p /run/clash/networks && printf 'version = 1\\nkind = \"network\"\\n\\n[network]\\nsubnet4 = \"10.80.0.128/25\"\\n' > "+file)
	defer inside(t, "rm", "-rf", "/run/clash")
	want := file + `:5:1: network.subnet4: subnet4 10.80.0.128/25 overlaps subnet4 10.80.0.0/24 of network "web"`
	for _, args := range [][]string{{"validate", file}, {"network", "create", "--subnet4", "10.80.0.128/25", "clash"}} {
		r := inside(t, coveBin, args...)
		if args[0] == "network" {
			want = "overlaps subnet4 10.80.0.0/24 of network \"web\""
		}
		if r.Code != 2 || !strings.Contains(r.Stderr, want) {
			t.Errorf("cove %s: exit %d, %s; want exit 2 and %q", strings.Join(args, " "), r.Code, r.Stderr, want)
		}
	}
	if r := inside(t, "test", "-e", "/etc/cove/networks/clash.toml"); r.Code == 0 {
		t.Error("a refused network left /etc/cove/networks/clash.toml")
	}
}

// checkNoNetworkLeftovers removes the named networks and the default
// one's unit, and checks that nothing cove made is left.
func checkNoNetworkLeftovers(t *testing.T, nets ...string) {
	t.Helper()
	if len(nets) > 0 {
		mustCove(t, append([]string{"network", "rm"}, nets...)...)
	}
	for _, n := range nets {
		if r := inside(t, "ip", "link", "show", plan.BridgeName(n)); r.Code == 0 {
			t.Errorf("bridge of removed network %s is still there", n)
		}
	}
	if out := must(t, "sh", "-c", "find /run/cove/ports /etc/cove/networks /run/cove/networks -type f ! -name lock 2>/dev/null || true"); strings.TrimSpace(out) != "" {
		t.Errorf("left in /run/cove/ports, /etc/cove/networks or the leases:\n%s", out)
	}
	checkNoLeftovers(t)
}
