package isolate

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/isolate/inside"
	"github.com/cove-project/cove/launch"
)

// initStdin is the container init's standard input: the launcher's, or
// for c.Console a console socket of the launcher's own, sized as the
// starting cove asked in the launcher's (tty.TakeSize), so that the init
// gets a terminal at a restart too, when that size was read before and the
// starting cove may be gone. The relay hands the master to the starting
// cove instead (startRelay). The caller calls done once the init started.
func initStdin(c launch.Config) (stdin *os.File, done func(), err error) {
	if !c.Console {
		return os.Stdin, func() {}, nil
	}
	host, stage, err := tty.NewSocket(tty.TakeSize(os.Stdin))
	if err != nil {
		return nil, nil, fmt.Errorf("give the container a terminal: %w", err)
	}
	// The init sends the master to host too, unread: startRelay takes it
	// from the init.
	return stage, func() { host.Close(); stage.Close() }, nil
}

// relayReadyFd is the relay's descriptor of its ready pipe: the third of
// its ExtraFiles.
const relayReadyFd = 5

// startRelay, for c.Console, starts the relay of the payload's terminal
// (the stage binary self as launch.RelayVerb, in a session of its own, in
// the unit like the payload) with the master that the container's init
// pid keeps at inside.InitConsoleFd (pidfd_getfd) and the launcher's
// standard input, the starting cove's console socket, as its first client
// (sent the master first, as the init's terminal stage would).
// The relay is the terminal's one reader from then on: it logs the output
// and serves clients until the terminal ends (package tty's Relay), so the
// payload keeps its terminal when cove detaches and never blocks on it.
// The first stage calls it before the handover, and it returns once the
// relay is ready: the relay writes one byte to its ready pipe once it
// handles SIGTERM and logs the terminal. The payload, released only then,
// may end at once, and systemd then stops the unit with a SIGTERM, which
// would kill a relay still starting (Go's default action) before it read
// the payload's output. (A relay that hangs instead is bounded by the
// unit's start timeout.) stop ends the relay when the handover fails,
// release lets it go when it succeeded (both no-ops without c.Console).
func startRelay(self string, c launch.Config, pid int) (stop, release func(), err error) {
	stop, release = func() {}, func() {}
	if !c.Console {
		return stop, release, nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return stop, release, fmt.Errorf("keep the terminal: pidfd_open pid %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, inside.InitConsoleFd, 0)
	if err != nil {
		return stop, release, fmt.Errorf("keep the terminal: pidfd_getfd pid %d fd %d: %w", pid, inside.InitConsoleFd, err)
	}
	master := os.NewFile(uintptr(fd), "pty master")
	defer master.Close()
	ready, readyW, err := os.Pipe()
	if err != nil {
		return stop, release, fmt.Errorf("keep the terminal: create the relay's ready pipe: %w", err)
	}
	defer ready.Close()
	cmd := &exec.Cmd{
		Path:        self,
		Args:        []string{launch.StageBinary, launch.RelayVerb, "--name", c.Name, "--ready-fd", strconv.Itoa(relayReadyFd)},
		Env:         []string{"GOMAXPROCS=1"}, // it copies bytes; fewer threads count against the unit's TasksMax
		Stdout:      os.Stderr,                // the relay logs the terminal itself; it says only what went wrong
		Stderr:      os.Stderr,
		ExtraFiles:  []*os.File{master, os.Stdin, readyW}, // fds 3, 4 (see the relay stage) and relayReadyFd
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		return stop, release, fmt.Errorf("keep the terminal: start its relay: %w", err)
	}
	proc := cmd.Process
	stop = func() {
		proc.Kill()
		proc.Wait()
	}
	if _, err := ready.Read(make([]byte, 1)); err != nil {
		stop()
		return func() {}, release, fmt.Errorf("keep the terminal: its relay ended before it was ready (read its ready pipe: %w)", err)
	}
	return stop, func() { proc.Release() }, nil
}
