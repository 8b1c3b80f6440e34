// Package dhcp is the DHCP responder of a cove network: it gives a VM
// on the network's bridge the address the VM launcher leased to it, so
// that a guest booted from its own disk (no kernel command line with
// ip=) configures its NIC as usual.
//
// No process stays resident. cove-dhcp@NETWORK.socket (units.CompileDHCP)
// holds UDP port 67 on the network's bridge; the first request starts
// cove-dhcp@NETWORK.service, which runs cove dhcp-serve NETWORK:
// ondemand.Sockets takes the socket systemd passed, Serve answers on it
// and returns after Config.Idle without a request, and the process exits
// 0. Requests that arrive meanwhile wait in the socket and start it
// again.
//
// The responder is stateless: the leases are the lease files of
// internal/network, which the launcher writes before QEMU starts, and
// the MAC of a workload's NIC is plan.WorkloadMAC(network, workload). A
// DISCOVER or REQUEST from a MAC is answered with the lease of the
// workload whose MAC that is, read anew for every request; a MAC no
// lease belongs to gets no answer, so a stranger on the bridge gets no
// address (a container asking would get the address it already has).
// Nothing is ever allocated here, so a DECLINE or RELEASE changes
// nothing: the address is the workload's for as long as it runs.
//
// On a network with IPv6 the same responder answers DHCPv6 on UDP port
// 547 of the bridge (answer6): the address is the IPv6 twin of the
// lease (plan.Addr6For), and the client is known by the MAC in its
// EUI-64 link-local address or else in its DUID. After every answer,
// IPv4 or
// IPv6, it calls Config.Advertise, which asks for a router advertisement
// (package radv): a guest's IPv6 default route and on-link prefix come
// from those, not from DHCPv6.
package dhcp
