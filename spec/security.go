package spec

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// readSecurity fills s from the [security] table t; capability names are
// normalised to "CAP_X".
func readSecurity(t table, s *Security) {
	s.CapAdd = readCaps(t, "cap_add")
	s.CapDrop = readCaps(t, "cap_drop")
	t.read("seccomp", &s.Seccomp)
	var noNewPrivs bool
	if t.read("no_new_privileges", &noNewPrivs) {
		s.AllowNewPrivileges = !noNewPrivs
	}
}

// readCaps reads the capability list name of t, normalised; it returns nil
// if the key is absent or the list is empty.
func readCaps(t table, name string) []string {
	var names []string
	t.read(name, &names)
	return normalizeCaps(names, func(msg string) { t.fail(name, msg) })
}

// isDefault reports whether s is the default, i.e. relaxes nothing.
func (s *Security) isDefault() bool {
	return len(s.CapAdd) == 0 && len(s.CapDrop) == 0 && (s.Seccomp == "" || s.Seccomp == SeccompDefault) && !s.AllowNewPrivileges
}

// security checks s.
func (v *validator) security(s *Security) {
	add := v.caps("security.cap_add", s.CapAdd)
	drop := v.caps("security.cap_drop", s.CapDrop)
	for _, c := range add {
		if slices.Contains(drop, c) {
			v.add("security.cap_drop", fmt.Sprintf("%s is listed in both cap_add and cap_drop; list it in one of them", c))
		}
	}
	if s.Seccomp != "" {
		v.oneOf("security.seccomp", "seccomp mode", s.Seccomp, "")
	}
}

// caps returns the capability names of key normalised, reporting those
// that are not capabilities, unless the parser read them (then they are
// normalised already).
func (v *validator) caps(key string, names []string) []string {
	if v.src.has(key) {
		return names
	}
	return normalizeCaps(names, func(msg string) { v.add(key, msg) })
}

// normalizeCaps returns the names that are capabilities, normalised (nil
// if there are none), and passes what is wrong with the others to bad.
func normalizeCaps(names []string, bad func(msg string)) []string {
	var norm []string
	for _, n := range names {
		c, err := NormalizeCapability(n)
		if err != nil {
			bad(err.Error())
			continue
		}
		norm = append(norm, c)
	}
	return norm
}

// capabilities lists the Linux capabilities in kernel order
// (include/uapi/linux/capability.h, up to Linux 6.x).
var capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Capabilities returns the names of all Linux capabilities cove knows, in
// kernel order (CAP_CHOWN is 0), in the normalised "CAP_X" form.
func Capabilities() []string { return slices.Clone(capabilities) }

// NormalizeCapability returns the canonical "CAP_X" form of a capability
// name given case-insensitively with or without the CAP_ prefix
// ("net_admin" → "CAP_NET_ADMIN"), or an error if it names no Linux
// capability.
func NormalizeCapability(name string) (string, error) {
	c := strings.ToUpper(name)
	if strings.IndexFunc(name, func(r rune) bool { return r > unicode.MaxASCII }) >= 0 {
		c = "" // ToUpper maps some non-ASCII letters to ASCII ones
	} else if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	if !slices.Contains(capabilities, c) {
		return "", fmt.Errorf("unknown capability %q; allowed: Linux capability names (see capabilities(7)) with or without CAP_, in any case, e.g. CAP_NET_ADMIN or net_bind_service", name)
	}
	return c, nil
}
