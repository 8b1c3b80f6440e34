package spec

import (
	"maps"
	"net/netip"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/network/plan"
)

func TestParseNetwork(t *testing.T) {
	n, err := ParseNetwork("/etc/cove/networks/web.toml", []byte(`version = 1
kind = "network"
[network]
subnet4 = "10.80.0.0/24"
internal = true
dns = false
privileged_ports = false
allow_host = ["8080", "123/udp"]
`), "")
	if err != nil {
		t.Fatal(err)
	}
	want := plan.Complete(plan.Network{Name: "web", Subnet4: netip.MustParsePrefix("10.80.0.0/24"), Internal: true, NoDNS: true, NoPrivilegedPorts: true,
		AllowHost: []plan.HostService{{Port: 8080, Proto: plan.TCP}, {Port: 123, Proto: plan.UDP}}})
	if n.String() != want.String() || n.Gateway4 != netip.MustParseAddr("10.80.0.1") || n.Bridge != "cove-web" {
		t.Errorf("ParseNetwork = %+v, want %+v", n, want)
	}
	def, err := ParseNetwork("cove.toml", []byte("version = 1\nkind = \"network\"\n[network]\ninternal = true\n"), "")
	if err != nil || def.Subnet4 != plan.DefaultSubnet4 || def.Bridge != plan.DefaultBridge || !def.Internal {
		t.Errorf("default network's file without subnet4: %+v, %v", def, err)
	}
}

func TestParseNetworkErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"[network]\ngateway4 = \"10.80.0.1\"\n", `web.toml:3:2: network.subnet4: missing; required`},
		{"[network]\nsubnet4 = \"10.80.0.0/24\"\ngateway4 = \"10.81.0.1\"\n", `web.toml:5:1: network.gateway4: gateway 10.81.0.1 is not a host address inside subnet4 10.80.0.0/24`},
		{"[network]\nsubnet4 = \"10.80.0.5/24\"\n", `web.toml:4:1: network.subnet4: subnet4 10.80.0.5/24 has host bits set`},
		{"[network]\nsubnet4 = \"10.80.0.0\"\n", `web.toml:4:1: network.subnet4: "10.80.0.0" is not an address prefix`},
		{"[network]\nsubnet4 = \"10.80.0.0/24\"\nallow_host = [\"80/sctp\"]\n", `network.allow_host[1]: invalid host service "80/sctp"`},
		{"[network]\nsubnet4 = \"10.80.0.0/24\"\n[container]\nrootfs = \"/\"\n", `web.toml:5:2: container: [container] is a workload's`},
		{"[network]\nsubnet4 = \"10.80.0.0/24\"\nbridge = \"a-bridge-name-too-long\"\n", `web.toml:5:1: network.bridge: bridge "a-bridge-name-too-long" must be 1 to 15 characters`},
	} {
		_, err := ParseNetwork("web.toml", []byte("version = 1\nkind = \"network\"\n"+c.body), "")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.body, err, c.want)
		}
	}
	if _, err := ParseNetwork("web.toml", []byte("version = 1\nkind = \"container\"\n[container]\nrootfs = \"/\"\ncommand = [\"/bin/true\"]\n"), ""); err == nil || !strings.Contains(err.Error(), `web.toml:2:1: kind: a network file must have kind = "network"`) {
		t.Errorf("a workload as network file: %v", err)
	}
	if _, err := ParseNetwork("Bad.toml", []byte("version = 1\nkind = \"network\"\n[network]\nsubnet4 = \"10.80.0.0/24\"\n"), ""); err == nil || !strings.Contains(err.Error(), "invalid network name") {
		t.Errorf("bad network name: %v", err)
	}
}

func TestNetworkFileRoundTrip(t *testing.T) {
	labels := map[string]string{"com.docker.compose.project": "shop", "a b": "c\"d"}
	n := Network{Subnet4: "10.80.0.0/24", Gateway4: "10.80.0.254", Bridge: "br-web", Internal: true, DNS: false, PrivilegedPorts: true, AllowHost: []string{"8080", "123/udp"}, Labels: labels}
	got, err := ParseNetwork("web.toml", n.File(), "")
	if err != nil {
		t.Fatalf("%v\n%s", err, n.File())
	}
	if got.Gateway4 != netip.MustParseAddr("10.80.0.254") || got.Bridge != "br-web" || !got.Internal || !got.NoDNS || got.NoPrivilegedPorts || len(got.AllowHost) != 2 ||
		!maps.Equal(got.Labels, labels) || !got.NoIPv6 || got.Subnet6.IsValid() || got.Gateway6.IsValid() {
		t.Errorf("round trip of\n%s gave %+v", n.File(), got)
	}
	n = Network{Subnet4: "10.80.0.0/24", DNS: true, IPv6: true}
	if got, err := ParseNetwork("web.toml", n.File(), ""); err != nil || got.NoIPv6 || !got.Subnet6.IsValid() || strings.Contains(string(n.File()), "ipv6") {
		t.Errorf("round trip of\n%s gave %+v, %v", n.File(), got, err)
	}
	bad := "version = 1\nkind = \"network\"\n[network]\nsubnet4 = \"10.80.0.0/24\"\nsubnet6 = \"fd00:1::/64\"\nipv6 = false\n"
	if _, err := ParseNetwork("web.toml", []byte(bad), ""); err == nil || !strings.Contains(err.Error(), "web.toml:6:1: network.ipv6: false, but subnet6") {
		t.Errorf("ipv6 = false with a subnet6: %v", err)
	}
}

// TestParseRefusesNetworkFile: a network file given where a workload is
// wanted (cove run FILE, /etc/cove/NAME.toml) is refused at its kind, and
// IsNetworkFile tells cove validate to read it as a network.
func TestParseRefusesNetworkFile(t *testing.T) {
	_, err := Parse("web.toml", []byte("version = 1\nkind = \"network\"\n[network]\nsubnet4 = \"10.80.0.0/24\"\n"), "")
	if err == nil || !IsNetworkFile(err) || !strings.Contains(err.Error(), `web.toml:2:1: kind: kind "network" declares a network, not a workload`) {
		t.Errorf("Parse of a network file: %v", err)
	}
	if _, err := Parse("web.toml", []byte("version = 1\nkind = \"pod\"\n"), ""); IsNetworkFile(err) {
		t.Errorf("IsNetworkFile(%v) = true", err)
	}
}
