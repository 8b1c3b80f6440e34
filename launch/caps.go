package launch

import (
	"slices"
	"sort"

	"github.com/cove-project/cove/spec"
)

// DefaultCaps is the bounding set a container keeps unless its spec says
// otherwise: the set Docker and Podman grant by default.
var DefaultCaps = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP",
	"CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// CapNumber returns the number of a capability given in any form
// spec.NormalizeCapability accepts ("CAP_NET_ADMIN", "net_admin").
func CapNumber(name string) (int, bool) {
	c, err := spec.NormalizeCapability(name)
	if err != nil {
		return 0, false
	}
	return slices.Index(spec.Capabilities(), c), true // kernel order
}

// CapSet returns DefaultCaps plus add minus drop, canonical and sorted.
// Names must be valid (the spec was validated).
func CapSet(add, drop []string) []string {
	set := map[string]bool{}
	for _, c := range DefaultCaps {
		set[c] = true
	}
	for _, c := range add {
		n, _ := spec.NormalizeCapability(c)
		set[n] = true
	}
	for _, c := range drop {
		n, _ := spec.NormalizeCapability(c)
		delete(set, n)
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
