package network

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
)

// DefaultPortRoot is where port claims live: ROOT/PROTO-ADDR-PORT (ADDR
// "any" for a port on every address, e.g. "tcp-any-8080" or
// "udp-127.0.0.1-5353") holds the name of the workload that publishes
// the host port on its first line and the whole port (plan.Port.String,
// with the container port) on its second, and ROOT/lock is the lock
// every claim takes.
const DefaultPortRoot = "/run/cove/ports"

// ErrPortClaimed is wrapped by the error of a claim that another
// workload's claim conflicts with.
var ErrPortClaimed = errors.New("host port already published")

// PortClaims makes sure a host port is published by one workload only,
// across processes: claims are files, checked and written under an flock
// of ROOT/lock. A claim lives until Release (the workload's unit releases
// its ports when it stops); claims of holders that died without that are
// not reclaimed here. A claim says nothing about the host's own services:
// a published port shadows one listening on the same port.
type PortClaims struct {
	Root string // DefaultPortRoot outside tests
}

// Claim claims ports for workload, all or none: it refuses, with an error
// naming the port and the holder and wrapping ErrPortClaimed, a port that
// conflicts (plan.Port.Conflicts) with a claim of another workload, and
// two ports of the list that conflict with each other. Claims the
// workload holds already stay (claiming again is a no-op); only the host
// side is claimed (protocol, address, port), not the container port.
func (c PortClaims) Claim(workload string, ports []plan.Port) error {
	if err := checkClaim(workload, ports); err != nil {
		return err
	}
	unlock, err := c.lock()
	if err != nil {
		return fmt.Errorf("claim ports for %s: %w", workload, err)
	}
	defer unlock()
	held, err := c.list()
	if err != nil {
		return fmt.Errorf("claim ports for %s: %w", workload, err)
	}
	for _, p := range ports {
		if q, w, ok := conflict(workload, p, held); ok {
			return fmt.Errorf("claim port %v for %s: host port %s is published by %s: %w", p, workload, hostSide(q), w, ErrPortClaimed)
		}
	}
	return c.create(workload, ports, held)
}

// Conflicting are the other workloads whose claims ports conflict with
// (those Claim would refuse them for).
func (c PortClaims) Conflicting(workload string, ports []plan.Port) ([]string, error) {
	unlock, err := c.lock()
	if err != nil {
		return nil, fmt.Errorf("ports of others than %s: %w", workload, err)
	}
	defer unlock()
	held, err := c.list()
	var others []string
	for _, p := range ports {
		if _, w, ok := conflict(workload, p, held); ok && !slices.Contains(others, w) {
			others = append(others, w)
		}
	}
	return others, err
}

// conflict is a claim in held of another workload than workload that p
// conflicts with, and its holder.
func conflict(workload string, p plan.Port, held map[plan.Port]string) (plan.Port, string, bool) {
	for q, w := range held {
		if w != workload && p.Conflicts(q) {
			return q, w, true
		}
	}
	return plan.Port{}, "", false
}

// checkClaim refuses a bad workload name, a port cove cannot publish and
// two ports of one list that claim the same host port.
func checkClaim(workload string, ports []plan.Port) error {
	if err := checkWorkload(workload); err != nil {
		return fmt.Errorf("claim ports for %q: %w", workload, err)
	}
	for i, p := range ports {
		if p.Proto != plan.TCP && p.Proto != plan.UDP || p.HostPort == 0 || p.HostAddr.Zone() != "" {
			return fmt.Errorf("claim port %v for %s: not a tcp or udp port from 1 to 65535 on an address without zone", p, workload)
		}
		for _, q := range ports[:i] {
			if p.Conflicts(q) && p != q {
				return fmt.Errorf("claim ports for %s: %v and %v publish the same host port: %w", workload, q, p, ErrPortClaimed)
			}
		}
	}
	return nil
}

// create writes the claims of ports that workload does not hold yet;
// on an error it removes the ones it wrote.
func (c PortClaims) create(workload string, ports []plan.Port, held map[plan.Port]string) error {
	var written []string
	for _, p := range ports {
		if held[claimKey(p)] == workload {
			continue
		}
		path := filepath.Join(c.Root, claimName(p))
		if err := writeClaim(path, workload+"\n"+p.String()); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return fmt.Errorf("claim port %v for %s: %w", p, workload, err)
		}
		held[claimKey(p)], written = workload, append(written, path)
	}
	return nil
}

// writeClaim writes text into path through a temporary file and a
// rename, so a claim file is never seen half-written.
func writeClaim(path, text string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text+"\n"), 0o644); err != nil {
		return fmt.Errorf("write claim: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write claim: %w", err)
	}
	return nil
}

// Release gives back every port workload claimed; none is no error.
func (c PortClaims) Release(workload string) error {
	unlock, err := c.lock()
	if err != nil {
		return fmt.Errorf("release ports of %s: %w", workload, err)
	}
	defer unlock()
	held, err := c.list()
	if err != nil {
		return fmt.Errorf("release ports of %s: %w", workload, err)
	}
	for p, w := range held {
		if w != workload {
			continue
		}
		if err := os.Remove(filepath.Join(c.Root, claimName(p))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("release port %s of %s: %w", hostSide(p), workload, err)
		}
	}
	return nil
}

// List is every claim: its host side (a plan.Port without ContainerPort)
// to the workload that holds it.
func (c PortClaims) List() (map[plan.Port]string, error) {
	held, err := c.list()
	if err != nil {
		return nil, fmt.Errorf("list port claims: %w", err)
	}
	return held, nil
}

// claim is what one claim file holds: the workload and the whole port
// as Join claimed it (plan.Port.String; "" in a claim of an earlier cove).
type claim struct {
	workload, whole string
}

// list reads the claims' holders by host side.
func (c PortClaims) list() (map[plan.Port]string, error) {
	claims, err := c.read()
	held := make(map[plan.Port]string, len(claims))
	for q, cl := range claims {
		held[q] = cl.workload
	}
	return held, err
}

// read reads every claim file once; a missing directory is no claim.
// Files whose names are not claims (the lock, temporary files) are
// skipped.
func (c PortClaims) read() (map[plan.Port]claim, error) {
	entries, err := os.ReadDir(c.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return map[plan.Port]claim{}, nil
	}
	if err != nil {
		return nil, err
	}
	claims := make(map[plan.Port]claim, len(entries))
	for _, e := range entries {
		p, ok := parseClaimName(e.Name())
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(c.Root, e.Name()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err == nil {
			w, whole, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
			claims[p] = claim{w, whole}
		}
	}
	return claims, nil
}

// wholePort is the port claim q holds, with its container port; false
// when the file does not name the port its name says.
func (cl claim) wholePort(q plan.Port) (plan.Port, bool) {
	p, err := plan.ParsePort(cl.whole)
	return p, err == nil && claimKey(p) == q
}

// Ports are the ports workload has claimed, whole (with their container
// ports), as Join published them; for restoring its firewall.
func (c PortClaims) Ports(workload string) ([]plan.Port, error) {
	claims, err := c.read()
	if err != nil {
		return nil, fmt.Errorf("list ports of %s: %w", workload, err)
	}
	var ports []plan.Port
	for q, cl := range claims {
		if cl.workload != workload {
			continue
		}
		p, ok := cl.wholePort(q)
		if !ok {
			return nil, fmt.Errorf("list ports of %s: claim %s holds %q, not the port it names", workload, claimName(q), cl.whole)
		}
		ports = append(ports, p)
	}
	slices.SortFunc(ports, func(a, b plan.Port) int { return strings.Compare(a.String(), b.String()) })
	return ports, nil
}

// Published is every workload's claimed ports, read in one pass: whole,
// or the host side with ContainerPort 0 where a claim does not say the
// port (one written by an earlier cove). Not sorted.
func (c PortClaims) Published() (map[string][]plan.Port, error) {
	claims, err := c.read()
	if err != nil {
		return nil, fmt.Errorf("list port claims: %w", err)
	}
	out := map[string][]plan.Port{}
	for q, cl := range claims {
		if p, ok := cl.wholePort(q); ok {
			q = p
		}
		out[cl.workload] = append(out[cl.workload], q)
	}
	return out, nil
}

// lock takes ROOT/lock (flock LOCK_EX), creating ROOT first; the returned
// function releases it.
func (c PortClaims) lock() (func(), error) {
	if err := os.MkdirAll(c.Root, 0o755); err != nil {
		return nil, fmt.Errorf("lock port claims: %w", err)
	}
	return flock(filepath.Join(c.Root, "lock"))
}

// flock opens (creating) path and takes an exclusive flock on it; the
// returned function releases it.
func flock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock: flock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// claimKey is the host side of p: what a claim is of.
func claimKey(p plan.Port) plan.Port {
	return plan.Port{HostAddr: p.HostAddr, HostPort: p.HostPort, Proto: p.Proto}
}

// hostSide formats the host side of p: "tcp 8080", "udp 127.0.0.1:5353".
func hostSide(p plan.Port) string {
	if p.HostAddr.IsValid() {
		return p.Proto + " " + netip.AddrPortFrom(p.HostAddr, p.HostPort).String()
	}
	return fmt.Sprintf("%s %d", p.Proto, p.HostPort)
}

// claimName is the file name of p's claim: PROTO-ADDR-PORT.
func claimName(p plan.Port) string {
	addr := "any"
	if p.HostAddr.IsValid() {
		addr = p.HostAddr.String()
	}
	return fmt.Sprintf("%s-%s-%d", p.Proto, addr, p.HostPort)
}

// parseClaimName is the inverse of claimName.
func parseClaimName(name string) (plan.Port, bool) {
	proto, rest, ok1 := strings.Cut(name, "-")
	i := strings.LastIndexByte(rest, '-')
	if !ok1 || i < 0 || proto != plan.TCP && proto != plan.UDP {
		return plan.Port{}, false
	}
	port, err := strconv.ParseUint(rest[i+1:], 10, 16)
	if err != nil || port == 0 {
		return plan.Port{}, false
	}
	p := plan.Port{Proto: proto, HostPort: uint16(port)}
	if addr := rest[:i]; addr != "any" {
		if p.HostAddr, err = netip.ParseAddr(addr); err != nil {
			return plan.Port{}, false
		}
	}
	return p, claimName(p) == name
}

// FreePort returns a host port for p (its protocol and host address; its
// HostPort is ignored) from the kernel's local port range, as Docker
// picks one for -p PORT, but none the kernel reserves
// (ip_local_reserved_ports, which its own choice of a local port skips
// too): one that no claim holds, that no port of avoid publishes, and
// that nothing on the host listens on (a bind of it succeeds), trying
// from a random one. The port is not claimed: the workload's start
// claims it (Claim), and fails if another took it meanwhile. An address
// the host cannot bind (not one of its own) is an error wrapping
// ErrNotLocal.
func (c PortClaims) FreePort(p plan.Port, avoid []plan.Port) (uint16, error) {
	lo, hi := localPortRange()
	return c.freePort(p, lo, hi, avoid, localReservedPorts())
}

// FreePortIn is FreePort from the ports lo to hi (a host port range, as
// docker run -p 8000-8010:80 gives: reserved ports too, as a bind of one
// may). When none of them is free, the error wraps ErrNoFreePort.
func (c PortClaims) FreePortIn(p plan.Port, lo, hi int, avoid []plan.Port) (uint16, error) {
	return c.freePort(p, lo, hi, avoid, nil)
}

// freePort is FreePortIn skipping the ports of reserved.
func (c PortClaims) freePort(p plan.Port, lo, hi int, avoid []plan.Port, reserved portRanges) (uint16, error) {
	held, err := c.List()
	if err != nil {
		return 0, err
	}
	return freeIn(p, lo, hi, func(p plan.Port) (bool, error) {
		if _, _, taken := conflict("", p, held); taken || reserved.contains(p.HostPort) || slices.ContainsFunc(avoid, p.Conflicts) {
			return false, nil
		}
		return bindable(p)
	})
}

// portRanges are ranges of port numbers, each [lo, hi].
type portRanges [][2]uint16

// contains reports whether port is in one of rs.
func (rs portRanges) contains(port uint16) bool {
	return slices.ContainsFunc(rs, func(r [2]uint16) bool { return r[0] <= port && port <= r[1] })
}

// localReservedPortsFile lists the ports the kernel's choice of a local
// port skips ("8080,9000-9010"; an empty line for none).
const localReservedPortsFile = "/proc/sys/net/ipv4/ip_local_reserved_ports"

// localReservedPorts are the kernel's reserved ports (none when they
// cannot be read or parsed: the binds still find ports in use).
func localReservedPorts() portRanges {
	b, err := os.ReadFile(localReservedPortsFile)
	if err != nil {
		return nil
	}
	rs, _ := parsePortRanges(strings.TrimSpace(string(b)))
	return rs
}

// parsePortRanges reads a comma-separated list of ports and ranges
// LOW-HIGH, as ip_local_reserved_ports has them ("" is none).
func parsePortRanges(s string) (portRanges, error) {
	var rs portRanges
	for _, item := range strings.Split(s, ",") {
		if item == "" {
			continue
		}
		a, b, isRange := strings.Cut(item, "-")
		if !isRange {
			b = a
		}
		lo, lerr := strconv.ParseUint(a, 10, 16)
		hi, herr := strconv.ParseUint(b, 10, 16)
		if lerr != nil || herr != nil || lo > hi {
			return nil, fmt.Errorf("port range %q: want PORT or LOW-HIGH", item)
		}
		rs = append(rs, [2]uint16{uint16(lo), uint16(hi)})
	}
	return rs, nil
}

// ErrNotLocal is wrapped by FreePort's and FreePortIn's error for an
// address that is not the host's, ErrNoFreePort when every port of the
// range is taken.
var (
	ErrNotLocal   = errors.New("not an address of this host")
	ErrNoFreePort = errors.New("every port is published, in use or reserved")
)

// freeIn is the first port from lo to hi, starting at a random one and
// wrapping, for which p's host side is free; free's error ends the
// search.
func freeIn(p plan.Port, lo, hi int, free func(plan.Port) (bool, error)) (uint16, error) {
	n := hi - lo + 1
	start := rand.IntN(n)
	for i := range n {
		p.HostPort = uint16(lo + (start+i)%n)
		ok, err := free(p)
		if err != nil {
			return 0, fmt.Errorf("find a free host port for %s on %s: %w", p.Proto, hostAddrName(p), err)
		}
		if ok {
			return p.HostPort, nil
		}
	}
	return 0, fmt.Errorf("find a free host port for %s on %s from %d to %d: %w", p.Proto, hostAddrName(p), lo, hi, ErrNoFreePort)
}

// localPortRangeFile holds the kernel's range of local ports (two numbers).
const localPortRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// localPortRange is the kernel's local port range, or Linux's default
// (32768 to 60999) when it cannot be read.
func localPortRange() (lo, hi int) {
	lo, hi = 32768, 60999
	b, err := os.ReadFile(localPortRangeFile)
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return lo, hi
	}
	l, lerr := strconv.Atoi(f[0])
	h, herr := strconv.Atoi(f[1])
	if lerr != nil || herr != nil || l < 1 || h > 65535 || l > h {
		return lo, hi
	}
	return l, h
}

// bindable reports whether p's host side can be bound here: nothing on
// the host listens on it (every address: both IPv4 and IPv6). A bind that
// fails for another reason than the port's use is an error (ErrNotLocal
// for an address the host does not have).
func bindable(p plan.Port) (bool, error) {
	addr := net.JoinHostPort("", strconv.Itoa(int(p.HostPort)))
	if p.HostAddr.IsValid() {
		addr = netip.AddrPortFrom(p.HostAddr, p.HostPort).String()
	}
	var c io.Closer
	var err error
	if p.Proto == plan.UDP {
		c, err = net.ListenPacket("udp", addr)
	} else {
		c, err = net.Listen("tcp", addr)
	}
	switch {
	case err == nil:
		c.Close()
		return true, nil
	case errors.Is(err, unix.EADDRINUSE):
		return false, nil
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return false, ErrNotLocal
	}
	return false, err
}

// hostAddrName is p's host address as messages say it.
func hostAddrName(p plan.Port) string {
	if p.HostAddr.IsValid() {
		return p.HostAddr.String()
	}
	return "every address"
}
