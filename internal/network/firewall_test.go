package network

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/cove-project/cove/internal/network/plan"
)

// threeNetworks are the default network, another one and an internal one.
func threeNetworks(t *testing.T) (a, b, in plan.Network) {
	t.Helper()
	a = plan.Default()
	b = plan.Complete(plan.Network{Name: "other", Subnet4: netip.MustParsePrefix("10.78.0.0/24")})
	in = plan.Complete(plan.Network{Name: "secret", Subnet4: netip.MustParsePrefix("10.79.0.0/24"), Internal: true})
	must(t, plan.ValidateAll([]plan.Network{a, b, in}))
	return a, b, in
}

// reach says whether a TCP connection from ns to dst:80 is answered
// within a second.
func reach(ns netns.NsHandle, dst netip.Addr) bool {
	_, err := dial(ns, dst, 80, time.Second)
	return err == nil
}

// reachSoon is reach retried for up to 5 s: for paths that must work,
// so that a loaded machine (a first ARP exchange, a slow accept) does not
// fail the test.
func reachSoon(ns netns.NsHandle, dst netip.Addr) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if reach(ns, dst) {
			return true
		}
	}
	return false
}

// TestIsolationAndEgress: with routing alone (no firewall yet) networks
// reach each other and nothing reaches the outside (no NAT, the outside
// has no route back); with cove's tables, a non-internal network reaches
// the outside masqueraded to the sandbox's address, networks cannot reach
// each other either way, and the internal network reaches nothing.
func TestIsolationAndEgress(t *testing.T) {
	sandbox(t)
	outside(t, 80)
	a, b, in := threeNetworks(t)
	l := Leases{Root: t.TempDir()}
	for _, n := range []plan.Network{a, b, in} {
		must(t, EnsureBridge(n))
	}
	nsA, atA := container(t, l, a, "web")
	nsB, atB := container(t, l, b, "other-web")
	nsI, atI := container(t, l, in, "vault")
	for _, at := range []struct {
		ns netns.NsHandle
		at Attachment
	}{{nsA, atA}, {nsB, atB}, {nsI, atI}} {
		serve(t, at.ns, at.at.Addr4, 80)
	}
	assertRoutes(t, "lo", "up0", "cove*", "cv*")
	world := outside4
	if !reachSoon(nsB, atA.Addr4) || !reachSoon(nsI, atA.Addr4) || reach(nsA, world) {
		t.Fatal("control without firewall: want other->web and vault->web routed, web->outside unanswered")
	}
	for _, n := range []plan.Network{a, b, in} {
		must(t, Setup(n))
	}
	seen, err := dial(nsA, world, 80, 2*time.Second)
	if err != nil || seen != uplink4.String() {
		t.Errorf("web -> outside: saw %q, %v; want the sandbox's address %v (masquerade)", seen, err, uplink4)
	}
	for _, c := range []struct {
		what string
		from netns.NsHandle
		to   netip.Addr
	}{
		{"other -> cove", nsB, atA.Addr4}, {"cove -> other", nsA, atB.Addr4},
		{"secret -> cove", nsI, atA.Addr4}, {"cove -> secret", nsA, atI.Addr4},
		{"secret -> outside", nsI, world},
	} {
		if reach(c.from, c.to) {
			t.Errorf("%s (%v) connected, want it blocked", c.what, c.to)
		}
	}
	if !reachSoon(nsB, world) {
		t.Error("other -> outside blocked, want it masqueraded")
	}
}

// adminTables plays the admin (and iptables-nft): tables cove must leave
// alone, one of them with a name that starts like cove's.
func adminTables(t *testing.T) {
	t.Helper()
	c, err := nftables.New()
	must(t, err)
	accept := nftables.ChainPolicyAccept
	for _, tb := range []*nftables.Table{
		{Name: "admin", Family: nftables.TableFamilyINet},
		{Name: "filter", Family: nftables.TableFamilyIPv4},
		{Name: "coven", Family: nftables.TableFamilyINet},
	} {
		c.AddTable(tb)
		ch := c.AddChain(&nftables.Chain{Name: "forward", Table: tb, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
		c.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, cmp(expr.CmpOpEq, ifname("adm0")),
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
	}
	must(t, c.Flush())
}

// ruleset dumps every table (cove's too with all=true): family, name,
// chains and their rules' expressions.
func ruleset(t *testing.T, all bool) string {
	t.Helper()
	c, err := nftables.New()
	must(t, err)
	chains, err := c.ListChains()
	must(t, err)
	var lines []string
	for _, ch := range chains {
		if !all && strings.HasPrefix(ch.Table.Name, plan.TablePrefix) {
			continue
		}
		rules, err := c.GetRules(ch.Table, ch)
		must(t, err)
		line := fmt.Sprintf("%d %s %s:", ch.Table.Family, ch.Table.Name, ch.Name)
		for _, r := range rules {
			for _, e := range r.Exprs {
				line += fmt.Sprintf(" %T%+v", e, e)
			}
			line += " ;"
		}
		lines = append(lines, line)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestSetupTeardown: Setup is idempotent and leaves the admin's tables
// exactly as they were, restores cove's table after a flush of the whole
// ruleset, and Teardown and RemoveBridge leave no cove table, no bridge
// and no veth behind.
func TestSetupTeardown(t *testing.T) {
	sandbox(t)
	a, b, _ := threeNetworks(t)
	adminTables(t)
	before := ruleset(t, false)
	for range 2 {
		for _, n := range []plan.Network{a, b} {
			must(t, EnsureBridge(n))
			must(t, Setup(n))
		}
	}
	hostEndGoesWithNamespace(t, a)
	if got, _ := Tables(); !slices.Equal(got, []string{"inet cove-net-cove", "inet cove-net-other"}) {
		t.Errorf("cove's tables %v", got)
	}
	if n, want := strings.Count(ruleset(t, true), ";"), ruleCount(plan.Firewall(a))+ruleCount(plan.Firewall(b))+3; n != want {
		t.Errorf("%d rules after setting up twice, want %d (two networks, three admin rules)", n, want)
	}
	if after := ruleset(t, false); after != before {
		t.Errorf("Setup changed other tables:\nbefore\n%s\nafter\n%s", before, after)
	}
	teardownAll(t, a, b)
	if after := ruleset(t, false); after != before {
		t.Errorf("Teardown changed other tables:\nbefore\n%s\nafter\n%s", before, after)
	}
	c, err := nftables.New()
	must(t, err)
	c.FlushRuleset() // the admin's "nft flush ruleset"
	must(t, c.Flush())
	must(t, Setup(a))
	if got, _ := Tables(); !slices.Equal(got, []string{"inet cove-net-cove"}) {
		t.Errorf("after a flush of the ruleset, Setup restored %v", got)
	}
	must(t, Teardown(a))
}

// ruleCount is the number of rules of a table.
func ruleCount(t plan.Table) int {
	n := 0
	for _, c := range t.Chains {
		n += len(c.Rules)
	}
	return n
}

// teardownAll removes the networks' tables and bridges (twice: it must be
// idempotent) and checks that nothing of cove's is left.
func teardownAll(t *testing.T, nets ...plan.Network) {
	t.Helper()
	for range 2 {
		for _, n := range nets {
			must(t, Teardown(n))
			must(t, RemoveBridge(n))
		}
	}
	if got, err := Tables(); len(got) != 0 || err != nil {
		t.Errorf("tables left: %v, %v", got, err)
	}
	links, err := netlink.LinkList()
	must(t, err)
	if names := linkNames(links); !slices.Equal(names, []string{"lo"}) {
		t.Errorf("links left: %v", names)
	}
}

// hostEndGoesWithNamespace attaches a container and closes its namespace:
// the host end of its veth must disappear (the kernel destroys a
// namespace asynchronously, so this polls for up to five seconds).
func hostEndGoesWithNamespace(t *testing.T, n plan.Network) {
	t.Helper()
	ns := rawNS(t)
	at, err := AttachContainer(n, "web", ns, netip.MustParseAddr("10.77.0.2"), plan.WorkloadMAC(n.Name, "web"), 0)
	ns.Close()
	must(t, err)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := netlink.LinkByName(at.HostIf); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth %s outlived its container's namespace by 5s", at.HostIf)
		}
	}
}

// TestFirewallAsNftSeesIt: the kernel's view of a network's table and of
// a workload's two tables, as the nft binary lists them, has every rule
// plan.Firewall and plan.WorkloadFirewall describe (the compiler from
// plan rules to nftables expressions means what the plan says). The
// child process inherits the locked thread's namespace; that is checked
// first.
func TestFirewallAsNftSeesIt(t *testing.T) {
	sandbox(t)
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("no nft binary to list the ruleset with")
	}
	ours, _ := os.Readlink("/proc/thread-self/ns/net")
	child, err := exec.Command("readlink", "/proc/self/ns/net").Output()
	if err != nil || strings.TrimSpace(string(child)) != ours {
		t.Fatalf("a child process is in %q, the test thread in %s (%v): not running nft", child, ours, err)
	}
	n := plan.Default()
	n.AllowHost = []plan.HostService{{Port: 8443, Proto: plan.TCP}, {Port: 123, Proto: plan.UDP}}
	must(t, EnsureBridge(n))
	must(t, Setup(n))
	defer teardownAll(t, n)
	_, at := container(t, Leases{Root: t.TempDir()}, n, "web")
	// The second endpoint, without IPv6, exists only in the rules.
	eps := []plan.Endpoint{at.Endpoint(n), {Network: n, HostIf: "cvnosix", Addr4: netip.MustParseAddr("10.77.0.3"), MAC: plan.MAC{2, 0, 0, 0, 0, 3}}}
	must(t, SetupWorkload("web", eps, published))
	defer func() { must(t, TeardownWorkload("web")); must(t, Detach(n, "web")) }()
	for _, tb := range append([]plan.Table{plan.Firewall(n)}, plan.WorkloadFirewall("web", eps, published)...) {
		out, err := exec.Command(nft, "list", "table", tb.Family, tb.Name).CombinedOutput()
		if err != nil {
			t.Fatalf("nft list: %v\n%s", err, out)
		}
		listed := regexp.MustCompile(`counter packets \d+ bytes \d+ `).ReplaceAllString(string(out), "")
		listed = strings.Join(strings.Fields(listed), " ")
		for _, ch := range tb.Chains {
			for _, r := range ch.Rules {
				if want := r.String(); !strings.Contains(listed, want) {
					t.Errorf("nft lists no rule %q in:\n%s", want, out)
				}
			}
		}
	}
}

// TestHostAccess: a container reaches the host's services only where the
// network's input chain allows it: DNS (TCP and UDP 53) and the
// AllowHost services on the gateway's addresses, nothing else on them
// and nothing at all on the host's other addresses; without DNS (NoDNS)
// port 53 is closed too. Without the firewall (the control, first)
// every one of these services answers.
func TestHostAccess(t *testing.T) {
	sandbox(t)
	host := thisNS(t)
	outside(t, 9)
	n := plan.Default()
	n.AllowHost = []plan.HostService{{Port: 8443, Proto: plan.TCP}, {Port: 123, Proto: plan.UDP}}
	must(t, EnsureBridge(n))
	ns, _ := container(t, Leases{Root: t.TempDir()}, n, "web")
	for _, a := range []netip.Addr{n.Gateway4, n.Gateway6, uplink4} {
		for _, port := range []uint16{22, 53, 8443} {
			serve(t, host, a, port)
		}
		for _, port := range []uint16{53, 123} {
			serveUDP(t, host, a, port)
		}
	}
	var dns, allowed, denied []probe
	for _, gw := range []netip.Addr{n.Gateway4, n.Gateway6} {
		dns = append(dns, probe{what: "dns tcp", from: ns, to: gw, port: 53}, probe{what: "dns udp", from: ns, to: gw, port: 53, proto: plan.UDP})
		allowed = append(allowed, probe{what: "allowed tcp", from: ns, to: gw, port: 8443}, probe{what: "allowed udp", from: ns, to: gw, port: 123, proto: plan.UDP})
		denied = append(denied, probe{what: "not allowed", from: ns, to: gw, port: 22})
	}
	for _, p := range []probe{{port: 22}, {port: 53}, {port: 8443}, {port: 53, proto: plan.UDP}, {port: 123, proto: plan.UDP}} {
		p.what, p.from, p.to = "another host address", ns, uplink4
		denied = append(denied, p)
	}
	expectReach(t, slices.Concat(dns, allowed, denied)...)
	must(t, Setup(n))
	expectReach(t, append(dns, allowed...)...)
	expectBlocked(t, denied...)
	n.NoDNS = true
	must(t, Setup(n))
	expectReach(t, allowed...)
	expectBlocked(t, dns...)
	must(t, Teardown(n))
}
