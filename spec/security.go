package spec

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// User namespace modes (security.userns); the third form is a range of
// host IDs, "UID:COUNT" (ParseIDRange).
const (
	UserNSHost = "host" // no user namespace: the container's IDs are the host's
	UserNSAuto = "auto" // a 65536-ID block of its own, allocated by cove and kept until cove rm
)

// usernsUsage is cove run --userns's help.
const usernsUsage = `user namespace: "auto" (a block of 65536 host IDs of its own), "host" or "UID:COUNT"`

// IDRange is a block of host user and group IDs: container ID i is host
// ID Base+i, for i < Count.
type IDRange struct {
	Base, Count uint32
}

// ParseIDRange reads "UID:COUNT": COUNT (≥ 1) host IDs from UID (≥ 1:
// host root is never a container's), ending at or below 4294967294
// ((uid_t)-1 is no ID).
func ParseIDRange(s string) (IDRange, error) {
	b, c, ok := strings.Cut(s, ":")
	base, err1 := strconv.ParseUint(b, 10, 32)
	count, err2 := strconv.ParseUint(c, 10, 32)
	switch {
	case !ok || err1 != nil || err2 != nil:
		return IDRange{}, fmt.Errorf("%q is not UID:COUNT (two decimal numbers)", s)
	case base == 0:
		return IDRange{}, fmt.Errorf("%q starts at host root (UID 0); choose a range above it, or \"host\"", s)
	case count == 0:
		return IDRange{}, fmt.Errorf("%q maps no IDs; COUNT must be at least 1", s)
	case base+count > math.MaxUint32:
		return IDRange{}, fmt.Errorf("%q ends beyond the last host ID %d", s, uint32(math.MaxUint32-1))
	}
	return IDRange{uint32(base), uint32(count)}, nil
}

// String is r as ParseIDRange reads it.
func (r IDRange) String() string { return fmt.Sprintf("%d:%d", r.Base, r.Count) }

// Mapping is r as an ID map line, "0:BASE:COUNT" (container ID, host ID,
// count: podman's inspect form).
func (r IDRange) Mapping() string { return fmt.Sprintf("0:%d:%d", r.Base, r.Count) }

// End is the first host ID after r.
func (r IDRange) End() uint64 { return uint64(r.Base) + uint64(r.Count) }

// Overlaps reports whether r and o share an ID.
func (r IDRange) Overlaps(o IDRange) bool {
	return uint64(r.Base) < o.End() && uint64(o.Base) < r.End()
}

// Contains reports whether host ID id is in r.
func (r IDRange) Contains(id uint32) bool { return id >= r.Base && uint64(id) < r.End() }

// Inside is host ID id as the user namespace of r's map sees it (its
// offset from Base), false when r does not hold it.
func (r IDRange) Inside(id uint32) (uint32, bool) { return id - r.Base, r.Contains(id) }

// readSecurity fills s from the [security] table t; capability names are
// normalised to "CAP_X".
func readSecurity(t table, s *Security) {
	s.CapAdd = readCaps(t, "cap_add")
	s.CapDrop = readCaps(t, "cap_drop")
	t.read("seccomp", &s.Seccomp)
	t.read("userns", &s.UserNS)
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
	return len(s.CapAdd) == 0 && len(s.CapDrop) == 0 && (s.Seccomp == "" || s.Seccomp == SeccompDefault) && !s.AllowNewPrivileges && s.UserNS == ""
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
	if msg := checkUserNS(s.UserNS); msg != "" {
		v.add("security.userns", msg)
	}
}

// checkUserNS returns "" if mode is a valid security.userns, else what
// is wrong.
func checkUserNS(mode string) string {
	if mode == "" || mode == UserNSHost || mode == UserNSAuto {
		return ""
	}
	if _, err := ParseIDRange(mode); err != nil {
		return fmt.Sprintf(`%s; allowed: "auto", "host" or "UID:COUNT", e.g. "1000000:65536"`, err)
	}
	return ""
}

// UserNS is the user namespace mode a container runs with: its
// security.userns, else by default UserNSAuto for a container from an
// image on a network of its own (foreign content, whose root should not
// be the host's), and UserNSHost for one from a rootfs (a tree the host's
// administrator built and owns, often shared with host tools, as
// systemd-nspawn's default --private-users=no) or on the host's network
// (a user namespace gives no capability over the host's network
// namespace: no port below 1024, no raw socket; Docker's userns-remap
// requires --userns=host with --network=host). An image container that
// shares another's network namespace has one too, although that namespace
// belongs to the other's user namespace: the launcher lets it bind ports
// below 1024 there (see isolate.Launch). "" for a VM.
func (s *Spec) UserNS() string {
	switch {
	case s.Container == nil:
		return ""
	case s.Security.UserNS != "":
		return s.Security.UserNS
	case s.Container.Image != "" && s.Container.Network != NetworkHost:
		return UserNSAuto
	}
	return UserNSHost
}

// HasUserNS reports whether a container with security.userns = mode runs
// in a user namespace of its own.
func HasUserNS(mode string) bool { return mode != "" && mode != UserNSHost }

// idmapMount checks that only a bind mount asks for idmap (key k is the
// mount's).
func (v *validator) idmapMount(k string, m Mount) {
	if m.Idmap && m.Type != MountBind {
		v.add(k+".idmap", fmt.Sprintf(`only a mount of type "bind" can be idmapped; a %s belongs to the container already`, m.Type))
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
