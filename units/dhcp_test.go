package units

import (
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"github.com/cove-project/cove/internal/network/plan"
)

// TestDHCPUnit checks what the golden files show in a way a reader can
// check against the design: one UDP socket on 0.0.0.0:67 bound to the
// network's bridge, broadcasting and free-binding, bound to and wanted
// by the network's unit, also for a network without DNS, with the D-Bus
// signatures systemd wants.
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
	for _, line := range []string{"\n[Socket]\nListenDatagram=0.0.0.0:67\nBindToDevice=cove-quiet\nBroadcast=yes\nFreeBind=yes\n",
		"\nBindsTo=cove-network@quiet.service\n", "\nDefaultDependencies=no\n", "\nWantedBy=cove-network@quiet.service\n"} {
		if !strings.Contains(text, line) {
			t.Errorf("unit lacks %q:\n%s", line, text)
		}
	}
	sigs := map[string]string{"Description": "s", "DefaultDependencies": "b", "BindsTo": "as", "After": "as",
		"Conflicts": "as", "Before": "as", "Listen": "a(ss)", "BindToDevice": "s", "Broadcast": "b", "FreeBind": "b"}
	for _, p := range u.Properties() {
		if got := dbus.SignatureOf(p.Value).String(); got != sigs[p.Name] {
			t.Errorf("%s: signature %s, systemd wants %q", p.Name, got, sigs[p.Name])
		}
	}
}
