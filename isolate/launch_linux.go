package isolate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/vishvananda/netns"
)

// Launch is the launcher's first stage, run by systemd as the unit's main
// process (Type=notify). It starts the second stage in new pid, mount,
// uts, ipc (and, for a private network, net) namespaces, joins it to its
// networks (c.Networks: a lease and a veth each, released again if the
// start fails) while the second stage sets up the container, waits for
// both, hands its PID to systemd (MAINPID=), lets it exec the payload and
// returns. With ready = "started" it says READY=1 at once; otherwise it
// waits until the payload is ready, says READY=1 and returns.
// self is the path of the stage binary (cove-launch; the inside binary,
// launch.InsidePath, is beside it); handedOver, if not nil, is called
// with the payload's PID once systemd knows it (to register the machine).
// A container that shares another's network namespace (c.NetworkOf) gets
// no network namespace of its own: its second stage starts in that of
// shared, the other container's pinned main process. With a user
// namespace of its own it has no capability over that network namespace
// (another user namespace owns it), so the launcher sets its
// net.ipv4.ip_unprivileged_port_start to 0, as Docker does in every
// container's: its payload can bind ports below 1024 there.
//
// With a user namespace (c.UserNS), the IDs are allocated first (package
// userns) and the namespace is created with the others; see withUserNS.
//
// If the container cannot be set up, the second stage has been killed and
// nothing is left running.
func Launch(self string, c launch.Config, shared *Target, handedOver func(pid int)) error {
	readyNow := c.Ready == spec.ReadyStarted || c.Ready == ""
	var proxy *notifyProxy
	if c.Ready == spec.ReadyNotify {
		var err error
		if proxy, err = newNotifyProxy(c.Name); err != nil {
			return fmt.Errorf("launch %s: %w", c.Name, err)
		}
		defer proxy.close()
	}
	var ids *spec.IDRange
	if spec.HasUserNS(c.UserNS) {
		r, err := hostIDs(c)
		if err != nil {
			return fmt.Errorf("launch %s: %w", c.Name, err)
		}
		ids = &r
	}
	if err := mountVolumes(c); err != nil {
		return fmt.Errorf("launch %s: %w", c.Name, err)
	}
	pid, err := startInit(self, c, readyNow, ids, shared)
	if err != nil {
		return fmt.Errorf("launch %s: %w", c.Name, err)
	}
	if handedOver != nil {
		handedOver(pid)
	}
	if readyNow {
		return nil
	}
	// The payload runs and is the main process; the launcher stays only
	// until it is ready, then tells systemd and exits.
	state, err := waitReady(self, c, pid, proxy)
	if err != nil {
		return fmt.Errorf("launch %s: %w", c.Name, err)
	}
	return notifySystemd(state)
}

// startInit starts the second stage (in a user namespace mapped to ids,
// if not nil, with the trees it needs; in the network namespace of
// shared's process, if not nil), joins it to its networks while it sets
// up the container, waits for both, hands its PID to systemd (with
// READY=1 when ready) and lets it exec the payload. It returns the
// payload's PID. On error the second stage has been killed and what the
// join took given back.
func startInit(self string, c launch.Config, ready bool, ids *spec.IDRange, shared *Target) (int, error) {
	status, statusW, err := os.Pipe() // stage 2 → 1: "ok" or an error text
	if err != nil {
		return 0, fmt.Errorf("create the status pipe: %w", err)
	}
	defer status.Close()
	goR, goW, err := os.Pipe() // stage 1 → 2: the go byte
	if err != nil {
		return 0, fmt.Errorf("create the go pipe: %w", err)
	}
	defer goW.Close()
	stdin, stdinDone, err := initStdin(c)
	if err != nil {
		return 0, err
	}
	defer stdinDone()
	// CLONE_PARENT makes systemd, not the launcher, the payload's parent:
	// systemd then treats the MAINPID= it is handed as its own child and
	// waits for it on stop like for any service's main process.
	flags := unix.CLONE_PARENT | unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC
	if c.PrivateNetwork {
		flags |= unix.CLONE_NEWNET
	}
	cmd := &initCmd{
		path:  launch.InsidePath(self),
		args:  append([]string{launch.InsideBinary, launch.InitVerb}, c.Args()...),
		files: []*os.File{stdin, os.Stdout, os.Stderr, statusW, goR},
		attr:  syscall.SysProcAttr{Cloneflags: uintptr(flags)},
	}
	var trees *os.File
	var started []*os.File
	if ids != nil {
		if trees, started, err = withUserNS(cmd, *ids); err != nil {
			return 0, err
		}
		defer trees.Close()
	}
	proc, err := startIn(shared, ids != nil, cmd)
	for _, f := range append(started, statusW, goR) {
		f.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("start container init: %w", err)
	}
	defer unix.Close(proc.pidfd)
	join := startJoin(c, proc.pid)
	fail := func(err error) (int, error) {
		proc.kill()
		return 0, errors.Join(err, join.undo())
	}
	if ids != nil {
		if err := sendTrees(c, proc.pid, *ids, trees); err != nil {
			return fail(err)
		}
	}
	msg, _ := io.ReadAll(status)
	if string(msg) != "ok" {
		if len(msg) == 0 {
			msg = []byte("container init exited during setup")
		}
		return fail(errors.New(string(msg)))
	}
	pid := proc.pid
	stopRelay, releaseRelay, err := startRelay(self, c, pid)
	if err != nil {
		return fail(err)
	}
	if err := handOver(pid, ready, join, goW); err != nil {
		stopRelay()
		return fail(err)
	}
	releaseRelay()
	return pid, nil
}

// initCmd is how startIn starts the container's init: the program, its
// arguments (an empty environment), its descriptors 0, 1, 2, 3, … and the
// attributes of its clone.
type initCmd struct {
	path  string
	args  []string
	files []*os.File
	attr  syscall.SysProcAttr
}

// initProc is the started init: its PID, and a pidfd to signal it by (the
// PID may be reused once systemd, its parent, reaped it), which the
// caller closes.
type initProc struct{ pid, pidfd int }

// kill kills the init; systemd, its parent, reaps it.
func (p initProc) kill() { unix.PidfdSendSignal(p.pidfd, unix.SIGKILL, nil, 0) }

// start starts cmd with syscall.ForkExec (the caller closes the pidfd of
// the initProc it returns), not exec.Cmd.Start: package os probes the
// kernel's pidfd support before its first start of a process by forking a
// child that exits at once (os.checkPidfd), which every container start
// paid.
func (cmd *initCmd) start() (initProc, error) {
	fds := make([]uintptr, len(cmd.files))
	for i, f := range cmd.files {
		fds[i] = f.Fd()
	}
	p := initProc{pidfd: -1}
	attr := cmd.attr
	attr.PidFD = &p.pidfd
	var err error
	p.pid, err = syscall.ForkExec(cmd.path, cmd.args, &syscall.ProcAttr{Env: []string{}, Files: fds, Sys: &attr})
	runtime.KeepAlive(cmd.files)
	if err != nil {
		return initProc{}, fmt.Errorf("fork/exec %s: %w", cmd.path, err)
	}
	return p, nil
}

// startIn starts cmd, in the network namespace of shared's process when
// shared is not nil (network.InNetns). With lowPorts it first lets
// unprivileged processes bind every port there. On error no init runs.
func startIn(shared *Target, lowPorts bool, cmd *initCmd) (p initProc, err error) {
	if shared == nil {
		return cmd.start()
	}
	err = network.InNetns(netns.NsHandle(shared.pidfd.Fd()), func() error {
		if lowPorts {
			if err := os.WriteFile(unprivilegedPortStart, []byte("0"), 0); err != nil {
				return fmt.Errorf("let the payload bind ports below 1024 in the network namespace of pid %d: %w", shared.pid, err)
			}
		}
		p, err = cmd.start()
		return err
	})
	if err != nil && p.pidfd > 0 { // started, but the thread's own namespace could not be restored
		p.kill()
		unix.Close(p.pidfd)
		return initProc{}, err
	}
	return p, err
}

// unprivilegedPortStart is the sysctl of the lowest port a process
// without CAP_NET_BIND_SERVICE over its network namespace may bind.
const unprivilegedPortStart = "/proc/sys/net/ipv4/ip_unprivileged_port_start"

// handOver waits until the container has joined its networks, tells
// systemd the init's PID (with READY=1 when ready) and lets the init exec
// the payload. On error the caller kills the init and undoes the join.
func handOver(pid int, ready bool, join *pendingJoin, goW *os.File) error {
	if err := join.wait(); err != nil {
		return err
	}
	state := fmt.Sprintf("MAINPID=%d", pid)
	if ready {
		state += "\nREADY=1"
	}
	if err := notifySystemd(state); err != nil {
		return err
	}
	if _, err := goW.Write([]byte{'g'}); err != nil {
		return fmt.Errorf("release container init: %w", err)
	}
	return nil
}

// notifySystemd sends state, with the descriptors fds, to systemd's
// notify socket and waits until systemd has processed it (so that, after
// MAINPID=, the payload cannot exit before systemd knows it).
func notifySystemd(state string, fds ...int) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return errors.New("NOTIFY_SOCKET is not set: the launcher must run as a Type=notify unit")
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:]
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("notify systemd: socket(AF_UNIX, SOCK_DGRAM): %w", err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrUnix{Name: addr}
	var rights []byte
	if len(fds) > 0 {
		rights = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(fd, []byte(state), rights, sa, 0); err != nil {
		return fmt.Errorf("notify systemd: sendmsg %s: %w", sockName(sa), err)
	}
	return notifyBarrier(fd, sa, 5*time.Second)
}

// notifyBarrier sends BARRIER=1 with one end of a pipe and waits until
// systemd closes it, which it does after processing all earlier messages.
func notifyBarrier(fd int, sa *unix.SockaddrUnix, timeout time.Duration) error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("notify barrier: pipe2: %w", err)
	}
	defer unix.Close(p[0])
	err := unix.Sendmsg(fd, []byte("BARRIER=1"), unix.UnixRights(p[1]), sa, 0)
	unix.Close(p[1])
	if err != nil {
		return fmt.Errorf("notify barrier: sendmsg %s: %w", sockName(sa), err)
	}
	pfd := []unix.PollFd{{Fd: int32(p[0]), Events: unix.POLLHUP}}
	for {
		n, err := unix.Poll(pfd, int(timeout/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("notify barrier: poll the barrier pipe: %w", err)
		}
		if n == 0 {
			return errors.New("notify barrier: systemd did not answer")
		}
		return nil
	}
}

// sockName is the address of unix socket sa as $NOTIFY_SOCKET spells it:
// "@" for an abstract one's leading NUL.
func sockName(sa *unix.SockaddrUnix) string {
	if strings.HasPrefix(sa.Name, "\x00") {
		return "@" + sa.Name[1:]
	}
	return sa.Name
}
