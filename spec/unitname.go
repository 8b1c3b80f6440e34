package spec

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The unit names of a workload, spelled here only: its service
// cove-NAME.service and its health check's cove-NAME-health.timer and
// cove-NAME-health.service.
const (
	unitPrefix    = "cove-"
	serviceSuffix = ".service"
)

// UnitPattern matches every workload's service (and, since a workload
// name may end in "-health", its health-check service too: see NameOfUnit).
const UnitPattern = unitPrefix + "*" + serviceSuffix

// UnitName returns the service name of workload name.
func UnitName(name string) string { return unitPrefix + name + serviceSuffix }

// The tails that make the names of a workload's other units from its own:
// the health check's (NAME-health), the image pull's (NAME-pull), a
// published port's proxy's (NAME-proxy-HOSTPORT for TCP,
// NAME-proxy-udp-HOSTPORT for UDP). A workload may not be called so
// (AuxiliaryName): its unit would be another workload's.
const (
	healthTail = "-health"
	pullTail   = "-pull"
	proxyTail  = "-proxy-"
	proxyUDP   = "udp-"
)

// autoUpdateName is the name of cove's own auto-update units,
// cove-auto-update.service and AutoUpdateTimer (packaging/).
const autoUpdateName = "auto-update"

// AutoUpdateTimer is the timer that runs cove update --auto, which every
// workload with auto_update = "registry" wants.
const AutoUpdateTimer = unitPrefix + autoUpdateName + ".timer"

// HealthTimerName and HealthServiceName name a workload's health-check
// timer and probe service.
func HealthTimerName(name string) string   { return unitPrefix + name + healthTail + ".timer" }
func HealthServiceName(name string) string { return unitPrefix + name + healthTail + serviceSuffix }

// PullUnitName names the unit that pulls an image container's image
// before it starts.
func PullUnitName(name string) string { return unitPrefix + name + pullTail + serviceSuffix }

// ProxySocketName and ProxyServiceName name the proxy of workload name's
// port published on [::1]:hostPort with protocol proto ("tcp" or "udp"):
// its socket unit and the service the socket starts (units.Unit's
// Proxies). A TCP port's names have no protocol in them (they are those
// of the units made before UDP had a proxy).
func ProxySocketName(name, proto string, hostPort uint16) string {
	return proxyName(name, proto, hostPort) + ".socket"
}
func ProxyServiceName(name, proto string, hostPort uint16) string {
	return proxyName(name, proto, hostPort) + serviceSuffix
}

// proxyName is ProxySocketName without its suffix.
func proxyName(name, proto string, hostPort uint16) string {
	tail := proxyTail
	if proto == "udp" {
		tail += proxyUDP
	}
	return unitPrefix + name + tail + strconv.Itoa(int(hostPort))
}

// AuxiliaryName reports whether name, as a workload name, would name one
// of workload owner's other units (its health check, image pull or a
// port's proxy), and which; such a name is not a workload's.
func AuxiliaryName(name string) (owner, what string, ok bool) {
	if w, ok := strings.CutSuffix(name, healthTail); ok && w != "" {
		return w, "health check", true
	}
	if w, ok := strings.CutSuffix(name, pullTail); ok && w != "" {
		return w, "image pull", true
	}
	if i := strings.LastIndex(name, proxyTail); i > 0 {
		tail := name[i+len(proxyTail):]
		port, udp := strings.CutPrefix(tail, proxyUDP)
		if n, err := strconv.ParseUint(port, 10, 16); err == nil && n > 0 {
			if udp {
				port += "/udp"
			}
			return name[:i], "proxy of port " + port, true
		}
	}
	return "", "", false
}

// NetworkUnitName names the oneshot unit that brings a network up
// (bridge and firewall): an instance of cove-network@.service.
func NetworkUnitName(network string) string {
	return "cove-network@" + network + serviceSuffix
}

// ReleaseUnitName names the unit that gives back what container name
// took on its networks (leases, port claims, tables, links) once its
// service has ended: an instance of cove-release@.service, which the
// service's OnSuccess= starts; with failed, the one its OnFailure= starts
// (the instance NAME@failed). Two units, not one that both name: systemd
// 252 warns at every start of a unit that two dependencies of one unit
// trigger ("multiple trigger source candidates").
func ReleaseUnitName(name string, failed bool) string {
	if failed {
		name += failedRelease
	}
	return releasePrefix + name + serviceSuffix
}

// TemplateReleaseUnitName is ReleaseUnitName in the template unit of
// replicated container name: each instance's, by the specifier %i.
func TemplateReleaseUnitName(name string, failed bool) string {
	return ReleaseUnitName(name+instanceSep+"%i", failed)
}

// ReleasedWorkload is the workload whose release unit has instance.
func ReleasedWorkload(instance string) string { return strings.TrimSuffix(instance, failedRelease) }

// failedRelease ends the instance of the release unit of a failure.
const failedRelease = "@failed"

// releasePrefix begins the names of the release units.
const releasePrefix = "cove-release@"

// DNSSocketName names the socket unit of a network's name service (its
// gateway addresses, port 53), which starts an instance of
// cove-dns@.service on the first query.
func DNSSocketName(network string) string { return "cove-dns@" + network + ".socket" }

// DHCPSocketName names the socket unit of a network's DHCP responder
// (UDP port 67 on its bridge), which starts an instance of
// cove-dhcp@.service on the first request.
func DHCPSocketName(network string) string { return "cove-dhcp@" + network + ".socket" }

// DHCPServiceName names the instance of cove-dhcp@.service that a
// network's DHCP socket starts.
func DHCPServiceName(network string) string { return "cove-dhcp@" + network + ".service" }

// RASocketName names the socket unit of a network's router
// advertisements (a socket the DHCP responder writes to), which starts an
// instance of cove-ra@.service on the first datagram.
func RASocketName(network string) string { return "cove-ra@" + network + ".socket" }

// NameOfUnit returns the workload name of a unit named by UnitName, and
// false for any other unit name.
func NameOfUnit(unit string) (string, bool) {
	rest, ok := strings.CutPrefix(unit, unitPrefix)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, serviceSuffix)
	return name, ok && name != ""
}

// MaxUnitNameLen is the longest unit name, in bytes (systemd's
// UNIT_NAME_MAX - 1).
const MaxUnitNameLen = 255

// unitSuffix reports whether n ends in a systemd unit type suffix.
func unitSuffix(n string) bool {
	for _, s := range []string{".service", ".socket", ".target", ".mount", ".device", ".path", ".timer", ".slice", ".scope", ".swap", ".automount"} {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// unitRule says what unit names may look like.
const unitRule = `unit names are letters, digits and ":_.\-@" with a type suffix such as .service or .target, at most 255 characters`

// checkUnitName returns "" if n is a valid systemd unit name (not a
// template) with a type suffix, else what is wrong.
func checkUnitName(n string) string {
	if msg := checkText(n); msg != "" {
		return msg
	}
	i := strings.LastIndexByte(n, '.')
	if i < 0 || !unitSuffix(n) {
		return fmt.Sprintf(`%q is not a unit name; give the full name with its type suffix, such as "multi-user.target" (%s)`, n, unitRule)
	}
	stem := n[:i]
	if len(n) > MaxUnitNameLen {
		return fmt.Sprintf("unit name %q is too long (%d characters); %s", n, len(n), unitRule)
	}
	if j := strings.IndexFunc(n, func(r rune) bool { return !isUnitChar(r) }); j >= 0 {
		r, _ := utf8.DecodeRuneInString(n[j:])
		return fmt.Sprintf("invalid unit name %q: character %q is not allowed; %s", n, r, unitRule)
	}
	prefix, instance, isInstance := strings.Cut(stem, "@")
	switch {
	case prefix == "":
		return fmt.Sprintf("invalid unit name %q: empty name before the suffix or '@'; %s", n, unitRule)
	case isInstance && strings.Contains(instance, "@"):
		return fmt.Sprintf("invalid unit name %q: more than one '@'; %s", n, unitRule)
	case isInstance && instance == "":
		return fmt.Sprintf("%q is a template unit; name an instance of it, such as %q", n, prefix+"@NAME"+n[i:])
	}
	return ""
}

// isUnitChar reports whether r may appear in a unit name.
func isUnitChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(`:_.\-@`, r)
}
