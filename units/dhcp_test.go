package units

import (
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/cove-project/cove/internal/network/plan"
)

// TestDHCPUnit checks what the golden files show in a way a reader can
// check against the design: one UDP socket on 0.0.0.0:67 and, with
// IPv6, one on [::]:547 (IPv6 only) and the responder wanted (it joins
// the DHCPv6 group on it), bound to the network's bridge, broadcasting
// and free-binding, bound to and wanted by the network's unit, also for
// a network without DNS, with the D-Bus signatures systemd wants; a
// network without IPv6 has no DHCPv6 socket and wants no responder.
func TestDHCPUnit(t *testing.T) {
	n := plan.Complete(plan.Network{Name: "quiet", Subnet4: dnsNetworks[1].Subnet4, NoDNS: true})
	u := CompileDHCP(n)
	if u.Name != "cove-dhcp@quiet.socket" || !slices.Equal(u.WantedBy, []string{"cove-network@quiet.service"}) {
		t.Errorf("name %s, wanted by %v", u.Name, u.WantedBy)
	}
	text, err := u.Text("network quiet")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"\n[Socket]\nListenDatagram=0.0.0.0:67\nListenDatagram=[::]:547\nBindIPv6Only=ipv6-only\nBindToDevice=cove-quiet\nBroadcast=yes\nFreeBind=yes\n",
		"\nBindsTo=cove-network@quiet.service\n", "\nDefaultDependencies=no\n", "\nWants=cove-dhcp@quiet.service\n", "\nWantedBy=cove-network@quiet.service\n"} {
		if !strings.Contains(text, line) {
			t.Errorf("unit lacks %q:\n%s", line, text)
		}
	}
	sigs := map[string]string{"Description": "s", "DefaultDependencies": "b", "BindsTo": "as", "After": "as",
		"Conflicts": "as", "Before": "as", "Wants": "as", "Listen": "a(ss)", "BindIPv6Only": "s", "BindToDevice": "s", "Broadcast": "b", "FreeBind": "b"}
	checkSignatures(t, u, sigs)
	n = plan.Complete(plan.Network{Name: "quiet", Subnet4: dnsNetworks[1].Subnet4, NoIPv6: true})
	if text, _ := CompileDHCP(n).Text("network quiet"); strings.Contains(text, "547") || strings.Contains(text, "BindIPv6Only") || strings.Contains(text, "Wants=") {
		t.Errorf("a network without IPv6 has a DHCPv6 socket:\n%s", text)
	}
}

// TestRAUnit: the router advertisements' socket is a datagram socket at
// launch.RASocket that only root may write to, removed when it stops,
// bound to and wanted by
// the network's unit, with the D-Bus signatures systemd wants.
func TestRAUnit(t *testing.T) {
	u := CompileRA(plan.Default())
	if u.Name != "cove-ra@cove.socket" || !slices.Equal(u.WantedBy, []string{"cove-network@cove.service"}) {
		t.Errorf("name %s, wanted by %v", u.Name, u.WantedBy)
	}
	text, err := u.Text("network cove")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"\n[Socket]\nListenDatagram=/run/cove/networks/cove/ra.sock\nSocketMode=0600\nRemoveOnStop=yes\n", "\nBindsTo=cove-network@cove.service\n"} {
		if !strings.Contains(text, line) {
			t.Errorf("unit lacks %q:\n%s", line, text)
		}
	}
	checkSignatures(t, u, map[string]string{"Description": "s", "DefaultDependencies": "b", "BindsTo": "as", "After": "as",
		"Conflicts": "as", "Before": "as", "Listen": "a(ss)", "SocketMode": "u", "RemoveOnStop": "b"})
}

// checkSignatures checks that every property of u has the D-Bus
// signature sigs gives its name.
func checkSignatures(t *testing.T, u Unit, sigs map[string]string) {
	t.Helper()
	for _, p := range u.Properties() {
		if got := dbus.SignatureOf(p.Value).String(); got != sigs[p.Name] {
			t.Errorf("%s: signature %s, systemd wants %q", p.Name, got, sigs[p.Name])
		}
	}
}
