package dhcp

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
)

// TestLeaseTable: a MAC finds the lease of the workload it belongs to on
// that network, as network.Leases allocates it; another network's MAC
// of the same name, a stranger's and a released lease find nothing; a
// lease directory that cannot be read is an error.
func TestLeaseTable(t *testing.T) {
	root := t.TempDir()
	l := network.Leases{Root: root}
	var addrs []netip.Addr
	for _, w := range []string{"ctr", "vm1"} {
		a, err := l.Allocate(testNet, w, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, a)
	}
	tab := LeaseTable{Network: testNet.Name, Leases: l}
	got, ok, err := tab.Lookup(vmMAC)
	if err != nil || !ok || got != (Lease{Workload: "vm1", Addr: addrs[1]}) {
		t.Errorf("Lookup(vm1's MAC) = %v %v %v, want vm1 at %v", got, ok, err, addrs[1])
	}
	for _, mac := range []plan.MAC{plan.WorkloadMAC("other", "vm1"), stray} {
		if got, ok, err := tab.Lookup(mac); ok || err != nil {
			t.Errorf("Lookup(%v) = %v %v %v, want nothing", mac, got, ok, err)
		}
	}
	if err := l.Release(testNet.Name, "vm1"); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := tab.Lookup(vmMAC); ok || err != nil {
		t.Errorf("after release: %v %v %v", got, ok, err)
	}

	if os.Geteuid() == 0 {
		return // root reads a directory of mode 0
	}
	dir := filepath.Join(root, testNet.Name, "leases")
	if err := os.Chmod(dir, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if _, _, err := tab.Lookup(vmMAC); err == nil {
		t.Error("an unreadable lease directory is no error")
	}
}
