package spec

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of the v1 schema.
const (
	MaxNameLen        = 64                 // bytes in a workload name
	MaxHostnameLen    = 64                 // bytes in a hostname (HOST_NAME_MAX)
	MaxDescriptionLen = 256                // characters in a description
	MinMemory         = 1 << 20            // smallest memory limit, 1M
	MaxCPUs           = 1024               // largest cpus value
	MaxDuration       = time.Hour          // largest restart_delay, stop_timeout, start_limit.interval and health durations
	MaxID             = math.MaxUint32 - 1 // largest uid/gid; 2^32-1 is (uid_t)-1
)

const nameRule = "names must start with a lowercase letter or digit, contain only a-z, 0-9, '_', '.' and '-', and be at most 64 characters"

// ValidName returns nil if name is a valid workload name:
// [a-z0-9][a-z0-9_.-]*, at most MaxNameLen bytes. Otherwise it returns an
// *Error with Key "name" that quotes name and says what is allowed.
func ValidName(name string) error {
	msg := ""
	switch {
	case name == "":
		msg = "workload name is empty; " + nameRule
	case len(name) > MaxNameLen:
		msg = fmt.Sprintf("invalid workload name %q: %d characters is too long; %s", name, len(name), nameRule)
	case !isNameStart(name[0]) || strings.IndexFunc(name, func(r rune) bool { return r > 0x7f || !isNameByte(byte(r)) }) >= 0:
		msg = fmt.Sprintf("invalid workload name %q: %s", name, nameRule)
	default:
		return nil
	}
	return &Error{Key: "name", Msg: msg}
}

func isNameStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isNameByte(c byte) bool { return isNameStart(c) || c == '_' || c == '.' || c == '-' }

// Defaults returns a spec of kind container named name with every default
// applied: version 1, workdir "/", user 0:0, hostname derived from name
// (see DefaultHostname; "" if name is not valid), network host, restart
// no, restart_delay 1s, stop_timeout 10s, systemd's start limit, ready
// "started", seccomp default, no_new_privileges, no dependencies, no
// health check, not started at boot. Callers building a spec from flags
// fill in Rootfs and Command and then call Validate. VMDefaults is the
// counterpart for kind vm.
func Defaults(name string) *Spec {
	s := &Spec{Name: name, Version: 1, Kind: KindContainer}
	s.Container = containerDefaults(name)
	s.Service = serviceDefaults()
	s.Security = Security{Seccomp: SeccompDefault}
	return s
}

// serviceDefaults returns the default Service.
func serviceDefaults() Service {
	return Service{Restart: RestartNo, RestartDelay: time.Second, StopTimeout: 10 * time.Second, Ready: ReadyStarted}
}

// containerDefaults returns a Container with the defaults for workload
// name. The hostname is derived only from a valid name: for an invalid one
// the name error says all, and a hostname made from it would be reported
// too.
func containerDefaults(name string) *Container {
	c := &Container{Workdir: "/", Network: NetworkHost}
	if ValidName(name) == nil {
		c.Hostname = DefaultHostname(name)
	}
	return c
}

// DefaultHostname returns the hostname a container gets when the spec sets
// none: the workload name made a valid RFC 1123 hostname, i.e. name itself
// for names without '_' (replaced by '-') and without empty labels or
// labels that start or end with '-' (dropped or trimmed). It returns "" if
// nothing usable is left (never for a valid name).
func DefaultHostname(name string) string {
	var labels []string
	for l := range strings.SplitSeq(strings.ReplaceAll(name, "_", "-"), ".") {
		if len(l) > 63 {
			l = l[:63]
		}
		if l = strings.Trim(l, "-"); l != "" {
			labels = append(labels, l)
		}
	}
	h := strings.Join(labels, ".")
	if validHostname(h) != "" {
		return ""
	}
	return h
}

// Validate checks the semantic rules of the v1 schema on s, which may come
// from Parse or be built in code (e.g. from CLI flags; start from Defaults
// or VMDefaults). It reports every problem as an Errors whose entries
// carry s.File and the dotted key (array elements as [N], from 1, e.g.
// "vm.disk[2].path") but no line or column. Zero Resources fields mean "no
// limit"; an empty Security.Seccomp means SeccompDefault, an empty
// Service.Ready ReadyStarted, a zero StartLimit systemd's default; all
// other required values (Version, Kind, Container.Rootfs, Command,
// Workdir, Hostname, Network, Restart; VM.Kernel unless a disk boots, CPUs,
// Memory, Machine, Accel, Network.Mode; every Health field but
// StartPeriod) must be set. Validate does not modify s.
func (s *Spec) Validate() error {
	v := &validator{file: s.File}
	nameErr := ValidName(s.Name)
	if nameErr != nil {
		v.add("name", nameErr.(*Error).Msg)
	}
	if s.Version != 1 {
		if s.Version == 0 {
			v.add("version", "missing; required: version = 1")
		} else {
			v.add("version", fmt.Sprintf("unsupported version %d; allowed: 1", s.Version))
		}
	}
	switch s.Kind {
	case KindContainer:
		if s.Container == nil {
			v.add("container", `missing [container] table; required for kind "container"`)
		}
		if s.VM != nil {
			v.add("vm", `[vm] goes with kind = "vm"; kind "container" takes a [container] table`)
		}
	case KindVM:
		if s.VM == nil {
			v.add("vm", `missing [vm] table; required for kind "vm"`)
		}
		if s.Container != nil {
			v.add("container", `[container] goes with kind = "container"; kind "vm" takes a [vm] table`)
		}
	case "":
		v.add("kind", `missing; required, allowed: "container", "vm"`)
	default:
		v.add("kind", fmt.Sprintf(`unknown kind %q; allowed: "container", "vm"`, s.Kind))
	}
	v.text("description", s.Description, MaxDescriptionLen)
	if s.Container != nil && s.Kind != KindVM {
		v.container(s.Container, nameErr == nil)
	}
	if s.VM != nil && s.Kind != KindContainer {
		v.vm(s.VM)
	}
	v.resources(&s.Resources)
	if s.VM != nil && s.Kind == KindVM {
		v.vmResources(&s.Resources, s.VM)
	}
	v.service(&s.Service)
	v.ready(s)
	if s.Container != nil && s.Service.Ready == ReadyNotify {
		v.notifyMounts(s.Container.Mounts)
	}
	if s.Kind == KindVM {
		if !s.Security.isDefault() {
			v.add("security", vmUnsupported("security"))
		}
		if s.Health != nil {
			v.add("health", vmUnsupported("health"))
		}
	} else {
		v.security(&s.Security)
		if s.Health != nil {
			v.health(s.Health)
		}
	}
	v.depends(s.Name, &s.Depends)
	v.install(s.Name, &s.Install)
	return v.errs.err()
}

// isDefault reports whether s is the default, i.e. relaxes nothing.
func (s *Security) isDefault() bool {
	return len(s.CapAdd) == 0 && len(s.CapDrop) == 0 && (s.Seccomp == "" || s.Seccomp == SeccompDefault) && !s.AllowNewPrivileges
}

// validator collects problems found by Validate.
type validator struct {
	file string
	errs Errors
}

func (v *validator) add(key, msg string) {
	v.errs = append(v.errs, &Error{File: v.file, Key: key, Msg: msg})
}

// text checks a free-form string: valid UTF-8, no control characters, at
// most maxLen characters (if maxLen > 0). It reports whether s was fine.
func (v *validator) text(key, s string, maxLen int) bool {
	if msg := checkText(s); msg != "" {
		v.add(key, msg)
		return false
	}
	if n := utf8.RuneCountInString(s); maxLen > 0 && n > maxLen {
		v.add(key, fmt.Sprintf("too long (%d characters); at most %d allowed", n, maxLen))
		return false
	}
	return true
}

// checkText returns "" if s is valid UTF-8 without control characters
// (newline, carriage return, tab, NUL, DEL, ...), else what is wrong.
func checkText(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Sprintf("must not contain control characters such as newlines (found %q at byte %d)", r, i)
	}
	return ""
}

// container checks c; nameOK says whether the workload name is valid (if
// not, an empty Hostname, which DefaultHostname gave, is not reported).
func (v *validator) container(c *Container, nameOK bool) {
	v.absPath("container.rootfs", c.Rootfs, "/var/lib/cove/rootfs/NAME")
	v.command("container.command", c.Command, `["/bin/sh", "-c", "echo hi"]`)
	for _, name := range sortedKeys(c.Env) {
		key := "container.env." + tomlKey(name)
		if !validEnvName(name) {
			v.add(key, fmt.Sprintf("invalid environment variable name %q; names must match [A-Za-z_][A-Za-z0-9_]*", name))
		}
		if msg := checkText(c.Env[name]); msg != "" {
			v.add(key, msg)
		}
	}
	v.absPath("container.workdir", c.Workdir, "/")
	if c.User.UID > MaxID || c.User.GID > MaxID {
		v.add("container.user", fmt.Sprintf("uid and gid must be at most %d", uint32(MaxID)))
	}
	if msg := validHostname(c.Hostname); msg != "" && (nameOK || c.Hostname != "") {
		v.add("container.hostname", msg)
	}
	if c.Network != NetworkHost && c.Network != NetworkNone {
		v.add("container.network", fmt.Sprintf("invalid network %q; allowed: %q, %q", c.Network, NetworkHost, NetworkNone))
	}
	if c.ReadOnly && c.Volatile {
		v.add("container.volatile", "read_only and volatile exclude each other: a read-only root takes no writes; volatile keeps them in memory until the container stops")
	}
	v.mounts(c.Mounts)
}

// notifyMounts checks that no mount covers NotifyDir, which cove mounts
// for ready = "notify", or is a bind mount of a directory that would
// receive it, or a read-only mount where it cannot be created (a
// writable tmpfs there is fine).
func (v *validator) notifyMounts(ms []Mount) {
	for i, m := range ms {
		k := keyString(key("container", "mount", elem(i+1))) + ".target"
		switch {
		case m.Target == NotifyDir || strings.HasPrefix(m.Target, NotifyDir+"/"):
			v.add(k, fmt.Sprintf(`%q would cover %s, where cove puts the notify socket for ready = "notify"; choose another target`, m.Target, NotifyDir))
		case m.Type == MountBind && strings.HasPrefix(NotifyDir, m.Target+"/"):
			v.add(k, fmt.Sprintf(`a bind mount at %q would get cove's %s directory in %s for ready = "notify"; use a tmpfs there or another target`, m.Target, NotifyDir, m.Source))
		case m.ReadOnly && strings.HasPrefix(NotifyDir, m.Target+"/"):
			v.add(k, fmt.Sprintf(`a read-only mount at %q leaves no room for %s, where cove puts the notify socket for ready = "notify"; make it writable or choose another target`, m.Target, NotifyDir))
		}
	}
}

// cove's own mounts in a container, which a spec's mounts may not cover.
var ownMounts = []string{"/proc", "/sys", "/dev"}

// mounts checks container.mount: known types, absolute clean paths, a
// source for a bind and none for a tmpfs, a size only for a tmpfs, and
// targets other than "/", outside cove's own mounts, each used once.
func (v *validator) mounts(ms []Mount) {
	targets := make(map[string]int)
	for i, m := range ms {
		k := keyString(key("container", "mount", elem(i+1)))
		switch m.Type {
		case MountBind:
			v.absPath(k+".source", m.Source, "/srv/data")
			if m.Size != 0 {
				v.add(k+".size", `only a mount of type "tmpfs" has a size`)
			}
		case MountTmpfs:
			if m.Source != "" {
				v.add(k+".source", `a tmpfs has no source; leave source out`)
			}
		default:
			v.add(k+".type", fmt.Sprintf("invalid type %q; allowed: %q (the default), %q", m.Type, MountBind, MountTmpfs))
		}
		v.absPath(k+".target", m.Target, "/data")
		for _, own := range ownMounts {
			if m.Target == own || strings.HasPrefix(m.Target, own+"/") {
				v.add(k+".target", fmt.Sprintf("%q is in %s, which cove mounts itself; choose another target", m.Target, own))
			}
		}
		switch j, dup := targets[m.Target]; {
		case m.Target == "/":
			v.add(k+".target", `must not be "/"; the root is container.rootfs`)
		case dup:
			v.add(k+".target", fmt.Sprintf("%q is already the target of mount %d", m.Target, j))
		case m.Target != "":
			targets[m.Target] = i + 1
		}
	}
}

// command checks an argv: not empty, a program, no control characters;
// example shows a valid value.
func (v *validator) command(key string, argv []string, example string) {
	switch {
	case len(argv) == 0:
		v.add(key, "missing or empty; required, an array of strings such as "+example)
	case argv[0] == "":
		v.add(key, "the first element (the program) must not be empty")
	}
	for i, arg := range argv {
		if msg := checkText(arg); msg != "" {
			v.add(key, fmt.Sprintf("element %d: %s", i+1, msg))
		}
	}
}

// absPath checks that p is a non-empty, absolute, clean path without ".."
// components or control characters.
func (v *validator) absPath(key, p, example string) {
	if p == "" {
		v.add(key, "missing; required, an absolute path such as "+example)
		return
	}
	if !v.text(key, p, 0) {
		return
	}
	switch {
	case !path.IsAbs(p):
		v.add(key, fmt.Sprintf("%q is not absolute; must be an absolute path such as %s", p, example))
	case hasDotDot(p):
		v.add(key, fmt.Sprintf("%q contains \"..\"; must be an absolute path without \"..\" components", p))
	case path.Clean(p) != p:
		v.add(key, fmt.Sprintf("%q is not clean; write it as %q", p, path.Clean(p)))
	}
}

// hasDotDot reports whether p has a ".." component.
func hasDotDot(p string) bool {
	return slices.Contains(strings.Split(p, "/"), "..")
}

// validHostname returns "" if h is a valid RFC 1123 hostname of at most
// MaxHostnameLen bytes, else what is wrong.
func validHostname(h string) string {
	const rule = "a hostname is dot-separated labels of 1 to 63 letters, digits and '-', not starting or ending with '-', at most 64 characters in all"
	if h == "" {
		return "must not be empty; " + rule
	}
	if len(h) > MaxHostnameLen {
		return fmt.Sprintf("%q is too long; %s", h, rule)
	}
	for l := range strings.SplitSeq(h, ".") {
		ok := l != "" && len(l) <= 63 && l[0] != '-' && l[len(l)-1] != '-'
		for i := 0; ok && i < len(l); i++ {
			c := l[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
		}
		if !ok {
			return fmt.Sprintf("invalid hostname %q; %s", h, rule)
		}
	}
	return ""
}

// validEnvName reports whether n matches [A-Za-z_][A-Za-z0-9_]*.
func validEnvName(n string) bool {
	if n == "" || n[0] >= '0' && n[0] <= '9' {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (v *validator) resources(r *Resources) {
	if r.Memory != 0 && r.Memory < MinMemory {
		v.add("resources.memory", fmt.Sprintf("%d bytes is too small; at least 1M (%d bytes)", r.Memory, MinMemory))
	}
	if r.CPUs != 0 {
		if msg := checkCPUs(r.CPUs); msg != "" {
			v.add("resources.cpus", msg)
		}
	}
}

// checkCPUs returns "" if c is in (0, MaxCPUs] and a multiple of 0.01, else
// what is wrong.
func checkCPUs(c float64) string {
	if math.IsNaN(c) || c <= 0 || c > MaxCPUs {
		return fmt.Sprintf("%v is out of range; must be a number > 0 and <= %d, such as 0.5 or 2", c, MaxCPUs)
	}
	if p := c * 100; math.Abs(p-math.Round(p)) > 1e-6 {
		return fmt.Sprintf("%v is too precise; must be a multiple of 0.01", c)
	}
	return ""
}

func (v *validator) service(s *Service) {
	switch s.Restart {
	case RestartNo, RestartOnFailure, RestartAlways:
	default:
		v.add("service.restart", fmt.Sprintf("invalid restart policy %q; allowed: %q, %q, %q", s.Restart, RestartNo, RestartOnFailure, RestartAlways))
	}
	if s.RestartDelay < 0 || s.RestartDelay > MaxDuration {
		v.add("service.restart_delay", fmt.Sprintf("%v is out of range; must be >= 0s and <= 1h", s.RestartDelay))
	}
	if s.StopTimeout <= 0 || s.StopTimeout > MaxDuration {
		v.add("service.stop_timeout", fmt.Sprintf("%v is out of range; must be > 0s and <= 1h", s.StopTimeout))
	}
	v.startLimit(s.StartLimit)
}

func (v *validator) security(s *Security) {
	add := v.caps("security.cap_add", s.CapAdd)
	drop := v.caps("security.cap_drop", s.CapDrop)
	for _, c := range add {
		if slices.Contains(drop, c) {
			v.add("security.cap_drop", fmt.Sprintf("%s is listed in both cap_add and cap_drop; list it in one of them", c))
		}
	}
	switch s.Seccomp {
	case "", SeccompDefault, SeccompUnconfined:
	default:
		v.add("security.seccomp", fmt.Sprintf("invalid seccomp mode %q; allowed: %q, %q", s.Seccomp, SeccompDefault, SeccompUnconfined))
	}
}

// caps checks capability names and returns the valid ones, normalised.
func (v *validator) caps(key string, names []string) []string {
	var norm []string
	for _, n := range names {
		c, err := NormalizeCapability(n)
		if err != nil {
			v.add(key, err.Error())
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
