// Package spec reads and validates cove workload specs (TOML, version 1).
//
// Parsing is strict: unknown keys, wrong types and bad values are errors
// carrying FILE:LINE:COL. The types here are plain data; package units
// compiles them into systemd units.
package spec

import "time"

// Kinds of workload.
const (
	KindContainer = "container"
	KindVM        = "vm"
)

// Network modes of a container.
const (
	NetworkHost = "host" // share the host's network namespace
	NetworkNone = "none" // own network namespace with only lo
)

// Restart policies (systemd's Restart= values that cove offers).
const (
	RestartNo        = "no"
	RestartOnFailure = "on-failure"
	RestartAlways    = "always"
)

// Seccomp modes.
const (
	SeccompDefault    = "default"    // cove's deny-list filter
	SeccompUnconfined = "unconfined" // no filter
)

// Spec is one validated workload.
type Spec struct {
	Name        string // workload name: [a-z0-9][a-z0-9_.-]*, at most 64 bytes
	File        string // file the spec was read from ("" when built from flags)
	Version     int
	Kind        string
	Description string
	Container   *Container // set when Kind == KindContainer
	Resources   Resources
	Service     Service
	Security    Security
}

// Container describes a container payload.
type Container struct {
	Rootfs   string            // absolute path of the root directory
	Command  []string          // argv; Command[0] is resolved inside the rootfs
	Env      map[string]string // extra environment
	Workdir  string            // absolute path inside the container; default "/"
	User     User              // default 0:0
	Hostname string            // default: the workload's name
	Network  string            // NetworkHost or NetworkNone; default NetworkHost
}

// User is a numeric uid:gid pair.
type User struct {
	UID, GID uint32
}

// Resources are cgroup limits; zero means "no limit".
type Resources struct {
	Memory uint64  // bytes
	CPUs   float64 // number of CPUs (0.5 = half a CPU)
	Pids   uint64  // maximum number of tasks
}

// Service holds systemd service behaviour.
type Service struct {
	Restart      string        // RestartNo, RestartOnFailure or RestartAlways; default RestartNo
	RestartDelay time.Duration // default 1s
	StopTimeout  time.Duration // default 10s
}

// Security relaxes cove's defaults; the zero value is the default:
// reduced capability bounding set, no_new_privileges, seccomp deny-list.
type Security struct {
	CapAdd             []string // capability names (CAP_NET_ADMIN or net_admin) added to the default set
	CapDrop            []string // capability names removed from the default set
	Seccomp            string   // SeccompDefault or SeccompUnconfined; default SeccompDefault
	AllowNewPrivileges bool     // true disables no_new_privileges
}
