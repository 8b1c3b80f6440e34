package nettest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// The outside world: a namespace made inside the sandbox, joined to the
// sandbox's by the veth up0 (sandbox, 198.18.0.2/15 and 2001:db8:ff::2/64)
// -- up1 (outside, 198.18.0.1/15 and 2001:db8:ff::1/64): RFC 2544's
// benchmarking range and RFC 3849's documentation prefix. The sandbox's
// default routes lead there, and nowhere else exists.
const (
	outsideNS    = "cove-outside"
	outsideAddr  = "198.18.0.1"
	uplinkAddr   = "198.18.0.2"
	outsideAddr6 = "2001:db8:ff::1"
	uplinkAddr6  = "2001:db8:ff::2"
)

// assertClosedWorld fails t unless the sandbox runs in a network
// namespace other than this process's, with no link but lo and those
// allowed (made by the test or by cove: a name or a prefix ending in "*"),
// and every route of every table leads through one of them.
func assertClosedWorld(t *testing.T, allowed ...string) {
	t.Helper()
	self, err1 := os.Readlink("/proc/self/ns/net")
	in, err2 := os.Readlink(sb.NetNS())
	if err1 != nil || err2 != nil || self == in {
		t.Fatalf("the sandbox's network namespace is %s (%v), this process's %s (%v): refusing to run network tests", in, err2, self, err1)
	}
	allowed = append(allowed, "lo")
	for _, l := range links(t) {
		if !matchAny(l, allowed) {
			t.Fatalf("the sandbox has link %s, not made by the test or cove (allowed: %v)", l, allowed)
		}
	}
	for _, family := range []string{"-4", "-6"} {
		var routes []struct{ Dst, Dev, Gateway string }
		out := must(t, "ip", "-j", family, "route", "show", "table", "all")
		if err := json.Unmarshal([]byte(out), &routes); err != nil {
			t.Fatalf("ip -j %s route: %v\n%s", family, err, out)
		}
		for _, r := range routes {
			if !matchAny(r.Dev, allowed) {
				t.Fatalf("route %+v leads through %s, not a link of the test (allowed: %v)", r, r.Dev, allowed)
			}
			if r.Dst == "default" && r.Dev != "up0" {
				t.Fatalf("default route %+v does not lead to the test's outside namespace", r)
			}
		}
	}
}

// links lists the names of the sandbox's links.
func links(t *testing.T) []string {
	t.Helper()
	var ls []struct{ Ifname string }
	out := must(t, "ip", "-j", "link", "show")
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		t.Fatalf("ip -j link: %v\n%s", err, out)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Ifname)
	}
	return names
}

// matchAny says whether name is one of patterns (a trailing "*" matches
// any rest).
func matchAny(name string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		return name == p || strings.HasSuffix(p, "*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*"))
	})
}

// makeOutside creates the outside namespace and its veth, and routes the
// sandbox's default route there; all of it goes when the test ends.
func makeOutside(t *testing.T) {
	t.Helper()
	script := fmt.Sprintf(`set -e
ip netns add %[1]s
ip link add up0 type veth peer name up1 netns %[1]s
ip addr add %[3]s/15 dev up0
ip link set up0 up
ip -n %[1]s link set lo up
ip -n %[1]s addr add %[2]s/15 dev up1
ip -n %[1]s link set up1 up
ip route add default via %[2]s dev up0
ip addr add %[5]s/64 dev up0 nodad
ip -n %[1]s addr add %[4]s/64 dev up1 nodad
ip -6 route add default via %[4]s dev up0
`, outsideNS, outsideAddr, uplinkAddr, outsideAddr6, uplinkAddr6)
	t.Cleanup(func() {
		// Deleting a veth end removes the pair at once; a namespace's links
		// go asynchronously after ip netns del, too late for the check that
		// nothing is left.
		inside(t, "ip", "link", "del", "up0")
		inside(t, "ip", "netns", "del", outsideNS)
	})
	must(t, "sh", "-c", script)
	assertClosedWorld(t, "up0", "cove0", "cv*")
}

// serveOutside serves HTTP on outsideAddr:port in the outside namespace,
// answering every request with the client's address as it arrives there.
// The listening socket is made by a thread that entered the namespace and
// is then discarded; binding outsideAddr fails anywhere else.
func serveOutside(t *testing.T, port int) {
	t.Helper()
	path := fmt.Sprintf("/proc/%d/root/run/netns/%s", sb.PID(), outsideNS)
	type res struct {
		l   net.Listener
		err error
	}
	ch := make(chan res, 2)
	go func() {
		runtime.LockOSThread() // never unlocked: the runtime discards the thread
		ns, err := netns.GetFromPath(path)
		if err == nil {
			err = netns.Set(ns)
			ns.Close()
		}
		if err != nil {
			ch <- res{nil, fmt.Errorf("enter %s: %w", path, err)}
			return
		}
		l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", outsideAddr, port))
		ch <- res{l, err}
		l6, err := net.Listen("tcp", fmt.Sprintf("[%s]:%d", outsideAddr6, port))
		ch <- res{l6, err}
	}()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		host, _, _ := net.SplitHostPort(req.RemoteAddr)
		fmt.Fprintln(w, host)
	})}
	t.Cleanup(func() { srv.Close() })
	for range 2 {
		r := <-ch
		if r.err != nil {
			t.Fatalf("listen in the outside namespace: %v", r.err)
		}
		go srv.Serve(r.l)
	}
}
