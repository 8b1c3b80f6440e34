package hostcheck

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// checkNetwork checks where s joins a network (spec.Spec.Join: a
// container's network keys, or a bridged VM's [vm.network]) against the
// declared networks and what running workloads hold: the network (and
// each of a container's more networks) exists,
// a pinned ip is a free host address of its subnet, and each published
// port is allowed on the network and published by no other workload that
// still runs (endedHolders).
// Errors name the keys of j's table.
func checkNetwork(s *spec.Spec) spec.Errors {
	j := s.Join()
	if j.Network == "" {
		return nil
	}
	n, err := network.Declared.Named(j.Network)
	var se spec.Errors
	switch {
	case errors.As(err, &se):
		return se
	case err != nil:
		return spec.Errors{s.KeyError(j.Key("network"), err.Error())}
	}
	ended := &endedHolders{}
	defer ended.close()
	errs := checkAlso(s, j)
	if j.IP != "" {
		errs = append(errs, checkPinnedIP(s, j, n, ended.ended)...)
	}
	return append(errs, checkPorts(s, j, n, ended.ended)...)
}

// endedHolders answers whether a workload that holds a port or an address
// has ended: its run no longer runs (its release unit, which runs after
// its unit has ended, has not given them back yet, or could not). The
// launcher's join gives such a holder's back (network.FreeEnded), so the
// check lets them pass. It reads only, and asks systemd (over one
// connection, made at the first question) only about a conflict.
type endedHolders struct {
	live func(workload, run string) (bool, error)
	done func()
}

// ended reports whether workload has ended; an error counts as not.
func (e *endedHolders) ended(workload string) bool {
	if e.live == nil {
		e.live, e.done = supervisor.LazyRuns()
	}
	run, err := network.Holders{Root: network.DefaultHolderRoot}.RunOf(workload)
	if err != nil {
		return false
	}
	running, err := e.live(workload, run)
	return err == nil && !running
}

// close closes the connection, if ended made one.
func (e *endedHolders) close() {
	if e.done != nil {
		e.done()
	}
}

// checkAlso checks that each of the more networks j joins exists.
func checkAlso(s *spec.Spec, j spec.Join) spec.Errors {
	var errs spec.Errors
	for i, name := range j.Also {
		if _, err := network.Declared.Named(name); err != nil {
			errs = append(errs, s.KeyError(j.Key(fmt.Sprintf("networks[%d]", i+1)), err.Error()))
		}
	}
	return errs
}

// checkPinnedIP checks j's ip against network n and its leases (a
// workload that has ended, as ended says, holds none).
func checkPinnedIP(s *spec.Spec, j spec.Join, n plan.Network, ended func(string) bool) spec.Errors {
	a, _ := netip.ParseAddr(j.IP) // validated
	if !plan.Usable(n, a) {
		return spec.Errors{s.KeyError(j.Key("ip"), fmt.Sprintf("%v is not a host address of network %s's subnet %v other than its gateway %v", a, n.Name, n.Subnet4, n.Gateway4))}
	}
	leases, err := network.Leases{Root: network.DefaultLeaseRoot}.List(n.Name)
	if err != nil {
		return spec.Errors{s.KeyError(j.Key("ip"), err.Error())}
	}
	if w, ok := leases[a]; ok && w != s.Name && !ended(w) {
		return spec.Errors{s.KeyError(j.Key("ip"), fmt.Sprintf("%v is leased to workload %s on network %s", a, w, n.Name))}
	}
	return nil
}

// checkPorts checks j's ports against network n's rules and the ports
// other workloads publish now (one that has ended, as ended says, none).
func checkPorts(s *spec.Spec, j spec.Join, n plan.Network, ended func(string) bool) spec.Errors {
	claims, err := network.PortClaims{Root: network.DefaultPortRoot}.List()
	if err != nil {
		return spec.Errors{s.KeyError(j.Key("ports"), err.Error())}
	}
	var errs spec.Errors
	for i, str := range j.Ports {
		p, _ := plan.ParsePort(str) // validated
		key := j.Key(fmt.Sprintf("ports[%d]", i+1))
		if err := n.Allows(p); err != nil {
			errs = append(errs, s.KeyError(key, err.Error()))
		}
		for q, holder := range claims {
			if holder != s.Name && p.Conflicts(q) && !ended(holder) {
				errs = append(errs, s.KeyError(key, fmt.Sprintf("host port %s is already published by workload %s (%s)", p, holder, q)))
			}
		}
	}
	return errs
}
