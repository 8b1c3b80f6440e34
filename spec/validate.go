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

	"github.com/cove-project/cove/internal/network/plan"
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

// ReservedNames are the names of cove's own configuration files in the
// spec directories (/etc/cove/NAME.toml), which are not specs: the
// registry settings and cove's host settings.
var ReservedNames = []string{"registries", "cove"}

// ownUnitNames are the workload names whose unit, cove-NAME.service,
// would be one of cove's own (the API helper, the auto-update job).
var ownUnitNames = []string{"api", autoUpdateName}

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
	case slices.Contains(ReservedNames, name):
		msg = fmt.Sprintf("workload name %q is reserved: /etc/cove/%s.toml is cove's own configuration, not a spec", name, name)
	case slices.Contains(ownUnitNames, name):
		msg = fmt.Sprintf("workload name %q is reserved: %s is cove's own unit", name, UnitName(name))
	default:
		owner, what, aux := AuxiliaryName(name)
		if !aux {
			return nil
		}
		msg = fmt.Sprintf("workload name %q is reserved: %s would be the %s of workload %q (names may not end in -health, -pull, -proxy-PORT or -proxy-udp-PORT)", name, UnitName(name), what, owner)
	}
	return &Error{Key: "name", Msg: msg}
}

func isNameStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isNameByte(c byte) bool { return isNameStart(c) || c == '_' || c == '.' || c == '-' }

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
func (s *Spec) Validate() error { return s.validate(nil) }

// validate is Validate for a spec that the parser read from src (nil for
// a spec built in code): then a zero that the file sets is not "not set",
// a size is shown as the file writes it, and keys the parser reported are
// not judged again.
func (s *Spec) validate(src *source) error {
	v := &validator{file: s.File, src: src}
	nameErr := ValidName(s.Name)
	switch s.Kind {
	case KindNetwork:
		nameErr = plan.ValidName(s.Name)
	case KindVolume:
		nameErr = ValidVolumeName(s.Name)
	}
	if nameErr != nil {
		v.add("name", errorMsg(nameErr))
	}
	v.version(s.Version)
	v.kind(s)
	v.text("description", s.Description, MaxDescriptionLen)
	if s.Kind == KindNetwork || s.Kind == KindVolume {
		return v.errs.err()
	}
	if s.Container != nil && s.Kind != KindVM {
		v.container(s.Name, s.Container, nameErr == nil)
	}
	if s.VM != nil && s.Kind != KindContainer {
		v.vm(s.VM)
	}
	v.resources(&s.Resources)
	if s.VM != nil && s.Kind == KindVM {
		v.vmResources(&s.Resources, s.VM)
	}
	v.service(&s.Service)
	v.replicas(s)
	v.ready(s)
	if s.Container != nil && s.Service.Ready == ReadyNotify {
		v.notifyMounts(s.Container.Mounts)
	}
	if s.Kind == KindVM {
		if !s.Security.isDefault() {
			v.add("security", vmUnsupported("security"))
		}
		if s.Health != nil && s.VM != nil {
			v.vmHealth(s.Health, s.VM)
		}
		if s.Service.Init {
			v.add("service.init", `init = true applies to kind "container" only: a VM's PID 1 is its guest kernel's`)
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

// version checks the schema version.
func (v *validator) version(n int) {
	switch {
	case n == 1:
	case !v.set("version", n != 0):
		v.add("version", "missing; required: version = 1")
	default:
		v.add("version", fmt.Sprintf("unsupported version %d; allowed: 1", n))
	}
}

// kind checks the kind of s and that it has the table of its kind only.
func (v *validator) kind(s *Spec) {
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
	case KindNetwork:
		v.network(s)
	case KindVolume:
		v.volume(s)
	case "":
		v.add("kind", "missing; required, allowed: "+allowed("kind"))
	default:
		v.add("kind", fmt.Sprintf("unknown kind %q; allowed: %s", s.Kind, allowed("kind")))
	}
}

// vmUnsupported is the error for a container-only table in a VM spec.
func vmUnsupported(table string) string {
	return fmt.Sprintf(`[%s] is not supported for kind vm yet; it applies to kind "container" only`, table)
}

// validator collects problems found by Validate.
type validator struct {
	file string
	src  *source // the file the spec was parsed from; nil for one built in code
	errs Errors
}

// add reports msg for key, unless the parser reported key or a table it
// is in.
func (v *validator) add(key, msg string) {
	if !v.src.failedAt(key) {
		v.errs = append(v.errs, &Error{File: v.file, Key: key, Msg: msg})
	}
}

// set reports whether key is set: nonzero, or written in the file.
func (v *validator) set(key string, nonzero bool) bool {
	return nonzero || v.src.has(key)
}

// written returns the value of key as the file writes it, or else
// fallback.
func (v *validator) written(key, fallback string) string {
	if !v.src.has(key) {
		return fallback
	}
	return describeValue(v.src.values[key])
}

// inRange checks the integer n of key against the key's range, unless the
// parser read it (and checked it then).
func (v *validator) inRange(key string, n int) {
	if v.src.has(key) {
		return
	}
	if msg := keyAt(key).checkRange(int64(n)); msg != "" {
		v.add(key, msg)
	}
}

// oneOf reports val, called what in the message, unless it is one of the
// values of key; note follows the allowed values.
func (v *validator) oneOf(key, what, val, note string) {
	if !slices.Contains(keyAt(key).Values, val) {
		v.add(key, fmt.Sprintf("invalid %s %q; allowed: %s%s", what, val, allowed(key), note))
	}
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

// command checks an argv: not empty, a program, no control characters.
func (v *validator) command(key string, argv []string) {
	switch {
	case len(argv) == 0:
		v.add(key, "missing or empty; required, an array of strings such as "+example(key))
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
func (v *validator) absPath(key, p string) {
	if p == "" {
		v.add(key, "missing; required, an absolute path such as "+example(key))
		return
	}
	if !v.text(key, p, 0) {
		return
	}
	switch {
	case !path.IsAbs(p):
		v.add(key, fmt.Sprintf("%q is not absolute; must be an absolute path such as %s", p, example(key)))
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
