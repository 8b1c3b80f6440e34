package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network/plan"
)

// Named is network name of the host's catalog (Declared.Named).
func Named(name string) (plan.Network, error) { return Declared.Named(name) }

// Up brings network name up in the calling thread's network namespace:
// its bridge (EnsureBridge), its firewall table (Setup), and the tables
// of the workloads on it (Restore). It is what cove-network@NAME.service
// runs to start and to reload, and it is idempotent: after an admin's
// "nft flush ruleset", systemctl reload cove-network@NAME.service puts
// every rule back without restarting a workload.
func Up(name string) error {
	n, err := Named(name)
	if err != nil {
		return fmt.Errorf("bring up network: %w", err)
	}
	if err := EnsureBridge(n); err != nil {
		return err
	}
	if err := Setup(n); err != nil {
		return err
	}
	return Restore(n)
}

// Restore re-creates the tables of the workloads attached to n (those
// that hold a lease and whose link, veth or tap, exists) from what Join
// recorded: the leases, the port claims, the names (plan.HostIfName,
// plan.WorkloadMAC). A workload on several networks gets its endpoints on
// each (View.Joined).
func Restore(n plan.Network) error {
	leases, err := Leases{Root: DefaultLeaseRoot}.List(n.Name)
	if err != nil {
		return err
	}
	view, _ := Host.Read() // without it, each workload's endpoint on n
	var errs []error
	for addr, w := range leases {
		ep := endpoint(n, w, addr)
		link, err := netlink.LinkByName(ep.HostIf)
		if err != nil {
			continue // not attached (yet, or any more): Join or Leave sees to it
		}
		ep.Guest = isTap(link)
		eps := view.Joined(w)
		if len(eps) == 0 {
			eps = []plan.Endpoint{ep}
		}
		ports, err := PortClaims{Root: DefaultPortRoot}.Ports(w)
		if err == nil {
			err = SetupWorkload(w, eps, ports)
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("restore the workloads' tables on network %s: %w", n.Name, err)
	}
	return nil
}

// Down removes what Up made: the firewall table, then the bridge.
func Down(name string) error {
	n, err := Named(name)
	if err != nil {
		return fmt.Errorf("bring down network: %w", err)
	}
	return errors.Join(Teardown(n), RemoveBridge(n))
}

// LinkKind is how a workload joins a network's bridge.
type LinkKind int

// Kinds of link.
const (
	LinkVeth LinkKind = iota // a container: a veth whose peer is eth0 in its init's network namespace (AttachContainer)
	LinkTap                  // a VM: a tap for QEMU to attach the guest's NIC to (AttachTap)
)

// Request is a workload joining a network: the network's name, the
// workload, its kind of link, for a veth its container's init (whose
// network namespace joins), the address to pin (zero: any free one) and
// the ports to publish; for a container, more networks it joins besides
// (eth1, eth2, …: an address of each, no pinned one, no ports, no default
// route).
type Request struct {
	Network  string
	Workload string
	Link     LinkKind
	Netns    netns.NsHandle // LinkVeth: the container's network namespace (the caller's handle: Join does not close it)
	IP       netip.Addr
	Ports    []plan.Port
	Also     []string // LinkVeth: more networks
	Aliases  []string // more names each network's DNS answers with the workload's address there
	Run      string   // the run that holds what Join takes: its unit's $INVOCATION_ID (Holders)
	// Live, if set, is asked about the runs of other workloads that hold
	// the ports or the pinned address wanted (FreeEnded).
	Live Live
}

// Networks are every network r joins, Network first.
func (r Request) Networks() []string { return append([]string{r.Network}, r.Also...) }

// Join leases an address of the network to the workload, claims its
// ports, makes its link on the bridge (a veth into the init's network
// namespace, with eth0 configured; or a tap, whose guest the caller
// configures with the Attachment's address and MAC), does the same,
// without ports, on each of r.Also (eth1, eth2, …), and installs the
// workload's tables (anti-spoofing of what enters each bridge from its
// link, published ports to the workload's address on the first
// network). It returns the first network's Attachment. On error nothing
// is left: what was taken is given back (LeaveAll). LeaveAll undoes it,
// and Restore re-creates the tables, for either kind of link. It holds
// the workload's holder file meanwhile, and first gives back what an
// earlier run of the workload left (Holders.Hold). Run it in the host's
// network namespace.
func Join(r Request) (Attachment, error) {
	unlock, err := Holders{Root: DefaultHolderRoot}.Hold(r.Workload, r.Run)
	if err != nil {
		return Attachment{}, fmt.Errorf("join %s to a network: %w", r.Workload, err)
	}
	defer unlock()
	return joinAll(r)
}

// joinAll is Join's work once the workload's holder file is held.
func joinAll(r Request) (Attachment, error) {
	var eps []plan.Endpoint
	var first Attachment
	for i, name := range r.Networks() {
		n, err := Named(name)
		if err != nil {
			err = fmt.Errorf("join %s to a network: %w", r.Workload, err)
			return first, errors.Join(err, LeaveAll(r.Networks(), r.Workload))
		}
		at, err := join(n, r, i)
		if err != nil {
			return first, errors.Join(err, LeaveAll(r.Networks(), r.Workload))
		}
		if i == 0 {
			first = at
		}
		eps = append(eps, at.Endpoint(n))
	}
	err := SetupWorkload(r.Workload, eps, r.Ports)
	failpoint("tables")
	if err != nil {
		return first, errors.Join(err, LeaveAll(r.Networks(), r.Workload))
	}
	return first, nil
}

// join does Join's steps on n, r's nic'th network (0: r.Network, whose
// are the pinned address and the ports), but the tables, leaving the
// undoing to Join.
func join(n plan.Network, r Request, nic int) (Attachment, error) {
	ip, ports := r.IP, r.Ports
	if nic > 0 {
		ip, ports = netip.Addr{}, nil
	}
	for _, p := range ports {
		if err := n.Allows(p); err != nil {
			return Attachment{}, fmt.Errorf("join %s to network %s: %w", r.Workload, n.Name, err)
		}
	}
	var addr netip.Addr
	lease := func() (err error) {
		addr, err = Leases{Root: DefaultLeaseRoot, Stale: reclaimStale}.Allocate(n, r.Workload, ip, r.Aliases...)
		return err
	}
	if err := r.freeing(lease(), ErrTaken, lease, n, ip, nil); err != nil {
		return Attachment{}, err
	}
	failpoint("lease")
	if nic == 0 {
		claim := func() error { return PortClaims{Root: DefaultPortRoot}.Claim(r.Workload, ports) }
		if err := r.freeing(claim(), ErrPortClaimed, claim, n, netip.Addr{}, ports); err != nil {
			return Attachment{}, err
		}
		failpoint("claim")
	}
	at, err := attach(n, r, addr, nic)
	if err == nil {
		failpoint("link")
	}
	return at, err
}

// freeing is err, the result of op, unless it wraps held (the address or
// a port is another workload's) and r can ask (r.Live): then what ended
// runs of other workloads hold of ip and ports is given back (FreeEnded)
// and op's second result returned.
func (r Request) freeing(err, held error, op func() error, n plan.Network, ip netip.Addr, ports []plan.Port) error {
	if !errors.Is(err, held) || r.Live == nil {
		return err
	}
	freed := FreeEnded(n, r.Workload, ip, ports, r.Live)
	if err := op(); err != nil {
		return errors.Join(err, freed)
	}
	return nil
}

// FreeEnded gives back what ended runs of other workloads still hold of
// what workload wants on n, the claims of its ports and its pinned address
// ip, as live says (Holders.ReleaseEnded): a container stopped just
// before, whose release unit has not run yet, does not keep them from a
// new one. It is best effort: a holder another process has locked is left
// alone, and what stays held makes the claim or the lease fail as it
// would have, with the holder named; the error says what could not be
// read or given back.
func FreeEnded(n plan.Network, workload string, ip netip.Addr, ports []plan.Port, live Live) error {
	var others []string
	var errs []error
	if len(ports) > 0 {
		var err error
		others, err = PortClaims{Root: DefaultPortRoot}.Conflicting(workload, ports)
		errs = append(errs, err)
	}
	if ip.IsValid() {
		held, err := Leases{Root: DefaultLeaseRoot}.List(n.Name)
		if w := held[ip]; w != "" && w != workload {
			others = append(others, w)
		}
		errs = append(errs, err)
	}
	for _, w := range others {
		errs = append(errs, Holders{Root: DefaultHolderRoot}.releaseIfFree(w, live))
	}
	return errors.Join(errs...)
}

// FailpointEnv names the environment variable that kills the launcher
// (SIGKILL, as an OOM kill or a crash would) right after a stage of Join:
// "lease", "claim", "link" or "tables". The integration tests set it in
// the test systemd's environment to show that the unit's release
// gives back whatever the launcher had taken at that point.
const FailpointEnv = "COVE_FAILPOINT"

// failpoint kills the calling process if FailpointEnv names stage.
func failpoint(stage string) {
	if os.Getenv(FailpointEnv) == stage {
		unix.Kill(os.Getpid(), unix.SIGKILL)
	}
}

// attach makes r's link on n, its nic'th network, for address addr.
func attach(n plan.Network, r Request, addr netip.Addr, nic int) (Attachment, error) {
	mac := plan.WorkloadMAC(n.Name, r.Workload)
	if r.Link == LinkTap {
		return AttachTap(n, r.Workload, addr, mac)
	}
	return AttachContainer(n, r.Workload, r.Netns, addr, mac, nic)
}

// reclaimStale is Leases.Stale for Join: a lease whose holder's link
// (veth host end or tap) is gone belongs to a workload that stopped
// without its release (or whose release failed); its
// tables and port claims go too, and the lease may be reused.
func reclaimStale(network, workload string) bool {
	if Attached(network, workload) {
		return false
	}
	return errors.Join(TeardownWorkload(workload), PortClaims{Root: DefaultPortRoot}.Release(workload)) == nil
}

// Attached says whether workload's link on network (the host end of its
// veth, or its tap) exists in the calling thread's network namespace; an
// error other than "no such link" counts as attached.
func Attached(network, workload string) bool {
	_, err := netlink.LinkByName(plan.HostIfName(network, workload))
	return !errors.As(err, new(netlink.LinkNotFoundError))
}

// LeaveAll is Leave on each of names (a workload's networks).
func LeaveAll(names []string, workload string) error {
	var errs []error
	for _, name := range names {
		errs = append(errs, Leave(name, workload))
	}
	return errors.Join(errs...)
}

// Leave undoes Join for workload: deletes its tables, removes its tap or
// the host end of its veth (if the namespace has not taken it already), and
// releases its ports and its lease. It is idempotent: what is gone
// already is no error. It works from the names alone, so a network whose
// file was removed meanwhile still gets its lease back.
func Leave(name, workload string) error {
	return errors.Join(TeardownWorkload(workload), Detach(plan.Network{Name: name}, workload),
		PortClaims{Root: DefaultPortRoot}.Release(workload), Leases{Root: DefaultLeaseRoot}.Release(name, workload))
}
