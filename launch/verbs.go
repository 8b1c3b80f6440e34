package launch

import (
	"path/filepath"
	"strings"
)

// The hidden command-line verbs of the cove binary that units and cove
// itself run: a unit's ExecStart= names LaunchVerb (containers) or
// VMLaunchVerb (VMs), and ExecStop= of a VM names VMStopVerb; the launcher
// starts the inside binary (InsidePath) as InitVerb (the container's PID 1
// until the payload runs), cove exec and probes as EnterVerb (entering a
// running container);
// a health check's service runs HealthVerb; a container's ExecStop= and
// ExecStopPost= run StopVerb (internal/outcome). cove-network@NAME.service
// runs NetworkUpVerb and NetworkDownVerb; a VM on a network (a bridge)
// releases its address and tap with NetworkReleaseVerb (ExecStopPost=), a
// container its addresses and veths with NetworkReleaseVerb too, in the
// unit its own starts when it has ended (cove-release@NAME.service).
const (
	HealthVerb     = "health-probe"
	LaunchVerb     = "launch"
	InitVerb       = "launch-init"
	EnterVerb      = "enter-init"
	EnterNSVerb    = "enter-userns" // the enter stage's command side in a container's user namespace (after NsenterPath)
	VMLaunchVerb   = "launch-vm"
	VMStopVerb     = "launch-vm-stop"
	VMReadyVerb    = "launch-vm-ready" // ExecStartPost= of a VM with ready = "tcp:PORT"
	StopVerb       = "launch-stop"     // ExecStop= and (--post) ExecStopPost= of a container: stop, outcome (and, in units made before cove-release@NAME, network release)
	RelayVerb      = "launch-relay"    // --name NAME: the relay of a container's terminal (started by LaunchVerb for --console)
	UserNSHoldVerb = "userns-hold"     // (stdin a pipe) a process that holds a new user namespace open until its stdin closes (isolate.StoppedRoot)

	NetworkUpVerb      = "network-up"      // NETWORK: bridge and firewall
	NetworkDownVerb    = "network-down"    // NETWORK: remove them
	NetworkReleaseVerb = "network-release" // WORKLOAD [NETWORK]: lease, port claims, tables, host veth or tap
	DNSServeVerb       = "dns-serve"       // NETWORK: name service, socket-activated (cove-dns@NETWORK.service)
	DHCPServeVerb      = "dhcp-serve"      // NETWORK: DHCP for its VMs, socket-activated (cove-dhcp@NETWORK.service)
	RAServeVerb        = "ra-serve"        // NETWORK: router advertisements on its bridge, socket-activated (cove-ra@NETWORK.service)
	ProxyVerb          = "port-proxy"      // --network NET --port PORT[/udp] WORKLOAD: a published port's [::1] proxy, socket-activated (stage binary)
)

// StopImageSignal is the flag of StopVerb's stop (ExecStop=) of an image
// container whose stop signal the unit compiler did not pin (its image
// was not in the store, is pulled anew for each start, or gives none):
// the stage sends the STOPSIGNAL of the image the container runs, and
// its --signal only when the image gives none.
const StopImageSignal = "image-signal"

// Exit statuses of the stage and inside binaries, as cove's: a failure,
// and arguments the unit compiler, the launcher or cove did not write.
const (
	ExitFailure = 1
	ExitUsage   = 2
)

// StageBinary is the file name of the binary of a container unit's stages
// (LaunchVerb, StopVerb, ProxyVerb; cmd/cove-launch), which is installed
// beside the cove binary: every container start and stop runs it, and it
// links a fraction of cove (package internal/stage).
const StageBinary = "cove-launch"

// StagePath is the path of the stage binary that goes with the cove
// binary at cove.
func StagePath(cove string) string { return filepath.Join(filepath.Dir(cove), StageBinary) }

// InsideBinary is the file name of the binary of the stages inside a
// container's namespaces (InitVerb, which the launcher starts there, and
// EnterVerb; cmd/cove-init), installed beside cove and the stage binary:
// every container start runs it once more, so it links less still
// (package isolate/inside: no network, registry or D-Bus code).
const InsideBinary = "cove-init"

// InsidePath is the path of the inside binary that goes with the cove or
// stage binary at sibling.
func InsidePath(sibling string) string { return filepath.Join(filepath.Dir(sibling), InsideBinary) }

// Runtime directories shared by the compiler (which writes them into units)
// and the launcher (which creates them).
const (
	// NotifyDir holds each container's notify socket on the host, in
	// NotifyDir/NAME; it is bind-mounted at spec.NotifyDir inside.
	NotifyDir = "/run/cove/notify"
	// VMDir holds each VM's runtime files in VMDir/NAME: QMP and console
	// sockets and the accelerator record.
	VMDir = "/run/cove/vm"
	// NetworksDir holds each network's runtime state in NetworksDir/NAME:
	// its leases and lock (internal/network) and the resolv.conf its
	// containers get.
	NetworksDir = "/run/cove/networks"
	// NetworkHoldersDir holds one file per workload that joined a network,
	// NetworkHoldersDir/NAME: the run (its unit's invocation ID) that holds
	// what it took there (internal/network's Hold).
	NetworkHoldersDir = "/run/cove/network-holders"
)

// InitPath is the minimal init of a container with service.init: Debian's
// tini, statically linked (package tini), so that it runs in any root
// file system. The launcher opens it on the host and executes it in the
// container as PID 1 with the payload's restrictions; the container's
// files are not touched. Why tini and not cove itself: a Go init costs
// about 9 MB resident in every container (measured: the cove binary idle;
// a bare Go program 2 MB), tini-static 0.7 MB, and an init that exec's
// no second program would keep capabilities on threads the payload's
// restrictions do not reach; Docker's --init is tini too.
const InitPath = "/usr/bin/tini-static"

// NsenterPath is util-linux's nsenter (Essential in Debian, in every
// distribution's util-linux): the enter stage of a container with a user
// namespace runs its command through it, because a Go process, having
// threads from its start, cannot join a user namespace (setns(2) refuses
// CLONE_NEWUSER to a multi-threaded process); nsenter, a C program, joins
// it (and the container's mount namespace and root) and executes the
// inside binary as EnterNSVerb there.
const NsenterPath = "/usr/bin/nsenter"

// ResolvConf is the resolv.conf that containers on network name see at
// ResolvConfTarget (a read-only bind mount); the network's unit writes it.
func ResolvConf(network string) string { return filepath.Join(NetworksDir, network, "resolv.conf") }

// RASocket is the datagram socket (AF_UNIX) that starts the router
// advertisements of network name (units.CompileRA): the DHCP responder
// writes to it when it answers a client.
func RASocket(network string) string { return filepath.Join(NetworksDir, network, "ra.sock") }

// ResolvConfTarget is where a container's resolver configuration is.
const ResolvConfTarget = "/etc/resolv.conf"

// State directories: the image store, and each image container's own
// directory (its writable layer, kept across restarts until cove rm).
const (
	ImagesDir     = "/var/lib/cove/images"
	ContainersDir = "/var/lib/cove/containers"
)

// The records of containers' user namespace IDs (package internal/userns):
// UserNSDir/NAME, or for a run that is removed when it ends (cove run
// --rm) UserNSRunDir/NAME/ids (UserNSRecord), in the unit's runtime
// directory (UserNSRuntimeDirectory), which systemd removes when the unit
// stops for good.
const (
	UserNSDir    = "/var/lib/cove/userns"
	UserNSRunDir = "/run/cove/userns"
)

// UserNSRecord is the record of the user namespace IDs of a run of
// container name that is removed when it ends.
func UserNSRecord(name string) string { return filepath.Join(UserNSRunDir, name, "ids") }

// UserNSRuntimeDirectory is the RuntimeDirectory= (relative to /run) of a
// run of container name that is removed when it ends: UserNSRecord's.
func UserNSRuntimeDirectory(name string) string {
	return strings.TrimPrefix(filepath.Join(UserNSRunDir, name), "/run/")
}

// TerminalDir holds, in TerminalDir/NAME, the relay socket of container
// NAME's terminal (a run with -t: internal/tty's Relay), in a runtime
// directory of its unit (TerminalRuntimeDirectory), which systemd removes
// when the unit stops.
const TerminalDir = "/run/cove/terminal"

// TerminalSocket is where the relay of container name's terminal listens.
func TerminalSocket(name string) string { return filepath.Join(TerminalDir, name, "relay.sock") }

// TerminalRuntimeDirectory is the RuntimeDirectory= (relative to /run)
// that holds TerminalSocket(name).
func TerminalRuntimeDirectory(name string) string {
	return strings.TrimPrefix(filepath.Join(TerminalDir, name), "/run/")
}

// ContainerDir is the state directory of image container name.
func ContainerDir(name string) string { return filepath.Join(ContainersDir, name) }

// VMRunDir is the runtime directory of the VM name.
func VMRunDir(name string) string { return filepath.Join(VMDir, name) }

// AccelFile is where the VM launcher records which accelerator the VM name
// got and why, for cove status.
func AccelFile(name string) string { return filepath.Join(VMRunDir(name), "accel") }

// QMPSocket and ConsoleSocket are where VM name's QMP and interactive
// console sockets are, AgentSocket the host's end of the channel of a
// QEMU guest agent in it (virtio-serial port org.qemu.guest_agent.0),
// VNCSocket where its screen is served (with a display).
func QMPSocket(name string) string     { return filepath.Join(VMRunDir(name), "qmp.sock") }
func ConsoleSocket(name string) string { return filepath.Join(VMRunDir(name), "console.sock") }
func AgentSocket(name string) string   { return filepath.Join(VMRunDir(name), agentSocketName) }

// agentSocketName is the file name of a VM's guest agent socket.
const agentSocketName = "agent.sock"

func VNCSocket(name string) string { return filepath.Join(VMRunDir(name), vncSocketName) }

// vncSocketName is the file name of a VM's VNC socket in its run directory.
const vncSocketName = "vnc.sock"
