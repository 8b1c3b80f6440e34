package isolate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// Launch is the launcher's first stage, run by systemd as the unit's main
// process (Type=notify). It starts the second stage in new pid, mount, uts,
// ipc (and, for a private network, net) namespaces, waits until it has set
// up the container, joins it to its network (c.Network: a lease and a
// veth, released again if the start fails), hands its PID to systemd
// (MAINPID=), lets it exec the payload and returns. With ready = "started" it says READY=1 at once;
// otherwise it waits until the payload is ready, says READY=1 and returns.
// self is the path of the cove binary; handedOver, if not nil, is called
// with the payload's PID once systemd knows it (to register the machine).
//
// With a user namespace (c.UserNS), the IDs are allocated first (package
// userns) and the namespace is created with the others; see withUserNS.
//
// If the container cannot be set up, the second stage has been killed and
// nothing is left running.
func Launch(self string, c launch.Config, handedOver func(pid int)) error {
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
	pid, err := startInit(self, c, readyNow, ids)
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
// if not nil, with the trees it needs), waits until it has set up the
// container, hands its PID to systemd (with READY=1 when ready) and lets it
// exec the payload. It returns the payload's PID.
func startInit(self string, c launch.Config, ready bool, ids *spec.IDRange) (int, error) {
	status, statusW, err := os.Pipe() // stage 2 → 1: "ok" or an error text
	if err != nil {
		return 0, fmt.Errorf("create the status pipe: %w", err)
	}
	goR, goW, err := os.Pipe() // stage 1 → 2: the go byte
	if err != nil {
		return 0, fmt.Errorf("create the go pipe: %w", err)
	}
	defer goW.Close()
	// CLONE_PARENT makes systemd, not the launcher, the payload's parent:
	// systemd then treats the MAINPID= it is handed as its own child and
	// waits for it on stop like for any service's main process.
	flags := unix.CLONE_PARENT | unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC
	if c.PrivateNetwork {
		flags |= unix.CLONE_NEWNET
	}
	cmd := &exec.Cmd{
		Path:        self,
		Args:        append([]string{"cove", launch.InitVerb}, c.Args()...),
		Env:         []string{},
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  []*os.File{statusW, goR},
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: uintptr(flags)},
	}
	var trees *os.File
	var started []*os.File
	if ids != nil {
		if trees, started, err = withUserNS(cmd, *ids); err != nil {
			return 0, err
		}
		defer trees.Close()
	}
	err = cmd.Start()
	for _, f := range append(started, statusW, goR) {
		f.Close()
	}
	if err != nil {
		return 0, fmt.Errorf("start container init: %w", err)
	}
	fail := func(err error) (int, error) {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, err
	}
	if ids != nil {
		if err := sendTrees(c, cmd.Process.Pid, *ids, trees); err != nil {
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
	pid := cmd.Process.Pid
	if err := storeConsole(c, pid); err != nil {
		return fail(err)
	}
	if err := handOver(c, pid, ready, goW); err != nil {
		return fail(err)
	}
	cmd.Process.Release()
	return pid, nil
}

// handOver joins the container's network (when it has one), tells systemd
// the init's PID (with READY=1 when ready) and lets the init exec the
// payload. On error it leaves the network again; the caller kills the init.
func handOver(c launch.Config, pid int, ready bool, goW *os.File) error {
	if c.Network != "" {
		if _, err := network.Join(network.Request{Network: c.Network, Workload: c.Name, PID: pid, IP: c.IP, Ports: c.Ports}); err != nil {
			return err
		}
	}
	leave := func(err error) error {
		if c.Network != "" {
			err = errors.Join(err, network.Leave(c.Network, c.Name))
		}
		return err
	}
	state := fmt.Sprintf("MAINPID=%d", pid)
	if ready {
		state += "\nREADY=1"
	}
	if err := notifySystemd(state); err != nil {
		return leave(err)
	}
	if _, err := goW.Write([]byte{'g'}); err != nil {
		return leave(fmt.Errorf("release container init: %w", err))
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

// ErrReported is returned by Init for a setup error it has already passed
// to the first stage, which reports it: the caller only exits non-zero.
var ErrReported = errors.New("setup error reported to the launcher")

// Init is the launcher's second stage: PID 1 of the container's
// namespaces. It builds the container's filesystem view, applies the
// identity and restrictions, reports "ok" on fd 3, waits for the go byte on
// fd 4 (sent once systemd knows its PID) and execs the payload, or with
// c.Init the minimal init (launch.InitPath), which stays PID 1 and the
// unit's main process and runs the payload as its child. It returns only
// on error; the error has also been reported on fd 3.
func Init(c launch.Config) error {
	runtime.LockOSThread() // restrictions are per thread; this one execs
	status := os.NewFile(3, "status")
	goPipe := os.NewFile(4, "go")
	argv0, argv, err := initOrPayload(&c)
	if err == nil {
		err = takeConsole(c)
	}
	if err != nil {
		fmt.Fprint(status, err.Error())
		return ErrReported
	}
	status.Write([]byte("ok"))
	status.Close()
	b := make([]byte, 1)
	if n, _ := goPipe.Read(b); n != 1 || b[0] != 'g' {
		return errors.New("launcher exited before handing the container to systemd")
	}
	goPipe.Close()
	err = unix.Exec(argv0, argv, payloadEnv(c))
	return fmt.Errorf("execve %s: %w", argv0, err)
}

// initOrPayload prepares the container (see prepare) and returns what the
// second stage execs: the payload, or with c.Init the init, opened on the
// host before the root changes and executed through its descriptor
// (close-on-exec: the payload does not inherit it), with the payload's
// command after "--" (it looks the command up in the PATH of the
// payload's environment, as lookPath did).
func initOrPayload(c *launch.Config) (argv0 string, argv []string, err error) {
	if !c.Init {
		argv0, err = prepare(c)
		return argv0, c.Argv, err
	}
	fd, err := unix.Open(launch.InitPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open the init %s (service.init; Debian's package tini has it): %w", launch.InitPath, err)
	}
	if _, err = prepare(c); err != nil {
		unix.Close(fd)
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), append([]string{"tini", "--"}, c.Argv...), nil
}

// prepare sets up everything before exec and returns the resolved path of
// the payload's command.
func prepare(c *launch.Config) (string, error) {
	lastCap, err := lastCapability()
	if err != nil {
		return "", err
	}
	var t *trees
	if spec.HasUserNS(c.UserNS) {
		unix.Close(selfFd) // executed already; the payload must not inherit it
		if t, err = receiveTrees(*c); err != nil {
			return "", err
		}
	}
	if err := setupRoot(*c, t); err != nil {
		return "", err
	}
	if err := resolveUser(c); err != nil {
		return "", err
	}
	if err := unix.Sethostname([]byte(c.Hostname)); err != nil {
		return "", fmt.Errorf("sethostname %q: %w", c.Hostname, err)
	}
	if c.PrivateNetwork {
		if err := loopbackUp(); err != nil {
			return "", err
		}
	}
	if err := unix.Chdir(c.Workdir); err != nil { // first: a relative command is found from there
		return "", fmt.Errorf("change to the working directory: chdir %s: %w", c.Workdir, err)
	}
	argv0, err := lookPath(c.Argv[0], payloadEnv(*c))
	if err != nil {
		return "", err
	}
	if err := restrict(*c, lastCap); err != nil {
		return "", err
	}
	return argv0, nil
}

// payloadEnv is the payload's environment: a base set, then the spec's.
func payloadEnv(c launch.Config) []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=" + c.Hostname,
		"HOME=/root",
		"container=cove",
	}
	if c.UID != 0 {
		env[2] = "HOME=/"
	}
	if c.Ready == spec.ReadyNotify {
		env = append(env, "NOTIFY_SOCKET="+spec.NotifyDir+"/"+notifySocketName)
	}
	return launch.MergeEnv(env, c.Env) // the spec's (and image's) PATH and HOME win
}

// lookPath resolves name as execvp would, with the PATH from env, inside
// the (already pivoted) root.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, executable(name)
	}
	path := ""
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			path = e[len("PATH="):]
		}
	}
	for _, dir := range strings.Split(path, ":") {
		p := dir + "/" + name
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in the container's PATH (%s): %w", name, path, ErrCommandNotFound)
}

// executable reports whether p is an executable regular file.
func executable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("command %s: %w", p, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("command %s is not an executable file", p)
	}
	return nil
}

// resolveUser resolves an image's user given by name (c.Image.UserName)
// with the container's own /etc/passwd and /etc/group: it must run after
// the root has been switched, so that those paths, and any symlinks in
// them, resolve inside the container.
func resolveUser(c *launch.Config) error {
	if c.Image.UserName == "" {
		return nil
	}
	passwd, err := readOptional("/etc/passwd")
	if err != nil {
		return err
	}
	group, err := readOptional("/etc/group")
	if err != nil {
		return err
	}
	if c.UID, c.GID, err = launch.LookupUser(c.Image.UserName, passwd, group); err != nil {
		return fmt.Errorf("resolve the image's user: %w", err)
	}
	c.Image.UserName, c.Image.UserSet = "", true
	return nil
}

// readOptional reads a small regular file of the container, nil if it is
// missing. The container controls the file: a device, a FIFO or a huge
// file is refused rather than read.
func readOptional(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4<<20+1))
	if err == nil && len(b) > 4<<20 {
		err = fmt.Errorf("read %s: larger than 4 MiB", path)
	}
	return b, err
}
