// Package units compiles a validated spec.Spec into a Unit: an ordered list
// of systemd properties. It is pure (no I/O, no D-Bus). The same Unit renders
// to unit-file text (Text) and to D-Bus properties for StartTransientUnit
// (Properties), so a generated unit and a transient one are the same unit.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/spec"
)

// Section of a unit file that a property belongs to.
type Section string

// Unit-file sections cove writes.
const (
	SectionUnit    Section = "Unit"
	SectionService Section = "Service"
	SectionTimer   Section = "Timer"
)

// Unit is a compiled workload: a unit name and its properties, in the order
// they are rendered.
type Unit struct {
	Name     string // e.g. "cove-web.service"
	Props    []Prop
	WantedBy []string // [Install] WantedBy=; unit files only (not transient)
	// Instances: a template unit (cove-NAME@.service, service.replicas)
	// and the number of its instances, 1 … Instances, that run and that
	// WantedBy's targets want; 0 for any other unit.
	Instances int
	// Proxies are the workload's [::1] port proxies (see proxies), which
	// its unit wants: unit files beside it (declared.Units), or transient
	// units started right after it (supervisor.Conn.StartTransient).
	Proxies []Proxy
	// LaunchArgs: with Options.LaunchFile, a container's launcher
	// arguments, which launch.ConfigFile must hold (launch.ConfigFileText)
	// when the unit starts; nil otherwise.
	LaunchArgs []string
	// post is a container's post stage behind its gate, for ForRun to add
	// to a unit in which SIGKILL is not clean (see stopStages).
	post Exec
}

// Linked returns the unit names that WantedBy's targets want: u's own,
// or for a template its instances 1 … Instances (cove-web@1.service …).
func (u Unit) Linked() []string {
	if u.Instances == 0 {
		return []string{u.Name}
	}
	prefix, suffix, _ := strings.Cut(u.Name, "@")
	names := make([]string, u.Instances)
	for i := range names {
		names[i] = prefix + "@" + strconv.Itoa(i+1) + suffix
	}
	return names
}

// Prop is one systemd setting. DBus is the D-Bus property name; File is the
// unit-file directive, when it differs from DBus (e.g. RestartUSec/RestartSec).
type Prop struct {
	Section Section
	DBus    string
	File    string
	Value   Value
}

// Directive returns the unit-file directive name of p.
func (p Prop) Directive() string {
	if p.File != "" {
		return p.File
	}
	return p.DBus
}

// Value is a typed property value that renders both to unit-file text and to
// a D-Bus value of the signature systemd expects.
type Value interface {
	// text renders the value for a unit file; it fails on values that
	// cannot be written safely.
	text() (string, error)
	// dbus returns the Go value whose godbus signature matches systemd's.
	dbus() any
}

// Str is a plain string setting (signature s).
type Str string

// Bool is a boolean setting (signature b).
type Bool bool

// Uint is an unsigned integer setting such as a byte count (signature t).
type Uint uint64

// Duration is a time span, sent as microseconds (signature t).
type Duration time.Duration

// Infinity is a time span without end, such as a start timeout that never
// fires (signature t: systemd's USEC_INFINITY).
type Infinity struct{}

// CPUQuota is a CPU share in percent of one CPU, sent as
// CPUQuotaPerSecUSec (signature t).
type CPUQuota uint64

// List is a list of names such as dependencies or environment entries
// (signature as). Rendered space-separated; each element is quoted.
type List []string

// Uint32 is a small unsigned integer setting (signature u).
type Uint32 uint32

// Mode is a file mode such as a socket's (signature u), written in
// octal as systemd reads it (SocketMode=0600).
type Mode uint32

// Signal is a signal number (signature i), written by its name
// (KillSignal=SIGQUIT).
type Signal int32

// Names is a list of unit names (signature as), written space-separated
// without quotes, as dependency directives want them.
type Names []string

// Exec is a command line (signature a(sasb)).
type Exec []string

// ExitStatuses are the exit statuses and the signals (a death by one)
// that count as a clean exit (signature (aiai): statuses, then signals).
type ExitStatuses struct{ Statuses, Signals []int32 }

// DeviceAllow grants access to one device node (signature a(ss)): its
// path and "r", "w", "m" permissions.
type DeviceAllow struct{ Path, Perms string }

// NoCapabilities is an empty capability set (CapabilityBoundingSet=,
// signature t): a root process that can do only what root's file
// ownership lets it.
type NoCapabilities struct{}

func (NoCapabilities) text() (string, error) { return "", nil }
func (NoCapabilities) dbus() any             { return uint64(0) }

func (v Str) text() (string, error) { return plainText(string(v)) }
func (v Str) dbus() any             { return string(v) }

func (v Bool) text() (string, error) {
	if v {
		return "yes", nil
	}
	return "no", nil
}
func (v Bool) dbus() any { return bool(v) }

func (v Uint) text() (string, error) { return fmt.Sprint(uint64(v)), nil }
func (v Uint) dbus() any             { return uint64(v) }

func (v Uint32) text() (string, error) { return fmt.Sprint(uint32(v)), nil }
func (v Uint32) dbus() any             { return uint32(v) }

func (v Mode) text() (string, error) { return fmt.Sprintf("%04o", uint32(v)), nil }
func (v Mode) dbus() any             { return uint32(v) }

func (v Signal) text() (string, error) { return spec.SignalName(int(v)), nil }
func (v Signal) dbus() any             { return int32(v) }

func (v Names) text() (string, error) { return unitNames(v) }
func (v Names) dbus() any             { return []string(v) }

func (v Duration) text() (string, error) { return durationText(time.Duration(v)), nil }
func (v Duration) dbus() any             { return uint64(time.Duration(v) / time.Microsecond) }

func (Infinity) text() (string, error) { return "infinity", nil }
func (Infinity) dbus() any             { return uint64(math.MaxUint64) }

func (v CPUQuota) text() (string, error) { return fmt.Sprintf("%d%%", uint64(v)), nil }
func (v CPUQuota) dbus() any             { return uint64(v) * 10000 } // percent → µs per s

func (v List) text() (string, error) { return quoteWords(v) }
func (v List) dbus() any             { return []string(v) }

func (v Exec) text() (string, error) { return quoteWords(v) }

func (v ExitStatuses) text() (string, error) {
	var w []string
	for _, n := range v.Statuses {
		w = append(w, fmt.Sprint(n))
	}
	for _, n := range v.Signals {
		w = append(w, spec.SignalName(int(n)))
	}
	return strings.Join(w, " "), nil
}
func (v ExitStatuses) dbus() any {
	return struct{ Statuses, Signals []int32 }{append([]int32{}, v.Statuses...), append([]int32{}, v.Signals...)}
}

func (v DeviceAllow) text() (string, error) { return plainText(v.Path + " " + v.Perms) }
func (v DeviceAllow) dbus() any {
	return []struct{ Path, Perms string }{{v.Path, v.Perms}}
}

// dbus escapes '$' in the arguments (see EscapeVariables).
func (v Exec) dbus() any {
	type execCommand struct {
		Path          string
		Argv          []string
		IgnoreFailure bool
	}
	argv := make([]string, len(v))
	for i, a := range v {
		argv[i] = EscapeVariables(a)
	}
	return []execCommand{{Path: v[0], Argv: argv, IgnoreFailure: false}}
}

// durationText writes d in the largest unit that represents it exactly.
func durationText(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	case d%time.Millisecond == 0:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	default:
		return fmt.Sprintf("%dus", d/time.Microsecond)
	}
}
