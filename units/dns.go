package units

import (
	"net/netip"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
)

// SectionSocket is the [Socket] section of a socket unit.
const SectionSocket Section = "Socket"

// DNSPort is the port of a network's name service.
const DNSPort = 53

// Listen is one socket of a socket unit (signature a(ss)): its type as
// systemd's D-Bus property Listen names it ("Datagram", "Stream"; the
// directive is ListenTYPE=) and its address.
type Listen struct{ Type, Address string }

func (v Listen) text() (string, error) { return plainText(v.Address) }
func (v Listen) dbus() any {
	return []struct{ Type, Address string }{{v.Type, v.Address}}
}

// CompileDNS returns the socket unit of network n's name service,
// spec.DNSSocketName(n.Name): UDP and TCP port 53 on the network's
// gateway addresses, with FreeBind because the bridge that carries them
// may not be up yet. The first query starts cove-dns@NETWORK.service (the
// packaged template), which answers and exits when idle; the socket
// stays. The socket is bound to the network's unit, stops with it, and
// is wanted by it (WantedBy: the generator links it into the network
// unit's .wants), so bringing a network up brings its name service up.
// It has no default dependencies: it runs early and in the host's
// network namespace. Callers skip networks without DNS (n.NoDNS).
func CompileDNS(n plan.Network) Unit {
	u := networkSocket(spec.DNSSocketName(n.Name), "name service of cove network "+n.Name, n)
	for _, typ := range []string{"Datagram", "Stream"} {
		for _, gw := range n.Gateways() {
			u.add(SectionSocket, "Listen", "Listen"+typ, Listen{typ, netip.AddrPortFrom(gw, DNSPort).String()})
		}
	}
	u.add(SectionSocket, "FreeBind", "", Bool(true))
	return u
}

// networkSocket is the [Unit] part of a socket unit called name that
// serves network n (description says what for): bound to and ordered
// after the network's unit, and wanted by it (the generator links it
// into the network unit's .wants), so it comes up with the bridge and
// stops with it; no default dependencies (it runs early, in the host's
// network namespace), stopped at shutdown.
func networkSocket(name, description string, n plan.Network) Unit {
	netUnit := spec.NetworkUnitName(n.Name)
	u := Unit{Name: name, WantedBy: []string{netUnit}}
	u.add(SectionUnit, "Description", "", Str(description))
	u.add(SectionUnit, "DefaultDependencies", "", Bool(false))
	u.add(SectionUnit, "BindsTo", "", Names{netUnit})
	u.add(SectionUnit, "After", "", Names{netUnit})
	u.add(SectionUnit, "Conflicts", "", Names{"shutdown.target"})
	u.add(SectionUnit, "Before", "", Names{"shutdown.target"})
	return u
}
