package units

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/tests/golden"
)

// dnsNetworks are the networks whose DNS socket units are pinned in
// testdata/dns-NAME.socket and .props: the default network, and one
// with subnets and an IPv6 gateway of its own.
var dnsNetworks = []plan.Network{
	plan.Default(),
	plan.Complete(plan.Network{
		Name:     "lab",
		Subnet4:  netip.MustParsePrefix("198.18.4.0/24"),
		Subnet6:  netip.MustParsePrefix("fd00:cafe::/64"),
		Gateway6: netip.MustParseAddr("fd00:cafe::53"),
	}),
}

// TestSocketGolden pins both renderings of the socket units of each of
// dnsNetworks: CompileDNS's (testdata/dns-NAME.socket and .props) and
// CompileDHCP's (testdata/dhcp-NAME.socket and .props) and CompileRA's
// (testdata/ra-NAME.socket and .props). Adding a case is
// adding a network and running go test ./units -update.
func TestSocketGolden(t *testing.T) {
	for _, g := range socketGoldenFiles(t) {
		golden.Check(t, g.path, g.text, *update)
	}
}

// socketGoldenFiles renders the golden files TestSocketGolden compares.
func socketGoldenFiles(t *testing.T) []goldenFile {
	t.Helper()
	var files []goldenFile
	for kind, compile := range map[string]func(plan.Network) Unit{"dns": CompileDNS, "dhcp": CompileDHCP, "ra": CompileRA} {
		for _, n := range dnsNetworks {
			files = append(files, unitGoldens(t, compile(n), "testdata/"+kind+"-"+n.Name+".socket", "network "+n.Name)...)
		}
	}
	return files
}

// TestDNSUnit checks what the golden files show in a way a reader can
// check against the design: one UDP and one TCP socket on each gateway,
// port 53, free-binding, bound to and wanted by the network's unit,
// with the D-Bus signatures systemd wants.
func TestDNSUnit(t *testing.T) {
	n := plan.Default()
	u := CompileDNS(n)
	if u.Name != "cove-dns@cove.socket" || !slices.Equal(u.WantedBy, []string{"cove-network@cove.service"}) {
		t.Errorf("name %s, wanted by %v", u.Name, u.WantedBy)
	}
	var listens []string
	for _, p := range u.Props {
		if l, ok := p.Value.(Listen); ok {
			listens = append(listens, p.Directive()+"="+l.Address)
		}
	}
	want := []string{"ListenDatagram=10.77.0.1:53", "ListenDatagram=[" + n.Gateway6.String() + "]:53",
		"ListenStream=10.77.0.1:53", "ListenStream=[" + n.Gateway6.String() + "]:53"}
	if !slices.Equal(listens, want) {
		t.Errorf("sockets %v, want %v", listens, want)
	}
	text, err := u.Text("network cove")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"\n[Socket]\n", "\nFreeBind=yes\n", "\nBindsTo=cove-network@cove.service\n", "\nDefaultDependencies=no\n"} {
		if !strings.Contains(text, line) {
			t.Errorf("unit lacks %q:\n%s", line, text)
		}
	}
	sigs := map[string]string{"Description": "s", "DefaultDependencies": "b", "BindsTo": "as", "After": "as",
		"Conflicts": "as", "Before": "as", "Listen": "a(ss)", "FreeBind": "b"}
	for _, p := range u.Properties() {
		if got := dbus.SignatureOf(p.Value).String(); got != sigs[p.Name] {
			t.Errorf("%s: signature %s, systemd wants %q", p.Name, got, sigs[p.Name])
		}
	}
}
