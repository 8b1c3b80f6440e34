// Package dns is the name service of a cove network: a responder on the
// network's gateway addresses, port 53, UDP and TCP, that answers the
// names of the network's workloads itself and forwards every other name
// to the host's resolvers.
//
// No process stays resident. cove-dns@NETWORK.socket (units.CompileDNS)
// holds the sockets; the first query starts cove-dns@NETWORK.service,
// which runs cove dns-serve NETWORK: ondemand.Sockets takes the sockets
// systemd passed, Serve answers on them and returns after Config.Idle
// without a query, and the process exits 0. Queries that arrive
// meanwhile wait in the sockets systemd keeps and start the service
// again.
//
// The zone is read for every query (LeaseZone lists the network's lease
// files), so a workload that starts or stops is seen by the next query.
// Names are WORKLOAD and WORKLOAD.NETWORK (any case, with or without the
// trailing dot); NETWORK itself is in the zone without records; PTR
// queries for the network's addresses are answered from the same leases.
package dns
