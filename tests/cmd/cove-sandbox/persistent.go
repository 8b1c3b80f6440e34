package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cove-project/cove/tests/sandbox"
)

const (
	// runDir holds, on the host, what finds the persistent sandbox again.
	runDir = "/run/cove-sandbox"
	// pidFile holds "HOLDER SYSTEMD": the PIDs of the background
	// cove-sandbox process that holds the sandbox and of its systemd.
	pidFile = runDir + "/pid"
	// consoleLog receives the sandbox's console (systemd's own messages).
	consoleLog = runDir + "/console.log"
	// hostTmp is where the host's /tmp is bound inside the sandbox, whose
	// own /tmp is private; shell binds it over /tmp for its command.
	hostTmp = "/run/cove-host-tmp"
	// serveVerb runs the holder process (internal; start runs it).
	serveVerb = "serve"
	// insidePATH is the PATH of commands run by shell.
	insidePATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// errNotRunning says that no persistent sandbox runs.
var errNotRunning = errors.New("no private systemd is running (scripts/setup starts it)")

// holder is a running persistent sandbox.
type holder struct {
	pid     int // the background cove-sandbox process
	systemd int // the sandbox's systemd, in the host's PID namespace
}

// find reads pidFile and returns the sandbox it names, or errNotRunning
// (removing a stale pidFile) if its processes are gone.
func find() (holder, error) {
	var h holder
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return h, errNotRunning
	}
	if err != nil {
		return h, fmt.Errorf("read %s: %w", pidFile, err)
	}
	if _, err := fmt.Sscanf(string(data), "%d %d", &h.pid, &h.systemd); err != nil || !h.alive() {
		_ = os.Remove(pidFile)
		return h, errNotRunning
	}
	return h, nil
}

// alive reports whether the holder process (not a zombie) and its systemd
// both still run.
func (h holder) alive() bool {
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", h.pid))
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", h.systemd))
	return strings.HasSuffix(string(cmdline), "\x00"+serveVerb+"\x00") && string(comm) == "systemd\n"
}

// start boots the persistent sandbox in a background holder process, unless
// one runs already, and returns once it is running (or failed to boot).
func start() error {
	if h, err := find(); err == nil {
		fmt.Printf("private systemd already running (pid %d)\n", h.systemd)
		return nil
	}
	if ok, why := sandbox.Usable(); !ok {
		return fmt.Errorf("cannot boot a private systemd here: %s", why)
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", runDir, err)
	}
	logFile, err := os.OpenFile(consoleLog, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", consoleLog, err)
	}
	defer logFile.Close()
	ready, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start holder: %w", err)
	}
	defer ready.Close()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start holder: %w", err)
	}
	cmd := exec.Command(self, serveVerb)
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.ExtraFiles = []*os.File{readyW} // fd 3: "ok" once booted, else the error
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return fmt.Errorf("start holder: %w", err)
	}
	msg, _ := io.ReadAll(ready)
	if string(msg) != "ok\n" {
		_ = cmd.Wait()
		return fmt.Errorf("boot the private systemd: %s (its console: %s)", strings.TrimSpace(string(msg)), consoleLog)
	}
	_ = cmd.Process.Release()
	h, err := find()
	if err != nil {
		return fmt.Errorf("the private systemd booted but is gone: %w", err)
	}
	fmt.Printf("started a private systemd (pid %d); its console log: %s\n", h.systemd, consoleLog)
	return nil
}

// serve is the holder: it boots the sandbox, writes pidFile, reports on
// fd 3, and then waits until systemd is gone. SIGTERM (stop) shuts the
// sandbox down through the handler that sandbox.Boot installs.
func serve() int {
	syscall.CloseOnExec(3) // the sandbox's processes must not hold it open
	ready := os.NewFile(3, "ready")
	fail := func(err error) int {
		fmt.Fprintln(ready, err)
		fmt.Fprintf(os.Stderr, "cove-sandbox: %v\n", err)
		return 1
	}
	ctx := context.Background()
	sb, err := sandbox.Boot(ctx, sandbox.Options{
		Binds:       map[string]string{hostTmp: "/tmp"},
		BootTimeout: 2 * time.Minute,
		Log:         os.Stderr,
	})
	if err != nil {
		return fail(err)
	}
	if err := unmaskCove(ctx, sb); err != nil {
		_ = sb.Shutdown()
		return fail(err)
	}
	if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d %d\n", os.Getpid(), sb.PID())), 0o644); err != nil {
		_ = sb.Shutdown()
		return fail(fmt.Errorf("write %s: %w", pidFile, err))
	}
	fmt.Fprintln(ready, "ok")
	ready.Close()
	for syscall.Kill(sb.PID(), 0) == nil {
		time.Sleep(time.Second)
	}
	err = sb.Shutdown()
	_ = os.Remove(pidFile)
	return report(err)
}

// unmaskCove undoes the mask of cove-api.socket: the sandbox masks every
// unit the host enables (for tests, the host's units must not run inside),
// but the persistent sandbox is where the cove package is installed, so its
// socket runs there as on a machine booted with the package.
func unmaskCove(ctx context.Context, sb *sandbox.Sandbox) error {
	const script = `m=/run/systemd/system/cove-api.socket
[ -L "$m" ] || exit 0
rm "$m" && systemctl daemon-reload && systemctl start cove-api.socket`
	_, errOut, code, err := sb.Run(ctx, "sh", "-c", script)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit status %d: %s", code, strings.TrimSpace(errOut))
	}
	if err != nil {
		return fmt.Errorf("start cove-api.socket in the private systemd: %w", err)
	}
	return nil
}

// enterScript runs inside, in a mount namespace of its own: the host's /tmp
// over the private one, the caller's directory ($2) if it is visible, then
// the command.
const enterScript = `mount --bind "$1" /tmp && { cd "$2" 2>/dev/null || cd /; } && shift 2 && exec "$@"`

// shell replaces this process with cmd (default: $SHELL, else bash) run in
// the sandbox's mount, PID, cgroup and UTS namespaces, with the host's /tmp
// and the current directory, a plain environment (PATH, HOME, LANG, TERM)
// and debian_chroot=cove-sandbox (Debian's bash prompt shows it).
func shell(cmd []string) error {
	h, err := find()
	if err != nil {
		return err
	}
	if len(cmd) == 0 {
		cmd = []string{os.Getenv("SHELL")}
		if cmd[0] == "" {
			cmd[0] = "/bin/bash"
		}
	}
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("enter the private systemd: %w", err)
	}
	cwd, _ := os.Getwd()
	argv := append([]string{nsenter, "-t", strconv.Itoa(h.systemd), "-m", "-p", "-C", "-u", "--",
		"unshare", "--mount", "--", "/bin/sh", "-c", enterScript, "sh", hostTmp, cwd}, cmd...)
	env := []string{"PATH=" + insidePATH, "HOME=/root", "LANG=C.UTF-8", "TERM=" + os.Getenv("TERM"), "debian_chroot=cove-sandbox"}
	if err := syscall.Exec(nsenter, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", nsenter, err)
	}
	return nil
}

// stop shuts the persistent sandbox down (SIGTERM to its holder, which
// powers systemd off and removes its cgroups and state directory), waits
// for the holder to exit and removes runDir. Without a sandbox it only
// removes runDir.
func stop() error {
	h, err := find()
	switch {
	case errors.Is(err, errNotRunning):
		fmt.Println("no private systemd is running")
		return removeRunDir()
	case err != nil:
		return err
	}
	if err := syscall.Kill(h.pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop holder %d: %w", h.pid, err)
	}
	for deadline := time.Now().Add(30 * time.Second); processExists(h.pid); {
		if time.Now().After(deadline) {
			return fmt.Errorf("holder %d did not exit within 30 s (its console: %s)", h.pid, consoleLog)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("stopped the private systemd (pid %d)\n", h.systemd)
	return removeRunDir()
}

// processExists reports whether pid runs (a zombie does not).
func processExists(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || !strings.HasPrefix(string(stat[i+1:]), " Z")
}

// removeRunDir removes runDir and what it holds.
func removeRunDir() error {
	if err := os.RemoveAll(runDir); err != nil {
		return fmt.Errorf("remove %s: %w", runDir, err)
	}
	return nil
}
