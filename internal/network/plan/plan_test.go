package plan

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestDefault(t *testing.T) {
	n := Default()
	if err := Validate(n); err != nil {
		t.Fatal(err)
	}
	if n.Bridge != "cove0" || n.Gateway4 != netip.MustParseAddr("10.77.0.1") {
		t.Errorf("default network %+v", n)
	}
	if n.Subnet6.Bits() != 64 || n.Subnet6.Addr().As16()[0] != 0xfd || n.Gateway6 != n.Subnet6.Addr().Next() {
		t.Errorf("default subnet6 %v gateway6 %v: want a ULA /64 and its ::1", n.Subnet6, n.Gateway6)
	}
	if ULA("cove") != ULA("cove") || ULA("cove") == ULA("web") {
		t.Error("ULA is not a stable function of the name")
	}
}

func TestBridgeName(t *testing.T) {
	for name, want := range map[string]string{"cove": "cove0", "web": "cove-web", "backend-01": "cove-backend-01"} {
		if got := BridgeName(name); got != want {
			t.Errorf("BridgeName(%q) = %q, want %q", name, got, want)
		}
	}
	long := BridgeName("a-very-long-network-name")
	if len(long) > 15 || long == BridgeName("a-very-long-network-name2") {
		t.Errorf("long name bridge %q", long)
	}
}

func TestMAC(t *testing.T) {
	m := WorkloadMAC("cove", "web")
	if m != WorkloadMAC("cove", "web") {
		t.Error("MAC not stable")
	}
	if m == WorkloadMAC("cove", "db") || m == WorkloadMAC("other", "web") {
		t.Error("MAC does not depend on both names")
	}
	for _, w := range []string{"a", "b", "c", "web", "db", "x.y"} {
		m := WorkloadMAC("cove", w)
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Errorf("%v: want locally administered unicast", m)
		}
	}
	if len(HostIfName("cove", "web")) > 15 || HostIfName("cove", "web") == HostIfName("cove", "db") {
		t.Error("host interface names")
	}
}

func TestAddressArithmetic(t *testing.T) {
	n := Default()
	if got := Last(n.Subnet4); got != netip.MustParseAddr("10.77.255.255") {
		t.Errorf("Last = %v", got)
	}
	want := n.Subnet6.Addr().As16()
	want[14], want[15] = 1, 5
	if got := Addr6For(n, netip.MustParseAddr("10.77.1.5")); got != netip.AddrFrom16(want) {
		t.Errorf("Addr6For(10.77.1.5) = %v in %v", got, n.Subnet6)
	}
	if Addr6For(n, n.Gateway4) != n.Gateway6 {
		t.Error("the IPv4 gateway does not map to the IPv6 gateway")
	}
	for a, want := range map[string]bool{"10.77.0.0": false, "10.77.0.1": false, "10.77.0.2": true, "10.77.255.254": true, "10.77.255.255": false, "10.78.0.2": false} {
		if Usable(n, netip.MustParseAddr(a)) != want {
			t.Errorf("Usable(%s) != %v", a, want)
		}
	}
}

func TestValidate(t *testing.T) {
	bad := map[string]Network{
		"name":              Complete(Network{Name: "Bad/Name", Subnet4: DefaultSubnet4}),
		"gateway":           Complete(Network{Name: "a", Subnet4: DefaultSubnet4, Gateway4: netip.MustParseAddr("10.1.0.1")}),
		"broadcast gateway": Complete(Network{Name: "a", Subnet4: DefaultSubnet4, Gateway4: netip.MustParseAddr("10.77.255.255")}),
		"host bits":         Complete(Network{Name: "a", Subnet4: netip.MustParsePrefix("10.77.0.5/16"), Gateway4: netip.MustParseAddr("10.77.0.1")}),
		"family":            Complete(Network{Name: "a", Subnet4: netip.MustParsePrefix("fd00::/64")}),
		"too small":         Complete(Network{Name: "a", Subnet4: netip.MustParsePrefix("10.77.0.0/31")}),
		"bridge":            Complete(Network{Name: "a", Bridge: "much-too-long-bridge", Subnet4: DefaultSubnet4}),
	}
	for what, n := range bad {
		if err := Validate(n); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate(%+v) = %v, want ErrInvalid", what, n, err)
		}
	}
}

func TestValidateAllOverlap(t *testing.T) {
	a := Default()
	b := Complete(Network{Name: "web", Subnet4: netip.MustParsePrefix("10.77.128.0/24")})
	err := ValidateAll([]Network{a, b})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"cove"`) || !strings.Contains(err.Error(), `"web"`) {
		t.Errorf("overlap: %v, want an error naming both networks", err)
	}
	b.Subnet4, b.Gateway4 = netip.MustParsePrefix("10.78.0.0/24"), netip.MustParseAddr("10.78.0.1")
	if err := ValidateAll([]Network{a, b}); err != nil {
		t.Errorf("disjoint networks: %v", err)
	}
	b.Bridge = a.Bridge
	if err := ValidateAll([]Network{a, b}); err == nil || !strings.Contains(err.Error(), "cove0") {
		t.Errorf("shared bridge: %v", err)
	}
}

func TestFirewall(t *testing.T) {
	n := Default()
	text := Firewall(n).String()
	for _, want := range []string{`table inet "cove-net-cove"`, `oifname "cove0" drop`, `iifname "cove0" accept`, "ip saddr 10.77.0.0/16 ip daddr != 10.77.0.0/16 masquerade", "ip6 saddr fd", "ct state established,related accept"} {
		if !strings.Contains(text, want) {
			t.Errorf("rule set lacks %q:\n%s", want, text)
		}
	}
	n.Internal = true
	text = Firewall(n).String()
	if strings.Contains(text, "daddr != 10.77.0.0/16 masquerade") || !strings.Contains(text, `iifname "cove0" drop`) {
		t.Errorf("internal network rule set (no egress):\n%s", text)
	}
}

func TestFreeSubnet4(t *testing.T) {
	p, ok := FreeSubnet4([]netip.Prefix{DefaultSubnet4, netip.MustParsePrefix("10.78.0.0/24"), netip.MustParsePrefix("10.78.1.128/25")})
	if !ok || p != netip.MustParsePrefix("10.78.2.0/24") {
		t.Errorf("FreeSubnet4 = %v, %v; want 10.78.2.0/24", p, ok)
	}
	if _, ok := FreeSubnet4([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}); ok {
		t.Error("FreeSubnet4 found a subnet inside a taken 10.0.0.0/8")
	}
}

// TestBlockingChains: of the host's chains, those of other tables on the
// forward or input hook with policy drop block a network, with advice
// naming the chain and the bridge; cove's own, accepting ones and other
// hooks do not.
func TestBlockingChains(t *testing.T) {
	cs := []HostChain{
		{Family: "ip", Table: "filter", Chain: "FORWARD", Hook: "forward", Drop: true},
		{Family: "ip", Table: "filter", Chain: "INPUT", Hook: "input", Drop: true},
		{Family: "ip", Table: "filter", Chain: "OUTPUT", Hook: "output", Drop: true},
		{Family: "inet", Table: "fw", Chain: "fwd", Hook: "forward"},
		{Family: "inet", Table: TablePrefix + "net-cove", Chain: "forward", Hook: "forward", Drop: true},
	}
	got := BlockingChains(cs)
	if len(got) != 2 || got[0].Chain != "FORWARD" || got[1].Chain != "INPUT" {
		t.Fatalf("blocking: %+v", got)
	}
	w := BlockingWarning(Network{Name: "cove", Bridge: "cove0"}, got)
	for _, want := range []string{"chain FORWARD of table ip filter (hook forward)", "iptables -I FORWARD -i cove0 -j ACCEPT", "DOCKER-USER", "chain INPUT of table ip filter (hook input)", "DNS and DHCP"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning lacks %q:\n%s", want, w)
		}
	}
}

// TestValidDomain: labels of 1 to 63 bytes.
func TestValidDomain(t *testing.T) {
	for name, want := range map[string]bool{
		"lab": true, "a.b": true, strings.Repeat("x", 63): true, strings.Repeat("x", 64): false,
		"a..b": false, "a.": false, "": false,
	} {
		if got := ValidDomain(name); got != want {
			t.Errorf("ValidDomain(%q) = %v", name, got)
		}
	}
}
