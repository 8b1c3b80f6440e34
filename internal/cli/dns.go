package cli

import (
	"context"
	"fmt"

	"github.com/cove-project/cove/internal/dns"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/launch"
)

// dnsServeCmd is ExecStart= of cove-dns@NETWORK.service, which
// cove-dns@NETWORK.socket starts on the first query: it answers the
// names of NETWORK's workloads from their leases, forwards the others to
// the host's resolvers (less the network's own gateways), and exits 0
// after --idle without a query. It serves only the sockets systemd
// passes.
func dnsServeCmd(ctx context.Context, env *Env, args []string) error {
	fs := newFlags(launch.DNSServeVerb, "[--idle DURATION] NETWORK", env.Stderr)
	idle := fs.Duration("idle", dns.DefaultIdle, "exit after this long without a query")
	if ok, err := parse(fs, args); !ok || err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("%s: want one network name", launch.DNSServeVerb)
	}
	n, err := network.Named(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("serve dns: %w", err)
	}
	upstreams, err := dns.ReadUpstreams(dns.ResolvConf(), n.Gateway4, n.Gateway6)
	if err != nil {
		return fmt.Errorf("serve dns of network %s: %w", n.Name, err)
	}
	conns, lns, err := dns.Activated()
	if err != nil {
		return fmt.Errorf("serve dns of network %s: %w", n.Name, err)
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(env.Stderr, "cove %s %s: %s\n", launch.DNSServeVerb, n.Name, fmt.Sprintf(format, a...))
	}
	if len(upstreams) == 0 {
		logf("no upstream resolver in %s: names outside the network get SERVFAIL", dns.ResolvConf())
	}
	return dns.Serve(ctx, conns, lns, dns.Config{
		Zone:      dns.LeaseZone{Network: n, Leases: network.Leases{Root: network.DefaultLeaseRoot}},
		Upstreams: upstreams,
		Idle:      *idle,
		Logf:      logf,
	})
}
