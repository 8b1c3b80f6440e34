package api

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// dockerDefaultNetworks are Docker's names of its default network: the
// host's run network (hostconf) in cove.
var dockerDefaultNetworks = []string{"", "default", "bridge"}

// dockerNetworkName is the cove network a Docker network name means:
// runNetwork for Docker's default network, else the name itself.
func dockerNetworkName(name, runNetwork string) string {
	if slices.Contains(dockerDefaultNetworks, name) {
		return runNetwork
	}
	return name
}

// network applies HostConfig.NetworkMode ("host", "none", Docker's
// default network or a network's name) and NetworkingConfig's endpoints:
// the first network is NetworkMode's (for Docker's default, the first
// endpoint's by name), whose endpoint's IPAMConfig.IPv4Address is
// container.ip; the other endpoints' networks (docker run --network A
// --network B) are container.networks, in the order of their names.
func (b *specBuild) network(req *dockerCreate, runNetwork string) {
	mode, net := req.HostConfig.NetworkMode, firstNetwork(req, runNetwork)
	if _, shared := spec.SharedNetwork(net); shared { // the create named the other container by its workload (sharedNetworkMode)
		b.sp.Container.Network = net
		if len(req.NetworkingConfig.EndpointsConfig) > 0 {
			b.refuse("NetworkingConfig.EndpointsConfig: HostConfig.NetworkMode %q shares the other container's networks and joins none", mode)
		}
		b.links(req.HostConfig.Links)
		return
	}
	eps := req.NetworkingConfig.EndpointsConfig
	names := slices.Sorted(maps.Keys(eps))
	if net != spec.NetworkHost && net != spec.NetworkNone && plan.ValidName(net) != nil {
		b.refuse(`network %q: want "host", "none", "bridge" (the default network) or a network's name ([a-z0-9][a-z0-9_.-]*)`, net)
		return
	}
	b.sp.Container.Network = net
	for _, name := range names {
		if n := dockerNetworkName(name, runNetwork); n == net {
			b.endpoint(name, eps[name])
		} else {
			b.moreNetwork(name, n, eps[name], mode)
		}
	}
	b.aliases(names, eps)
	b.links(req.HostConfig.Links)
}

// firstNetwork is the network a container that req creates joins first:
// NetworkMode's, "container:NAME" for a shared one, and for Docker's
// default the first endpoint's (by name), else runNetwork.
func firstNetwork(req *dockerCreate, runNetwork string) string {
	mode := req.HostConfig.NetworkMode
	if _, shared := spec.SharedNetwork(mode); shared {
		return mode
	}
	if names := slices.Sorted(maps.Keys(req.NetworkingConfig.EndpointsConfig)); (mode == "" || mode == "default") && len(names) > 0 {
		return dockerNetworkName(names[0], runNetwork)
	}
	return dockerNetworkName(mode, runNetwork)
}

// links takes Docker's legacy links (--link, and docker-compose run's to
// the service's own containers) as what they are on a network with
// names: the linked containers resolve by their names and aliases
// already, so the links add nothing (Docker answers a link's alias too:
// cove warns that it does not). A container on host or none has no
// names to give: refused.
func (b *specBuild) links(links []string) {
	switch c := b.sp.Container; {
	case len(links) == 0:
	case b.sp.Join().Network == "":
		b.notYet(true, fmt.Sprintf("HostConfig.Links %q on network %q (links are names on a network)", links, c.Network))
	default:
		b.warnings = append(b.warnings, fmt.Sprintf("HostConfig.Links %q: the containers resolve by their names and aliases on the network; a link's own alias does not", links))
	}
}

// aliases sets container.aliases of a container on a network: every
// endpoint's Aliases (cove's DNS answers a container's aliases on each of
// its networks), then the short form of its ID, which Docker adds on its
// networks with names and docker-compose looks for in inspect's Aliases.
func (b *specBuild) aliases(names []string, eps map[string]*dockerEndpointCreate) {
	c := b.sp.Container
	if c.Network == spec.NetworkHost || c.Network == spec.NetworkNone {
		return
	}
	seen := map[string]bool{}
	for _, name := range names {
		for _, a := range eps[name].aliases() {
			if !seen[strings.ToLower(a)] {
				c.Aliases, seen[strings.ToLower(a)] = append(c.Aliases, a), true
			}
		}
	}
	if short := dockerID(b.sp.Name)[:12]; !seen[short] {
		c.Aliases = append(c.Aliases, short)
	}
}

// moreNetwork adds network n (Docker's name) as one of the container's
// more networks; its endpoint may not pin an address (only the first
// network's may), and a container on "host" or "none" joins none.
func (b *specBuild) moreNetwork(name, n string, ep *dockerEndpointCreate, mode string) {
	at := fmt.Sprintf("NetworkingConfig.EndpointsConfig[%q]", name)
	switch {
	case b.sp.Container.Network == spec.NetworkHost || b.sp.Container.Network == spec.NetworkNone:
		b.refuse("%s: HostConfig.NetworkMode %q joins no network to add %q to", at, mode, name)
	case ep != nil && ep.IPAMConfig != nil && ep.IPAMConfig.IPv4Address != "":
		b.refuse("%s.IPAMConfig.IPv4Address: a cove container pins an address on its first network (%s) only", at, b.sp.Container.Network)
	default:
		b.sp.Container.Networks = append(b.sp.Container.Networks, n)
	}
}

// endpoint applies the settings of the container's endpoint on network
// name: an IPv4 address; cove derives the IPv6 address and the MAC
// itself (its aliases: see aliases).
func (b *specBuild) endpoint(name string, ep *dockerEndpointCreate) {
	if ep == nil {
		return
	}
	at := fmt.Sprintf("NetworkingConfig.EndpointsConfig[%q]", name)
	if ipam := ep.IPAMConfig; ipam != nil {
		b.sp.Container.IP = ipam.IPv4Address
		b.notYet(ipam.IPv6Address != "", at+".IPAMConfig.IPv6Address (--ip6; a cove container's IPv6 address follows its IPv4 address)")
		b.notYet(len(ipam.LinkLocalIPs) > 0, at+".IPAMConfig.LinkLocalIPs (--link-local-ip)")
	}
	b.notYet(ep.MacAddress != "", at+".MacAddress (--mac-address; cove derives a container's MAC from its name)")
	b.notYet(len(ep.Links) > 0, at+".Links (--link)")
}

// ports applies HostConfig.PortBindings ({"80/tcp": [{"HostIp": "",
// "HostPort": "8080"}]}) as container.ports, in the order of the
// container ports. HostIp "", "0.0.0.0" and "::" all publish on every
// address of the host, IPv4 and IPv6 (cove publishes a port on one
// address or on all). On the host's network each binding is checked (a
// host port left for cove to choose, or a range, is fine there), then
// all are dropped with Docker's warning.
func (b *specBuild) ports(h *dockerHostCreate) {
	c := b.sp.Container
	onHost := c.Network == spec.NetworkHost
	for _, key := range slices.Sorted(maps.Keys(h.PortBindings)) {
		port, proto, err := parseDockerPort(key)
		if err != nil {
			b.refuse("HostConfig.PortBindings[%q]: %v", key, err)
			continue
		}
		for _, hb := range h.PortBindings[key] {
			if _, _, isRange, rerr := hostPortRange(hb.HostPort); onHost && (hb.HostPort == "" || hb.HostPort == "0" || isRange && rerr == nil) {
				hb.HostPort = "1" // no port was chosen for it: checked, then discarded
			}
			p, err := publishedPort(hb, port, proto)
			if err != nil {
				b.refuse("HostConfig.PortBindings[%q]: %v", key, err)
				continue
			}
			c.Ports = append(c.Ports, p.String())
		}
	}
	if len(c.Ports) > 0 && onHost {
		b.warnings = append(b.warnings, "Published ports are discarded when using host network mode")
		c.Ports = nil
	}
}

// parseDockerPort reads a container port as Docker keys it: "80/tcp",
// "53/udp", "80" (tcp).
func parseDockerPort(key string) (uint16, string, error) {
	port, proto, _ := strings.Cut(key, "/")
	switch {
	case proto == "":
		proto = plan.TCP
	case proto != plan.TCP && proto != plan.UDP:
		return 0, "", fmt.Errorf("protocol %q is not supported (tcp and udp are)", proto)
	}
	if strings.Contains(port, "-") {
		return 0, "", fmt.Errorf("port ranges are not supported yet: publish each port")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return 0, "", fmt.Errorf("container port %q is not a number from 1 to 65535", port)
	}
	return uint16(n), proto, nil
}

// portChooser chooses free host ports (network.PortClaims).
type portChooser interface {
	FreePort(p plan.Port, avoid []plan.Port) (uint16, error)
	FreePortIn(p plan.Port, lo, hi int, avoid []plan.Port) (uint16, error)
}

// randomPorts gives a free host port (ports.FreePort) to each binding of
// req without one (docker run -p PORT, -p IP::PORT; HostPort "" or "0"),
// one of its range (ports.FreePortIn) to each binding with a range of
// host ports (-p 8000-8010:80, HostPort "8000-8010") and, with
// PublishAllPorts (-P), one to each tcp or udp port that req or its image
// (imageExposed) exposes and that has no binding, avoiding the ports of
// avoid too. It writes them into req's
// PortBindings and clears
// PublishAllPorts, so the record keeps them: a container's ports are
// chosen at its creation and kept across its starts (Docker chooses anew
// at each start). -P publishes nothing when the container's first
// network, net, is none of cove's (host, none, another container's), as
// Docker's; a binding containerSpec refuses is left to it.
func randomPorts(req *dockerCreate, imageExposed map[string]struct{}, net string, avoid []plan.Port, ports portChooser) *Error {
	h := &req.HostConfig
	if _, shared := spec.SharedNetwork(net); h.PublishAll && !shared && net != spec.NetworkHost && net != spec.NetworkNone {
		publishExposed(h, imageExposed, req.ExposedPorts)
	}
	h.PublishAll = false
	if net == spec.NetworkHost {
		return nil // the bindings are discarded (containerSpec)
	}
	chosen := append(slices.Clip(avoid), boundPorts(h.PortBindings)...) // a random port is none of the container's own
	for _, key := range slices.Sorted(maps.Keys(h.PortBindings)) {
		port, proto, err := parseDockerPort(key)
		for i, hb := range h.PortBindings[key] {
			lo, hi, isRange, rerr := hostPortRange(hb.HostPort)
			if err != nil || rerr != nil || !isRange && hb.HostPort != "" && hb.HostPort != "0" {
				continue // a port given, or a binding containerSpec refuses
			}
			p, perr := publishedPort(dockerPortBinding{HostIP: hb.HostIP, HostPort: "1"}, port, proto) // its host side
			if perr != nil {
				continue
			}
			if isRange {
				p.HostPort, perr = ports.FreePortIn(p, lo, hi, chosen)
			} else {
				p.HostPort, perr = ports.FreePort(p, chosen)
			}
			if perr != nil {
				return errorf(freePortCode(perr), fmt.Sprintf("HostConfig.PortBindings[%q]: %v", key, perr))
			}
			h.PortBindings[key][i].HostPort = strconv.Itoa(int(p.HostPort))
			chosen = append(chosen, p)
		}
	}
	return nil
}

// freePortCode is the status of a create whose free port could not be
// had: 400 for an address not the host's, 409 when every port of the
// range (the user's, or the kernel's local one) is taken, else 500.
func freePortCode(err error) string {
	switch {
	case errors.Is(err, network.ErrNotLocal):
		return CodeBadRequest
	case errors.Is(err, network.ErrNoFreePort):
		return CodeConflict
	}
	return CodeInternal
}

// hostPortRange reads a binding's HostPort "LOW-HIGH" (docker run -p
// 8000-8010:80: a free one of those ports); isRange is false for any
// other HostPort, and err says why one with a "-" is no range.
func hostPortRange(s string) (lo, hi int, isRange bool, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		return 0, 0, false, nil
	}
	l, lerr := strconv.ParseUint(a, 10, 16)
	h, herr := strconv.ParseUint(b, 10, 16)
	if lerr != nil || herr != nil || l == 0 || l > h {
		return 0, 0, true, fmt.Errorf("HostPort %q is not a range LOW-HIGH of ports from 1 to 65535", s)
	}
	return int(l), int(h), true, nil
}

// publishExposed adds a binding without host port for each port of the
// exposed sets (keys as PortBindings') that h does not bind yet; one
// that is not a tcp or udp port is left out.
func publishExposed(h *dockerHostCreate, exposed ...map[string]struct{}) {
	bound := map[string]bool{}
	for key := range h.PortBindings {
		if port, proto, err := parseDockerPort(key); err == nil {
			bound[fmt.Sprintf("%d/%s", port, proto)] = true
		}
	}
	for _, set := range exposed {
		for _, key := range slices.Sorted(maps.Keys(set)) {
			port, proto, err := parseDockerPort(key)
			if norm := fmt.Sprintf("%d/%s", port, proto); err == nil && !bound[norm] {
				if h.PortBindings == nil {
					h.PortBindings = map[string][]dockerPortBinding{}
				}
				h.PortBindings[norm], bound[norm] = []dockerPortBinding{{}}, true
			}
		}
	}
}

// boundPorts are the ports of bindings that give their host port.
func boundPorts(bindings map[string][]dockerPortBinding) []plan.Port {
	var out []plan.Port
	for key, hbs := range bindings {
		port, proto, err := parseDockerPort(key)
		for _, hb := range hbs {
			if p, perr := publishedPort(hb, port, proto); err == nil && perr == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// publishedPort is the published port of one host binding of port/proto.
// A binding without HostPort has had one chosen at the container's
// creation (randomPorts).
func publishedPort(hb dockerPortBinding, port uint16, proto string) (plan.Port, error) {
	host := ""
	ip, err := netip.ParseAddr(hb.HostIP)
	switch ip = ip.Unmap(); {
	case hb.HostIP == "": // every address; so are 0.0.0.0 and :: (plan.ParsePort)
	case err != nil:
		return plan.Port{}, fmt.Errorf("HostIp %q is not an IP address", hb.HostIP)
	case ip.Is6():
		host = "[" + ip.String() + "]:"
	default:
		host = ip.String() + ":"
	}
	switch {
	case hb.HostPort == "" || hb.HostPort == "0":
		return plan.Port{}, fmt.Errorf("no HostPort (cove chooses one for -p %d when the container is created)", port)
	}
	if _, _, isRange, err := hostPortRange(hb.HostPort); isRange {
		return plan.Port{}, cmp.Or(err, fmt.Errorf("HostPort %q: cove chooses one of the range when the container is created", hb.HostPort))
	}
	return plan.ParsePort(fmt.Sprintf("%s%s:%d/%s", host, hb.HostPort, port, proto))
}
