package network

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cove-project/cove/internal/network/plan"
)

// ports parses ports as ParsePort does, failing the test on an error.
func ports(t *testing.T, specs ...string) []plan.Port {
	t.Helper()
	var ps []plan.Port
	for _, s := range specs {
		p, err := plan.ParsePort(s)
		must(t, err)
		ps = append(ps, p)
	}
	return ps
}

func TestPortClaims(t *testing.T) {
	c := PortClaims{Root: t.TempDir()}
	for range 2 { // idempotent
		must(t, c.Claim("web", ports(t, "8080:80", "127.0.0.1:5353:53/udp", "[2001:db8::10]:8443:443")))
	}
	refused := func(workload string, specs ...string) {
		t.Helper()
		err := c.Claim(workload, ports(t, specs...))
		if !errors.Is(err, ErrPortClaimed) || !strings.Contains(err.Error(), "web") || !strings.Contains(err.Error(), specs[len(specs)-1]) {
			t.Errorf("claiming %v for %s: %v, want ErrPortClaimed naming the port and web", specs, workload, err)
		}
	}
	refused("db", "127.0.0.1:8080:80")       // web has 8080 on every address
	refused("db", "9090:90", "8080:80")      // all or none: 9090 is not claimed
	refused("db", "5353:53/udp")             // every address includes web's 127.0.0.1
	refused("db", "[2001:db8::10]:8443:443") // same address
	must(t, c.Claim("db", ports(t, "8080:80/udp", "127.0.0.2:5353:53/udp", "[::2]:8443:443", "9091:91")))
	if err := c.Claim("db", ports(t, "9092:80", "127.0.0.1:9092:81")); !errors.Is(err, ErrPortClaimed) {
		t.Errorf("two ports of one list on the same host port: %v, want ErrPortClaimed", err)
	}
	want := map[plan.Port]string{
		{HostPort: 8080, Proto: plan.TCP}:                                                "web",
		{HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, Proto: plan.UDP}:    "web",
		{HostAddr: netip.MustParseAddr("2001:db8::10"), HostPort: 8443, Proto: plan.TCP}: "web",
		{HostPort: 8080, Proto: plan.UDP}:                                                "db",
		{HostAddr: netip.MustParseAddr("127.0.0.2"), HostPort: 5353, Proto: plan.UDP}:    "db",
		{HostAddr: netip.MustParseAddr("::2"), HostPort: 8443, Proto: plan.TCP}:          "db",
		{HostPort: 9091, Proto: plan.TCP}:                                                "db",
	}
	if got, err := c.List(); err != nil || !maps.Equal(got, want) {
		t.Errorf("List = %v, %v; want %v", got, err, want)
	}
	for range 2 { // idempotent
		must(t, c.Release("web"))
	}
	must(t, c.Claim("db", ports(t, "127.0.0.1:8080:80")))
	if got, _ := c.List(); len(got) != 5 || slices.Contains(slices.Collect(maps.Values(got)), "web") {
		t.Errorf("after web's release: %v", got)
	}
	if names := dirNames(t, c.Root); !slices.Contains(names, "tcp-127.0.0.1-8080") || !slices.Contains(names, "tcp-any-9091") {
		t.Errorf("claim files %v", names)
	}
	for _, bad := range []string{"", "../x", "a/b"} {
		if err := c.Claim(bad, ports(t, "1:1")); err == nil {
			t.Errorf("workload %q was accepted", bad)
		}
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestPortClaimsConcurrent: of many workloads claiming one port at once,
// exactly one gets it, and claims of different ports all succeed, in
// each of several rounds (a race shows in some rounds only).
func TestPortClaimsConcurrent(t *testing.T) {
	dir := t.TempDir()
	for round := range 20 {
		claimRace(t, PortClaims{Root: filepath.Join(dir, fmt.Sprint(round))})
	}
}

// claimRace is one round of TestPortClaimsConcurrent.
func claimRace(t *testing.T, c PortClaims) {
	t.Helper()
	const count = 16
	var wg sync.WaitGroup
	start := make(chan struct{}) // all at once
	errs := make(chan error, 2*count)
	same := ports(t, "8080:80")
	for i := range count {
		own := ports(t, fmt.Sprintf("%d:80", 9000+i))
		wg.Go(func() { <-start; errs <- c.Claim(fmt.Sprintf("same-%d", i), same) })
		wg.Go(func() { <-start; errs <- c.Claim(fmt.Sprintf("own-%d", i), own) })
	}
	close(start)
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrPortClaimed):
			t.Error(err)
		}
	}
	held, err := c.List()
	must(t, err)
	if won != count+1 || len(held) != count+1 {
		t.Errorf("%d claims succeeded, %d held; want %d (one of the same port, all of the others)", won, len(held), count+1)
	}
}

// TestPortClaimsPorts: a claim keeps the whole port, container port
// included, for Restore.
func TestPortClaimsPorts(t *testing.T) {
	c := PortClaims{Root: t.TempDir()}
	must(t, c.Claim("web", ports(t, "8080:80", "127.0.0.1:5353:53/udp")))
	must(t, c.Claim("db", ports(t, "5432:5432")))
	got, err := c.Ports("web")
	want := ports(t, "127.0.0.1:5353:53/udp", "8080:80")
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Ports(web) = %v, %v; want %v", got, err, want)
	}
}

// TestFreePort: a port something listens on is not bindable, one nobody
// holds is, an address the host does not have is an error; of a range,
// the one port neither in use, claimed nor avoided is the one given, and
// none when all are; FreePort gives a port of the kernel's local range
// that is free on 127.0.0.1.
func TestFreePort(t *testing.T) {
	local := plan.Port{HostAddr: netip.MustParseAddr("127.0.0.1"), Proto: plan.TCP}
	lo := freeRun(t, local, 4)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lo))
	must(t, err)
	defer l.Close()
	busy := local
	busy.HostPort = uint16(lo)
	if ok, err := bindable(busy); ok || err != nil {
		t.Errorf("%v while a listener holds it: bindable %v, %v; want false", busy, ok, err)
	}
	if _, err := bindable(plan.Port{HostAddr: netip.MustParseAddr("192.0.2.1"), HostPort: 80, Proto: plan.TCP}); !errors.Is(err, ErrNotLocal) {
		t.Errorf("192.0.2.1 (TEST-NET-1): %v, want ErrNotLocal", err)
	}
	c := PortClaims{Root: t.TempDir()}
	must(t, c.Claim("other", ports(t, fmt.Sprintf("127.0.0.1:%d:80", lo+1))))
	held, err := c.List()
	must(t, err)
	avoid := ports(t, fmt.Sprintf("%d:81", lo+2))
	free := func(p plan.Port) (bool, error) {
		if _, _, taken := conflict("", p, held); taken || slices.ContainsFunc(avoid, p.Conflicts) {
			return false, nil
		}
		return bindable(p)
	}
	for range 10 {
		if n, err := freeIn(local, lo, lo+3, free); err != nil || int(n) != lo+3 {
			t.Fatalf("of %d (in use), %d (claimed), %d (avoided) and %d: %d, %v; want %d", lo, lo+1, lo+2, lo+3, n, err, lo+3)
		}
	}
	if n, err := freeIn(local, lo, lo+2, free); err == nil {
		t.Errorf("of three taken ports freeIn gave %d", n)
	}
	n, err := c.FreePort(local, nil)
	must(t, err)
	if rlo, rhi := localPortRange(); int(n) < rlo || int(n) > rhi {
		t.Errorf("FreePort gave %d, want a port from %d to %d", n, rlo, rhi)
	}
}

// freeRun is the first of n consecutive ports, below the kernel's local
// range, that p's host side can bind now.
func freeRun(t *testing.T, p plan.Port, n int) int {
	t.Helper()
	for base := 20000; base < 30000; base += n {
		all := true
		for i := range n {
			p.HostPort = uint16(base + i)
			if ok, err := bindable(p); !ok || err != nil {
				all = false
				break
			}
		}
		if all {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports from 20000 to 30000", n)
	return 0
}

// TestFreePortSkipsReserved: in a network namespace of its own whose
// local port range is 40000-40003 and whose reserved ports
// (ip_local_reserved_ports) are 40000 and 40002-40003, FreePort gives
// 40001 every time, and says so when that one is taken too; FreePortIn
// (a range the user gave) may give a reserved one.
func TestFreePortSkipsReserved(t *testing.T) {
	sandbox(t)
	for file, v := range map[string]string{localPortRangeFile: "40000 40003", localReservedPortsFile: "40000,40002-40003"} {
		if err := os.WriteFile(file, []byte(v), 0o644); err != nil {
			t.Fatalf("set %s in the test's network namespace: %v", file, err)
		}
	}
	c := PortClaims{Root: t.TempDir()}
	any := plan.Port{Proto: plan.TCP}
	for range 10 {
		if n, err := c.FreePort(any, nil); err != nil || n != 40001 {
			t.Fatalf("FreePort: %d, %v; want 40001, the one port of the range not reserved", n, err)
		}
	}
	if n, err := c.FreePort(any, ports(t, "40001:80")); !errors.Is(err, ErrNoFreePort) {
		t.Errorf("FreePort with 40001 avoided: %d, %v; want ErrNoFreePort", n, err)
	}
	if n, err := c.FreePortIn(any, 40002, 40002, nil); err != nil || n != 40002 {
		t.Errorf("FreePortIn 40002-40002: %d, %v; want 40002", n, err)
	}
}

// TestParsePortRanges reads ip_local_reserved_ports' format.
func TestParsePortRanges(t *testing.T) {
	rs, err := parsePortRanges("8080,9000-9010,1")
	if err != nil || !slices.Equal(rs, portRanges{{8080, 8080}, {9000, 9010}, {1, 1}}) {
		t.Errorf("8080,9000-9010,1: %v, %v", rs, err)
	}
	if !rs.contains(9005) || rs.contains(9011) || rs.contains(2) {
		t.Errorf("%v contains 9005, not 9011 nor 2", rs)
	}
	if rs, err := parsePortRanges(""); err != nil || rs != nil {
		t.Errorf("empty: %v, %v; want none", rs, err)
	}
	for _, bad := range []string{"x", "9-5", "1-70000", "-3"} {
		if _, err := parsePortRanges(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
