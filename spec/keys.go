package spec

import (
	"cmp"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Key is one key of the v1 schema. The table of keys (Keys) is the one
// list of them: the parser's allowed keys, types and integer ranges, the
// examples and value sets in its and Validate's messages, cove diff's key
// names (Differs), what cove apply changes without a restart (Live) and
// cove run's flags (SetFlag) are all read from it.
type Key struct {
	Path    string   // dotted, as written in a spec: "container.rootfs"; "[]" stands for an element of an array of tables ("vm.disk[].format")
	Type    Type     // the TOML type of its value
	Field   string   // the Spec field holding it ("Container.Rootfs"); several are separated by spaces
	Values  []string // the values allowed, for a key with a value set
	Example string   // a valid value, as the parser's and Validate's messages show it
	Min     int64    // for an integer: the smallest value
	Max     int64    // for an integer with a Min: the largest (math.MaxInt32 or more: no bound worth saying)
	Kind    string   // KindContainer or KindVM if the key belongs to that kind of workload only; inherited from the table
	Live    bool     // a change reaches a running workload without a restart; inherited from the table
	Flags   []Flag   // the cove run flags that set it
}

// Flag is a cove run flag that sets a key.
type Flag struct {
	Name  string // "memory" for --memory
	Short string // a one-letter alias, or ""
	Usage string // its help text
	mount func(string) (Mount, error)
}

// Type is the TOML type of a key's value.
type Type int

// Types of values.
const (
	TypeString    Type = iota + 1 // a string
	TypePath                      // an absolute path: a string, cleaned when read
	TypeInteger                   // an integer
	TypeNumber                    // an integer or a float
	TypeBoolean                   // true or false
	TypeSize                      // a size: "256M", or an integer number of bytes
	TypeDuration                  // a Go duration string: "1s", "1m30s"
	TypeStrings                   // an array of strings
	TypeStringMap                 // a table of strings
	TypeTable                     // a table of keys
	TypeTables                    // an array of tables of keys
)

var typeNames = [...]string{"", "string", "absolute path", "integer", "number", "boolean", "size", "duration", "array of strings", "table of strings", "table", "array of tables"}

// String names t in words.
func (t Type) String() string {
	if t > 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Value sets: the values of the keys that take one of a few.
var (
	kindValues        = []string{KindContainer, KindVM, KindNetwork, KindVolume}
	mountTypeValues   = []string{MountBind, MountTmpfs, MountVolume}
	restartValues     = []string{RestartNo, RestartOnFailure, RestartAlways}
	readyValues       = []string{ReadyStarted, ReadyNotify, ReadyHealthy, ReadyTCP + ":PORT"}
	seccompValues     = []string{SeccompDefault, SeccompUnconfined}
	onFailureValues   = []string{HealthRestart, HealthKill, HealthNone}
	machineValues     = []string{MachineMicroVM, MachineQ35}
	accelValues       = []string{AccelAuto, AccelKVM, AccelTCG}
	firmwareValues    = []string{FirmwareBIOS, FirmwareUEFI, FirmwareUEFISecure}
	displayValues     = []string{DisplayNone, DisplayVNC}
	osValues          = []string{OSLinux, OSWindows}
	formatValues      = []string{FormatRaw, FormatQcow2}
	vmNetworkValues   = []string{VMNetworkNone, VMNetworkUser, VMNetworkBridge}
	protocolValues    = []string{ProtoTCP, ProtoUDP}
	pullValues        = []string{PullMissing, PullAlways, PullNever}
	autoUpdateValues  = []string{AutoUpdateOff, AutoUpdateRegistry}
	dependsExample    = `["db", "network-online.target"]`
	healthCmdExample  = `["/bin/sh", "-c", "wget -qO- http://127.0.0.1:8080/"]`
	capabilityExample = `["NET_ADMIN", "CAP_SYS_TIME"]`
)

// keyTable is the v1 schema, depth first in the order of the spec's
// fields (which is the order of the allowed keys in errors and of cove
// diff's keys).
var keyTable = []Key{
	{Path: "version", Type: TypeInteger, Field: "Version"},
	{Path: "kind", Type: TypeString, Field: "Kind", Values: kindValues},
	{Path: "description", Type: TypeString, Field: "Description", Live: true},
	{Path: "container", Type: TypeTable, Field: "Container", Kind: KindContainer},
	{Path: "container.rootfs", Type: TypePath, Field: "Container.Rootfs", Example: "/var/lib/cove/rootfs/NAME", Flags: runFlag("rootfs", "container root directory (absolute)")},
	{Path: "container.image", Type: TypeString, Field: "Container.Image", Example: "registry.example:5000/app/web:1.4", Flags: runFlag("image", "run this OCI image (instead of --rootfs)")},
	{Path: "container.entrypoint", Type: TypeStrings, Field: "Container.Entrypoint", Example: `["/bin/sh", "-c"]`, Flags: runFlag("entrypoint", "replace the image's entrypoint (repeatable: one argument each)")},
	{Path: "container.pull", Type: TypeString, Field: "Container.Pull", Values: pullValues, Flags: runFlag("pull", joinQuoted(pullValues, " | "))},
	{Path: "container.auto_update", Type: TypeString, Field: "Container.AutoUpdate", Values: autoUpdateValues},
	{Path: "container.command", Type: TypeStrings, Field: "Container.Command", Example: `["/bin/sh", "-c", "echo hi"]`},
	{Path: "container.env", Type: TypeStringMap, Field: "Container.Env", Flags: []Flag{{Name: "env", Short: "e", Usage: "KEY=VALUE for the payload (repeatable)"}}},
	{Path: "container.workdir", Type: TypePath, Field: "Container.Workdir", Example: "/", Flags: []Flag{{Name: "workdir", Short: "w", Usage: "working directory in the container"}}},
	{Path: "container.user", Type: TypeString, Field: "Container.User", Flags: []Flag{{Name: "user", Short: "u", Usage: "UID[:GID] of the payload"}}},
	{Path: "container.hostname", Type: TypeString, Field: "Container.Hostname", Flags: runFlag("hostname", "hostname (default: the name)")},
	{Path: "container.network", Type: TypeString, Field: "Container.Network", Example: `"cove"`, Flags: runFlag("network", `"host", "none", a network's name (default without a spec file: the run network of /etc/cove/cove.toml, "cove" unless it says otherwise) or "container:NAME" (NAME's network namespace)`)},
	{Path: "container.networks", Type: TypeStrings, Field: "Container.Networks", Example: `["back", "metrics"]`, Flags: runFlag("also-network", "join this network too, as eth1, eth2, … (repeatable; --network is the first)")},
	{Path: "container.aliases", Type: TypeStrings, Field: "Container.Aliases", Example: `["db", "primary.db"]`, Flags: runFlag("network-alias", "another name the container answers to on its networks' DNS (repeatable)")},
	{Path: "container.labels", Type: TypeStringMap, Field: "Container.Labels", Flags: []Flag{{Name: "label", Short: "l", Usage: "KEY=VALUE label of the container (repeatable)"}}},
	{Path: "container.ip", Type: TypeString, Field: "Container.IP", Example: `"10.77.0.50"`, Flags: runFlag("ip", "the container's IPv4 address on its network")},
	{Path: "container.ports", Type: TypeStrings, Field: "Container.Ports", Example: `["8080:80", "127.0.0.1:5353:53/udp", "[2001:db8::10]:8443:443"]`, Flags: []Flag{{Name: "publish", Short: "p", Usage: "publish a port [HOSTADDR:][HOSTPORT:]CONTAINERPORT[/PROTO], without HOSTPORT on a free one (repeatable)"}}},
	{Path: "container.read_only", Type: TypeBoolean, Field: "Container.ReadOnly", Flags: runFlag("read-only", "make the container's root file system read-only")},
	{Path: "container.volatile", Type: TypeBoolean, Field: "Container.Volatile", Flags: runFlag("volatile", "keep writes to the root in memory (tmpfs overlay), not in the rootfs")},
	{Path: "container.mount", Type: TypeTables, Field: "Container.Mounts", Example: `{ source = "/srv/data", target = "/data" }`, Flags: []Flag{
		{Name: "volume", Short: "v", Usage: "mount SOURCE:TARGET[:ro|rw]: SOURCE an absolute host path (a bind mount) or a named volume, created on first use (repeatable)", mount: ParseVolume},
		{Name: "tmpfs", Usage: "tmpfs mount TARGET[:ro|rw][,size=SIZE] (repeatable)", mount: ParseTmpfs},
	}},
	{Path: "container.mount[].type", Type: TypeString, Field: "Container.Mounts[].Type", Values: mountTypeValues},
	{Path: "container.mount[].source", Type: TypePath, Field: "Container.Mounts[].Source", Example: "/srv/data"}, // with type = "volume", a volume's name (not cleaned: it is no path)
	{Path: "container.mount[].target", Type: TypePath, Field: "Container.Mounts[].Target", Example: "/data"},
	{Path: "container.mount[].read_only", Type: TypeBoolean, Field: "Container.Mounts[].ReadOnly"},
	{Path: "container.mount[].size", Type: TypeSize, Field: "Container.Mounts[].Size"},
	{Path: "container.mount[].idmap", Type: TypeBoolean, Field: "Container.Mounts[].Idmap"},
	{Path: "vm", Type: TypeTable, Field: "VM", Kind: KindVM},
	{Path: "vm.os", Type: TypeString, Field: "VM.OS", Values: osValues},
	{Path: "vm.kernel", Type: TypePath, Field: "VM.Kernel", Example: "/var/lib/cove/vm/vmlinuz"},
	{Path: "vm.initrd", Type: TypePath, Field: "VM.Initrd", Example: "/var/lib/cove/vm/initrd.gz"},
	{Path: "vm.cmdline", Type: TypeString, Field: "VM.Cmdline"},
	{Path: "vm.cpus", Type: TypeInteger, Field: "VM.CPUs", Min: 1, Max: MaxVMCPUs},
	{Path: "vm.memory", Type: TypeSize, Field: "VM.Memory"},
	{Path: "vm.machine", Type: TypeString, Field: "VM.Machine", Values: machineValues},
	{Path: "vm.accel", Type: TypeString, Field: "VM.Accel", Values: accelValues},
	{Path: "vm.firmware", Type: TypeString, Field: "VM.Firmware", Values: firmwareValues},
	{Path: "vm.tpm", Type: TypeBoolean, Field: "VM.TPM"},
	{Path: "vm.display", Type: TypeString, Field: "VM.Display", Values: displayValues},
	{Path: "vm.boot", Type: TypeStrings, Field: "VM.Boot", Example: `["cdrom", "disk"]`},
	{Path: "vm.disk", Type: TypeTables, Field: "VM.Disks", Example: `{ path = "/var/lib/cove/vm/disk.qcow2" }`},
	{Path: "vm.disk[].path", Type: TypePath, Field: "VM.Disks[].Path", Example: "/var/lib/cove/vm/disk.qcow2"},
	{Path: "vm.disk[].base", Type: TypePath, Field: "VM.Disks[].Base", Example: "/var/lib/cove/vm-images/debian-12.qcow2"},
	{Path: "vm.disk[].size", Type: TypeSize, Field: "VM.Disks[].Size"},
	{Path: "vm.disk[].format", Type: TypeString, Field: "VM.Disks[].Format", Values: formatValues},
	{Path: "vm.disk[].read_only", Type: TypeBoolean, Field: "VM.Disks[].ReadOnly"},
	{Path: "vm.disk[].boot", Type: TypeBoolean, Field: "VM.Disks[].Boot"},
	{Path: "vm.cdrom", Type: TypeTables, Field: "VM.CDROMs", Example: `{ path = "/var/lib/cove/vm-images/installer.iso" }`},
	{Path: "vm.cdrom[].path", Type: TypePath, Field: "VM.CDROMs[].Path", Example: "/var/lib/cove/vm-images/installer.iso"},
	{Path: "vm.network", Type: TypeTable, Field: "VM.Network"},
	{Path: "vm.network.mode", Type: TypeString, Field: "VM.Network.Mode", Values: vmNetworkValues},
	{Path: "vm.network.forward", Type: TypeStrings, Field: "VM.Network.Forwards", Example: `["127.0.0.1:2222:22/tcp"]`},
	{Path: "vm.network.network", Type: TypeString, Field: "VM.Network.Network", Example: `"cove"`},
	{Path: "vm.network.ip", Type: TypeString, Field: "VM.Network.IP", Example: `"10.77.0.60"`},
	{Path: "vm.network.ports", Type: TypeStrings, Field: "VM.Network.Ports", Example: `["8080:80", "127.0.0.1:2222:22"]`},
	{Path: "vm.cloud_init", Type: TypeTable, Field: "VM.CloudInit"},
	{Path: "vm.cloud_init.user_data", Type: TypePath, Field: "VM.CloudInit.UserData", Example: "/etc/cove/vms/web.user-data"},
	{Path: "vm.cloud_init.network_config", Type: TypePath, Field: "VM.CloudInit.NetworkConfig", Example: "/etc/cove/vms/web.network-config"},
	{Path: "vm.cloud_init.hostname", Type: TypeString, Field: "VM.CloudInit.Hostname", Example: `"web"`},
	{Path: "vm.cloud_init.ssh_authorized_keys", Type: TypeStrings, Field: "VM.CloudInit.SSHAuthorizedKeys", Example: `["ssh-ed25519 AAAA... me@laptop"]`},
	{Path: "vm.cloud_init.users", Type: TypeStrings, Field: "VM.CloudInit.Users", Example: `["alice"]`},
	// systemd applies a reloaded unit's cgroup limits (MemoryMax=,
	// CPUQuota=, TasksMax=) and description to the running unit.
	{Path: "resources", Type: TypeTable, Field: "Resources", Live: true},
	{Path: "resources.memory", Type: TypeSize, Field: "Resources.Memory", Flags: runFlag("memory", "memory limit, e.g. 256M")},
	{Path: "resources.cpus", Type: TypeNumber, Field: "Resources.CPUs", Example: "0.5 or 2", Flags: runFlag("cpus", "CPU limit, e.g. 0.5")},
	{Path: "resources.pids", Type: TypeInteger, Field: "Resources.Pids", Min: 1, Max: math.MaxInt64, Flags: runFlag("pids", "task limit")},
	{Path: "service", Type: TypeTable, Field: "Service"},
	{Path: "service.restart", Type: TypeString, Field: "Service.Restart", Values: restartValues, Flags: runFlag("restart", strings.Join(restartValues, " | "))},
	{Path: "service.restart_delay", Type: TypeDuration, Field: "Service.RestartDelay", Flags: runFlag("restart-delay", "delay before a restart, e.g. 1s")},
	{Path: "service.stop_timeout", Type: TypeDuration, Field: "Service.StopTimeout", Flags: runFlag("stop-timeout", "time from SIGTERM to SIGKILL, e.g. 10s")},
	{Path: "service.stop_signal", Type: TypeString, Field: "Service.StopSignal", Example: `"SIGQUIT"`, Flags: runFlag("stop-signal", "the signal that stops the payload (default SIGTERM, or an image's STOPSIGNAL)")},
	{Path: "service.init", Type: TypeBoolean, Field: "Service.Init", Kind: KindContainer, Flags: runFlag("init", "run a minimal init (tini) as PID 1: it forwards signals to the payload and reaps zombies")},
	{Path: "service.start_limit", Type: TypeTable, Field: "Service.StartLimit"},
	{Path: "service.start_limit.burst", Type: TypeInteger, Field: "Service.StartLimit.Burst", Min: 1, Max: MaxStartBurst},
	{Path: "service.start_limit.interval", Type: TypeDuration, Field: "Service.StartLimit.Interval"},
	{Path: "service.ready", Type: TypeString, Field: "Service.Ready Service.ReadyPort", Values: readyValues},
	// A change of replicas starts or stops instances; the others run on.
	{Path: "service.replicas", Type: TypeInteger, Field: "Service.Replicas", Kind: KindContainer, Live: true, Min: 1, Max: MaxReplicas},
	{Path: "security", Type: TypeTable, Field: "Security", Kind: KindContainer},
	{Path: "security.cap_add", Type: TypeStrings, Field: "Security.CapAdd", Example: capabilityExample, Flags: runFlag("cap-add", "capability to add (repeatable)")},
	{Path: "security.cap_drop", Type: TypeStrings, Field: "Security.CapDrop", Example: capabilityExample, Flags: runFlag("cap-drop", "capability to drop (repeatable)")},
	{Path: "security.seccomp", Type: TypeString, Field: "Security.Seccomp", Values: seccompValues, Flags: runFlag("seccomp", strings.Join(seccompValues, " | "))},
	{Path: "security.no_new_privileges", Type: TypeBoolean, Field: "Security.AllowNewPrivileges"},
	{Path: "security.userns", Type: TypeString, Field: "Security.UserNS", Example: `"auto"`, Flags: runFlag("userns", usernsUsage)},
	{Path: "depends", Type: TypeTable, Field: "Depends"},
	{Path: "depends.after", Type: TypeStrings, Field: "Depends.After", Example: dependsExample},
	{Path: "depends.requires", Type: TypeStrings, Field: "Depends.Requires", Example: dependsExample},
	{Path: "depends.wants", Type: TypeStrings, Field: "Depends.Wants", Example: dependsExample},
	{Path: "depends.binds_to", Type: TypeStrings, Field: "Depends.BindsTo", Example: dependsExample},
	{Path: "health", Type: TypeTable, Field: "Health"},
	{Path: "health.command", Type: TypeStrings, Field: "Health.Command", Example: healthCmdExample},
	{Path: "health.tcp", Type: TypeInteger, Field: "Health.TCP", Kind: KindVM, Min: 1, Max: 65535},
	{Path: "health.http", Type: TypeInteger, Field: "Health.HTTP", Kind: KindVM, Min: 1, Max: 65535},
	{Path: "health.path", Type: TypeString, Field: "Health.Path", Kind: KindVM, Example: `"/healthz"`},
	{Path: "health.interval", Type: TypeDuration, Field: "Health.Interval"},
	{Path: "health.timeout", Type: TypeDuration, Field: "Health.Timeout"},
	{Path: "health.retries", Type: TypeInteger, Field: "Health.Retries", Min: 1, Max: MaxHealthRetries},
	{Path: "health.start_period", Type: TypeDuration, Field: "Health.StartPeriod"},
	{Path: "health.on_failure", Type: TypeString, Field: "Health.OnFailure", Values: onFailureValues},
	// [install] only decides what starts at boot.
	{Path: "install", Type: TypeTable, Field: "Install", Live: true},
	{Path: "install.wanted_by", Type: TypeStrings, Field: "Install.WantedBy", Example: `["multi-user.target"]`},
	{Path: "network", Type: TypeTable, Field: "Network", Kind: KindNetwork},
	{Path: "network.subnet4", Type: TypeString, Field: "Network.Subnet4", Example: `"10.78.0.0/24"`},
	{Path: "network.gateway4", Type: TypeString, Field: "Network.Gateway4", Example: `"10.78.0.1"`},
	{Path: "network.subnet6", Type: TypeString, Field: "Network.Subnet6", Example: `"fd12:3456:789a:1::/64"`},
	{Path: "network.gateway6", Type: TypeString, Field: "Network.Gateway6", Example: `"fd12:3456:789a:1::1"`},
	{Path: "network.bridge", Type: TypeString, Field: "Network.Bridge", Example: `"br-web"`},
	{Path: "network.internal", Type: TypeBoolean, Field: "Network.Internal"},
	{Path: "network.dns", Type: TypeBoolean, Field: "Network.DNS"},
	{Path: "network.privileged_ports", Type: TypeBoolean, Field: "Network.PrivilegedPorts"},
	{Path: "network.allow_host", Type: TypeStrings, Field: "Network.AllowHost", Example: `["8080", "123/udp"]`},
	{Path: "network.ipv6", Type: TypeBoolean, Field: "Network.IPv6"},
	{Path: "network.labels", Type: TypeStringMap, Field: "Network.Labels"},
	{Path: "volume", Type: TypeTable, Field: "Volume", Kind: KindVolume},
	{Path: "volume.labels", Type: TypeStringMap, Field: "Volume.Labels"},
	{Path: "volume.size", Type: TypeSize, Field: "Volume.Size"},
}

// runFlag is the one cove run flag name, with its usage.
func runFlag(name, usage string) []Flag { return []Flag{{Name: name, Usage: usage}} }

// keyIndex finds keys by path and flag, and the keys of each table.
type keyIndex struct {
	byPath map[string]*Key
	byFlag map[string]*Key
	names  map[string][]string // the keys of each table ("" is the top level), in order
}

// schema is built on first use, not at program start: every cove process
// (the launcher's stages too) would otherwise pay for it.
var schema = sync.OnceValue(indexKeys)

// lazyRegexp compiles expr on first use (see schema).
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// indexKeys indexes keyTable and passes Kind and Live on from each table
// to its keys.
func indexKeys() keyIndex {
	x := keyIndex{byPath: map[string]*Key{}, byFlag: map[string]*Key{}, names: map[string][]string{}}
	for i := range keyTable {
		k := &keyTable[i]
		parent, name := splitPath(k.Path)
		if t := x.byPath[strings.TrimSuffix(parent, "[]")]; t != nil {
			k.Kind = cmp.Or(k.Kind, t.Kind)
			k.Live = k.Live || t.Live
		}
		x.byPath[k.Path] = k
		x.names[parent] = append(x.names[parent], name)
		for _, f := range k.Flags {
			x.byFlag[f.Name] = k
			if f.Short != "" {
				x.byFlag[f.Short] = k
			}
		}
	}
	return x
}

// splitPath splits a key path into its table's path and its name:
// "vm.disk[].path" into "vm.disk[]" and "path", "kind" into "" and "kind".
func splitPath(path string) (table, name string) {
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return "", path
	}
	return path[:i], path[i+1:]
}

// Keys returns the keys of the v1 schema, tables before their keys, in
// the order of the Spec's fields.
func Keys() []Key {
	schema() // passes Kind and Live on to the keys of each table
	out := make([]Key, len(keyTable))
	copy(out, keyTable)
	return out
}

// elemIndex matches the element indexes in a key as errors show it.
var elemIndex = lazyRegexp(`\[[0-9]+\]`)

// KeyFor returns the key at path, written as in Keys or with element
// indexes as errors show them ("vm.disk[2].path").
func KeyFor(path string) (Key, bool) {
	k := keyAt(path)
	if k == nil {
		return Key{}, false
	}
	return *k, true
}

// keyAt returns the table's entry for path (see KeyFor), or nil.
func keyAt(path string) *Key {
	return schema().byPath[elemIndex().ReplaceAllString(path, "[]")]
}

// KeyForFlag returns the key that the cove run flag name (or short name)
// sets.
func KeyForFlag(name string) (Key, bool) {
	k := schema().byFlag[name]
	if k == nil {
		return Key{}, false
	}
	return *k, true
}

// Fields returns the Spec fields holding k.
func (k Key) Fields() []string { return strings.Fields(k.Field) }

// Repeatable reports whether a cove run flag for k may be given more than
// once, each time adding an element.
func (k Key) Repeatable() bool {
	return k.Type == TypeStrings || k.Type == TypeStringMap || k.Type == TypeTables
}

// checkRange returns "" if n is in k's range (or k has none), else what is
// wrong.
func (k *Key) checkRange(n int64) string {
	if k.Min == 0 && k.Max == 0 {
		return ""
	}
	return checkRange(n, k.Min, k.Max)
}

// allowed lists the values of the key at path, quoted, for messages.
func allowed(path string) string { return joinQuoted(keyAt(path).Values, ", ") }

// example returns the example value of the key at path.
func example(path string) string { return keyAt(path).Example }

// joinQuoted quotes each value and joins them with sep.
func joinQuoted(values []string, sep string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, sep)
}
