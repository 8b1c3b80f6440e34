package nettest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestIPv6EgressIsolation: the IPv6 side of a network, as the IPv4 one
// is tested elsewhere. A container on network cove reaches the outside's
// IPv6 server, masqueraded (the server sees the sandbox's uplink
// address); another on cove reaches its IPv6 address; one on another
// network cannot, nor can it be reached from there; one on an internal
// network reaches nothing outside.
func TestIPv6EgressIsolation(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoNetworkLeftovers(t, "six", "sixsealed") })
	t.Cleanup(func() { must(t, "systemctl", "stop", networkUnit) }) // first: network cove's files go with it
	journalOnFailure(t, 60)
	makeOutside(t)
	serveOutside(t, 9000)
	mustCove(t, "network", "create", "six")
	mustCove(t, "network", "create", "--internal", "sixsealed")
	runServer(t, "v6a", "cove")
	runServer(t, "v6b", "cove")
	runServer(t, "v6far", "six")
	runServer(t, "v6hermit", "sixsealed")
	url := fmt.Sprintf("http://[%s]:9000/", outsideAddr6)
	if got := fetch(t, "v6a", url); got != uplinkAddr6 {
		t.Errorf("v6a fetching %s: got %q, want the sandbox's uplink address %s (masqueraded)", url, got, uplinkAddr6)
	}
	a, far := addr6(t, "v6a"), addr6(t, "v6far")
	if got := fetch(t, "v6b", "http://["+a+"]:8080/"); got != "v6a" {
		t.Errorf("v6b fetching v6a at [%s]:8080 on their network: got %q", a, got)
	}
	for _, c := range []struct{ from, to string }{{"v6far", a}, {"v6a", far}, {"v6hermit", outsideAddr6}} {
		port := "8080"
		if c.to == outsideAddr6 {
			port = "9000"
		}
		if r := inside(t, coveBin, "exec", c.from, "--", "timeout", "3", "wget", "-O", "-", "http://["+c.to+"]:"+port+"/"); r.Code == 0 {
			t.Errorf("%s reached [%s]:%s over IPv6 across networks: %s", c.from, c.to, port, r.Stdout)
		}
	}
}

// addr6 is container name's global IPv6 address on eth0.
func addr6(t *testing.T, name string) string {
	t.Helper()
	out := mustCove(t, "exec", name, "--", "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
	m := regexp.MustCompile(`inet6 ([0-9a-f:]+)/`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s's eth0 has no global IPv6 address:\n%s", name, strings.TrimSpace(out))
	}
	return m[1]
}
