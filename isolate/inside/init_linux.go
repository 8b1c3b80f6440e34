package inside

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"golang.org/x/sys/unix"
)

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
		unix.Close(SelfFd) // executed already; the payload must not inherit it
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
	if err := enterWorkdir(c.Workdir); err != nil { // first: a relative command is found from there
		return "", err
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

// enterWorkdir changes to dir inside the container, first creating it
// (with its parents: root's, mode 0755) when it does not exist, as Docker
// and podman do for an image's or a run's working directory. A root that
// cannot be written (read_only) refuses the creation with its error.
func enterWorkdir(dir string) error {
	err := unix.Chdir(dir)
	if errors.Is(err, unix.ENOENT) {
		if mkErr := os.MkdirAll(dir, 0o755); mkErr != nil {
			return fmt.Errorf("create the working directory: %w", mkErr)
		}
		err = unix.Chdir(dir)
	}
	if err != nil {
		return fmt.Errorf("change to the working directory: chdir %s: %w", dir, err)
	}
	return nil
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
		env = append(env, "NOTIFY_SOCKET="+spec.NotifyDir+"/"+NotifySocketName)
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

// NotifySocketName is the notify socket's name in launch.NotifyDir/NAME on
// the host and in spec.NotifyDir inside the container.
const NotifySocketName = "notify.sock"
