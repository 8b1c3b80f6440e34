package dns

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
)

// TestLocalNames asks a responder with a fake zone for its names in
// every spelling, over UDP and TCP: A and AAAA records with the TTL,
// NOERROR and no records for a type the name has none of or for the
// bare domain, NXDOMAIN for a name of the domain that does not exist,
// all authoritative.
func TestLocalNames(t *testing.T) {
	r := startResponder(t, Config{Zone: testZone()})
	cases := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{"web.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.77.0.2"}},
		{"WEB.Test.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.77.0.2"}},
		{"web.test.", mdns.TypeAAAA, mdns.RcodeSuccess, []string{"fd00::2"}},
		{"web.test.", mdns.TypeANY, mdns.RcodeSuccess, []string{"10.77.0.2", "fd00::2"}},
		{"v4only.test.", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"web.test.", mdns.TypeMX, mdns.RcodeSuccess, nil},
		{"test.", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"Test.", mdns.TypeSOA, mdns.RcodeSuccess, nil},
		{"nope.test.", mdns.TypeA, mdns.RcodeNameError, nil},
	}
	for _, proto := range []string{"udp", "tcp"} {
		for _, c := range cases {
			m := query(t, proto, r.addr, c.name, c.qtype)
			if m.Rcode != c.rcode || !m.Authoritative || !slices.Equal(addrs(m), c.want) {
				t.Errorf("%s %s over %s: %s aa=%v %v, want %s aa=true %v", c.name, mdns.TypeToString[c.qtype], proto,
					mdns.RcodeToString[m.Rcode], m.Authoritative, addrs(m), mdns.RcodeToString[c.rcode], c.want)
			}
			for _, rr := range m.Answer {
				if rr.Header().Ttl != TTL || rr.Header().Name != c.name {
					t.Errorf("%s: record %v, want owner %s and TTL %d", c.name, rr, c.name, TTL)
				}
			}
		}
	}
}

// TestZoneError checks that a zone that cannot be read gets SERVFAIL for
// its own names, not an answer that a name does not exist, and that
// other names are still forwarded.
func TestZoneError(t *testing.T) {
	z := testZone()
	z.err = errZone
	up := startUpstream(t, answerA(1))
	var logged atomic.Int32
	r := startResponder(t, Config{Zone: z, Upstreams: []netip.AddrPort{up.addr}, Logf: func(string, ...any) { logged.Add(1) }})
	if m := query(t, "udp", r.addr, "web.test.", mdns.TypeA); m.Rcode != mdns.RcodeServerFailure {
		t.Errorf("web.test: %s, want SERVFAIL", mdns.RcodeToString[m.Rcode])
	}
	if m := query(t, "udp", r.addr, "example.org.", mdns.TypeA); m.Rcode != mdns.RcodeSuccess || len(m.Answer) != 1 {
		t.Errorf("example.org: %s %v, want it forwarded", mdns.RcodeToString[m.Rcode], addrs(m))
	}
	if n := logged.Load(); n != 2 {
		t.Errorf("%d errors logged, want 2", n)
	}
}

// TestLeaseZone serves the default network's zone from lease files in a
// temporary directory: a workload is found by its name as soon as its
// lease file exists, by address (PTR, IPv4 and IPv6) too, and is gone as
// soon as the lease is released.
func TestLeaseZone(t *testing.T) {
	n := plan.Default()
	leases := network.Leases{Root: t.TempDir()}
	r := startResponder(t, Config{Zone: LeaseZone{Network: n, Leases: leases}})
	if m := query(t, "udp", r.addr, "web.cove.", mdns.TypeA); m.Rcode != mdns.RcodeNameError {
		t.Fatalf("before any lease: %s, want NXDOMAIN", mdns.RcodeToString[m.Rcode])
	}
	a4, err := leases.Allocate(n, "web", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	a6 := plan.Addr6For(n, a4)
	start := time.Now()
	for _, c := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"web.cove.", mdns.TypeA, a4.String()},
		{"Web.", mdns.TypeAAAA, a6.String()},
		{reverse(a4), mdns.TypePTR, "web.cove."},
		{reverse(a6), mdns.TypePTR, "web.cove."},
	} {
		m := query(t, "udp", r.addr, c.name, c.qtype)
		if got := addrs(m); m.Rcode != mdns.RcodeSuccess || !slices.Equal(got, []string{c.want}) {
			t.Errorf("%s %s: %s %v, want %s", c.name, mdns.TypeToString[c.qtype], mdns.RcodeToString[m.Rcode], got, c.want)
		}
	}
	if m := query(t, "udp", r.addr, "cove.", mdns.TypeA); m.Rcode != mdns.RcodeSuccess || len(m.Answer) != 0 {
		t.Errorf("the bare domain: %s %v, want NOERROR and no records", mdns.RcodeToString[m.Rcode], addrs(m))
	}
	free := n.Gateway4.Next().Next().Next()
	if m := query(t, "udp", r.addr, reverse(free), mdns.TypePTR); m.Rcode != mdns.RcodeNameError {
		t.Errorf("PTR of the unleased %v: %s, want NXDOMAIN", free, mdns.RcodeToString[m.Rcode])
	}
	if err := leases.Release(n.Name, "web"); err != nil {
		t.Fatal(err)
	}
	if m := query(t, "udp", r.addr, "web.cove.", mdns.TypeA); m.Rcode != mdns.RcodeNameError {
		t.Errorf("after release: %s %v, want NXDOMAIN", mdns.RcodeToString[m.Rcode], addrs(m))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the lookups took %v; each reads the leases anew and must be quick", d)
	}
}

// TestLeaseZoneInstances: a replicated workload's name answers every
// instance's address (leases held by NAME@I), each address's PTR names
// the workload, and an instance's own name is not a DNS name.
func TestLeaseZoneInstances(t *testing.T) {
	n := plan.Default()
	leases := network.Leases{Root: t.TempDir()}
	r := startResponder(t, Config{Zone: LeaseZone{Network: n, Leases: leases}})
	var want []string
	for _, inst := range []string{"web@1", "web@2", "web@3"} {
		a, err := leases.Allocate(n, inst, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, a.String())
		if m := query(t, "udp", r.addr, reverse(a), mdns.TypePTR); !slices.Equal(addrs(m), []string{"web.cove."}) {
			t.Errorf("PTR of %s's %v: %v, want web.cove.", inst, a, addrs(m))
		}
	}
	if _, err := leases.Allocate(n, "webapp", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	m := query(t, "udp", r.addr, "web.cove.", mdns.TypeA)
	if got := addrs(m); m.Rcode != mdns.RcodeSuccess || !slices.Equal(got, want) {
		t.Errorf("web.cove. A: %s %v, want %v", mdns.RcodeToString[m.Rcode], got, want)
	}
}

// TestLeaseZoneUnreadable checks that leases that cannot be listed give
// SERVFAIL (the lease directory is a file here).
func TestLeaseZoneUnreadable(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "cove"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "cove", "leases"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	z := LeaseZone{Network: plan.Default(), Leases: network.Leases{Root: root}}
	r := startResponder(t, Config{Zone: z})
	for _, name := range []string{"web.cove.", reverse(netip.MustParseAddr("10.77.0.2"))} {
		qtype := mdns.TypeA
		if name != "web.cove." {
			qtype = mdns.TypePTR
		}
		if m := query(t, "udp", r.addr, name, qtype); m.Rcode != mdns.RcodeServerFailure {
			t.Errorf("%s: %s, want SERVFAIL", name, mdns.RcodeToString[m.Rcode])
		}
	}
}

// reverse is the PTR name of a.
func reverse(a netip.Addr) string {
	name, err := mdns.ReverseAddr(a.String())
	if err != nil {
		panic(err)
	}
	return name
}

// TestPTRAddr checks the parsing of reverse names against mdns's
// ReverseAddr, and refuses what is not a full address.
func TestPTRAddr(t *testing.T) {
	for _, s := range []string{"10.77.0.2", "255.0.1.9", "fd00::2", "fd5d:137d:9e33:8f87::1", "::"} {
		a := netip.MustParseAddr(s)
		name := reverse(a)
		got, ok := ptrAddr(name[:len(name)-1])
		if !ok || got != a {
			t.Errorf("ptrAddr(%s) = %v %v, want %v", name, got, ok, a)
		}
	}
	for _, name := range []string{
		"77.10.in-addr.arpa", "1.2.0.77.10.in-addr.arpa", "256.0.77.10.in-addr.arpa", "x.0.77.10.in-addr.arpa",
		".0.77.10.in-addr.arpa", "in-addr.arpa", "2.0.0.0.ip6.arpa", "web.cove", "-1.0.77.10.in-addr.arpa",
		"20.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
		"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
	} {
		if a, ok := ptrAddr(name); ok {
			t.Errorf("ptrAddr(%s) = %v, want none", name, a)
		}
	}
}

// TestLeaseZoneAliases: a lease's aliases answer with its address, in any
// case and below the network's name, on a network without IPv6 with no
// AAAA; the workload's own name still answers; PTR names the workload.
func TestLeaseZoneAliases(t *testing.T) {
	leases := network.Leases{Root: t.TempDir()}
	n := plan.Complete(plan.Network{Name: "shop", Subnet4: netip.MustParsePrefix("10.79.0.0/24"), NoIPv6: true})
	a, err := leases.Allocate(n, "shop_db_1", netip.Addr{}, "db", "Primary")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Allocate(n, "shop_web_1", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	z := LeaseZone{Network: n, Leases: leases}
	for _, name := range []string{"db", "db.shop", "primary", "shop_db_1"} {
		v4, v6, ok, err := z.Lookup(name)
		if !ok || err != nil || len(v4) != 1 || v4[0] != a || len(v6) != 0 {
			t.Errorf("Lookup(%s) = %v %v %v %v, want %v only", name, v4, v6, ok, err, a)
		}
	}
	if v4, _, ok, _ := z.Lookup("web"); ok || len(v4) > 0 {
		t.Errorf("Lookup(web) = %v %v: web is no alias", v4, ok)
	}
	if names, owned, err := z.LookupAddr(a); !owned || err != nil || len(names) != 1 || names[0] != "shop_db_1.shop" {
		t.Errorf("LookupAddr(%v) = %v %v %v", a, names, owned, err)
	}
	if got, err := leases.AliasesOf("shop", "shop_db_1"); err != nil || len(got) != 2 || got[0] != "db" {
		t.Errorf("AliasesOf = %v %v", got, err)
	}
	if held, err := leases.List("shop"); err != nil || held[a] != "shop_db_1" {
		t.Errorf("List = %v %v: the holder is the first line only", held, err)
	}
}
