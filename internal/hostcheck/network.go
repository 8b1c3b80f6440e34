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
// port is allowed on the network and published by no other workload.
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
	errs := checkHeld(s, j, n)
	if len(errs) > 0 { // maybe held by a container that has just stopped
		freeEnded(s, j, n)
		errs = checkHeld(s, j, n)
	}
	return append(checkAlso(s, j), errs...)
}

// checkHeld checks j's pinned ip and ports on network n.
func checkHeld(s *spec.Spec, j spec.Join, n plan.Network) spec.Errors {
	var errs spec.Errors
	if j.IP != "" {
		errs = checkPinnedIP(s, j, n)
	}
	return append(errs, checkPorts(s, j, n)...)
}

// freeEnded gives back the claims of j's ports and the lease of its
// pinned ip that other workloads whose runs have ended still hold (their
// release units run after their units have ended: network.FreeEnded), so
// that a port or an address is not refused for a container that has
// just stopped.
func freeEnded(s *spec.Spec, j spec.Join, n plan.Network) {
	ip, _ := netip.ParseAddr(j.IP) // validated; none: the zero Addr
	var ports []plan.Port
	for _, str := range j.Ports {
		if p, err := plan.ParsePort(str); err == nil {
			ports = append(ports, p)
		}
	}
	live, done := supervisor.LazyRuns() // connects only when asked
	defer done()
	network.FreeEnded(n, s.Name, ip, ports, live)
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

// checkPinnedIP checks j's ip against network n and its leases.
func checkPinnedIP(s *spec.Spec, j spec.Join, n plan.Network) spec.Errors {
	a, _ := netip.ParseAddr(j.IP) // validated
	if !plan.Usable(n, a) {
		return spec.Errors{s.KeyError(j.Key("ip"), fmt.Sprintf("%v is not a host address of network %s's subnet %v other than its gateway %v", a, n.Name, n.Subnet4, n.Gateway4))}
	}
	leases, err := network.Leases{Root: network.DefaultLeaseRoot}.List(n.Name)
	if err != nil {
		return spec.Errors{s.KeyError(j.Key("ip"), err.Error())}
	}
	if w, ok := leases[a]; ok && w != s.Name {
		return spec.Errors{s.KeyError(j.Key("ip"), fmt.Sprintf("%v is leased to workload %s on network %s", a, w, n.Name))}
	}
	return nil
}

// checkPorts checks j's ports against network n's rules and the ports
// other workloads publish now.
func checkPorts(s *spec.Spec, j spec.Join, n plan.Network) spec.Errors {
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
			if holder != s.Name && p.Conflicts(q) {
				errs = append(errs, s.KeyError(key, fmt.Sprintf("host port %s is already published by workload %s (%s)", p, holder, q)))
			}
		}
	}
	return errs
}
