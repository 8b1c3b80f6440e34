package dns

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strconv"

	mdns "github.com/miekg/dns"
)

// The resolv.conf files upstreams come from: systemd-resolved's list of
// the host's real resolvers when resolved runs, else the usual one.
const (
	ResolvedConf = "/run/systemd/resolve/resolv.conf"
	EtcConf      = "/etc/resolv.conf"
)

// ResolvConf is the file ReadUpstreams should read: ResolvedConf when it
// exists, else EtcConf. (EtcConf may name resolved's stub 127.0.0.53,
// which is fine too: the responder runs in the host's network namespace.)
func ResolvConf() string { return firstExisting(ResolvedConf, EtcConf) }

// firstExisting is the first of paths that exists, else the last.
func firstExisting(paths ...string) string {
	for _, p := range paths[:len(paths)-1] {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[len(paths)-1]
}

// ReadUpstreams returns the nameservers of the resolv.conf at path, in
// order, less those in exclude (a network's own gateway addresses: they
// are the responder itself). A nameserver that is not an IP address is
// skipped; a missing file is no nameserver.
func ReadUpstreams(path string, exclude ...netip.Addr) ([]netip.AddrPort, error) {
	conf, err := mdns.ClientConfigFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read upstream resolvers: %w", err)
	}
	port, err := strconv.ParseUint(conf.Port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("read upstream resolvers from %s: port %q: %w", path, conf.Port, err)
	}
	var ups []netip.AddrPort
	for _, s := range conf.Servers {
		a, err := netip.ParseAddr(s)
		if err != nil || slices.Contains(exclude, a.Unmap()) {
			continue
		}
		ups = append(ups, netip.AddrPortFrom(a.Unmap(), uint16(port)))
	}
	return ups, nil
}
