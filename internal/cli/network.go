package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cove-project/cove/internal/api"
	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/dns"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// networkUpCmd is ExecStart= of cove-network@NAME.service: the bridge and
// the firewall table of network NAME, in this network namespace.
func networkUpCmd(_ context.Context, env *Env, args []string) error {
	if len(args) != 1 {
		return usagef("%s: want one network name", launch.NetworkUpVerb)
	}
	if err := network.Up(args[0]); err != nil {
		return err
	}
	warnBlockingChains(env, args[0])
	return writeResolvConf(args[0])
}

// warnBlockingChains warns (into the network unit's journal) about the
// host's chains that drop network name's traffic whatever cove's tables
// accept (plan.BlockingChains), with what would let it through; a
// firewall that cannot be read is warned about too.
func warnBlockingChains(env *Env, name string) {
	n, err := network.Named(name)
	if err != nil {
		return // Up read it a moment ago
	}
	cs, err := network.HostChains()
	if err != nil {
		fmt.Fprintf(env.Stderr, "cove: warning: network %s: cannot check the host's firewall for chains that drop its traffic: %v\n", name, err)
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(plan.BlockingWarning(n, plan.BlockingChains(cs))), "\n") {
		if line != "" {
			fmt.Fprintf(env.Stderr, "cove: warning: network %s: %s\n", name, line)
		}
	}
}

// writeResolvConf writes the resolv.conf that network name's containers
// get (dns.ContainerResolvConf) to launch.ResolvConf, atomically.
func writeResolvConf(name string) error {
	n, err := network.Named(name)
	if err != nil {
		return err
	}
	data, err := dns.ContainerResolvConf(n, dns.ResolvConf())
	if err != nil {
		return fmt.Errorf("bring up network %s: resolv.conf: %w", name, err)
	}
	return declared.WriteFile(launch.ResolvConf(name), data)
}

// networkDownCmd is ExecStop= of cove-network@NAME.service: it removes
// what networkUpCmd made.
func networkDownCmd(_ context.Context, _ *Env, args []string) error {
	if len(args) != 1 {
		return usagef("%s: want one network name", launch.NetworkDownVerb)
	}
	err := network.Down(args[0])
	if rerr := os.Remove(launch.ResolvConf(args[0])); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("bring down network %s: %w", args[0], rerr))
	}
	return err
}

// networkReleaseCmd gives back what a workload took on networks: its
// lease, port claims and tables, and the host end of its veth or its tap
// (idempotent). With a network (NAME NETWORK: a VM's ExecStopPost=), what
// it took on that one; with the workload's name alone (the instance of
// cove-release@NAME or cove-release@NAME@failed, which a container's unit starts
// when it has ended: spec.ReleaseUnitName), what it took on every
// network, unless its unit runs again as the run that took it
// (network.Holders.ReleaseEnded).
func networkReleaseCmd(ctx context.Context, _ *Env, args []string) error {
	switch len(args) {
	case 1:
		return releaseEnded(ctx, spec.ReleasedWorkload(args[0]))
	case 2:
		return network.Leave(args[1], args[0])
	}
	return usagef("%s: want a workload name and, for a VM's, a network name", launch.NetworkReleaseVerb)
}

// releaseEnded gives back what workload took on networks unless its unit
// runs as the run that took it.
func releaseEnded(ctx context.Context, workload string) error {
	conn, err := supervisor.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return network.Holders{Root: network.DefaultHolderRoot}.ReleaseEnded(workload, conn.Runs(ctx))
}

// networkCommand is the group cove network SUBCOMMAND.
func networkCommand(env *Env) *cobra.Command {
	c := group("network", "manage networks")
	c.Example = "  cove network ls\n  cove network create --subnet4 10.80.0.0/24 backend\n  cove network connect backend web\n  cove network rm backend"
	c.AddCommand(networkLsCommand(env), networkInspectCommand(env), networkCreateCommand(env), networkRmCommand(env),
		networkConnectCommand(env, true), networkConnectCommand(env, false))
	c.Short += ": " + strings.Join(subcommands(c), ", ")
	return c
}

// networkInfo is what cove network ls and inspect show of a network.
type networkInfo struct {
	Name      string            `json:"name"`
	Bridge    string            `json:"bridge"`
	Subnet4   string            `json:"subnet4"`
	Gateway4  string            `json:"gateway4"`
	Subnet6   string            `json:"subnet6"`
	Gateway6  string            `json:"gateway6"`
	Internal  bool              `json:"internal"`
	DNS       bool              `json:"dns"`
	AllowHost []string          `json:"allow_host"`
	Labels    map[string]string `json:"labels,omitempty"`
	File      string            `json:"file,omitempty"` // "" for the default network without one
	State     string            `json:"state"`          // ActiveState of cove-network@NAME.service
	Leases    map[string]string `json:"leases"`         // IPv4 address → workload
	Firewall  string            `json:"firewall,omitempty"`
}

// describeNetwork gathers n's networkInfo; conn may be nil (state
// "unknown").
func describeNetwork(ctx context.Context, conn *supervisor.Conn, n plan.Network) (networkInfo, error) {
	info := networkInfo{Name: n.Name, Bridge: n.Bridge, Subnet4: n.Subnet4.String(), Gateway4: n.Gateway4.String(),
		Subnet6: plan.Text(n.Subnet6), Gateway6: plan.Text(n.Gateway6), Labels: n.Labels, Internal: n.Internal, DNS: !n.NoDNS,
		AllowHost: []string{}, State: "unknown", Leases: map[string]string{}, Firewall: plan.Firewall(n).String()}
	for _, h := range n.AllowHost {
		info.AllowHost = append(info.AllowHost, h.String())
	}
	if _, err := os.Stat(network.Declared.Path(n.Name)); err == nil {
		info.File = network.Declared.Path(n.Name)
	}
	if conn != nil {
		st, err := conn.UnitState(ctx, spec.NetworkUnitName(n.Name))
		if err != nil {
			return info, err
		}
		info.State = st
	}
	leases, err := network.Leases{Root: network.DefaultLeaseRoot}.List(n.Name)
	for a, w := range leases {
		info.Leases[a.String()] = w
	}
	return info, err
}

// describeNetworks describes the networks named, or all declared ones.
func describeNetworks(ctx context.Context, names []string) ([]networkInfo, error) {
	var nets []plan.Network
	if len(names) == 0 {
		all, err := network.Declared.All()
		if err != nil {
			return nil, err
		}
		nets = all
	}
	for _, name := range names {
		n, err := network.Declared.Named(name)
		if err != nil {
			return nil, err
		}
		nets = append(nets, n)
	}
	conn, err := supervisor.Connect(ctx)
	if err == nil {
		defer conn.Close()
	}
	infos := []networkInfo{}
	for _, n := range nets {
		info, err := describeNetwork(ctx, conn, n)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

// networkLsCommand is cove network ls: the declared networks.
func networkLsCommand(env *Env) *cobra.Command {
	var out *output
	c := &cobra.Command{
		Use:   "ls [flags]",
		Short: "list the networks",
		Long: `List the networks: NAME BRIDGE SUBNET4 SUBNET6 INTERNAL STATE WORKLOADS (STATE is
cove-network@NAME.service's, WORKLOADS the number of leases). --json: each
network's settings, its file and its leases (address -> workload).`,
		Example: "  cove network ls\n  cove network ls --json\n  cove network ls --format '{{.Name}} {{.Subnet4}}'",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return listNetworks(cmd.Context(), env, out) },
	}
	out = outputFlags(c)
	return c
}

// listNetworks prints the declared networks.
func listNetworks(ctx context.Context, env *Env, out *output) error {
	infos, err := describeNetworks(ctx, nil)
	if err != nil {
		return err
	}
	for i := range infos {
		infos[i].Firewall = ""
	}
	if done, err := out.print(env.Stdout, infos); done {
		return err
	}
	tw := newTable(env.Stdout, 2)
	fmt.Fprintln(tw, "NAME\tBRIDGE\tSUBNET4\tSUBNET6\tINTERNAL\tSTATE\tWORKLOADS")
	for _, i := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%d\n", i.Name, i.Bridge, i.Subnet4, i.Subnet6, i.Internal, i.State, len(i.Leases))
	}
	return tw.Flush()
}

// networkInspectCommand is cove network inspect: networks as JSON, with
// their leases and the firewall table cove installs for them.
func networkInspectCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:               "inspect NAME...",
		Short:             "show networks as JSON, with their leases and firewall table",
		Example:           "  cove network inspect cove\n  cove network inspect cove backend",
		Args:              wantArgs(1, -1, "at least one network name"),
		ValidArgsFunction: completeNetworks,
		RunE: func(cmd *cobra.Command, args []string) error {
			infos, err := describeNetworks(cmd.Context(), args)
			if err != nil {
				return err
			}
			return printJSON(env.Stdout, infos)
		},
	}
}

// completeNetworks completes the names of the declared networks.
func completeNetworks(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	all, _ := network.Declared.All() // an error: no candidates
	names := make([]string, len(all))
	for i, n := range all {
		names[i] = n.Name
	}
	return candidates(names, args, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// networkCreateCommand is cove network create: it writes a network file
// after checking it against the other networks (a subnet it picks itself
// also avoids the host's routes); the network comes up when a workload on
// it starts.
func networkCreateCommand(env *Env) *cobra.Command {
	s := spec.Network{DNS: true, PrivilegedPorts: true, IPv6: true}
	var labels []string
	c := &cobra.Command{
		Use:   "create [flags] NAME",
		Short: "create a network",
		Long: `Write the network file /etc/cove/networks/NAME.toml and reload systemd; refused
for a network that exists, a subnet that overlaps another network's and a
bridge another network uses. Without --subnet4 (or --subnet): the first /24 of
10.78.0.0/15 that no network and no route of the host uses. The bridge comes up
when the first workload on the network starts.`,
		Example: `  cove network create backend
  cove network create --subnet4 10.80.0.0/24 --internal backend
  cove network create --dns=false --allow-host 8080 --allow-host 123/udp lab
  cove network create --ipv6=false --label team=shop shop`,
		Args: wantArgs(1, 1, "one network name"),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if s.Labels, err = parseLabels(labels); err != nil {
				return err
			}
			return createNetwork(cmd.Context(), env, args[0], s)
		},
	}
	c.Flags().StringArrayVar(&labels, "label", nil, "set a label `KEY=VALUE` (repeatable)")
	fs := c.Flags()
	for _, f := range []struct {
		name string
		dst  *string
	}{{"subnet4", &s.Subnet4}, {"gateway4", &s.Gateway4}, {"subnet6", &s.Subnet6}, {"gateway6", &s.Gateway6}, {"bridge", &s.Bridge}} {
		fs.StringVar(f.dst, f.name, "", "the network file's "+f.name+" (default: see the README)")
	}
	fs.StringVar(&s.Subnet4, "subnet", "", "the same as --subnet4 (Docker's name)")
	fs.BoolVar(&s.Internal, "internal", false, "no egress")
	fs.BoolVar(&s.DNS, "dns", true, "names on the gateway")
	fs.BoolVar(&s.PrivilegedPorts, "privileged-ports", true, "workloads may publish host ports below 1024")
	fs.BoolVar(&s.IPv6, "ipv6", true, "an IPv6 subnet besides the IPv4 one")
	fs.Var((*listValue)(&s.AllowHost), "allow-host", "a host service on the gateway the network may reach, PORT[/PROTO] (repeatable)")
	return c
}

// createNetwork creates network name with settings s
// (declared.CreateNetwork) and reloads systemd.
func createNetwork(ctx context.Context, env *Env, name string, s spec.Network) error {
	n, err := declared.CreateNetwork(ctx, name, s)
	if err != nil {
		return networkUsage(err)
	}
	subnets := make([]string, len(n.Subnets()))
	for i, sub := range n.Subnets() {
		subnets[i] = fmt.Sprintf("%v via %v", sub, n.Gateways()[i])
	}
	fmt.Fprintf(env.Stdout, "%s: %s, bridge %s\n", name, strings.Join(subnets, ", "), n.Bridge)
	return reloadUnits(ctx)
}

// networkUsage makes a refusal for what was asked a usage error (exit
// status 2); a network in use stays a failure (1).
func networkUsage(err error) error {
	for _, e := range []error{declared.ErrNetworkExists, declared.ErrNetworkSettings, declared.ErrDefaultNetwork, network.ErrUnknown} {
		if errors.Is(err, e) {
			return usageError{err}
		}
	}
	return err
}

// networkConnectCommand is cove network connect NET NAME (connect) or
// cove network disconnect NET NAME: a running container joins a network
// besides its own, or leaves one it joined so, as docker network connect
// and disconnect do (api.Networker).
func networkConnectCommand(env *Env, connect bool) *cobra.Command {
	c := &cobra.Command{
		Use:   "connect NETWORK NAME",
		Short: "connect a running container to a network",
		Long: `Give running container NAME a link on NETWORK besides its networks: an address
of NETWORK's pool, an interface ethN (the first free N) with the routes of its
subnets, names on it; its default route and published ports stay on its first
network. The container must be on a network of cove's (not host or none). The
link lasts until the container stops (its spec's container.networks makes it
permanent); cove network disconnect ends it sooner.`,
		Example: "  cove network connect metrics web\n  cove network connect --alias api metrics web",
	}
	var aliases []string
	if connect {
		c.Flags().StringArrayVar(&aliases, "alias", nil, "another name of the container on the network (repeatable)")
	}
	if !connect {
		c.Use, c.Short, c.Example = "disconnect NETWORK NAME", "disconnect a running container from a network", "  cove network disconnect metrics web"
		c.Long = `Take running container NAME off NETWORK, one it joined besides its first
network (cove network connect, or its spec's container.networks): its link
and address go at once. Its first network it leaves when it stops.`
	}
	c.Args = wantArgs(2, 2, "a network and a container")
	c.ValidArgsFunction = completeNetworks
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return withBackend(cmd.Context(), env, func(b api.Backend) error {
			nw, ok := b.(api.Networker)
			if !ok {
				return fmt.Errorf("network %s: only root can change a container's networks on this host (or use docker network %s through the API)", cmd.Name(), cmd.Name())
			}
			if connect {
				return nw.Connect(cmd.Context(), args[0], args[1], aliases)
			}
			return nw.Disconnect(cmd.Context(), args[0], args[1])
		})
	}
	return c
}

// networkRmCommand is cove network rm: it removes networks, refused for
// the default network and for a network a workload holds a lease on or a
// declared spec names; otherwise its unit is stopped (bridge and firewall
// go) and its file removed.
func networkRmCommand(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:               "rm NAME...",
		Short:             "remove networks",
		Example:           "  cove network rm backend",
		Args:              wantArgs(1, -1, "at least one network name"),
		ValidArgsFunction: completeNetworks,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			for _, name := range args {
				if err := removeNetwork(ctx, name); err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, name)
			}
			return reloadUnits(ctx)
		},
	}
}

// removeNetwork removes one network (declared.RemoveNetwork).
func removeNetwork(ctx context.Context, name string) error {
	return networkUsage(withConn(ctx, func(c *supervisor.Conn) error { return declared.RemoveNetwork(ctx, c, name) }))
}

// reloadUnits makes systemd rerun cove's generator, which writes the
// units of the declared networks (their DNS sockets).
func reloadUnits(ctx context.Context) error {
	return withConn(ctx, func(c *supervisor.Conn) error { return c.Reload(ctx) })
}
