package launch

import (
	"flag"
	"net/netip"

	"github.com/cove-project/cove/internal/network/plan"
)

// joinArgs renders what a workload asks of its network besides its name,
// the address to pin (ip; zero: none) and the ports to publish, as the
// launcher arguments --ip and --publish that joinFlags reads. Containers
// (Config) and VMs on a bridge (VMConfig) write them alike.
func joinArgs(ip netip.Addr, ports []plan.Port) []string {
	var a []string
	if ip.IsValid() {
		a = append(a, "--ip", ip.String())
	}
	for _, p := range ports {
		a = append(a, "--publish", p.String())
	}
	return a
}

// joinFlags defines --ip and --publish (repeatable) on fs, parsed into
// ip and appended to ports; see joinArgs.
func joinFlags(fs *flag.FlagSet, ip *netip.Addr, ports *[]plan.Port) {
	fs.Func("ip", "IPv4 address on the network", func(s string) (err error) {
		*ip, err = netip.ParseAddr(s)
		return err
	})
	fs.Func("publish", "a published port", func(s string) error {
		p, err := plan.ParsePort(s)
		*ports = append(*ports, p)
		return err
	})
}

// networksFlag defines --network (repeatable) on fs: the first is parsed
// into first (eth0's network), the others appended to more; and --alias
// (repeatable), appended to aliases.
func networksFlag(fs *flag.FlagSet, first *string, more, aliases *[]string) {
	fs.Func("alias", "another name on the networks' DNS (repeatable)", func(s string) error {
		*aliases = append(*aliases, s)
		return nil
	})
	fs.Func("network", "a network to join, repeatable: the first is eth0's (implies --private-network)", func(n string) error {
		if *first == "" {
			*first = n
		} else {
			*more = append(*more, n)
		}
		return nil
	})
}
