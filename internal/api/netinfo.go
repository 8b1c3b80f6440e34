package api

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
)

// Endpoint is a workload's place on one of cove's networks.
type Endpoint struct {
	Network  string       `json:"network"`
	Bridge   string       `json:"bridge"`
	Address4 netip.Prefix `json:"address4"` // its IPv4 address and the subnet's length, "10.77.0.2/16"
	Gateway4 netip.Addr   `json:"gateway4"`
	Address6 netip.Prefix `json:"address6"` // its IPv6 address (plan.Addr6For) and the subnet's length
	Gateway6 netip.Addr   `json:"gateway6"`
	MAC      string       `json:"mac"`               // eth0's, "02:…"
	Aliases  []string     `json:"aliases,omitempty"` // more names the network's DNS answers with its address (container.aliases)
}

// Port is a host port a workload publishes: connections to HostAddr
// (zero: every address of the host, IPv4 and IPv6) and HostPort go to
// its ContainerPort (0 when cove cannot tell: a claim of an earlier
// cove).
type Port struct {
	HostAddr      netip.Addr `json:"host_addr,omitzero"`
	HostPort      uint16     `json:"host_port"`
	ContainerPort uint16     `json:"container_port"`
	Proto         string     `json:"proto"` // tcp or udp
}

// String is the endpoint as cove status shows it:
// "cove 10.77.0.2/16 fd..::2/64 (02:…)" (no IPv6 address on a network
// without IPv6).
func (e Endpoint) String() string {
	return strings.Join(slices.DeleteFunc([]string{e.Network, e.Address4.String(), plan.Text(e.Address6), "(" + e.MAC + ")"}, func(s string) bool { return s == "" }), " ")
}

// HostIPs are the host addresses p answers on as Docker names them:
// "0.0.0.0" and "::" for every address, else its address.
func (p Port) HostIPs() []string {
	if !p.HostAddr.IsValid() {
		return []string{"0.0.0.0", "::"}
	}
	return []string{p.HostAddr.String()}
}

// FormatPorts lists ports as docker ps does, each host address apart:
// "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 127.0.0.1:5353->53/udp"
// (an unknown container port is "?").
func FormatPorts(ports []Port) string {
	var out []string
	for _, p := range ports {
		to := "?"
		if p.ContainerPort != 0 {
			to = fmt.Sprint(p.ContainerPort)
		}
		for _, ip := range p.HostIPs() {
			if strings.Contains(ip, ":") {
				ip = "[" + ip + "]"
			}
			out = append(out, fmt.Sprintf("%s:%d->%s/%s", ip, p.HostPort, to, p.Proto))
		}
	}
	return strings.Join(out, ", ")
}

// endpointOf is ep as an Endpoint.
func endpointOf(ep plan.Endpoint) Endpoint {
	n := ep.Network
	return Endpoint{Network: n.Name, Bridge: n.Bridge, Address4: netip.PrefixFrom(ep.Addr4, n.Subnet4.Bits()),
		Gateway4: n.Gateway4, Address6: netip.PrefixFrom(ep.Addr6, n.Subnet6.Bits()), Gateway6: n.Gateway6, MAC: ep.MAC.String()}
}

// portOf is p as a Port.
func portOf(p plan.Port) Port {
	return Port{HostAddr: p.HostAddr, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Proto: p.Proto}
}

// withNetworks adds to ws, as far as cove's records tell (network.Host:
// leases and port claims), the endpoints and published ports of those
// that run. Like their health it is best effort: what cannot be read is
// left out, and the list is never refused for it.
func withNetworks(ws []Workload) {
	v, err := network.Host.Read()
	if err != nil {
		return
	}
	for i := range ws {
		addNetworks(&ws[i], v)
	}
}

// addNetworks fills w's Networks and Ports from v if w runs (a lease or
// claim of a workload that does not is stale).
func addNetworks(w *Workload, v network.View) {
	if w.MainPID == 0 {
		return
	}
	eps := v.Joined(w.Name) // its first network first
	if len(eps) == 0 {
		eps = v.Endpoints(w.Name)
	}
	for _, ep := range eps {
		e := endpointOf(ep)
		e.Aliases = v.Aliases(ep.Network.Name, w.Name)
		w.Networks = append(w.Networks, e)
	}
	for _, p := range v.Published(w.Name) {
		w.Ports = append(w.Ports, portOf(p))
	}
}
