// Package spec reads and validates cove workload specs (TOML, version 1).
//
// Parsing is strict: unknown keys, wrong types and bad values are errors
// carrying FILE:LINE:COL. The types here are plain data; package units
// compiles them into systemd units.
package spec

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kinds of workload.
const (
	KindContainer = "container"
	KindVM        = "vm"
	// KindNetwork is a network file (/etc/cove/networks/NAME.toml), not
	// a workload: its [network] table declares a network (see Network).
	KindNetwork = "network"
	// KindVolume is a volume file (/etc/cove/volumes/NAME.toml), not a
	// workload: its [volume] table declares a named volume (see Volume).
	KindVolume = "volume"
)

// Network modes of a container.
const (
	NetworkHost = "host" // share the host's network namespace
	NetworkNone = "none" // own network namespace with only lo
	// NetworkCove is the default network: an own network namespace with
	// eth0 on the bridge cove0 (10.77.0.0/16 and a ULA /64, NAT to the
	// host's uplinks), brought up by cove-network@cove.service. Any other
	// network name joins that network (cove-network@NAME.service).
	NetworkCove = "cove"
	// NetworkSharedPrefix, followed by a workload's name (or a replicated
	// one's instance, NAME@I), shares that container's network namespace,
	// as Docker's --network container:NAME does: its interfaces,
	// addresses, ports and loopback (see SharedNetwork).
	NetworkSharedPrefix = "container:"
)

// SharedNetwork returns the container whose network namespace a
// container with network = network shares, and whether it shares one
// ("" and false if not).
func SharedNetwork(network string) (workload string, ok bool) {
	if workload, ok = strings.CutPrefix(network, NetworkSharedPrefix); !ok {
		return "", false
	}
	return workload, true
}

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
	VM          *VM        // set when Kind == KindVM
	Resources   Resources  // for VMs, limits of the QEMU process
	Service     Service
	Security    Security // containers only; zero for VMs
	Depends     Depends
	Health      *Health // nil: no health check; containers only
	Install     Install
	Network     *Network // set when Kind == KindNetwork
	Volume      *Volume  // set when Kind == KindVolume
}

// Depends are ordering and requirement dependencies on other units (the
// [depends] keys after, requires, wants and binds_to). Each entry is a unit
// name with a type suffix ("postgresql.service", "network-online.target")
// or a workload name ("db", meaning cove-db.service); Units resolves them.
// A workload may not depend on itself.
type Depends struct {
	After    []string
	Requires []string
	Wants    []string
	BindsTo  []string
}

// Units returns the unit names of names: a name with a unit suffix
// (".service", ".target", ".socket", ".mount", ...) as is, a workload name as
// cove-NAME.service.
func (d Depends) Units(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if unitSuffix(n) {
			out = append(out, n)
		} else {
			out = append(out, UnitName(n))
		}
	}
	return out
}

// Install says which targets pull the workload in at boot (the generator
// creates TARGET.wants/ links). Empty: not started at boot.
type Install struct {
	WantedBy []string // unit names with a type suffix, e.g. ["multi-user.target"]
}

// Readiness modes (Service.Ready).
const (
	ReadyStarted = "started" // active once the payload runs (default)
	ReadyNotify  = "notify"  // active when the payload sends READY=1
	ReadyHealthy = "healthy" // active when the health check first passes
	ReadyTCP     = "tcp"     // active when ReadyPort accepts connections ("tcp:PORT")
)

// Health-check failure actions.
const (
	HealthRestart = "restart" // systemd restarts the unit
	HealthKill    = "kill"    // the unit is stopped (and restarted per its restart policy)
	HealthNone    = "none"    // only reported
)

// Health is a health check run inside the workload's namespaces
// (containers only, for now). DefaultHealth gives the defaults.
type Health struct {
	Command     []string      // a container's: run inside it; exit 0 = healthy
	TCP         int           // a VM's: this guest port accepts a TCP connection = healthy
	HTTP        int           // a VM's: GET Path on this guest port answers 2xx or 3xx = healthy
	Path        string        // with HTTP: the URL path; "" is "/"
	Interval    time.Duration // 100ms..1h; default 30s
	Timeout     time.Duration // > 0 and <= Interval; default 5s (or Interval, if shorter)
	Retries     int           // consecutive failures before unhealthy, 1..100; default 3
	StartPeriod time.Duration // failures during it do not count, 0..1h; default 0
	OnFailure   string        // HealthRestart (default), HealthKill or HealthNone
}

// Machine types of a VM.
const (
	MachineMicroVM = "microvm" // QEMU microvm: no firmware, direct kernel boot only
	MachineQ35     = "q35"     // QEMU q35: firmware, can boot from a disk
)

// Accelerators of a VM.
const (
	AccelAuto = "auto" // KVM if usable, else TCG
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// Disk image formats ("" means detect).
const (
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
)

// Network modes of a VM.
const (
	VMNetworkNone   = "none"   // no network device
	VMNetworkUser   = "user"   // QEMU user-mode networking (slirp), with forwards
	VMNetworkBridge = "bridge" // a tap on a cove network's bridge, with an address, a name and published ports
)

// Protocols of a Forward.
const (
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
)

// VM describes a virtual machine payload (QEMU).
type VM struct {
	OS        string   // OSLinux (default) or OSWindows, which presets WindowsDefaults and picks Windows' devices (q35 only)
	Kernel    string   // absolute path; direct kernel boot. May be "" only with a boot disk (q35); if both are set, the kernel is booted
	Initrd    string   // absolute path or ""; needs Kernel
	Cmdline   string   // kernel command line; needs Kernel; at most MaxCmdlineLen bytes, no control characters
	CPUs      int      // 1..MaxVMCPUs; default 1
	Memory    uint64   // bytes, a multiple of 1 MiB, MinVMMemory..MaxVMMemory; default 256 MiB
	Machine   string   // MachineMicroVM (default) or MachineQ35
	Accel     string   // AccelAuto (default), AccelKVM or AccelTCG
	Firmware  string   // FirmwareBIOS (default), FirmwareUEFI or FirmwareUEFISecure (q35 only)
	TPM       bool     // a TPM 2.0 emulated by swtpm (q35 only)
	Display   string   // DisplayNone (default) or DisplayVNC (q35 only)
	Boot      []string // firmware boot order: BootCDROM, BootDisk; nil: the disk with boot = true
	Disks     []Disk   // in [[vm.disk]] order
	CDROMs    []CDROM  // in [[vm.cdrom]] order (q35 only)
	Network   VMNetwork
	CloudInit *CloudInit // [vm.cloud_init]; nil: no seed
}

// Disk is a VM disk image ([[vm.disk]]): an image used in place (Path),
// or a copy-on-write overlay of a base image (Base) kept in the VM's
// state directory.
type Disk struct {
	Path     string // absolute; each image at most once; "" with Base
	Base     string // absolute path of a base image the VM's own overlay is backed by; never written; "" with Path
	Size     uint64 // with Base: the overlay's virtual size in bytes, at least the base's; 0: the base's
	Format   string // FormatRaw, FormatQcow2 or "" (detected); with Base, the base's format
	ReadOnly bool
	Boot     bool // boot from this disk through firmware (q35 only; at most one disk)
}

// VMNetwork is a VM's network ([vm.network]).
type VMNetwork struct {
	Mode     string    // VMNetworkNone (default), VMNetworkUser or VMNetworkBridge
	Forwards []Forward // host → guest port forwards; need VMNetworkUser
	Network  string    // VMNetworkBridge: the cove network whose bridge the VM's tap joins; default NetworkCove (set when read); else ""
	IP       string    // VMNetworkBridge: the guest's IPv4 address to lease ("" any free one)
	Ports    []string  // VMNetworkBridge: published ports, plan.ParsePort's syntax ("8080:80")
}

// Forward is a host → guest port forward, written
// "[HOSTADDR:]HOSTPORT:GUESTPORT[/PROTO]", e.g. "127.0.0.1:2222:22/tcp";
// see ParseForward. HOSTADDR defaults to 127.0.0.1 (use 0.0.0.0 to listen
// on all interfaces), PROTO to tcp.
type Forward struct {
	HostAddr  string // IPv4 address on the host, e.g. "127.0.0.1"
	HostPort  int    // 1..65535
	GuestPort int    // 1..65535
	Proto     string // ProtoTCP or ProtoUDP
}

// Container describes a container payload.
type Container struct {
	Rootfs     string            // absolute path of the root directory; "" with Image
	Image      string            // an OCI image reference ("REGISTRY/REPO:TAG", "…@sha256:…"); "" with Rootfs
	Entrypoint []string          // with Image: replaces the image's ENTRYPOINT (and drops its CMD); nil: the image's
	Pull       string            // with Image: PullMissing (default), PullAlways or PullNever
	AutoUpdate string            // with Image: AutoUpdateRegistry (cove update --auto updates it) or AutoUpdateOff ("")
	Command    []string          // argv; Command[0] is resolved inside the root; with Image: replaces the image's CMD
	Env        map[string]string // extra environment
	Workdir    string            // absolute path inside the container; default "/" (with Image: "", the image's)
	User       User              // default 0:0 (with Image and not Set: the image's user)
	Hostname   string            // default: the workload's name
	Network    string            // NetworkHost, NetworkNone, a network's name (NetworkCove, the default network) or NetworkSharedPrefix+NAME; default NetworkHost
	Networks   []string          // more networks it joins besides Network (a network's name): eth1, eth2, … in order
	Aliases    []string          // with a network: more names its networks' DNS answers with its address, besides its name
	Labels     map[string]string // Docker's container labels: shown, filtered on, never acted on
	IP         string            // with a network: the IPv4 address to lease ("" any free one)
	Ports      []string          // with a network: published ports, plan.ParsePort's syntax ("8080:80", "127.0.0.1:5353:53/udp")
	ReadOnly   bool              // the root file system is read-only (mounts keep their own mode)
	Volatile   bool              // writes to the root go to a tmpfs overlay and vanish at stop; the rootfs is untouched
	Mounts     []Mount           // mounted in order, over the rootfs
}

// NotifyDir is where a container with ready = "notify" finds its notify
// socket (NOTIFY_SOCKET); cove mounts it, so no spec mount may cover it.
const NotifyDir = "/run/notify"

// Mount types.
const (
	MountBind   = "bind"   // a host directory or file
	MountTmpfs  = "tmpfs"  // an empty tmpfs, gone when the container stops
	MountVolume = "volume" // a named volume in cove's volume store, created on first use
)

// Mount is a file system mounted into a container, like Podman's Volume=,
// Mount= and Tmpfs=. The JSON form is the launcher's --mount argument.
type Mount struct {
	Type     string `json:"type"`                // MountBind (default), MountTmpfs or MountVolume
	Source   string `json:"source,omitempty"`    // MountBind: absolute host path of a directory or file; MountVolume: the volume's name (ValidVolumeName); MountTmpfs: ""
	Target   string `json:"target"`              // absolute path inside the container, not "/", nor in /proc, /sys or /dev
	ReadOnly bool   `json:"read_only,omitempty"` // mounted read-only (a bind: recursively)
	Size     uint64 `json:"size,omitempty"`      // MountTmpfs: bytes; 0 means the kernel's default (half of RAM)
	Idmap    bool   `json:"idmap,omitempty"`     // MountBind with a user namespace: host owners appear shifted into the container's range (an idmapped mount)
}

// User is a numeric uid:gid pair.
type User struct {
	UID, GID uint32
	Set      bool // given by the spec or a flag (not the default)
}

// Pull policies of an image container (container.pull).
const (
	PullMissing = "missing" // pull when the image is not in the store
	PullAlways  = "always"  // pull at every start (a pull unit runs first)
	PullNever   = "never"   // never pull: the image must be in the store
)

// ImageRef is an image a workload needs from the store: the key of the
// spec that names it, its reference and its pull policy.
type ImageRef struct{ Key, Ref, Pull string }

// Images lists the images s needs from the store: an image container's
// image (with its pull policy), or each VM disk's "oci:" base (pulled
// when missing), each image once, at the first key that names it.
func (s *Spec) Images() []ImageRef {
	if c := s.Container; c != nil && c.Image != "" {
		return []ImageRef{{Key: "container.image", Ref: c.Image, Pull: c.Pull}}
	}
	var out []ImageRef
	if s.VM != nil {
		for i, d := range s.VM.Disks {
			ref, ok := OCIImage(d.Base)
			if ok && !slices.ContainsFunc(out, func(o ImageRef) bool { return o.Ref == ref }) {
				out = append(out, ImageRef{Key: fmt.Sprintf("vm.disk[%d].base", i+1), Ref: ref, Pull: PullMissing})
			}
		}
	}
	return out
}

// Auto-update policies of an image container (container.auto_update).
const (
	AutoUpdateOff      = "off"      // only cove update NAME updates it (the default)
	AutoUpdateRegistry = "registry" // cove update --auto (cove-auto-update.timer) pulls a newer digest of its tag and restarts it on it
)

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
	StopSignal   string        // the signal that stops the payload, as ParseSignal reads it; "" SIGTERM (an image container: its STOPSIGNAL, pinned by the host check)
	Init         bool          // a container's PID 1 is a minimal init (launch.InitPath) with the payload as its child, not the payload itself
	StartLimit   StartLimit    // zero: systemd's default
	Ready        string        // ReadyStarted (default; "" means it too), ReadyNotify, ReadyHealthy or ReadyTCP
	ReadyPort    int           // for ReadyTCP ("tcp:PORT"), 1..65535; else 0. For VMs, the host port of a tcp Forward
	Replicas     int           // 0: one unit, cove-NAME.service; 1..MaxReplicas: that many instances of cove-NAME@.service (spec/replicas.go)
}

// StartLimit is systemd's start rate limit: more than Burst starts within
// Interval and the unit fails instead of restarting. The zero value means
// systemd's default; otherwise Burst >= 1 and 0 < Interval <= 1h. In a
// spec file, a start_limit that sets only one of them gets systemd's
// default for the other (burst 5, interval 10s).
type StartLimit struct {
	Burst    int
	Interval time.Duration
}

// Security relaxes cove's defaults; the zero value is the default:
// reduced capability bounding set, no_new_privileges, seccomp deny-list.
type Security struct {
	CapAdd             []string // capability names (CAP_NET_ADMIN or net_admin) added to the default set
	CapDrop            []string // capability names removed from the default set
	Seccomp            string   // SeccompDefault or SeccompUnconfined; default SeccompDefault
	AllowNewPrivileges bool     // true disables no_new_privileges
	UserNS             string   // UserNSHost, UserNSAuto or "UID:COUNT" (ParseIDRange); "": the default (Spec.UserNS)
}
