// Package network is cove's effectful networking for Linux: the catalog
// of declared networks (catalog.go), leases on disk (IPAM), port claims,
// the bridge of a network, a container's veth or a VM's tap, and the
// nftables tables.
// What it applies is computed by the pure package internal/network/plan
// (model, validation, address arithmetic, MACs, interface names, the
// rule sets as data).
//
// Who calls what (Up, Down, Join and Leave in workload.go wrap these):
//
//   - cove-network@NAME.service (oneshot, RemainAfterExit), in the
//     host's network namespace: ExecStart = EnsureBridge then Setup (the
//     table inet cove-net-NAME); ExecStop = Teardown then RemoveBridge.
//     Restarting it after an admin's "nft flush ruleset" restores the
//     table (Setup replaces it whole).
//   - the launcher, before it hands the payload to systemd (Join, called
//     by isolate.Launch): Leases.Allocate (the spec's ip, or any free
//     address), PortClaims.Claim, AttachContainer with the container's
//     /proc/PID/ns/net and plan.WorkloadMAC, then SetupWorkload (the
//     tables bridge cove-wl-WORKLOAD, anti-spoofing, and inet
//     cove-wl-WORKLOAD, its published ports), holding the workload's
//     holder file (Holders.Hold: what an earlier run left goes first);
//     after the unit has ended, its release unit
//     (cove-release@WORKLOAD.service, cove network-release WORKLOAD:
//     Holders.ReleaseEnded, then Leave on every network it holds a lease
//     on): TeardownWorkload, Detach (usually a no-op: the host end dies
//     with the namespace), PortClaims.Release and Leases.Release.
//   - the VM launcher of a VM on a bridge, before it execs QEMU (Join with
//     LinkTap, called by isolate.LaunchVM): the same steps with AttachTap
//     instead of AttachContainer (a tap on the bridge that QEMU attaches
//     the guest's NIC to, with plan.WorkloadMAC); its ExecStopPost is the
//     same Leave, whose Detach removes the tap (it outlives QEMU).
//
// Every function works in the network namespace of the calling thread
// (AttachContainer also enters the container's, on a thread of its own),
// and writes sysctls only there: tests run it inside namespaces they make.
//
// Leases are files ROOT/NETWORK/leases/ADDRESS created with O_EXCL under
// an flock of ROOT/NETWORK/lock; port claims are files under
// DefaultPortRoot, under an flock too. A holder that dies without Release
// keeps its lease and its ports until an allocation needs them: Join's
// Leases.Stale (reclaimStale) takes back a lease older than StaleAfter
// whose holder's link is gone, with its tables and port claims.
package network
