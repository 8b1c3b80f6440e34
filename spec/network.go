package spec

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
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
	Internal          bool              // no egress
	DNS               bool              // names on the gateway; default true
	PrivilegedPorts   bool              // workloads may publish host ports below 1024; default true
	AllowHost         []string          // host services on the gateway the network may reach, "PORT[/PROTO]"
	IPv6              bool              // an IPv6 subnet besides the IPv4 one; default true
	Labels            map[string]string // Docker's network labels: shown, never acted on
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

// LoadNetwork reads the network file at path and parses it with
// ParseNetwork (the network named after the file).
func LoadNetwork(path string) (plan.Network, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return plan.Network{}, fmt.Errorf("read network file: %w", err)
	}
	return ParseNetwork(path, data, "")
}

// readNetwork builds a Network from the [network] table t.
func readNetwork(t table) *Network {
	n := &Network{DNS: true, PrivilegedPorts: true, IPv6: true}
	t.read("subnet4", &n.Subnet4)
	t.read("gateway4", &n.Gateway4)
	t.read("subnet6", &n.Subnet6)
	t.read("gateway6", &n.Gateway6)
	t.read("bridge", &n.Bridge)
	t.read("internal", &n.Internal)
	t.read("dns", &n.DNS)
	t.read("privileged_ports", &n.PrivilegedPorts)
	t.read("allow_host", &n.AllowHost)
	t.read("ipv6", &n.IPv6)
	t.read("labels", &n.Labels)
	return n
}

// plan is the network n declares, named name, completed; or the first
// problem as a key below "network" and a message.
func (n *Network) plan(name string) (plan.Network, *Error) {
	p := plan.Network{Name: name, Bridge: n.Bridge, Internal: n.Internal, NoDNS: !n.DNS, NoPrivilegedPorts: !n.PrivilegedPorts, NoIPv6: !n.IPv6, Labels: n.Labels}
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
	if p.NoIPv6 && (n.Subnet6 != "" || n.Gateway6 != "") {
		return p, &Error{Key: "network.ipv6", Msg: "false, but subnet6 or gateway6 is set: leave them out for a network without IPv6"}
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
	v.labels("network.labels", s.Network.Labels)
}

// Join is where a workload joins a cove network, as its spec writes it:
// a container's network, ip and ports keys, or those of [vm.network] for
// a VM with mode = "bridge". Validation, the host's checks
// (internal/hostcheck) and the compiler (the unit requires the network's
// unit) treat both alike.
type Join struct {
	Table   string   // the table holding the keys: "container" or "vm.network"
	Network string   // the network's name; "" when the workload joins none
	IP      string   // the IPv4 address to pin; "" for any free one
	Ports   []string // published ports, plan.ParsePort's syntax
	// Also are the networks a container joins besides Network (its
	// container.networks): an address of each and its names there, but
	// not IP, Ports or the default route, which are Network's.
	Also []string
}

// Networks are every network j joins, Network first; none when it joins
// none.
func (j Join) Networks() []string {
	if j.Network == "" {
		return nil
	}
	return append([]string{j.Network}, j.Also...)
}

// Key is the path of the key name (such as "ip" or "ports[2]") of j's
// table.
func (j Join) Key(name string) string { return j.Table + "." + name }

// Join returns where s joins a network; its Network is "" for a
// container on the host's network or on none, a VM not on a bridge, and
// a spec without its kind's table.
func (s *Spec) Join() Join {
	switch {
	case s.Kind == KindContainer && s.Container != nil:
		return containerJoin(s.Container)
	case s.Kind == KindVM && s.VM != nil:
		return vmJoin(&s.VM.Network)
	}
	return Join{}
}

// containerJoin is the Join of container c; one that shares another's
// network namespace joins none itself.
func containerJoin(c *Container) Join {
	j := Join{Table: "container", IP: c.IP, Ports: c.Ports}
	if _, shared := SharedNetwork(c.Network); !shared && c.Network != NetworkHost && c.Network != NetworkNone {
		j.Network, j.Also = c.Network, c.Networks
	}
	return j
}

// vmJoin is the Join of a VM's network n.
func vmJoin(n *VMNetwork) Join {
	j := Join{Table: "vm.network", IP: n.IP, Ports: n.Ports}
	if n.Mode == VMNetworkBridge {
		j.Network = n.Network
	}
	return j
}

// containerNetwork checks the network keys of a container of workload
// name: network is host, none, a network's name or another container's
// (sharedNetwork), and ip and ports as join checks them.
func (v *validator) containerNetwork(name string, c *Container) {
	j := containerJoin(c)
	if j.Network != "" && plan.ValidName(j.Network) != nil {
		v.add("container.network", fmt.Sprintf(`invalid network %q; allowed: "host", "none", a network's name ([a-z0-9][a-z0-9_.-]*, such as "cove") or "container:NAME" (another container's)`, c.Network))
	}
	if other, shared := SharedNetwork(c.Network); shared {
		v.sharedNetwork(name, other, c)
		return
	}
	v.join(j, fmt.Sprintf("network %q", c.Network), `network = "cove"`)
	v.moreNetworks(c)
	v.aliases(c, j.Network != "")
}

// sharedNetwork checks a container of workload name that shares the
// network namespace of container other: other is a workload's name or an
// instance's (NAME@I), not name itself, and the keys that would give it
// addresses or ports of its own (ip, ports, networks, aliases) are unset:
// they are other's.
func (v *validator) sharedNetwork(name, other string, c *Container) {
	base := BaseName(other)
	switch {
	case ValidName(base) != nil:
		v.add("container.network", fmt.Sprintf(`invalid network %q: "container:" takes a workload's name, or an instance's (NAME@I)`, c.Network))
	case base == name:
		v.add("container.network", fmt.Sprintf("network %q: a container cannot share its own network namespace", c.Network))
	}
	for _, k := range []struct {
		key string
		set bool
	}{{"ip", c.IP != ""}, {"ports", len(c.Ports) > 0}, {"networks", len(c.Networks) > 0}, {"aliases", len(c.Aliases) > 0}} {
		if k.set {
			v.add("container."+k.key, fmt.Sprintf("network %q shares %s's addresses, ports and names: set %s on %s", c.Network, other, k.key, other))
		}
	}
}

// aliases checks container.aliases: each a hostname, none twice, and
// only with a network whose DNS could answer them (joined says so).
func (v *validator) aliases(c *Container, joined bool) {
	seen := map[string]bool{}
	for i, a := range c.Aliases {
		key := fmt.Sprintf("container.aliases[%d]", i+1)
		msg := validAlias(a)
		switch {
		case !joined:
			v.add(key, fmt.Sprintf(`aliases are names on a network's DNS; network %q has none (network = "cove")`, c.Network))
			return
		case msg != "":
			v.add(key, msg)
		case seen[strings.ToLower(a)]:
			v.add(key, fmt.Sprintf("alias %q is given twice", a))
		}
		seen[strings.ToLower(a)] = true
	}
}

// moreNetworks checks container.networks: each a network's name, none
// twice nor the network itself, and only with a network to add them to.
func (v *validator) moreNetworks(c *Container) {
	seen := map[string]bool{c.Network: true}
	for i, n := range c.Networks {
		key := fmt.Sprintf("container.networks[%d]", i+1)
		switch {
		case c.Network == NetworkHost || c.Network == NetworkNone:
			v.add(key, fmt.Sprintf(`more networks need a network to add them to; network %q has none (network = "cove")`, c.Network))
			return
		case n == NetworkHost || n == NetworkNone || plan.ValidName(n) != nil:
			v.add(key, fmt.Sprintf(`invalid network %q; allowed: a network's name ([a-z0-9][a-z0-9_.-]*, such as "back")`, n))
		case seen[n]:
			v.add(key, fmt.Sprintf("network %q is joined already", n))
		}
		seen[n] = true
	}
}

// join checks the ip and ports keys of j: ip is an IPv4 address, each
// port parses and no two claim one host port, and neither is set when j
// joins no network. For that message, none names the setting that joins
// none (`network "host"`) and use the one that would (`network = "cove"`).
func (v *validator) join(j Join, none, use string) {
	if j.IP != "" {
		if a, err := netip.ParseAddr(j.IP); err != nil || !a.Is4() {
			v.add(j.Key("ip"), fmt.Sprintf("%q is not an IPv4 address such as %s", j.IP, example(j.Key("ip"))))
		} else if j.Network == "" {
			v.add(j.Key("ip"), fmt.Sprintf("an address needs a network; %s has none", none))
		}
	}
	var ports []plan.Port
	for i, s := range j.Ports {
		key := j.Key(fmt.Sprintf("ports[%d]", i+1))
		p, err := plan.ParsePort(s)
		if err != nil {
			v.add(key, err.Error())
			continue
		}
		for k, q := range ports {
			if p.Conflicts(q) {
				v.add(key, fmt.Sprintf("host port %d/%s is published twice (also by element %d)", p.HostPort, p.Proto, k+1))
			}
		}
		ports = append(ports, p)
	}
	if len(j.Ports) > 0 && j.Network == "" {
		v.add(j.Key("ports"), fmt.Sprintf(`published ports need a network; %s has none (use %s)`, none, use))
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
	}{{"internal", n.Internal, false}, {"dns", n.DNS, true}, {"privileged_ports", n.PrivilegedPorts, true}, {"ipv6", n.IPv6, true}} {
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
	if len(n.Labels) > 0 {
		b.WriteString("\n[network.labels]\n")
		for _, k := range sortedKeys(n.Labels) {
			fmt.Fprintf(&b, "%s = %s\n", tomlKey(k), strconv.Quote(n.Labels[k]))
		}
	}
	return []byte(b.String())
}
