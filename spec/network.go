package spec

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cove-project/cove/internal/network/plan"
)

// NetworksDir is where network files live: NetworksDir/NAME.toml declares
// network NAME (kind = "network"). A directory of their own, not
// /etc/cove/NAME.network.toml, because workload names may contain dots
// and a workload and a network may share a name, as in Docker.
const NetworksDir = "/etc/cove/networks"

// Network is a network file's [network] table as written; Plan turns it
// into the network it declares. Empty strings leave the default: the
// default network's subnet4 (10.77.0.0/16; other networks must set one),
// the first host of a subnet as its gateway, a ULA /64 derived from the
// name, bridge cove0 or cove-NAME.
type Network struct {
	Subnet4, Gateway4 string
	Subnet6, Gateway6 string
	Bridge            string
	Internal          bool     // no egress
	DNS               bool     // names on the gateway; default true
	PrivilegedPorts   bool     // workloads may publish host ports below 1024; default true
	AllowHost         []string // host services on the gateway the network may reach, "PORT[/PROTO]"
}

// ParseNetwork parses the network file data, read from file, for network
// name ("" takes it from the file name, as Parse does for workloads). It
// returns the network with its defaults filled in (plan.Complete), or
// Errors positioned at the keys at fault.
func ParseNetwork(file string, data []byte, name string) (plan.Network, error) {
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(file), ".toml")
	}
	s, err := parse(file, data, name, plan.ValidName)
	if err != nil {
		return plan.Network{}, err
	}
	if s.Kind != KindNetwork {
		return plan.Network{}, Errors{keyError(file, data, "kind", fmt.Sprintf(`a network file must have kind = "network", not %q`, s.Kind))}
	}
	n, _ := s.Network.plan(name)
	return n, nil
}

// readNetwork builds a Network from the [network] table t.
func readNetwork(t table) *Network {
	n := &Network{DNS: true, PrivilegedPorts: true}
	t.read("subnet4", &n.Subnet4)
	t.read("gateway4", &n.Gateway4)
	t.read("subnet6", &n.Subnet6)
	t.read("gateway6", &n.Gateway6)
	t.read("bridge", &n.Bridge)
	t.read("internal", &n.Internal)
	t.read("dns", &n.DNS)
	t.read("privileged_ports", &n.PrivilegedPorts)
	t.read("allow_host", &n.AllowHost)
	return n
}

// plan is the network n declares, named name, completed; or the first
// problem as a key below "network" and a message.
func (n *Network) plan(name string) (plan.Network, *Error) {
	p := plan.Network{Name: name, Bridge: n.Bridge, Internal: n.Internal, NoDNS: !n.DNS, NoPrivilegedPorts: !n.PrivilegedPorts}
	if n.Subnet4 == "" && name == plan.DefaultName {
		p.Subnet4 = plan.DefaultSubnet4
	}
	for _, f := range []struct {
		key, val string
		pfx      *netip.Prefix
		addr     *netip.Addr
	}{{"subnet4", n.Subnet4, &p.Subnet4, nil}, {"gateway4", n.Gateway4, nil, &p.Gateway4}, {"subnet6", n.Subnet6, &p.Subnet6, nil}, {"gateway6", n.Gateway6, nil, &p.Gateway6}} {
		var err error
		switch {
		case f.val == "":
			continue
		case f.pfx != nil:
			*f.pfx, err = netip.ParsePrefix(f.val)
		default:
			*f.addr, err = netip.ParseAddr(f.val)
		}
		if err != nil {
			return p, &Error{Key: "network." + f.key, Msg: fmt.Sprintf("%q is not an %s such as %s", f.val, map[bool]string{true: "address prefix", false: "address"}[f.pfx != nil], example("network."+f.key))}
		}
	}
	if !p.Subnet4.IsValid() {
		return p, &Error{Key: "network.subnet4", Msg: "missing; required (only the default network has one by default), such as " + example("network.subnet4")}
	}
	for i, s := range n.AllowHost {
		h, err := plan.ParseHostService(s)
		if err != nil {
			return p, &Error{Key: fmt.Sprintf("network.allow_host[%d]", i+1), Msg: err.Error()}
		}
		p.AllowHost = append(p.AllowHost, h)
	}
	p = plan.Complete(p)
	var inv *plan.InvalidError
	if err := plan.Validate(p); errors.As(err, &inv) {
		return p, &Error{Key: "network." + inv.Field, Msg: inv.Msg}
	}
	return p, nil
}

// network checks a network file's spec: a [network] table and nothing a
// workload has.
func (v *validator) network(s *Spec) {
	for _, k := range []string{"container", "vm", "resources", "service", "security", "depends", "health", "install"} {
		if v.src.has(k) {
			v.add(k, fmt.Sprintf(`[%s] is a workload's; a network file (kind = "network") has version, kind, description and [network]`, k))
		}
	}
	if s.Network == nil {
		v.add("network", `missing [network] table; required for kind "network" (at least subnet4 = "10.78.0.0/24")`)
		return
	}
	if _, err := s.Network.plan(s.Name); err != nil {
		v.add(err.Key, err.Msg)
	}
}

// containerNetwork checks the network keys of a container: network is
// host, none or a network's name; ip and ports need a network, ip is an
// IPv4 address, each port parses and no two claim one host port.
func (v *validator) containerNetwork(c *Container) {
	joins := c.Network != NetworkHost && c.Network != NetworkNone
	if joins && plan.ValidName(c.Network) != nil {
		v.add("container.network", fmt.Sprintf(`invalid network %q; allowed: "host", "none" or a network's name ([a-z0-9][a-z0-9_.-]*, such as "cove")`, c.Network))
	}
	if c.IP != "" {
		if a, err := netip.ParseAddr(c.IP); err != nil || !a.Is4() {
			v.add("container.ip", fmt.Sprintf("%q is not an IPv4 address such as %s", c.IP, example("container.ip")))
		} else if !joins {
			v.add("container.ip", fmt.Sprintf("an address needs a network; network %q has none", c.Network))
		}
	}
	var ports []plan.Port
	for i, s := range c.Ports {
		key := fmt.Sprintf("container.ports[%d]", i+1)
		p, err := plan.ParsePort(s)
		if err != nil {
			v.add(key, err.Error())
			continue
		}
		for j, q := range ports {
			if p.Conflicts(q) {
				v.add(key, fmt.Sprintf("host port %d/%s is published twice (also by element %d)", p.HostPort, p.Proto, j+1))
			}
		}
		ports = append(ports, p)
	}
	if len(c.Ports) > 0 && !joins {
		v.add("container.ports", fmt.Sprintf(`published ports need a network; network %q has none (use network = "cove")`, c.Network))
	}
}

// File is n as a network file (version 1, kind "network"), which
// ParseNetwork reads back; settings at their default are left out.
func (n Network) File() []byte {
	var b strings.Builder
	b.WriteString("version = 1\nkind = \"network\"\n\n[network]\n")
	for _, kv := range [][2]string{{"subnet4", n.Subnet4}, {"gateway4", n.Gateway4}, {"subnet6", n.Subnet6}, {"gateway6", n.Gateway6}, {"bridge", n.Bridge}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%s = %s\n", kv[0], strconv.Quote(kv[1]))
		}
	}
	for _, kv := range []struct {
		key      string
		val, def bool
	}{{"internal", n.Internal, false}, {"dns", n.DNS, true}, {"privileged_ports", n.PrivilegedPorts, true}} {
		if kv.val != kv.def {
			fmt.Fprintf(&b, "%s = %v\n", kv.key, kv.val)
		}
	}
	if len(n.AllowHost) > 0 {
		quoted := make([]string, len(n.AllowHost))
		for i, s := range n.AllowHost {
			quoted[i] = strconv.Quote(s)
		}
		fmt.Fprintf(&b, "allow_host = [%s]\n", strings.Join(quoted, ", "))
	}
	return []byte(b.String())
}
