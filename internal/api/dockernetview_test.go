package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// containsAll fails t for each part the JSON form of v lacks.
func containsAll(t *testing.T, what string, v any, parts ...string) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		if !strings.Contains(string(b), p) {
			t.Errorf("%s: %s\nlacks %s", what, b, p)
		}
	}
}

// TestDockerContainerNetworks: a running container's networks and ports
// appear in Docker's list (Ports, NetworkSettings.Networks) and
// inspection (NetworkSettings with its first network's addresses and
// Ports, HostConfig.NetworkMode and PortBindings) as Docker shows them;
// without a spec (cove run) NetworkMode is the network it is on and
// PortBindings its ports; with one, the spec's.
func TestDockerContainerNetworks(t *testing.T) {
	w := fakeWorkload("web")
	w.Networks, w.Ports = []Endpoint{testEndpoint()}, testPorts
	e := w.Networks[0]
	netID, epID := dockerNetworkID("cove"), dockerEndpointID("cove", "web")
	addrs := `"EndpointID":"` + epID + `","Gateway":"10.77.0.1","IPAddress":"10.77.0.2","IPPrefixLen":16,"IPv6Gateway":"` + e.Gateway6.String() +
		`","GlobalIPv6Address":"` + e.Address6.Addr().String() + `","GlobalIPv6PrefixLen":64,"MacAddress":"` + e.MAC + `"`
	containsAll(t, "summary", summary(w, nil),
		`"Ports":[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},{"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},`+
			`{"IP":"127.0.0.1","PrivatePort":53,"PublicPort":5353,"Type":"udp"}]`,
		`"HostConfig":{"NetworkMode":"cove"}`, `"NetworkSettings":{"Networks":{"cove":{"IPAMConfig":null,"Links":null,"Aliases":null,"NetworkID":"`+netID+`",`+addrs)
	containsAll(t, "inspect", inspectOf(w, nil),
		`"NetworkSettings":{"Bridge":"cove0","SandboxID":"","SandboxKey":"","Ports":{"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}],`+
			`"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}]},`+addrs+`,"Networks":{"cove":{`,
		`"HostConfig":{"NetworkMode":"cove","PortBindings":{"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}],"80/tcp":[{"HostIp":"","HostPort":"8080"}]}`)
	sp := spec.Defaults("web")
	sp.Container.Network, sp.Container.Ports = "web", []string{"9090:90"}
	containsAll(t, "inspect with a spec", inspectOf(w, sp), `"HostConfig":{"NetworkMode":"web","PortBindings":{"90/tcp":[{"HostIp":"","HostPort":"9090"}]}`)
	stopped := fakeWorkload("vm1")
	containsAll(t, "stopped", inspectOf(stopped, nil), `"Ports":{},"EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0`, `"Networks":{}`, `"PortBindings":{}`)
	containsAll(t, "stopped", summary(stopped, nil), `"Ports":[]`, `"NetworkSettings":{"Networks":{}}`)
}

// TestDockerNetworkInspect: GET /networks/NAME lists the workloads that
// lease an address of the network, by Docker ID; "bridge" is the host's
// run network when that is a network, and the default network when it is
// host or none.
func TestDockerNetworkInspect(t *testing.T) {
	opt := testOptions(t)
	lk := opt.Networks
	if err := os.MkdirAll(lk.Catalog.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lk.Catalog.Path("web"), []byte("version = 1\nkind = \"network\"\n[network]\nsubnet4 = \"10.78.0.0/24\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := lk.Leases.Allocate(plan.Default(), "db", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(fakeBackend{}, opt)
	get := func(path string) string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil).WithContext(withPeer(t.Context(), peer{known: true, uid: 1000, role: roleMember}))
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	e := endpointOf(plan.Endpoint{Network: plan.Default(), Addr4: a, Addr6: plan.Addr6For(plan.Default(), a), MAC: plan.WorkloadMAC("cove", "db")})
	member := `"Containers":{"` + dockerID("db") + `":{"Name":"db","EndpointID":"` + dockerEndpointID("cove", "db") + `","MacAddress":"` + e.MAC +
		`","IPv4Address":"10.77.0.2/16","IPv6Address":"` + e.Address6.String() + `"}}`
	if body := get("/v1.41/networks/bridge"); !strings.Contains(body, `"Name":"cove"`) || !strings.Contains(body, member) {
		t.Errorf("network bridge on a host without settings: %s\nwant cove with %s", body, member)
	}
	if body := get("/v1.41/networks"); !strings.Contains(body, `"Name":"web"`) || strings.Contains(body, `"Name":"db"`) {
		t.Errorf("network list: %s\nwant web, and no members", body)
	}
	for run, want := range map[string]string{"web": "web", "host": "cove"} {
		if err := os.WriteFile(opt.Settings, []byte("[run]\nnetwork = \""+run+"\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if body := get("/v1.41/networks/bridge"); !strings.Contains(body, `"Name":"`+want+`"`) {
			t.Errorf("network bridge with run network %s: %s\nwant %s", run, body, want)
		}
	}
}

// TestCheckRunnableNetwork: a create on a network that is not declared
// is refused with 400 naming it before anything is recorded.
func TestCheckRunnableNetwork(t *testing.T) {
	srv := NewServer(fakeBackend{}, testOptions(t))
	sp := spec.Defaults("c1")
	sp.Container.SetImage(testPinned)
	sp.Container.Command = []string{"true"}
	for network, want := range map[string]int{"cove": 0, "host": 0, "nosuch": http.StatusBadRequest} {
		sp.Container.Network = network
		err := srv.checkRunnable(sp)
		switch {
		case want == 0 && err != nil:
			t.Errorf("network %s: %v", network, err)
		case want != 0 && (err == nil || err.Status() != want || !strings.Contains(err.Message, `create c1: unknown network "nosuch": networks are cove (cove network ls; cove network create nosuch)`)):
			t.Errorf("network %s: %v, want %d naming it", network, err, want)
		}
	}
}
