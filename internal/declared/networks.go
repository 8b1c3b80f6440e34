package declared

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// Why a network's creation or removal is refused, wrapped in the errors
// of CreateNetwork and RemoveNetwork (and network.ErrUnknown for a
// network that does not exist): cove exits 2 for all but ErrNetworkInUse;
// the API answers 409, 400, 403 and 403.
var (
	ErrNetworkExists   = errors.New("network exists")
	ErrNetworkSettings = errors.New("bad network settings")
	ErrDefaultNetwork  = errors.New("the default network")
	ErrNetworkInUse    = errors.New("network in use")
)

// refusal is an error of CreateNetwork or RemoveNetwork that says why
// through errors.Is (its kind) without adding to its text.
type refusal struct{ err, kind error }

func (r refusal) Error() string   { return r.err.Error() }
func (r refusal) Unwrap() []error { return []error{r.err, r.kind} }

// refused is a refusal of kind with the message format, a.
func refused(kind error, format string, a ...any) error {
	return refusal{fmt.Errorf(format, a...), kind}
}

// CreateNetwork validates network name with settings s and writes its
// file (network.Declared); an empty Subnet4 gets the first /24 of
// 10.78.0.0/15 that no network and no route of the host uses
// (plan.FreeSubnet4). It holds the apply lock (Default.LockFor) from the
// check of the names and subnets taken to the write, so that creates at
// once (docker compose makes a project's networks in parallel) never
// take one subnet twice; so it waits for a cove apply under way, until
// ctx ends or for Paths.LockFor's LockWait at most (ErrApplyBusy). The
// caller reloads systemd (its generator writes the network's units). It
// returns the network as its file now says.
func CreateNetwork(ctx context.Context, name string, s spec.Network) (plan.Network, error) {
	unlock, err := Default.LockFor(ctx)
	if err != nil {
		return plan.Network{}, fmt.Errorf("network create %s: %w", name, err)
	}
	defer unlock()
	path := network.Declared.Path(name)
	if _, err := os.Stat(path); err == nil || name == plan.DefaultName {
		return plan.Network{}, refused(ErrNetworkExists, "network create: network %q exists already (%s)", name, path)
	}
	if s.Subnet4 == "" {
		taken, err := network.Declared.Subnets()
		if err != nil {
			return plan.Network{}, err
		}
		routes, err := network.RoutedPrefixes()
		if err != nil {
			return plan.Network{}, err
		}
		p, ok := plan.FreeSubnet4(append(taken, routes...))
		if !ok {
			return plan.Network{}, refused(ErrNetworkSettings, "network create %s: no free /24 left in 10.78.0.0/15; give a subnet", name)
		}
		s.Subnet4 = p.String()
	}
	n, err := spec.ParseNetwork(path, s.File(), name)
	if err != nil {
		return n, refusal{err, ErrNetworkSettings}
	}
	if err := network.Declared.Check(n, path); err != nil {
		return n, refusal{fmt.Errorf("network create %s: %w", name, err), ErrNetworkSettings}
	}
	return n, WriteFile(path, s.File())
}

// RemoveNetwork removes network name: refused for the default network
// and for a network a workload holds a lease on or a declared spec names
// (NetworkUsers); otherwise its unit is stopped (bridge and firewall go)
// and its file removed, under the apply lock (see CreateNetwork). The
// caller reloads systemd.
func RemoveNetwork(ctx context.Context, conn *supervisor.Conn, name string) error {
	if name == plan.DefaultName {
		return refused(ErrDefaultNetwork, "network rm: %q is the default network; it exists without a file and cannot be removed", name)
	}
	unlock, err := Default.LockFor(ctx)
	if err != nil {
		return fmt.Errorf("network rm %s: %w", name, err)
	}
	defer unlock()
	if _, err := network.Declared.Named(name); err != nil {
		return fmt.Errorf("network rm: %w", err)
	}
	if err := releaseEnded(ctx, conn, name); err != nil {
		return fmt.Errorf("network rm %s: %w", name, err)
	}
	users, err := NetworkUsers(name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return refused(ErrNetworkInUse, "network rm %s: in use by %s; stop them or change their specs first", name, strings.Join(users, ", "))
	}
	if err := conn.StopUnit(ctx, spec.NetworkUnitName(name)); err != nil {
		return err
	}
	return Remove(network.Declared.Path(name))
}

// releaseEnded gives back what the workloads with a lease on network
// name took, of each whose run has ended (network.Holders.ReleaseEnded):
// a container that stopped just before (its release unit runs after its
// unit has ended) does not keep the network in use.
func releaseEnded(ctx context.Context, conn *supervisor.Conn, name string) error {
	leases, err := network.Leases{Root: network.DefaultLeaseRoot}.List(name)
	var errs []error
	for _, w := range leases {
		errs = append(errs, network.Holders{Root: network.DefaultHolderRoot}.ReleaseEnded(w, conn.Runs(ctx)))
	}
	return errors.Join(append(errs, err)...)
}

// NetworkUsers are the workloads that hold a lease on network name or
// whose declared spec names it, sorted.
func NetworkUsers(name string) ([]string, error) {
	leases, err := network.Leases{Root: network.DefaultLeaseRoot}.List(name)
	if err != nil {
		return nil, err
	}
	var users []string
	for _, w := range leases {
		users = append(users, w)
	}
	err = Default.EachSpec(func(s *spec.Spec) {
		if slices.Contains(s.Join().Networks(), name) && !slices.Contains(users, s.Name) {
			users = append(users, s.Name)
		}
	})
	slices.Sort(users)
	return users, err
}
