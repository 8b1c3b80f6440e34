package api

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/cove-project/cove/internal/network/plan"
)

// testEndpoint is workload web's endpoint on the default network at
// 10.77.0.2.
func testEndpoint() Endpoint {
	n := plan.Default()
	a := netip.MustParseAddr("10.77.0.2")
	return endpointOf(plan.Endpoint{Network: n, HostIf: plan.HostIfName(n.Name, "web"), Addr4: a, Addr6: plan.Addr6For(n, a), MAC: plan.WorkloadMAC(n.Name, "web")})
}

// testPorts are 8080:80 (every address) and 127.0.0.1:5353:53/udp.
var testPorts = []Port{
	{HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
	{HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, ContainerPort: 53, Proto: "udp"},
}

// TestEndpointOf: an endpoint carries both addresses with their subnets'
// lengths, the gateways, the bridge and the MAC, in JSON as text.
func TestEndpointOf(t *testing.T) {
	e := testEndpoint()
	a6 := plan.Addr6For(plan.Default(), netip.MustParseAddr("10.77.0.2"))
	if e.Address4.String() != "10.77.0.2/16" || e.Address6 != netip.PrefixFrom(a6, 64) || e.Gateway4.String() != "10.77.0.1" ||
		e.Bridge != "cove0" || e.MAC != plan.WorkloadMAC("cove", "web").String() {
		t.Errorf("endpoint %+v", e)
	}
	want := "cove 10.77.0.2/16 " + a6.String() + "/64 (" + e.MAC + ")"
	if e.String() != want {
		t.Errorf("String() = %q, want %q", e, want)
	}
	b, _ := json.Marshal(Workload{Networks: []Endpoint{e}, Ports: testPorts})
	for _, part := range []string{`"address4":"10.77.0.2/16"`, `"gateway4":"10.77.0.1"`, `{"host_port":8080,"container_port":80,"proto":"tcp"}`,
		`{"host_addr":"127.0.0.1","host_port":5353,"container_port":53,"proto":"udp"}`} {
		if !strings.Contains(string(b), part) {
			t.Errorf("JSON %s lacks %s", b, part)
		}
	}
}

// TestFormatPorts: ports as docker ps shows them, every address as
// 0.0.0.0 and [::], an unknown container port as "?".
func TestFormatPorts(t *testing.T) {
	ports := append(append([]Port{}, testPorts...), Port{HostPort: 9090, Proto: "tcp"})
	if s := FormatPorts(ports); s != "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 127.0.0.1:5353->53/udp, 0.0.0.0:9090->?/tcp, [::]:9090->?/tcp" {
		t.Errorf("FormatPorts = %q", s)
	}
	v6 := []Port{{HostAddr: netip.MustParseAddr("2001:db8::10"), HostPort: 8443, ContainerPort: 443, Proto: "tcp"}}
	if s := FormatPorts(v6); s != "[2001:db8::10]:8443->443/tcp" {
		t.Errorf("FormatPorts of an IPv6 address = %q", s)
	}
	if s := FormatPorts(nil); s != "" {
		t.Errorf("FormatPorts of none = %q", s)
	}
}
