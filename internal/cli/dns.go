package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/cove-project/cove/internal/dns"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/ondemand"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// dnsServeCmd is ExecStart= of cove-dns@NETWORK.service, which
// cove-dns@NETWORK.socket starts on the first query: it answers the
// names of NETWORK's workloads from their leases, forwards the others to
// the host's resolvers (less the network's own gateways), and exits 0
// after --idle without a query. It serves only the sockets systemd
// passes.
func dnsServeCmd(ctx context.Context, env *Env, args []string) error {
	r, ok, err := parseResponder(env, launch.DNSServeVerb, dns.DefaultIdle, "query", args)
	if !ok || err != nil {
		return err
	}
	n := r.net
	upstreams, err := dns.ReadUpstreams(dns.ResolvConf(), n.Gateway4, n.Gateway6)
	if err != nil {
		return fmt.Errorf("serve dns of network %s: %w", n.Name, err)
	}
	conns, lns, err := ondemand.Sockets(spec.DNSSocketName(n.Name))
	if err != nil {
		return fmt.Errorf("serve dns of network %s: %w", n.Name, err)
	}
	if len(upstreams) == 0 {
		r.logf("no upstream resolver in %s: names outside the network get SERVFAIL", dns.ResolvConf())
	}
	return dns.Serve(ctx, conns, lns, dns.Config{
		Zone:      dns.LeaseZone{Network: n, Leases: network.Leases{Root: network.DefaultLeaseRoot}, Catalog: &network.Declared},
		Upstreams: upstreams,
		Idle:      r.idle,
		Logf:      r.logf,
	})
}

// responder is what the verb of a network's socket-activated responder
// (dns-serve, dhcp-serve) was told: the network, how long to go on
// without a request, and where to log.
type responder struct {
	net  plan.Network
	idle time.Duration
	logf func(format string, args ...any) // a line "cove VERB NETWORK: ..." on stderr (the journal)
}

// parseResponder parses the arguments of verb, [--idle DURATION]
// NETWORK (a request is what the responder answers, for --idle's help),
// and looks the network up. ok is false after -h.
func parseResponder(env *Env, verb string, idle time.Duration, request string, args []string) (responder, bool, error) {
	fs := newFlags(verb, "[--idle DURATION] NETWORK", env.Stderr)
	d := fs.Duration("idle", idle, "exit after this long without a "+request)
	if ok, err := parse(fs, args); !ok || err != nil {
		return responder{}, false, err
	}
	if fs.NArg() != 1 {
		return responder{}, false, usagef("%s: want one network name", verb)
	}
	n, err := network.Named(fs.Arg(0))
	if err != nil {
		return responder{}, false, fmt.Errorf("%s: %w", verb, err)
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(env.Stderr, "cove %s %s: %s\n", verb, n.Name, fmt.Sprintf(format, a...))
	}
	return responder{net: n, idle: *d, logf: logf}, true, nil
}
