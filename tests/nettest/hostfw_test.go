package nettest

import (
	"fmt"
	"strings"
	"testing"
)

// TestHostForwardDrop: the admin's nftables table with iptables' FORWARD
// chain as Docker and ufw leave it (hook forward, policy drop) drops what
// cove's own tables accept. When cove-network@cove.service comes up it
// warns about that chain, naming it and the rules that would let the
// network through; a container on network cove reaches the outside only
// once those rules are in. cove leaves the admin's table as it found it.
func TestHostForwardDrop(t *testing.T) {
	env.Need(t)
	assertClosedWorld(t)
	t.Cleanup(func() { checkNoLeftovers(t) })
	journalOnFailure(t, 60)
	makeOutside(t)
	serveOutside(t, 9000)
	must(t, "nft", "add table ip filter; add chain ip filter FORWARD { type filter hook forward priority filter; policy drop; }")
	t.Cleanup(func() { inside(t, "nft", "delete", "table", "ip", "filter") })
	since := must(t, "date", "+%Y-%m-%d %H:%M:%S")
	runServer(t, "fwd", "cove")
	must(t, "systemctl", "reload", networkUnit) // whether or not an earlier test left it up, Up runs now
	warning := "network cove: chain FORWARD of table ip filter (hook forward) drops what no rule of its accepts"
	if log := must(t, "journalctl", "-u", networkUnit, "--since", strings.TrimSpace(since), "-o", "cat"); !strings.Contains(log, warning) ||
		!strings.Contains(log, "iptables -I FORWARD -i cove0 -j ACCEPT") {
		t.Errorf("%s logged no warning about the FORWARD chain:\n%s", networkUnit, log)
	}
	url := fmt.Sprintf("http://%s:9000/", outsideAddr)
	if r := inside(t, coveBin, "exec", "fwd", "--", "timeout", "3", "wget", "-O", "-", url); r.Code == 0 {
		t.Errorf("fwd reached %s through a FORWARD chain that drops: %s", url, r.Stdout)
	}
	must(t, "nft", "insert rule ip filter FORWARD iifname cove0 accept; insert rule ip filter FORWARD oifname cove0 ct state established,related accept")
	if got := fetch(t, "fwd", url); got != uplinkAddr {
		t.Errorf("fwd fetching %s once the chain accepts cove0: got %q, want the sandbox's uplink address %s", url, got, uplinkAddr)
	}
	if out := must(t, "nft", "list", "chain", "ip", "filter", "FORWARD"); strings.Count(out, "accept") != 2 || !strings.Contains(out, "policy drop") {
		t.Errorf("the admin's chain changed:\n%s", out)
	}
}
