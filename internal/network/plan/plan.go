// Package plan is the pure half of cove's networking: the network model
// and its validation, address arithmetic, the MAC and interface names a
// workload gets, and the nftables rule set of a network as plain data.
// It makes no syscalls and imports nothing that does, so it builds on any
// GOOS and can be used by spec, units and launch; internal/network applies
// what it describes to the kernel.
package plan

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sync"
)

// DefaultName is the network that exists without configuration.
const DefaultName = "cove"

// DefaultBridge is the bridge of the default network.
const DefaultBridge = "cove0"

// DefaultSubnet4 is the default network's IPv4 subnet. 10.77.0.0/16 is
// chosen because it is none of the usual ones: home routers use
// 192.168.0-1.x and 10.0-1.x, Docker 172.17-31.x and 192.168.x/20,
// podman 10.88/16 and 10.89.x/24, libvirt 192.168.122/24, k3s 10.42-43/16,
// flannel 10.244/16 and Kubernetes services 10.96/12. A clash with a
// route of the host is still possible and is for the host check to refuse.
var DefaultSubnet4 = netip.MustParsePrefix("10.77.0.0/16")

// Network is one cove network: a bridge, its subnets and gateways.
type Network struct {
	Name     string
	Bridge   string       // at most 15 bytes (IFNAMSIZ-1)
	Subnet4  netip.Prefix // masked IPv4 prefix, /8 to /30
	Gateway4 netip.Addr   // the bridge's address, inside Subnet4
	Subnet6  netip.Prefix // masked IPv6 prefix, /48 to /120
	Gateway6 netip.Addr   // the bridge's IPv6 address, inside Subnet6
	Internal bool         // no egress: nothing is forwarded out of the network
	NoDNS    bool         // no name service on the gateway (dns = false)
	// NoPrivilegedPorts refuses published host ports below 1024 for
	// workloads on the network (privileged_ports = false).
	NoPrivilegedPorts bool
	// AllowHost are the host's services on the gateway that workloads may
	// reach besides DNS (and DHCP for VMs); everything else the network
	// sends to the host itself is dropped.
	AllowHost []HostService
	NoIPv6    bool              // IPv4 only: no Subnet6, Gateway6 or IPv6 address of a workload (ipv6 = false)
	Labels    map[string]string // Docker's network labels: shown, never acted on
}

// Default is the default network with every default filled in.
func Default() Network {
	return Complete(Network{Name: DefaultName, Subnet4: DefaultSubnet4})
}

// Complete fills what n leaves out: the bridge ("cove0" for the default
// network, "cove-NAME" or "cove-HASH" for others), the first host of each
// subnet as its gateway, and a ULA /64 derived from the name.
func Complete(n Network) Network {
	if n.Bridge == "" {
		n.Bridge = BridgeName(n.Name)
	}
	if !n.Gateway4.IsValid() && n.Subnet4.IsValid() {
		n.Gateway4 = n.Subnet4.Masked().Addr().Next()
	}
	if !n.Subnet6.IsValid() && !n.NoIPv6 {
		n.Subnet6 = ULA(n.Name)
	}
	if !n.Gateway6.IsValid() && n.Subnet6.IsValid() {
		n.Gateway6 = n.Subnet6.Masked().Addr().Next()
	}
	return n
}

// BridgeName is the bridge a network gets when its file names none.
func BridgeName(network string) string {
	if network == DefaultName {
		return DefaultBridge
	}
	if len("cove-"+network) <= 15 {
		return "cove-" + network
	}
	return "cove-" + hexHash("bridge", network)[:10]
}

// ULA is the unique local /64 (RFC 4193) of a network: fd00::/8, a
// 40-bit global ID and a 16-bit subnet ID hashed from the name, so the
// same name always gets the same prefix and different names almost never
// share one (validation refuses the rare clash).
func ULA(network string) netip.Prefix {
	sum := sha256.Sum256([]byte("cove-ula\x00" + network))
	var a [16]byte
	a[0] = 0xfd
	copy(a[1:8], sum[:7])
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// MAC is an Ethernet address.
type MAC [6]byte

// String is the usual colon form.
func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// LinkLocal is the link-local address the kernel makes of an interface
// with MAC m in its "eui64" address generation mode (RFC 4291, appendix
// A: fe80:: and the MAC with ff:fe in its middle and the universal/local
// bit inverted). A container's NIC and a network's bridge have it: the
// network code sets that mode on both.
func LinkLocal(m MAC) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 8: m[0] ^ 0x02, 9: m[1], 10: m[2], 11: 0xff, 12: 0xfe, 13: m[3], 14: m[4], 15: m[5]})
}

// LinkLocalMAC is the MAC that link-local address a was made of in the
// "eui64" mode (LinkLocal's inverse), if a is one of those: its interface
// ID has ff:fe in its middle.
func LinkLocalMAC(a netip.Addr) (MAC, bool) {
	b := a.As16()
	if !a.Is6() || !a.IsLinkLocalUnicast() || b[11] != 0xff || b[12] != 0xfe {
		return MAC{}, false
	}
	return MAC{b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]}, true
}

// BridgeMAC is the stable MAC of a network's bridge (the source of its
// router advertisements and its DHCPv6 server's DUID).
func BridgeMAC(network string) MAC { return WorkloadMAC(network, "\x00bridge") }

// WorkloadMAC is the stable MAC of a workload on a network: hashed from
// both names, locally administered (bit 1 set) and unicast (bit 0 clear).
func WorkloadMAC(network, workload string) MAC {
	sum := sha256.Sum256([]byte("cove-mac\x00" + network + "\x00" + workload))
	var m MAC
	copy(m[:], sum[:6])
	m[0] = m[0]&^0x01 | 0x02
	return m
}

// HostIfName is the host end of a workload's veth (or its tap): "cv"
// and 12 hex digits of a hash of both names, unique per network and
// workload and within IFNAMSIZ.
func HostIfName(network, workload string) string {
	return "cv" + hexHash("veth", network+"\x00"+workload)[:12]
}

// hexHash is a hex SHA-256 of a purpose and a value.
func hexHash(purpose, value string) string {
	sum := sha256.Sum256([]byte("cove-" + purpose + "\x00" + value))
	return fmt.Sprintf("%x", sum[:])
}

// Gateways are n's gateway addresses: IPv4, then IPv6 unless n has none.
func (n Network) Gateways() []netip.Addr {
	if !n.Gateway6.IsValid() {
		return []netip.Addr{n.Gateway4}
	}
	return []netip.Addr{n.Gateway4, n.Gateway6}
}

// Text is an address or prefix as text, "" for the zero value (an
// address family a network does not have).
func Text[T interface {
	IsValid() bool
	String() string
}](v T) string {
	if !v.IsValid() {
		return ""
	}
	return v.String()
}

// Subnets are n's subnets: IPv4, then IPv6 unless n has none.
func (n Network) Subnets() []netip.Prefix {
	if !n.Subnet6.IsValid() {
		return []netip.Prefix{n.Subnet4}
	}
	return []netip.Prefix{n.Subnet4, n.Subnet6}
}

// Addr6For is the IPv6 address that goes with a leased IPv4 address: the
// IPv4 address's offset in Subnet4 as the interface ID in Subnet6. The
// IPv4 lease thereby reserves the IPv6 address too, and the gateways
// match (.1 and ::1). A network without IPv6 gives the zero Addr.
func Addr6For(n Network, a4 netip.Addr) netip.Addr {
	if !n.Subnet6.IsValid() {
		return netip.Addr{}
	}
	off := v4(a4) - v4(n.Subnet4.Masked().Addr())
	b := n.Subnet6.Masked().Addr().As16()
	lo := binary.BigEndian.Uint32(b[12:]) + off
	binary.BigEndian.PutUint32(b[12:], lo)
	return netip.AddrFrom16(b)
}

// v4 is an IPv4 address as an integer.
func v4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// Last is the last address of a prefix (IPv4: its broadcast address).
func Last(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Usable says whether a may be given to a workload on n: inside Subnet4,
// neither its network nor its broadcast address, not the gateway.
func Usable(n Network, a netip.Addr) bool {
	p := n.Subnet4.Masked()
	return a.Is4() && p.Contains(a) && a != p.Addr() && a != Last(p) && a != n.Gateway4
}

// nameRE matches network and bridge names; compiled on first use, so
// that starting cove pays nothing for it.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`) })

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid network")

// String is a one-line summary of n, for logs and tests.
func (n Network) String() string {
	return fmt.Sprintf("network %s: bridge %s, %v via %v, %v via %v, internal %v, dns %v, privileged ports %v, allow host %v",
		n.Name, n.Bridge, n.Subnet4, n.Gateway4, n.Subnet6, n.Gateway6, n.Internal, !n.NoDNS, !n.NoPrivilegedPorts, n.AllowHost)
}

// FreeSubnet4 is the first /24 of 10.78.0.0/15 that overlaps none of
// taken (other networks' subnets, the host's routes), for a network
// created without a subnet: podman's habit (10.89.N.0/24), in a range of
// cove's own next to the default network's.
func FreeSubnet4(taken []netip.Prefix) (netip.Prefix, bool) {
	for i := range 512 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(78 + i/256), byte(i % 256), 0}), 24)
		if !slices.ContainsFunc(taken, p.Overlaps) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// ValidDomain says whether name can be sent as a domain name (a DHCP
// domain, a search list entry): labels of 1 to 63 bytes (a network name
// is at most 64 and may hold empty labels).
func ValidDomain(name string) bool {
	label := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			if label == 0 || label > 63 {
				return false
			}
			label = 0
			continue
		}
		label++
	}
	return true
}
