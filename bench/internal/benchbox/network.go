package benchbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The closed world of a networking benchmark (shared
// docs/network-testing.md): the sandbox boots with Options.PrivateNetwork,
// and MakeOutside joins it by the veth UplinkLink (sandbox, UplinkAddr) —
// up1 (OutsideAddr) to the namespace OutsideNS made inside it, which
// plays the internet. Both addresses are of RFC 2544's benchmarking range
// 198.18.0.0/15 and exist only there.
const (
	OutsideNS   = "cove-bench-outside"
	OutsideAddr = "198.18.0.1"
	UplinkAddr  = "198.18.0.2"
	UplinkLink  = "up0"
)

// OutsideNetNS is OutsideNS's path inside the sandbox, for nsenter --net=.
const OutsideNetNS = "/run/netns/" + OutsideNS

// InstallNetworkUnits installs the shipped cove-network@.service,
// cove-dns@.service and cove-release@.service (which gives a container's
// network back after its unit has ended) in the sandbox's
// /etc/systemd/system, with the built cove instead of /usr/bin/cove, and
// reloads systemd. The box needs /etc
// as an overlay (Options.Declared or Options.Overlays).
func (b *Box) InstallNetworkUnits() error {
	if b.SB.HostPath("/etc/systemd/system") == "" {
		return fmt.Errorf("network units: /etc is not an overlay in the sandbox")
	}
	for _, name := range []string{"cove-network@.service", "cove-dns@.service", "cove-release@.service"} {
		data, err := os.ReadFile(filepath.Join(b.Repo, "packaging", name))
		if err != nil {
			return fmt.Errorf("network units: %w", err)
		}
		unit := strings.ReplaceAll(string(data), "/usr/bin/cove ", b.Cove+" ")
		if unit == string(data) {
			return fmt.Errorf("network units: packaging/%s runs no /usr/bin/cove", name)
		}
		// The built cove lies under /var/tmp, which PrivateTmp= would hide.
		unit = strings.ReplaceAll(unit, "\nPrivateTmp=yes\n", "\nPrivateTmp=no\n")
		cmd := b.SB.Command(b.Ctx, "sh", "-c", "cat > '/etc/systemd/system/"+name+"'")
		cmd.Stdin = strings.NewReader(unit)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("install %s: %v: %s", name, err, out)
		}
	}
	if _, err := Inside(b.Ctx, b.SB, CmdTimeout, nil, "systemctl", "daemon-reload"); err != nil {
		return fmt.Errorf("network units: %w", err)
	}
	return nil
}

// MakeOutside creates OutsideNS and its veth inside the sandbox and sets
// the sandbox's default route there. The returned func removes both.
func (b *Box) MakeOutside() (remove func(), err error) {
	script := fmt.Sprintf(`set -e
ip netns add %[1]s
ip link add %[4]s type veth peer name up1 netns %[1]s
ip addr add %[3]s/15 dev %[4]s
ip link set %[4]s up
ip -n %[1]s link set lo up
ip -n %[1]s addr add %[2]s/15 dev up1
ip -n %[1]s link set up1 up
ip route add default via %[2]s dev %[4]s
`, OutsideNS, OutsideAddr, UplinkAddr, UplinkLink)
	remove = func() {
		// Deleting one end of a veth removes the pair at once.
		Inside(b.Ctx, b.SB, CmdTimeout, nil, "ip", "link", "del", UplinkLink)
		Inside(b.Ctx, b.SB, CmdTimeout, nil, "ip", "netns", "del", OutsideNS)
	}
	if _, err := Inside(b.Ctx, b.SB, CmdTimeout, nil, "sh", "-c", script); err != nil {
		remove()
		return nil, fmt.Errorf("make the outside namespace: %w", err)
	}
	return remove, nil
}

// ClosedWorld fails unless the sandbox runs in a network namespace other
// than this process's, has no link but lo and those allowed (names, or
// prefixes ending in "*", of links the benchmark or the systems under
// test made), and every route of every table leads through one of them,
// the default route through UplinkLink only.
func (b *Box) ClosedWorld(allowed ...string) error {
	self, err1 := os.Readlink("/proc/self/ns/net")
	in, err2 := os.Readlink(b.SB.NetNS())
	if err1 != nil || err2 != nil || self == in {
		return fmt.Errorf("closed world: the sandbox's network namespace is %s (%v), this process's %s (%v)", in, err2, self, err1)
	}
	allowed = append(allowed, "lo")
	var links []struct{ Ifname string }
	if err := b.insideJSON(&links, "ip", "-j", "link", "show"); err != nil {
		return err
	}
	for _, l := range links {
		if !matchAny(l.Ifname, allowed) {
			return fmt.Errorf("closed world: the sandbox has link %s, not made by the benchmark (allowed: %v)", l.Ifname, allowed)
		}
	}
	for _, family := range []string{"-4", "-6"} {
		var routes []struct{ Dst, Dev, Gateway string }
		if err := b.insideJSON(&routes, "ip", "-j", family, "route", "show", "table", "all"); err != nil {
			return err
		}
		for _, r := range routes {
			if !matchAny(r.Dev, allowed) {
				return fmt.Errorf("closed world: route %+v leads through %s (allowed: %v)", r, r.Dev, allowed)
			}
			if r.Dst == "default" && r.Dev != UplinkLink {
				return fmt.Errorf("closed world: default route %+v does not lead to %s", r, OutsideNS)
			}
		}
	}
	return nil
}

// insideJSON runs argv in the sandbox and decodes its JSON output into v.
func (b *Box) insideJSON(v any, argv ...string) error {
	out, err := Inside(b.Ctx, b.SB, CmdTimeout, nil, argv...)
	if err != nil {
		return fmt.Errorf("closed world: %w", err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("closed world: %s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// matchAny says whether name is one of patterns (a trailing "*" matches
// any rest).
func matchAny(name string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		return name == p || strings.HasSuffix(p, "*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*"))
	})
}
