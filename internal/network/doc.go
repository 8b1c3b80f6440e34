// Package network is cove's effectful networking for Linux: leases on
// disk (IPAM), the bridge of a network, a container's veth, and the
// network's nftables table. What it applies is computed by the pure
// package internal/network/plan (model, validation, address arithmetic,
// MACs, interface names, the rule set as data).
//
// Who calls what (Up, Down, Join and Leave in workload.go wrap these):
//
//   - cove-network@NAME.service (oneshot, RemainAfterExit), in the
//     host's network namespace: ExecStart = EnsureBridge then Setup;
//     ExecStop = Teardown then RemoveBridge. Restarting it after an admin's
//     "nft flush ruleset" restores the table (Setup replaces it whole).
//   - the launcher, before it hands the payload to systemd:
//     Leases.Allocate (pinned = the spec's ip, later), then AttachContainer
//     with the container's /proc/PID/ns/net (netns.GetFromPid) and
//     plan.WorkloadMAC (Join, called by isolate.Launch); the unit's
//     ExecStopPost (cove network-release): Detach (usually a no-op: the
//     host end dies with the namespace) and Leases.Release (Leave).
//
// Every function works in the network namespace of the calling thread
// (AttachContainer also enters the container's, on a thread of its own),
// and writes sysctls only there: tests run it inside namespaces they make.
//
// Leases are files ROOT/NETWORK/leases/ADDRESS created with O_EXCL under
// an flock of ROOT/NETWORK/lock. A holder that dies without Release keeps
// its lease; reclaiming those (comparing holders with the units systemd
// knows, at Allocate or from the network unit) is not done yet.
package network
