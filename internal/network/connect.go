package network

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/cove-project/cove/internal/network/plan"
)

// Connect joins the running container workload, whose init (or payload)
// is pid, to network name besides the networks it is on, as Docker's
// network connect does: an address of name, a veth whose container end is
// the first free ethN (N ≥ 1) with the routes of name's subnets (no
// default route), and the workload's tables rebuilt with every link, its
// published ports unchanged. The container must be on a network of cove's
// already (it has a link to add to; host and none have not), and name's
// bridge must be up (its unit started). The connection lasts until the
// container stops, whose release (Leased) gives it back with the others;
// Disconnect ends it sooner. Its names there are those of its first
// network and aliases. On error nothing of it is left. It holds the
// workload's holder file meanwhile (Holders.Lock). Run it in the host's
// network namespace.
func Connect(name, workload string, pid int, aliases []string) (Attachment, error) {
	unlock, err := Holders{Root: DefaultHolderRoot}.Lock(workload)
	if err != nil {
		return Attachment{}, fmt.Errorf("connect %s: %w", workload, err)
	}
	defer unlock()
	n, err := Named(name)
	if err != nil {
		return Attachment{}, fmt.Errorf("connect %s: %w", workload, err)
	}
	joined, ports, err := joinedNow(workload)
	if err != nil {
		return Attachment{}, err
	}
	if slices.ContainsFunc(joined, func(ep plan.Endpoint) bool { return ep.Network.Name == name }) {
		return Attachment{}, fmt.Errorf("connect %s to network %s: it is on that network already", workload, name)
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return Attachment{}, fmt.Errorf("connect %s to network %s: open /proc/%d/ns/net: %w", workload, name, pid, err)
	}
	defer ns.Close()
	nic, err := freeNIC(ns)
	if err != nil {
		return Attachment{}, fmt.Errorf("connect %s to network %s: %w", workload, name, err)
	}
	had, err := Leases{Root: DefaultLeaseRoot}.AliasesOf(joined[0].Network.Name, workload)
	if err != nil {
		return Attachment{}, fmt.Errorf("connect %s to network %s: %w", workload, name, err)
	}
	at, err := join(n, Request{Network: name, Workload: workload, Link: LinkVeth, Netns: ns, Aliases: plan.MergeNames(had, aliases)}, nic)
	if err == nil {
		err = SetupWorkload(workload, append(joined, at.Endpoint(n)), ports)
	}
	if err != nil {
		return at, errors.Join(err, leaveOne(name, workload), SetupWorkload(workload, joined, ports))
	}
	return at, nil
}

// Disconnect takes the running container workload off network name, one
// it joined besides its first (whose are its default route and published
// ports: it leaves that one when it stops): the workload's tables without
// that link first, then the link (its ethN goes with it) and the lease.
// It holds the workload's holder file meanwhile (Holders.Lock).
func Disconnect(name, workload string) error {
	unlock, err := Holders{Root: DefaultHolderRoot}.Lock(workload)
	if err != nil {
		return fmt.Errorf("disconnect %s: %w", workload, err)
	}
	defer unlock()
	joined, ports, err := joinedNow(workload)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(joined, func(ep plan.Endpoint) bool { return ep.Network.Name == name })
	switch {
	case i < 0:
		return fmt.Errorf("disconnect %s from network %s: it is not on that network", workload, name)
	case i == 0:
		return fmt.Errorf("disconnect %s from network %s: that is its first network, whose are its default route and published ports; it leaves it when it stops", workload, name)
	}
	if err := SetupWorkload(workload, slices.Delete(joined, i, i+1), ports); err != nil {
		return err
	}
	return leaveOne(name, workload)
}

// joinedNow reads workload's endpoints (View.Joined: at least one, or it
// is on no network of cove's) and its published ports.
func joinedNow(workload string) ([]plan.Endpoint, []plan.Port, error) {
	view, err := Host.Read()
	if err != nil {
		return nil, nil, err
	}
	joined := view.Joined(workload)
	if len(joined) == 0 {
		return nil, nil, fmt.Errorf("%s is on no network of cove's (its network is host or none, or it is not running): there is no link to add one to", workload)
	}
	return joined, view.Published(workload), nil
}

// leaveOne undoes one network's link and lease of workload, leaving its
// tables and ports to the caller (Leave does all of them).
func leaveOne(name, workload string) error {
	return errors.Join(Detach(plan.Network{Name: name}, workload), Leases{Root: DefaultLeaseRoot}.Release(name, workload))
}

// freeNIC is the smallest N ≥ 1 for which the network namespace ns has
// no interface ethN.
func freeNIC(ns netns.NsHandle) (int, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return 0, fmt.Errorf("netlink socket in the container's network namespace: %w", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return 0, fmt.Errorf("list the container's interfaces: netlink RTM_GETLINK: %w", err)
	}
	used := map[int]bool{}
	for _, l := range links {
		if v, ok := strings.CutPrefix(l.Attrs().Name, "eth"); ok {
			if i, err := strconv.Atoi(v); err == nil {
				used[i] = true
			}
		}
	}
	nic := 1
	for used[nic] {
		nic++
	}
	return nic, nil
}

// Leased are the networks on which workload holds a lease, sorted: those
// it joined at its start and those it was connected to since (Connect),
// which its release gives back. It reads the leases alone, so a network
// whose file was removed meanwhile is there too.
func Leased(workload string) ([]string, error) {
	l := Leases{Root: DefaultLeaseRoot}
	entries, err := os.ReadDir(l.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("networks of %s: %w", workload, err)
	}
	var names []string
	for _, e := range entries {
		_, err := l.Of(e.Name(), workload)
		switch {
		case err == nil:
			names = append(names, e.Name())
		case !errors.Is(err, ErrNoLease):
			return names, err
		}
	}
	return names, nil
}
