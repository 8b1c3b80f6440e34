package network

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netns"

	"github.com/cove-project/cove/internal/network/plan"
)

// Named is the network called name. Only the default network
// (plan.Default) exists yet; named networks read from files come later.
func Named(name string) (plan.Network, error) {
	if name != plan.DefaultName {
		return plan.Network{}, fmt.Errorf("network %q: unknown; the only network is %q (named networks are not supported yet)", name, plan.DefaultName)
	}
	return plan.Default(), nil
}

// Up brings network name up in the calling thread's network namespace:
// its bridge (EnsureBridge), then its firewall table (Setup). It is what
// cove-network@NAME.service runs, and it is idempotent.
func Up(name string) error {
	n, err := Named(name)
	if err != nil {
		return fmt.Errorf("bring up network: %w", err)
	}
	if err := EnsureBridge(n); err != nil {
		return err
	}
	return Setup(n)
}

// Down removes what Up made: the firewall table, then the bridge.
func Down(name string) error {
	n, err := Named(name)
	if err != nil {
		return fmt.Errorf("bring down network: %w", err)
	}
	return errors.Join(Teardown(n), RemoveBridge(n))
}

// Join leases an address of network name to workload and attaches the
// network namespace of pid (a container's init) to the network: eth0 on
// its bridge. On error nothing is left: the lease is released and the veth
// removed. Run it in the host's network namespace.
func Join(name, workload string, pid int) (Attachment, error) {
	n, err := Named(name)
	if err != nil {
		return Attachment{}, fmt.Errorf("join %s to a network: %w", workload, err)
	}
	leases := Leases{Root: DefaultLeaseRoot}
	addr, err := leases.Allocate(n, workload, netip.Addr{})
	if err != nil {
		return Attachment{}, err
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		err = fmt.Errorf("join %s to network %s: open /proc/%d/ns/net: %w", workload, name, pid, err)
		return Attachment{}, errors.Join(err, leases.Release(name, workload))
	}
	defer ns.Close()
	at, err := AttachContainer(n, workload, ns, addr, plan.WorkloadMAC(n.Name, workload))
	if err != nil {
		return at, errors.Join(err, Detach(n, workload), leases.Release(name, workload))
	}
	return at, nil
}

// Leave undoes Join for workload: removes the host end of its veth (if
// the namespace has not taken it already) and releases its lease. It is
// idempotent: what is gone already is no error.
func Leave(name, workload string) error {
	n, err := Named(name)
	if err != nil {
		return fmt.Errorf("release %s from a network: %w", workload, err)
	}
	return errors.Join(Detach(n, workload), Leases{Root: DefaultLeaseRoot}.Release(name, workload))
}
