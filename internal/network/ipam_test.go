package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/network/plan"
)

// smallNet is a /29: hosts .1 (gateway) to .6, so five leases.
func smallNet() plan.Network {
	return plan.Complete(plan.Network{Name: "small", Subnet4: netip.MustParsePrefix("10.77.9.0/29")})
}

func TestLeasesAllocate(t *testing.T) {
	l, n := Leases{Root: t.TempDir()}, smallNet()
	a, err := l.Allocate(n, "web", netip.Addr{})
	if err != nil || a != netip.MustParseAddr("10.77.9.2") {
		t.Fatalf("first lease = %v, %v; want 10.77.9.2 (.1 is the gateway)", a, err)
	}
	if again, err := l.Allocate(n, "web", netip.Addr{}); again != a || err != nil {
		t.Errorf("second Allocate for the same workload = %v, %v; want %v again", again, err, a)
	}
	pin := netip.MustParseAddr("10.77.9.5")
	if got, err := l.Allocate(n, "db", pin); got != pin || err != nil {
		t.Errorf("pinned = %v, %v", got, err)
	}
	if _, err := l.Allocate(n, "other", pin); !errors.Is(err, ErrTaken) {
		t.Errorf("pinning a leased address: %v, want ErrTaken", err)
	}
	for _, bad := range []string{"10.77.9.1", "10.77.9.0", "10.77.9.7", "10.1.2.3"} {
		if _, err := l.Allocate(n, "x", netip.MustParseAddr(bad)); err == nil {
			t.Errorf("pinning %s succeeded", bad)
		}
	}
	if _, err := l.Allocate(n, "../escape", netip.Addr{}); err == nil {
		t.Error("a workload name with a slash was accepted")
	}
	for _, w := range []string{"c", "d", "e"} { // .3 .4 .6
		if _, err := l.Allocate(n, w, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Allocate(n, "f", netip.Addr{}); !errors.Is(err, ErrExhausted) {
		t.Errorf("sixth lease of a /29: %v, want ErrExhausted", err)
	}
	for range 2 { // idempotent
		if err := l.Release(n.Name, "db"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := l.Allocate(n, "f", netip.Addr{}); got != pin || err != nil {
		t.Errorf("after release: %v, %v; want the released %v", got, err, pin)
	}
	held, _ := l.List(n.Name)
	if len(held) != 5 || held[a] != "web" {
		t.Errorf("leases %v", held)
	}
}

// allocateMany allocates PREFIX-0 … PREFIX-(count-1) concurrently.
func allocateMany(l Leases, n plan.Network, prefix string, count int) error {
	var wg sync.WaitGroup
	errs := make(chan error, count)
	for i := range count {
		wg.Go(func() {
			if _, err := l.Allocate(n, fmt.Sprintf("%s-%d", prefix, i), netip.Addr{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// checkDistinct fails unless the leases are exactly the workloads named,
// one address each.
func checkDistinct(t *testing.T, l Leases, network string, want int) {
	t.Helper()
	held, err := l.List(network)
	if err != nil {
		t.Fatal(err)
	}
	holders := map[string]bool{}
	for _, w := range held {
		if holders[w] {
			t.Errorf("%s holds two addresses", w)
		}
		holders[w] = true
	}
	if len(held) != want {
		t.Errorf("%d leases, want %d", len(held), want)
	}
}

func TestLeasesConcurrent(t *testing.T) {
	l := Leases{Root: t.TempDir()}
	n := plan.Complete(plan.Network{Name: "conc", Subnet4: netip.MustParsePrefix("10.77.8.0/24")})
	if err := allocateMany(l, n, "w", 100); err != nil {
		t.Fatal(err)
	}
	checkDistinct(t, l, n.Name, 100) // a map of addresses: distinct by construction
}

// leaseChild is the other process of TestLeasesTwoProcesses.
func leaseChild(dir, prefix string) int {
	n := plan.Complete(plan.Network{Name: "conc", Subnet4: netip.MustParsePrefix("10.77.8.0/24")})
	if err := allocateMany(Leases{Root: dir}, n, prefix, 60); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestLeasesTwoProcesses(t *testing.T) {
	dir := t.TempDir()
	var cmds []*exec.Cmd
	for _, p := range []string{"a", "b"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "COVE_LEASE_CHILD="+dir, "COVE_LEASE_PREFIX="+p)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	checkDistinct(t, Leases{Root: dir}, "conc", 120)
}

// TestLeasesReclaim: a lease whose holder Stale says is gone is reused
// for a pinned address and when the network is full, but only once it is
// older than StaleAfter; a live holder's lease never is.
func TestLeasesReclaim(t *testing.T) {
	gone := map[string]bool{"ghost": true, "ghost2": true}
	var asked []string
	l, n := Leases{Root: t.TempDir(), Stale: func(_, w string) bool { asked = append(asked, w); return gone[w] }}, smallNet()
	pin := netip.MustParseAddr("10.77.9.2")
	for _, w := range []string{"ghost", "b", "c", "d", "ghost2"} { // .2 to .6
		if _, err := l.Allocate(n, w, netip.Addr{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Allocate(n, "new", pin); !errors.Is(err, ErrTaken) {
		t.Errorf("pinning a fresh stale lease: %v, want ErrTaken (younger than StaleAfter)", err)
	}
	old := time.Now().Add(-2 * StaleAfter)
	for _, a := range []string{"10.77.9.2", "10.77.9.3", "10.77.9.6"} {
		if err := os.Chtimes(filepath.Join(l.dir(n.Name), a), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := l.Allocate(n, "new", pin); got != pin || err != nil {
		t.Errorf("pinning ghost's old lease: %v, %v; want %v", got, err, pin)
	}
	if got, err := l.Allocate(n, "newer", netip.Addr{}); got != netip.MustParseAddr("10.77.9.6") || err != nil {
		t.Errorf("a full network with ghost2's old lease: %v, %v; want 10.77.9.6", got, err)
	}
	held, _ := l.List(n.Name)
	if held[netip.MustParseAddr("10.77.9.3")] != "b" || len(held) != 5 {
		t.Errorf("leases after reclaiming: %v; b's (live, old) lease must stay", held)
	}
	if len(asked) == 0 {
		t.Error("Stale was never asked")
	}
}
