package network

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// ErrUnknown is wrapped when a network is neither the default network nor
// declared by a file.
var ErrUnknown = errors.New("unknown network")

// Catalog is the set of networks a host declares: the default network
// (plan.Default, which Dir/cove.toml may change) and one per network file
// Dir/NAME.toml (spec.ParseNetwork).
type Catalog struct {
	Dir string // spec.NetworksDir outside tests
}

// Declared is the host's catalog.
var Declared = Catalog{Dir: spec.NetworksDir}

// Path is the file that declares network name.
func (c Catalog) Path(name string) string { return filepath.Join(c.Dir, name+".toml") }

// Named is network name, completed and validated on its own: from its
// file, or the default network when it has none. An unknown name wraps
// ErrUnknown and lists the networks there are.
func (c Catalog) Named(name string) (plan.Network, error) {
	if err := plan.ValidName(name); err != nil {
		return plan.Network{}, err
	}
	data, err := os.ReadFile(c.Path(name))
	switch {
	case errors.Is(err, fs.ErrNotExist) && name == plan.DefaultName:
		return plan.Default(), nil
	case errors.Is(err, fs.ErrNotExist):
		names, _ := c.Names()
		return plan.Network{}, fmt.Errorf("%w %q: networks are %s (cove network ls; cove network create %s)", ErrUnknown, name, strings.Join(names, ", "), name)
	case err != nil:
		return plan.Network{}, fmt.Errorf("read network %s: %w", name, err)
	}
	return spec.ParseNetwork(c.Path(name), data, name)
}

// Names lists the declared networks' names, sorted, the default network
// included.
func (c Catalog) Names() ([]string, error) {
	entries, err := os.ReadDir(c.Dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list networks in %s: %w", c.Dir, err)
	}
	names := []string{plan.DefaultName}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".toml")
		if ok && !e.IsDir() && !strings.HasPrefix(name, ".") && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// All is every declared network, validated as a set (plan.ValidateAll:
// no two share a bridge or overlap); a problem is reported at its key in
// the network's file.
func (c Catalog) All() ([]plan.Network, error) {
	names, err := c.Names()
	if err != nil {
		return nil, err
	}
	var nets []plan.Network
	for _, name := range names {
		n, err := c.Named(name)
		if err != nil {
			return nil, err
		}
		nets = append(nets, n)
	}
	return nets, positioned(plan.ValidateAll(nets), c.Path)
}

// positioned turns a plan.InvalidError into a spec error at its key in
// the network's file, file(network), when that file exists; other errors
// pass.
func positioned(err error, file func(network string) string) error {
	var inv *plan.InvalidError
	if !errors.As(err, &inv) {
		return err
	}
	s := &spec.Spec{File: file(inv.Network)}
	if _, statErr := os.Stat(s.File); statErr != nil {
		return err // the default network without a file, a file not written yet: no position
	}
	return spec.Errors{s.KeyError("network."+inv.Field, inv.Msg)}
}

// Check validates n together with the declared networks other than n
// (plan.ValidateAll), as cove network create does before it writes n's
// file and cove validate does for a network file: a problem with n is
// reported at its key in file (when it exists), one with another network
// in that network's file.
func (c Catalog) Check(n plan.Network, file string) error {
	nets, err := c.All()
	if err != nil {
		return err
	}
	nets = slices.DeleteFunc(nets, func(o plan.Network) bool { return o.Name == n.Name })
	return positioned(plan.ValidateAll(append(nets, n)), func(name string) string {
		if name == n.Name {
			return file
		}
		return c.Path(name)
	})
}

// Subnets are the IPv4 subnets of the declared networks.
func (c Catalog) Subnets() ([]netip.Prefix, error) {
	nets, err := c.All()
	var ps []netip.Prefix
	for _, n := range nets {
		ps = append(ps, n.Subnet4)
	}
	return ps, err
}

// RoutedPrefixes are the destinations of the routes of the calling
// thread's network namespace (main table, both families, default routes
// left out): a new network's subnet must not shadow them.
func RoutedPrefixes() ([]netip.Prefix, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list routes: netlink RTM_GETROUTE: %w", err)
	}
	var ps []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if a, ok := netip.AddrFromSlice(r.Dst.IP); ok && ones > 0 {
			ps = append(ps, netip.PrefixFrom(a.Unmap(), ones))
		}
	}
	return ps, nil
}
