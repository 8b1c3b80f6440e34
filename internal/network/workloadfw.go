package network

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/cove-project/cove/internal/network/plan"
)

// SetupWorkload installs the firewall of a workload
// (plan.WorkloadFirewall: its published ports and its anti-spoofing
// rules) in the network namespace of the calling thread, in one netlink
// batch that deletes the workload's tables if they exist and adds the
// ones the plan has. It thus replaces whatever the workload had, at once:
// a rerun with other ports or endpoints is an update, a rerun with the
// same ones is a no-op. Only the two tables
// plan.WorkloadTableName(workload) (families inet and bridge) are
// touched.
//
// Call it in the host's network namespace once every endpoint's HostIf
// exists (after AttachContainer: see Attachment.Endpoint), and after
// PortClaims.Claim has granted the ports; the networks' tables (Setup)
// must be there for published ports to be let in.
//
// With ports, it also turns hairpin mode on for the bridge port of the
// first endpoint (the one ports lead to), so that the workload reaches
// its own published ports through a host address when br_netfilter is
// loaded: that connection is then bridged back out of the port it came
// in by, which a bridge does only in hairpin mode. The mode stays until
// the port goes (with the workload's namespace, or Detach).
func SetupWorkload(workload string, eps []plan.Endpoint, ports []plan.Port) error {
	if len(ports) > 0 && len(eps) > 0 {
		if err := setHairpin(eps[0].HostIf); err != nil {
			return fmt.Errorf("set up firewall of workload %s: %w", workload, err)
		}
	}
	if err := replaceTables(workloadTables(workload), plan.WorkloadFirewall(workload, eps, ports)); err != nil {
		return fmt.Errorf("set up firewall of workload %s: %w", workload, err)
	}
	return nil
}

// setHairpin turns hairpin mode on for the bridge port hostIf.
func setHairpin(hostIf string) error {
	link, err := netlink.LinkByName(hostIf)
	if err != nil {
		return fmt.Errorf("bridge port %s: netlink RTM_GETLINK: %w", hostIf, err)
	}
	if err := netlink.LinkSetHairpin(link, true); err != nil {
		return fmt.Errorf("bridge port %s: hairpin mode: netlink RTM_SETLINK: %w", hostIf, err)
	}
	return nil
}

// TeardownWorkload deletes both tables of a workload (its published
// ports stop answering at once); tables that do not exist are no error.
// Call it when the workload leaves (before PortClaims.Release, so that a
// port is never published twice).
func TeardownWorkload(workload string) error {
	if err := replaceTables(workloadTables(workload), nil); err != nil {
		return fmt.Errorf("tear down firewall of workload %s: %w", workload, err)
	}
	return nil
}

// workloadTables are the workload's two tables, without chains.
func workloadTables(workload string) []plan.Table {
	name := plan.WorkloadTableName(workload)
	return []plan.Table{{Family: plan.FamilyINet, Name: name}, {Family: plan.FamilyBridge, Name: name}}
}

// Endpoint is the attachment as plan.WorkloadFirewall takes it, on
// network n.
func (at Attachment) Endpoint(n plan.Network) plan.Endpoint {
	return plan.Endpoint{Network: n, HostIf: at.HostIf, Addr4: at.Addr4, Addr6: at.Addr6, MAC: at.MAC, Guest: at.Guest}
}
