package hostcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/spec"
)

// TestCheckNetworkKeys: a container and a VM on a bridge get the same
// host checks of their network keys (unknown network, ip outside the
// subnet, a privileged port the network refuses), each at its own keys.
func TestCheckNetworkKeys(t *testing.T) {
	dir := t.TempDir()
	old := network.Declared
	network.Declared = network.Catalog{Dir: dir}
	t.Cleanup(func() { network.Declared = old })
	lab := "version = 1\nkind = \"network\"\n[network]\nsubnet4 = \"10.78.0.0/24\"\nprivileged_ports = false\n"
	if err := os.WriteFile(filepath.Join(dir, "lab.toml"), []byte(lab), 0o644); err != nil {
		t.Fatal(err)
	}
	const container = "version = 1\nkind = \"container\"\n[container]\nrootfs = \"/r\"\ncommand = [\"/x\"]\nread_only = true\nnetwork = %q\nip = \"10.79.0.5\"\nports = [\"8080:80\", \"80:80\"]\n"
	const vm = "version = 1\nkind = \"vm\"\n[vm]\nkernel = \"/k\"\n[vm.network]\nmode = \"bridge\"\nnetwork = %q\nip = \"10.79.0.5\"\nports = [\"8080:80\", \"80:80\"]\n"
	for _, c := range []struct {
		name, format, table string
	}{{"c", container, "container"}, {"v", vm, "vm.network"}} {
		for net, want := range map[string][]string{
			"lab": {
				":8:1: " + c.table + ".ip: 10.79.0.5 is not a host address of network lab's subnet 10.78.0.0/24",
				":9:21: " + c.table + ".ports[2]: host port 80 is below 1024, which network lab does not allow",
			},
			"nope": {":7:1: " + c.table + `.network: unknown network "nope"`},
		} {
			s := load(t, filepath.Join(t.TempDir(), c.name+".toml"), strings.Replace(c.format, "%q", `"`+net+`"`, 1))
			errs := checkNetwork(s)
			if len(errs) != len(want) {
				t.Errorf("%s on %s: %d errors, want %d:\n%v", c.table, net, len(errs), len(want), errs)
				continue
			}
			for i, w := range want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("%s on %s: error %d is %q, want it to contain %q", c.table, net, i+1, errs[i], w)
				}
			}
		}
	}
}

// load writes text to path and loads it as a validated spec.
func load(t *testing.T, path, text string) *spec.Spec {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := spec.Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}
