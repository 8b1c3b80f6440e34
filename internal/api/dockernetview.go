package api

import (
	"fmt"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// dockerNetworkID is a network's stable 64-hex-digit Docker ID.
func dockerNetworkID(name string) string { return hashID("cove-network:" + name) }

// dockerEndpointID is the stable Docker ID of workload's endpoint on
// network.
func dockerEndpointID(network, workload string) string {
	return hashID("cove-endpoint:" + network + "\x00" + workload)
}

// dockerPort is one entry of a listed container's Ports.
type dockerPort struct {
	IP          string `json:"IP,omitempty"`
	PrivatePort uint16 `json:"PrivatePort"`
	PublicPort  uint16 `json:"PublicPort,omitempty"`
	Type        string `json:"Type"`
}

// dockerAddresses are a container's addresses on a network, as Docker
// names them both in NetworkSettings (of its first network) and in each
// of NetworkSettings.Networks.
type dockerAddresses struct {
	EndpointID          string `json:"EndpointID"`
	Gateway             string `json:"Gateway"`
	IPAddress           string `json:"IPAddress"`
	IPPrefixLen         int    `json:"IPPrefixLen"`
	IPv6Gateway         string `json:"IPv6Gateway"`
	GlobalIPv6Address   string `json:"GlobalIPv6Address"`
	GlobalIPv6PrefixLen int    `json:"GlobalIPv6PrefixLen"`
	MacAddress          string `json:"MacAddress"`
}

// dockerEndpoint is one entry of NetworkSettings.Networks.
type dockerEndpoint struct {
	IPAMConfig *struct{} `json:"IPAMConfig"`
	Links      []string  `json:"Links"`
	Aliases    []string  `json:"Aliases"`
	NetworkID  string    `json:"NetworkID"`
	dockerAddresses
	DriverOpts map[string]string `json:"DriverOpts"`
	DNSNames   []string          `json:"DNSNames"`
}

// dockerNetworks is a listed container's NetworkSettings.
type dockerNetworks struct {
	Networks map[string]dockerEndpoint `json:"Networks"`
}

// dockerNetworkSettings is an inspected container's NetworkSettings: the
// addresses on its first network, its published ports and its networks.
type dockerNetworkSettings struct {
	Bridge     string                         `json:"Bridge"`
	SandboxID  string                         `json:"SandboxID"`
	SandboxKey string                         `json:"SandboxKey"`
	Ports      map[string][]dockerPortBinding `json:"Ports"`
	dockerAddresses
	Networks map[string]dockerEndpoint `json:"Networks"`
}

// addressesOf are a workload's addresses at endpoint e.
func addressesOf(workload string, e Endpoint) dockerAddresses {
	return dockerAddresses{
		EndpointID: dockerEndpointID(e.Network, workload), Gateway: e.Gateway4.String(),
		IPAddress: e.Address4.Addr().String(), IPPrefixLen: e.Address4.Bits(),
		IPv6Gateway: plan.Text(e.Gateway6), GlobalIPv6Address: plan.Text(e.Address6.Addr()), GlobalIPv6PrefixLen: max(e.Address6.Bits(), 0),
		MacAddress: e.MAC,
	}
}

// networksOf is w's NetworkSettings.Networks: each network it is on.
func networksOf(w Workload) map[string]dockerEndpoint {
	out := map[string]dockerEndpoint{}
	for _, e := range w.Networks {
		out[e.Network] = dockerEndpoint{NetworkID: dockerNetworkID(e.Network), dockerAddresses: addressesOf(w.Name, e),
			Aliases: e.Aliases, DNSNames: append([]string{w.Name}, e.Aliases...)}
	}
	return out
}

// networkSettingsOf is w's NetworkSettings in an inspection; a container
// that is not on its networks now (created, stopped) shows those its spec
// sp (nil: none) joins, with its aliases and without addresses, as Docker
// shows a container's endpoints before it starts.
func networkSettingsOf(w Workload, sp *spec.Spec) dockerNetworkSettings {
	d := dockerNetworkSettings{Ports: bindingsOf(w.Ports, false), Networks: networksOf(w)}
	if len(w.Networks) > 0 {
		d.dockerAddresses = addressesOf(w.Name, w.Networks[0])
		d.Bridge = w.Networks[0].Bridge
	} else if sp != nil && sp.Container != nil {
		for _, n := range sp.Join().Networks() {
			d.Networks[n] = dockerEndpoint{Aliases: sp.Container.Aliases, DNSNames: append([]string{w.Name}, sp.Container.Aliases...)}
		}
	}
	return d
}

// summaryPorts are ports as a listed container's Ports: one entry per
// host address (Port.HostIPs).
func summaryPorts(ports []Port) []dockerPort {
	out := []dockerPort{}
	for _, p := range ports {
		for _, ip := range p.HostIPs() {
			out = append(out, dockerPort{IP: ip, PrivatePort: p.ContainerPort, PublicPort: p.HostPort, Type: p.Proto})
		}
	}
	return out
}

// bindingsOf maps ports by container port ("80/tcp") to their host
// sides: as NetworkSettings.Ports shows them (every address as "0.0.0.0"
// and "::"), or, with asRequested, as HostConfig.PortBindings records a
// request (every address as HostIp "").
func bindingsOf(ports []Port, asRequested bool) map[string][]dockerPortBinding {
	out := map[string][]dockerPortBinding{}
	for _, p := range ports {
		key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto)
		ips := p.HostIPs()
		if asRequested && !p.HostAddr.IsValid() {
			ips = []string{""}
		}
		for _, ip := range ips {
			out[key] = append(out[key], dockerPortBinding{HostIP: ip, HostPort: fmt.Sprint(p.HostPort)})
		}
	}
	return out
}

// specPorts are a spec's container.ports as Ports (they are valid: the
// spec was validated).
func specPorts(ports []string) []Port {
	var out []Port
	for _, s := range ports {
		if p, err := plan.ParsePort(s); err == nil {
			out = append(out, portOf(p))
		}
	}
	return out
}
