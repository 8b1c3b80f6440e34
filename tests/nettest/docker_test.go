package nettest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cove-project/cove/tests/harness"
)

// dockerImage is the image the Docker API tests run: the busybox rootfs,
// imported into the sandbox's store.
const dockerImage = "localhost/nettest:1"

// dockerSetup prepares the API once per run.
var dockerSetup struct {
	once sync.Once
	err  error
}

// apiUnit names the API's units: the shipped cove-api.socket and
// .service, with the test's cove.
const apiUnit = "cove-api"

// needDocker makes, once, what the Docker API needs in this sandbox: the
// busybox image in the store, the cove group, and the shipped
// cove-api.socket and .service with the test's cove.
func needDocker(t *testing.T) {
	t.Helper()
	dockerSetup.once.Do(func() { dockerSetup.err = installDockerAPI() })
	if dockerSetup.err != nil {
		t.Fatalf("set up the API: %v", dockerSetup.err)
	}
}

// installDockerAPI does needDocker's work.
func installDockerAPI() error {
	tarball := filepath.Join(workDir, "busybox.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("tar the rootfs: %v\n%s", err, out)
	}
	script := fmt.Sprintf(`set -e
%[1]s import -q %[2]s %[3]s
mkdir -p /etc/sysusers.d
cat > /etc/sysusers.d/cove.conf
systemd-sysusers /etc/sysusers.d/cove.conf
`, coveBin, tarball, dockerImage)
	if err := insideScript(script, "../../packaging/sysusers.d/cove.conf"); err != nil {
		return err
	}
	if err := insideScript("cat > /etc/systemd/system/"+apiUnit+".socket", "../../packaging/cove-api.socket"); err != nil {
		return err
	}
	svc, err := os.ReadFile("../../packaging/cove-api.service")
	if err != nil {
		return err
	}
	unit := strings.ReplaceAll(string(svc), "ExecStart=/usr/bin/cove ", "ExecStart="+coveBin+" ")
	if !strings.Contains(unit, "ExecStart="+coveBin+" api serve") || !strings.Contains(unit, "Requires="+apiUnit+".socket") {
		return fmt.Errorf("packaging/cove-api.service: want ExecStart=/usr/bin/cove api serve and Requires=cove-api.socket, got:\n%s", svc)
	}
	return insideRun(strings.NewReader(unit), "cat > /etc/systemd/system/"+apiUnit+".service && systemctl daemon-reload && systemctl start "+apiUnit+".socket")
}

// insideScript runs script in the sandbox with the file stdin (a path
// relative to this package) as its input.
func insideScript(script, stdin string) error {
	f, err := os.Open(stdin)
	if err != nil {
		return err
	}
	defer f.Close()
	return insideRun(f, script)
}

// insideRun runs the shell script in the sandbox with stdin.
func insideRun(stdin io.Reader, script string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := sb.Command(ctx, "sh", "-c", script)
	cmd.Stdin = stdin
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", script, err, out)
	}
	return nil
}

// dockerCall sends a Docker API request (body as JSON, if not nil) to
// the sandbox's cove-api.socket, reached through the sandbox's root,
// fails t unless the answer has status want, and decodes it into out
// (if not nil). It returns the body.
func dockerCall(t *testing.T, method, path string, body any, want int, out any) string {
	t.Helper()
	sock := fmt.Sprintf("/proc/%d/root/run/cove/api.sock", sb.PID())
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	defer hc.CloseIdleConnections()
	var in io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://cove/v1.41"+path, in)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, got, want)
	}
	if out != nil {
		if err := json.Unmarshal(got, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, got)
		}
	}
	return string(got)
}

// eth0Addr is the IPv4 address and MAC of container name's eth0, as it
// sees them itself.
func eth0Addr(t *testing.T, name string) (addr, mac string) {
	t.Helper()
	out := mustCove(t, "exec", name, "--", "ip", "-o", "addr", "show", "dev", "eth0")
	m := regexp.MustCompile(`inet (10\.77\.[0-9]+\.[0-9]+)/16`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s's eth0 has no address of 10.77.0.0/16:\n%s", name, out)
	}
	link := mustCove(t, "exec", name, "--", "ip", "-o", "link", "show", "dev", "eth0")
	l := regexp.MustCompile(`link/ether ([0-9a-f:]{17})`).FindStringSubmatch(link)
	if l == nil {
		t.Fatalf("%s's eth0 has no MAC:\n%s", name, link)
	}
	return m[1], l[1]
}

// fetchLocal fetches url from the sandbox's network namespace itself
// (curl, bounded retries while the server starts) and returns the body.
func fetchLocal(t *testing.T, url string) string {
	t.Helper()
	var r result
	for range 50 {
		if r = inside(t, "curl", "-gsS", "--max-time", "5", url); r.Code == 0 { // -g: [::1] is an address, not a glob
			return strings.TrimSpace(r.Stdout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("curl %s from the sandbox: exit %d: %s", url, r.Code, r.Stderr)
	return ""
}

// dockerSummary is what the test reads of an entry of GET
// /containers/json.
type dockerSummary struct {
	Names []string
	Ports []struct {
		IP          string
		PrivatePort int
		PublicPort  int
		Type        string
	}
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress, MacAddress string }
	}
}

// dockerInspect is what the test reads of GET /containers/NAME/json.
type dockerInspect struct {
	NetworkSettings struct {
		IPAddress, MacAddress, Gateway, GlobalIPv6Address string
		IPPrefixLen                                       int
		Ports                                             map[string][]struct{ HostIp, HostPort string }
		Networks                                          map[string]struct{ IPAddress string }
	}
	HostConfig struct{ NetworkMode string }
}

// TestDockerNetwork: a container created and started through the Docker
// API with a port binding and the default network mode lands on network
// cove (the sandbox has no /etc/cove/cove.toml); the list's Ports and
// Networks and the inspection's NetworkSettings show its real eth0
// address and MAC and the published port, which answers from the
// sandbox's own namespace; GET /networks and /networks/bridge show the
// default network with the container on it. Nothing is left afterwards.
func TestDockerNetwork(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	journalOnFailure(t, 80)
	needDocker(t)
	t.Cleanup(func() { inside(t, coveBin, "rm", "dweb") })
	create := map[string]any{"Image": dockerImage, "Cmd": []string{"/bin/sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"},
		"HostConfig": map[string]any{"NetworkMode": "default", "PortBindings": map[string]any{"80/tcp": []map[string]string{{"HostIp": "", "HostPort": "8081"}}}}}
	dockerCall(t, http.MethodPost, "/containers/create?name=dweb", create, http.StatusCreated, nil)
	dockerCall(t, http.MethodPost, "/containers/dweb/start", nil, http.StatusNoContent, nil)
	assertClosedWorld(t, "cove0", "cv*")
	addr, mac := eth0Addr(t, "dweb")

	var list []dockerSummary
	dockerCall(t, http.MethodGet, "/containers/json", nil, http.StatusOK, &list)
	if len(list) != 1 || len(list[0].Ports) != 2 || list[0].Ports[0].IP != "0.0.0.0" || list[0].Ports[0].PublicPort != 8081 ||
		list[0].Ports[0].PrivatePort != 80 || list[0].Ports[1].IP != "::" || list[0].NetworkSettings.Networks["cove"].IPAddress != addr {
		t.Errorf("containers/json: %+v, want dweb with 0.0.0.0 and :: 8081->80/tcp on cove at %s", list, addr)
	}
	var in dockerInspect
	dockerCall(t, http.MethodGet, "/containers/dweb/json", nil, http.StatusOK, &in)
	ns := in.NetworkSettings
	if ns.IPAddress != addr || ns.IPPrefixLen != 16 || ns.MacAddress != mac || ns.Gateway != "10.77.0.1" || ns.GlobalIPv6Address == "" ||
		ns.Networks["cove"].IPAddress != addr || in.HostConfig.NetworkMode != "cove" {
		t.Errorf("inspect: %+v, want %s/16 and %s on cove", in, addr, mac)
	}
	if b := ns.Ports["80/tcp"]; len(b) != 2 || b[0].HostIp != "0.0.0.0" || b[0].HostPort != "8081" {
		t.Errorf("inspect: Ports %+v, want 80/tcp on 0.0.0.0 and :: 8081", ns.Ports)
	}
	if got := fetchLocal(t, "http://127.0.0.1:8081/"); got != "dweb" {
		t.Errorf("the published port 8081 from the sandbox: %q, want dweb", got)
	}
	checkDockerNetworks(t, addr)
	dockerCall(t, http.MethodDelete, "/containers/dweb?force=1", nil, http.StatusNoContent, nil)
}

// checkDockerNetworks: GET /networks lists the default network with both
// subnets, and /networks/bridge (its Docker name) has dweb at addr.
func checkDockerNetworks(t *testing.T, addr string) {
	t.Helper()
	type ipam struct {
		Config []struct{ Subnet, Gateway string }
	}
	var nets []struct {
		Name, Driver string
		IPAM         ipam
	}
	dockerCall(t, http.MethodGet, "/networks", nil, http.StatusOK, &nets)
	if len(nets) != 1 || nets[0].Name != "cove" || nets[0].Driver != "bridge" || len(nets[0].IPAM.Config) != 2 || nets[0].IPAM.Config[0].Subnet != "10.77.0.0/16" {
		t.Errorf("GET /networks: %+v, want cove with 10.77.0.0/16 and its IPv6 subnet", nets)
	}
	var bridge struct {
		Name       string
		Containers map[string]struct{ Name, IPv4Address string }
		Options    map[string]string
	}
	dockerCall(t, http.MethodGet, "/networks/bridge", nil, http.StatusOK, &bridge)
	found := false
	for _, c := range bridge.Containers {
		found = found || c.Name == "dweb" && c.IPv4Address == addr+"/16"
	}
	if bridge.Name != "cove" || !found || bridge.Options["com.docker.network.bridge.name"] != "cove0" {
		t.Errorf("GET /networks/bridge: %+v, want cove (cove0) with dweb at %s/16", bridge, addr)
	}
}

// TestRunDefaultNetwork: cove run without a spec file and without
// --network puts the container on network cove (the sandbox has no
// /etc/cove/cove.toml); cove ps shows its address and published port,
// directly and through the API, and cove status its address, MAC and
// port.
func TestRunDefaultNetwork(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	t.Cleanup(func() { inside(t, coveBin, "rm", "runp") })
	mustCove(t, "run", "-d", "--name", "runp", "--rootfs", rootfs, "--volatile", "-p", "8082:80", "--stop-timeout", "2s",
		"--", "/bin/sh", "-c", "mkdir /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www")
	if u := show(t, "cove-runp.service", "Requires"); !strings.Contains(u, networkUnit) {
		t.Errorf("cove-runp.service: Requires=%s, want %s", u, networkUnit)
	}
	addr, mac := eth0Addr(t, "runp")
	row := regexp.MustCompile(`(?m)^runp\s.*\s` + regexp.QuoteMeta(addr) + `\s+0\.0\.0\.0:8082->80/tcp, \[::\]:8082->80/tcp$`)
	needDocker(t)
	for _, args := range [][]string{{"ps"}, {"--host", "unix:///run/cove/api.sock", "ps"}} {
		if ps := mustCove(t, args...); !row.MatchString(ps) {
			t.Errorf("cove %s lacks runp's address %s or port 8082->80:\n%s", strings.Join(args, " "), addr, ps)
		}
	}
	status := mustCove(t, "status", "runp")
	if !strings.Contains(status, "Network:     cove "+addr+"/16 ") || !strings.Contains(status, "("+mac+")") ||
		!strings.Contains(status, "Ports:       0.0.0.0:8082->80/tcp, [::]:8082->80/tcp") {
		t.Errorf("cove status runp lacks its network (%s, %s) or ports:\n%s", addr, mac, status)
	}
	if got := fetchLocal(t, "http://127.0.0.1:8082/"); got != "runp" {
		t.Errorf("the published port 8082 from the sandbox: %q, want runp", got)
	}
}

// TestRunRandomPort: cove run -p 80 and -p 127.0.0.1::80 publish the
// container's port on free host ports, two different ones, which cove
// status shows and which answer; -p 0.0.0.0:8089:80 publishes on every
// address (before, its rule matched the destination 0.0.0.0: nothing).
func TestRunRandomPort(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	t.Cleanup(func() { inside(t, coveBin, "rm", "runrand") })
	mustCove(t, "run", "-d", "--name", "runrand", "--rootfs", rootfs, "--volatile", "-p", "80", "-p", "127.0.0.1::80", "-p", "0.0.0.0:8089:80", "--stop-timeout", "2s",
		"--", "/bin/sh", "-c", "mkdir /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www")
	status := mustCove(t, "status", "runrand")
	var every []string
	for _, m := range regexp.MustCompile(`0\.0\.0\.0:(\d+)->80/tcp`).FindAllStringSubmatch(status, -1) {
		every = append(every, m[1])
	}
	local := regexp.MustCompile(`127\.0\.0\.1:(\d+)->80/tcp`).FindStringSubmatch(status)
	if len(every) != 2 || !slices.Contains(every, "8089") || local == nil || slices.Contains(every, local[1]) {
		t.Fatalf("cove status runrand, want port 80 published on 8089 and two free host ports, on every address and on 127.0.0.1:\n%s", status)
	}
	for _, port := range append(every, local[1]) {
		if got := fetchLocal(t, "http://127.0.0.1:"+port+"/"); got != "runrand" {
			t.Errorf("the free host port %s: %q, want runrand", port, got)
		}
	}
}

// dockerCLI readies the API and returns the real docker CLI run in the
// sandbox against cove's API.
func dockerCLI(t *testing.T) func(args ...string) result {
	t.Helper()
	needDocker(t)
	bin := harness.DockerCLI(t, sb)
	return func(args ...string) result {
		return inside(t, bin, append([]string{"-H", "unix:///run/cove/api.sock"}, args...)...)
	}
}

// TestDockerCLIRandomPort: docker run -p PORT, -p IP::PORT, -p
// IP:LOW-HIGH:PORT (one of those) and -P (with --expose) give the
// container free host ports, chosen when it is created and kept across
// its restarts: docker port shows them, each answers, and docker rm -f
// gives them back.
func TestDockerCLIRandomPort(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	docker := dockerCLI(t)
	t.Cleanup(func() { docker("rm", "-f", "drand") })
	if r := docker("run", "-d", "--name", "drand", "-p", "80", "-p", "127.0.0.1::80", "-p", "127.0.0.1:18000-18003:81", "--expose", "82", "-P", dockerImage, "/bin/sh", "-c",
		"mkdir -p /www && hostname > /www/index.html && httpd -p 81 -h /www && httpd -p 82 -h /www && exec httpd -f -p 80 -h /www"); r.Code != 0 {
		t.Fatalf("docker run -d -p 80 -p 127.0.0.1::80 -p 127.0.0.1:18000-18003:81 --expose 82 -P: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	published := func() map[string]string {
		out := docker("port", "drand").Stdout
		got := map[string]string{}
		for _, m := range regexp.MustCompile(`(?m)^(\d+/tcp) -> (0\.0\.0\.0|127\.0\.0\.1):(\d+)$`).FindAllStringSubmatch(out, -1) {
			got[m[1]+" "+m[2]] = m[3]
		}
		ranged, _ := strconv.Atoi(got["81/tcp 127.0.0.1"])
		if len(got) != 4 || got["80/tcp 0.0.0.0"] == got["80/tcp 127.0.0.1"] || got["80/tcp 0.0.0.0"] == got["82/tcp 0.0.0.0"] || ranged < 18000 || ranged > 18003 {
			t.Fatalf("docker port drand:\n%s\nwant 80/tcp on every address and on 127.0.0.1, and 82/tcp, on three host ports, and 81/tcp on 127.0.0.1 on one of 18000-18003", out)
		}
		return got
	}
	first := published()
	for key, port := range first {
		if got := fetchLocal(t, "http://127.0.0.1:"+port+"/"); got != "drand" {
			t.Errorf("the host port chosen for %s, %s: %q, want drand", key, port, got)
		}
	}
	if r := docker("restart", "-t", "1", "drand"); r.Code != 0 {
		t.Fatalf("docker restart drand: exit %d\n%s", r.Code, r.Stderr)
	}
	if again := published(); !maps.Equal(again, first) {
		t.Errorf("after a restart the ports are %v, want those chosen at the creation, %v", again, first)
	}
	if r := docker("rm", "-f", "drand"); r.Code != 0 {
		t.Errorf("docker rm -f drand: exit %d\n%s", r.Code, r.Stderr)
	}
	if claims := must(t, "sh", "-c", "find /run/cove/ports -type f ! -name lock"); strings.TrimSpace(claims) != "" {
		t.Errorf("port claims left after docker rm -f: %s", claims)
	}
}

// TestDockerCLIPublish: the real docker CLI's run -d -p, through cove's
// API, puts the container on the default network with its port
// published: the port answers from the sandbox (127.0.0.1 and, through
// its proxy, ::1), docker port and docker
// network ls show it, docker rm -f gives everything back.
func TestDockerCLIPublish(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	docker := dockerCLI(t)
	t.Cleanup(func() { docker("rm", "-f", "dcli") })
	if r := docker("run", "-d", "--name", "dcli", "-p", "8084:80", dockerImage,
		"/bin/sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"); r.Code != 0 {
		t.Fatalf("docker run -d -p 8084:80: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, url := range []string{"http://127.0.0.1:8084/", "http://[::1]:8084/"} {
		if got := fetchLocal(t, url); got != "dcli" {
			t.Errorf("the port docker run -p published, at %s: %q, want dcli", url, got)
		}
	}
	if r := docker("port", "dcli"); !strings.Contains(r.Stdout, "80/tcp -> 0.0.0.0:8084") {
		t.Errorf("docker port dcli: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("network", "ls"); !regexp.MustCompile(`(?m)\scove\s+bridge\s+local`).MatchString(r.Stdout) {
		t.Errorf("docker network ls: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := docker("rm", "-f", "dcli"); r.Code != 0 {
		t.Errorf("docker rm -f dcli: exit %d\n%s", r.Code, r.Stderr)
	}
	if claims := must(t, "sh", "-c", "find /run/cove/ports -type f ! -name lock"); strings.TrimSpace(claims) != "" {
		t.Errorf("port claims left after docker rm -f: %s", claims)
	}
}
