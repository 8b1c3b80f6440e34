package units

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// Proxy is the loopback proxy of one published port: a socket unit
// listening on [::1]:HOSTPORT and the service it starts.
type Proxy struct{ Socket, Service Unit }

// proxies returns the proxies of a workload on a network that
// publishes ports on ::1 or on every address (plan.Port's
// Loopback6Proxied): the kernel cannot DNAT [::1]:PORT to a workload, so
// a socket unit listens there (ListenStream= for TCP, ListenDatagram=
// for UDP) and its first connection or datagram starts "cove-launch
// port-proxy", which finds the workload's address on the network and
// executes systemd-socket-proxyd to ADDRESS:CONTAINERPORT (TCP) or
// relays datagrams there itself (UDP: systemd-socket-proxyd proxies
// streams only); the proxy exits when idle and the socket stays
// (Docker's userland proxy, socket-activated: no process while nobody
// connects).
//
// The workload's unit wants each socket (the socket unit need not exist
// when it starts: a transient run creates its proxies after the
// workload, see supervisor.StartPair). Each socket and service is bound
// to and ordered after the workload, so it listens once the payload is
// ready and goes when the workload stops; the socket has no default
// dependencies, since those would order it before the workload
// (sockets.target comes before every service). The service reads a
// lease and connects, nothing more: root (so that it may read what root
// owns) without a capability, with no new privileges and a read-only
// view of the system (not a dynamic user: its PrivateTmp= would hide a
// cove installed under /tmp or /var/tmp, as the tests' is), and with no
// start limit, since every connection after an idle exit starts it
// again. A spec with replicas (at most one instance may publish ports)
// proxies instance 1.
func proxies(s *spec.Spec, opt Options) []Proxy {
	j := s.Join()
	if j.Network == "" {
		return nil
	}
	workload := s.Name
	if s.Service.Replicas > 0 {
		workload = spec.InstanceName(s.Name, 1)
	}
	main := spec.UnitName(workload)
	var out []Proxy
	for _, p := range ports(j.Ports) {
		if !p.Loopback6Proxied() {
			continue
		}
		listen := netip.AddrPortFrom(netip.IPv6Loopback(), p.HostPort).String()
		sock := Unit{Name: spec.ProxySocketName(s.Name, p.Proto, p.HostPort)}
		sock.add(SectionUnit, "Description", "", Str(fmt.Sprintf("port %s/%s of %s", listen, p.Proto, main)))
		sock.add(SectionUnit, "DefaultDependencies", "", Bool(false))
		sock.add(SectionUnit, "BindsTo", "", Names{main})
		sock.add(SectionUnit, "After", "", Names{main})
		sock.add(SectionUnit, "Conflicts", "", Names{"shutdown.target"})
		sock.add(SectionUnit, "Before", "", Names{"shutdown.target"})
		typ := "Stream"
		if p.Proto == plan.UDP {
			typ = "Datagram"
		}
		sock.add(SectionSocket, "Listen", "Listen"+typ, Listen{typ, listen})

		svc := Unit{Name: spec.ProxyServiceName(s.Name, p.Proto, p.HostPort)}
		svc.add(SectionUnit, "Description", "", Str(fmt.Sprintf("proxy of %s/%s to port %d of %s", listen, p.Proto, p.ContainerPort, main)))
		svc.add(SectionUnit, "BindsTo", "", Names{main})
		svc.add(SectionUnit, "After", "", Names{main})
		svc.add(SectionUnit, "StartLimitIntervalUSec", "StartLimitIntervalSec", Duration(0))
		svc.add(SectionService, "ExecStart", "", Exec{launch.StagePath(opt.Launcher), launch.ProxyVerb,
			"--network", j.Network, "--port", proxyPort(p), workload})
		sandboxProxy(&svc)
		svc.add(SectionService, "Slice", "", Str(Slice))
		svc.add(SectionService, "SyslogIdentifier", "", Str(s.Name+"-proxy"))
		out = append(out, Proxy{sock, svc})
	}
	return out
}

// proxyPort is the port-proxy's --port argument for p: the workload's
// port, with "/udp" for UDP (as Docker writes a port; TCP's has no
// protocol, as before UDP had a proxy).
func proxyPort(p plan.Port) string {
	port := strconv.Itoa(int(p.ContainerPort))
	if p.Proto == plan.UDP {
		port += "/" + plan.UDP
	}
	return port
}

// sandboxProxy adds a proxy service's restrictions (see proxies).
func sandboxProxy(u *Unit) {
	u.add(SectionService, "CapabilityBoundingSet", "", NoCapabilities{})
	u.add(SectionService, "NoNewPrivileges", "", Bool(true))
	u.add(SectionService, "ProtectSystem", "", Str("strict"))
	u.add(SectionService, "ProtectHome", "", Str("yes"))
	for _, p := range []string{"PrivateDevices", "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups"} {
		u.add(SectionService, p, "", Bool(true))
	}
}
