package network

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
)

// The tests follow /work/shared/docs/network-testing.md: every test that
// touches the network runs on an OS thread of its own inside a network
// namespace it creates (sandbox), "containers" and "outside" are further
// namespaces it creates, and only addresses inside them are used. Nothing
// runs in the namespace the process started in.

// initialNetns is the network namespace the test binary started in.
var initialNetns string

func TestMain(m *testing.M) {
	if dir := os.Getenv("COVE_LEASE_CHILD"); dir != "" {
		os.Exit(leaseChild(dir, os.Getenv("COVE_LEASE_PREFIX")))
	}
	initialNetns, _ = os.Readlink("/proc/self/ns/net")
	os.Exit(m.Run())
}

// requireRoot skips a test that needs root when not root, unless on CI
// (CI runs as root: there the skip would hide a failure).
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("network tests need root, and CI runs as root")
		}
		t.Skip("network tests need root (CAP_NET_ADMIN, CAP_SYS_ADMIN for setns)")
	}
}

// sandbox moves the test's goroutine, locked to its OS thread for good,
// into a new network namespace and asserts it is a closed world. The
// thread is never unlocked: when the test ends, the runtime discards it
// and the namespace goes with its last reference.
func sandbox(t *testing.T) {
	t.Helper()
	requireRoot(t)
	runtime.LockOSThread()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("unshare network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	assertClosedWorld(t)
}

// assertClosedWorld checks that the calling thread is in a namespace
// other than the initial one and pid 1's, with only lo and no route.
func assertClosedWorld(t *testing.T) {
	t.Helper()
	cur, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	pid1, _ := os.Readlink("/proc/1/ns/net")
	if cur == initialNetns || cur == pid1 || initialNetns == "" {
		t.Fatalf("test thread is in %s, the initial namespace is %s (pid 1: %s): refusing to touch it", cur, initialNetns, pid1)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Fatalf("new namespace has links %v, want only lo", linkNames(links))
	}
	lo, _ := netlink.LinkByName("lo")
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	assertRoutes(t, "lo")
}

// assertRoutes fails unless every route of the calling thread's namespace
// leads through one of the links named (all of them made by the test).
func assertRoutes(t *testing.T, allowed ...string) {
	t.Helper()
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		link, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			t.Fatalf("route %v: %v", r, err)
		}
		name := link.Attrs().Name
		ok := false
		for _, a := range allowed {
			ok = ok || name == a || strings.HasSuffix(a, "*") && strings.HasPrefix(name, strings.TrimSuffix(a, "*"))
		}
		if !ok {
			t.Fatalf("route %v leads through %s, not a link of the test (%v)", r, name, allowed)
		}
	}
}

// linkNames lists the names of links.
func linkNames(links []netlink.Link) []string {
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names
}

// newNS makes an empty network namespace (a "container" or "outside")
// that is closed when the test ends.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	ns := rawNS(t)
	t.Cleanup(func() { ns.Close() })
	return ns
}

// rawNS makes an empty network namespace on a throwaway thread, which
// the runtime discards; the caller closes it.
func rawNS(t *testing.T) netns.NsHandle {
	t.Helper()
	ch := make(chan netns.NsHandle, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded
		ns, err := netns.New()
		ch <- ns
		errc <- err
	}()
	ns, err := <-ch, <-errc
	if err != nil {
		t.Fatalf("unshare network namespace: %v", err)
	}
	return ns
}

// serve listens on addr:port inside ns and answers each connection with
// the remote address it sees, until the test ends.
func serve(t *testing.T, ns netns.NsHandle, addr netip.Addr, port uint16) {
	t.Helper()
	var ln net.Listener
	err := InNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, port).String())
		return err
	})
	if err != nil {
		t.Fatalf("listen on %v:%d: %v", addr, port, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap())
			c.Close()
		}
	}()
}

// dial connects from inside ns (bounded by timeout) and returns the
// source address the server saw.
func dial(ns netns.NsHandle, addr netip.Addr, port uint16, timeout time.Duration) (string, error) {
	return dialFrom(ns, netip.Addr{}, addr, port, timeout)
}

// dialFrom is dial from the local address src (zero: the kernel's
// choice).
func dialFrom(ns netns.NsHandle, src, addr netip.Addr, port uint16, timeout time.Duration) (string, error) {
	var seen string
	err := InNetns(ns, func() error {
		d := net.Dialer{Timeout: timeout}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: net.IP(src.AsSlice())}
		}
		c, err := d.Dial("tcp", netip.AddrPortFrom(addr, port).String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeout))
		seen, err = bufio.NewReader(c).ReadString('\n')
		seen = strings.TrimSpace(seen)
		return err
	})
	return seen, err
}

// container makes a namespace, leases it an address on n and attaches it.
func container(t *testing.T, l Leases, n plan.Network, name string) (netns.NsHandle, Attachment) {
	t.Helper()
	ns := newNS(t)
	a, err := l.Allocate(n, name, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	at, err := AttachContainer(n, name, ns, a, plan.WorkloadMAC(n.Name, name), 0)
	if err != nil {
		t.Fatal(err)
	}
	return ns, at
}

// The addresses of the link between the sandbox (the host, "uplink")
// and the outside: test ranges that exist only inside the namespaces.
var (
	uplink4  = netip.MustParseAddr("198.18.0.2")
	uplink6  = netip.MustParseAddr("fd18::2")
	outside4 = netip.MustParseAddr("198.18.0.1")
	outside6 = netip.MustParseAddr("fd18::1")
)

// outside makes the "internet": a namespace joined to the sandbox by the
// veth up0 (uplink4/15 and uplink6/64, sandbox) – up1 (outside4/15 and
// outside6/64, outside), with the sandbox's default route via up1 and a
// server on outside4:port. The outside has no route to any cove subnet.
func outside(t *testing.T, port uint16) netns.NsHandle {
	t.Helper()
	ns := newNS(t)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "up0"
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "up1", PeerNamespace: netlink.NsFd(int(ns))}); err != nil {
		t.Fatal(err)
	}
	up0, _ := netlink.LinkByName("up0")
	must(t, addAddrs(up0, uplink4, uplink6))
	must(t, netlink.LinkSetUp(up0))
	must(t, InNetns(ns, func() error {
		up1, err := netlink.LinkByName("up1")
		if err == nil {
			err = addAddrs(up1, outside4, outside6)
		}
		if err == nil {
			err = netlink.LinkSetUp(up1)
		}
		return err
	}))
	must(t, netlink.RouteAdd(&netlink.Route{LinkIndex: up0.Attrs().Index, Gw: net.IP(outside4.AsSlice())}))
	serve(t, ns, outside4, port)
	return ns
}

// addAddrs gives link a4/15 and a6/64 (without duplicate address
// detection, so a6 is usable at once).
func addAddrs(link netlink.Link, a4, a6 netip.Addr) error {
	err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(a4, 15)})
	if err == nil {
		err = netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(a6, 64), Flags: unix.IFA_F_NODAD})
	}
	return err
}

// thisNS is the network namespace of the test's thread (the sandbox, the
// "host"), closed when the test ends.
func thisNS(t *testing.T) netns.NsHandle {
	t.Helper()
	ns, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// must fails the test on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
