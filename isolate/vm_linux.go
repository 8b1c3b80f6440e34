package isolate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/ondemand"
	"github.com/cove-project/cove/internal/qmp"
	"github.com/cove-project/cove/internal/vmhost"
	"github.com/cove-project/cove/launch"
)

// QEMUBinary is the QEMU system emulator LaunchVM runs, looked up in PATH.
const QEMUBinary = "qemu-system-x86_64"

// LaunchVM is "cove launch-vm", a VM unit's ExecStart=. It prepares the
// sockets' directory and execs QEMU, which replaces the launcher: QEMU is
// the unit's main process (Type=exec), its exit status the unit's result,
// and no cove process stays. It returns only on error.
//
// Before the exec it
//   - creates the sockets' directories (0700) and removes stale sockets of
//     this VM, refusing if a QEMU still listens on one;
//   - adds the TSC hint a microvm needs under TCG (see TSCHint);
//   - creates the VM's state: overlays of base images, NVRAM (see
//     prepareState);
//   - on a bridge, joins the network with a tap (see joinBridge). If the
//     exec fails, it leaves the network again; once QEMU runs, the unit's
//     ExecStopPost= (network-release) does;
//   - builds the cloud-init seed (buildSeed), with the guest's address on
//     a bridge;
//   - starts swtpm for a TPM (startTPM), last: it ends with QEMU.
func LaunchVM(c launch.VMConfig) error {
	c, err := resolveAccel(c)
	if err != nil {
		return fmt.Errorf("launch vm %s: %w", c.Name, err)
	}
	if err := c.Check(); err != nil {
		return fmt.Errorf("launch vm %s: %w", c.Name, err)
	}
	if err := prepareSockets(c); err != nil {
		return fmt.Errorf("launch vm %s: %w", c.Name, err)
	}
	if err := prepareState(c); err != nil {
		return fmt.Errorf("launch vm %s: %w", c.Name, err)
	}
	c = TSCHint(c, vmhost.HostTSCkHz())
	path, err := exec.LookPath(QEMUBinary)
	if err != nil {
		return fmt.Errorf("launch vm %s: %w (install qemu-system-x86)", c.Name, err)
	}
	var ep *plan.Endpoint
	if c.NetworkName != "" {
		if c, ep, err = joinBridge(c); err != nil {
			return fmt.Errorf("launch vm %s: %w", c.Name, err)
		}
	}
	err = startDevices(c, ep, path)
	if c.NetworkName != "" {
		err = errors.Join(err, network.Leave(c.NetworkName, c.Name))
	}
	return err
}

// startDevices builds c's cloud-init seed, starts its swtpm and execs
// QEMU (path); it returns only on error, with swtpm ended.
func startDevices(c launch.VMConfig, ep *plan.Endpoint, path string) error {
	if c.CloudInit != nil {
		if err := buildSeed(c, ep); err != nil {
			return fmt.Errorf("launch vm %s: %w", c.Name, err)
		}
	}
	if !c.TPM {
		return execQEMU(path, c)
	}
	tpm, err := startTPM(c)
	if err != nil {
		return fmt.Errorf("launch vm %s: %w", c.Name, err)
	}
	err = execQEMU(path, c)
	tpm.Kill()
	return err
}

// prepareSockets creates the directories of c's sockets, only root may
// enter them (the console socket is a root shell in many guests), and
// removes stale sockets there.
func prepareSockets(c launch.VMConfig) error {
	for _, sock := range []string{c.QMPSocket, c.ConsoleSocket, c.AgentSocket()} {
		dir := filepath.Dir(sock)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
		if err := removeStaleSocket(sock); err != nil {
			return err
		}
	}
	return nil
}

// joinBridge joins c's VM to its network (c.NetworkName) the way a
// container joins, with a tap instead of a veth (network.Join with
// network.LinkTap): a lease (c.IP if pinned), the port claims of c.Ports,
// the tap on the bridge, and the workload's tables, whose anti-spoofing
// rules apply to the guest's frames on the tap and whose published ports
// lead to the guest's address. It returns c with the guest's address on
// its kernel command line (GuestNetwork), and the guest's endpoint (for
// its cloud-init network-config); QEMUArgv attaches the guest's NIC to
// the tap with the MAC the rules expect. On error nothing is left.
func joinBridge(c launch.VMConfig) (launch.VMConfig, *plan.Endpoint, error) {
	n, err := network.Named(c.NetworkName)
	if err != nil {
		return c, nil, fmt.Errorf("join network %s: %w", c.NetworkName, err)
	}
	r, done := joinRequest(network.Request{Network: n.Name, Workload: c.Name, Link: network.LinkTap, IP: c.IP, Ports: c.Ports})
	at, err := network.Join(r)
	done()
	if err != nil {
		return c, nil, err
	}
	fmt.Fprintf(os.Stderr, "cove: vm %s: network %s: tap %s, guest %s, MAC %v\n", c.Name, n.Name, at.HostIf, strings.Join(slices.DeleteFunc([]string{at.Addr4.String(), plan.Text(at.Addr6)}, func(s string) bool { return s == "" }), " and "), at.MAC)
	wakeAdvertisements(c.Name, n)
	ep := at.Endpoint(n)
	return GuestNetwork(c, ep), &ep, nil
}

// wakeAdvertisements starts the router advertisements of network n, if
// it has IPv6 (ondemand.Wake of launch.RASocket): they answer the router
// solicitations of the booting guest for a while, also of one that
// solicits a router before it asks the DHCP responder anything (which
// would start them too). A failure is only reported.
func wakeAdvertisements(vm string, n plan.Network) {
	if !n.Subnet6.IsValid() {
		return
	}
	if err := ondemand.Wake(launch.RASocket(n.Name)); err != nil {
		fmt.Fprintf(os.Stderr, "cove: vm %s: network %s: router advertisements not started (the guest's DHCP request starts them): %v\n", vm, n.Name, err)
	}
}

// execQEMU execs QEMU (path) for c; it returns only on error.
func execQEMU(path string, c launch.VMConfig) error {
	argv, err := QEMUArgv(c)
	if err != nil {
		return fmt.Errorf("launch vm %s: %w", c.Name, err)
	}
	err = unix.Exec(path, argv, os.Environ())
	return fmt.Errorf("launch vm %s: execve %s: %w", c.Name, path, err)
}

// removeStaleSocket removes the unix socket at path left by an earlier
// QEMU, unless something still accepts connections on it. A file that is
// not a socket is left alone and reported.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("%s is in use: is the VM already running?", path)
	}
	return os.Remove(path)
}

// StopVM is "cove launch-vm-stop", a VM unit's ExecStop=: a graceful
// shutdown. It presses the guest's ACPI power button through QMP
// (system_powerdown) and waits up to timeout for QEMU (mainPID, the unit's
// $MAINPID) to exit, pressing again every PowerButtonInterval: a press
// before the guest listens for it (early in boot, before logind or acpid
// runs) is lost. Then SIGTERM (QEMU stops the guest at once but exits
// cleanly, status 0, flushing its disk images), then SIGKILL. It returns
// when the process is gone. If QMP cannot be reached the power button is
// skipped. mainPID 0 means QEMU already exited.
func StopVM(qmpSocket string, mainPID int, timeout time.Duration) error {
	if mainPID <= 0 {
		return nil
	}
	fd, err := unix.PidfdOpen(mainPID, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop vm %d: pidfd_open: %w", mainPID, err)
	}
	defer unix.Close(fd)

	if exited, err := pressPowerButton(qmpSocket, fd, timeout); err != nil {
		fmt.Fprintf(os.Stderr, "cove: stop vm %d: %v: terminating QEMU\n", mainPID, err)
	} else if exited {
		return nil
	} else {
		fmt.Fprintf(os.Stderr, "cove: stop vm %d: the guest did not power off within %v: terminating QEMU\n", mainPID, timeout)
	}
	for _, step := range []struct {
		sig  unix.Signal
		wait time.Duration
	}{{unix.SIGTERM, 5 * time.Second}, {unix.SIGKILL, 5 * time.Second}} {
		if err := unix.PidfdSendSignal(fd, step.sig, nil, 0); errors.Is(err, unix.ESRCH) {
			return nil
		} else if err != nil {
			return fmt.Errorf("stop vm %d: pidfd_send_signal %v: %w", mainPID, step.sig, err)
		}
		if exited, err := waitPidfd(fd, step.wait); err != nil {
			return fmt.Errorf("stop vm %d: %w", mainPID, err)
		} else if exited {
			return nil
		}
	}
	return fmt.Errorf("stop vm %d: still running after SIGKILL", mainPID)
}

// PowerButtonInterval is how often StopVM presses the power button again.
const PowerButtonInterval = 5 * time.Second

// pressPowerButton sends system_powerdown through the QMP socket, again
// every PowerButtonInterval, until the process behind pidfd exits (true)
// or timeout passes (false). An error means QMP failed.
func pressPowerButton(qmpSocket string, pidfd int, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	q, err := qmp.Dial(ctx, qmpSocket)
	cancel()
	if err != nil {
		return false, err
	}
	defer q.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := q.Execute(ctx, "system_powerdown", nil)
		cancel()
		if err != nil {
			// QEMU closes QMP as it exits: not an error if it is gone.
			if exited, _ := waitPidfd(pidfd, time.Second); exited {
				return true, nil
			}
			return false, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		exited, err := waitPidfd(pidfd, min(left, PowerButtonInterval))
		if err != nil || exited {
			return exited, err
		}
		if time.Until(deadline) <= 0 {
			return false, nil
		}
	}
}

// ReadAccel returns what launch.AccelFile says, or "".
func ReadAccel(name string) string {
	b, _ := os.ReadFile(launch.AccelFile(name))
	return strings.TrimSpace(string(b))
}

// resolveAccel turns "auto" into kvm or tcg for this host, records the
// choice and its reason in launch.AccelFile and the journal, and returns c.
func resolveAccel(c launch.VMConfig) (launch.VMConfig, error) {
	accel, reason, err := vmhost.ChooseAccel(c.Accel)
	if err != nil {
		return c, err
	}
	c.Accel = accel
	note := accel
	if reason != "" {
		note += ": " + reason
	}
	fmt.Fprintf(os.Stderr, "cove: vm %s: accelerator %s\n", c.Name, note)
	if err := os.MkdirAll(filepath.Dir(launch.AccelFile(c.Name)), 0o700); err == nil {
		os.WriteFile(launch.AccelFile(c.Name), []byte(note+"\n"), 0o644)
	}
	return c, nil
}

// WaitGuestTCP returns once a service in the guest answers on the host
// end addr:port of a user-network forward (see DialGuest). It polls every
// interval; systemd's start timeout bounds it (it runs as
// ExecStartPost=).
func WaitGuestTCP(addr string, port int, interval time.Duration) error {
	target := net.JoinHostPort(addr, strconv.Itoa(port))
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := DialGuest(ctx, target)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(interval)
	}
}

// GuestLinger is how long a connection to a guest's service must stay
// open (or bring data) to count (DialGuest).
const GuestLinger = 300 * time.Millisecond

// DialGuest makes one TCP connection to a guest's service at target (a
// user-network forward's host end, or the guest's address on a bridge)
// and returns nil if it stayed open, or brought data, for GuestLinger:
// QEMU's user network accepts a forward's connection on the host before
// it tries the guest, and closes it at once while nothing listens there.
func DialGuest(ctx context.Context, target string) error {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", target)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(GuestLinger))
	n, err := conn.Read(make([]byte, 1))
	var ne net.Error
	if n > 0 || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return fmt.Errorf("%s closed the connection at once (nothing listens behind it?): %w", target, err)
}
