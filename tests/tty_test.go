package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/tty"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/tests/harness"
)

// terminal is cove running in the sandbox on a pseudo-terminal that the
// test holds: it types on the master and reads the screen from it, as a
// user's terminal emulator does.
type terminal struct {
	t             *testing.T
	master, slave *os.File
	cmd           *exec.Cmd
	exited        chan struct{}
	mu            sync.Mutex
	screen        bytes.Buffer
	seen          int // screen offset up to which expect has matched
}

// onTerminal starts cove with args in the sandbox on a new terminal of
// size rows x cols (its controlling terminal, in a session of its own)
// with TERM=xterm-256color.
func onTerminal(t *testing.T, rows, cols uint16, args ...string) *terminal {
	t.Helper()
	return onTerminalRun(t, rows, cols, coveBin, args...)
}

// onTerminalRun is onTerminal for program bin.
func onTerminalRun(t *testing.T, rows, cols uint16, bin string, args ...string) *terminal {
	t.Helper()
	master, slave, err := tty.Open("/dev/ptmx")
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, master: master, slave: slave, exited: make(chan struct{})}
	term.resize(rows, cols)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	term.cmd = sb.Command(ctx, bin, args...)
	term.cmd.Env = append(term.cmd.Env, "TERM=xterm-256color")
	term.cmd.Stdin, term.cmd.Stdout, term.cmd.Stderr = slave, slave, slave
	term.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := term.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		term.cmd.Wait()
		close(term.exited)
	}()
	go term.read()
	t.Cleanup(func() {
		cancel()
		<-term.exited
		master.Close()
		slave.Close()
	})
	return term
}

// read copies the screen until the master is closed.
func (term *terminal) read() {
	b := make([]byte, 4096)
	for {
		n, err := term.master.Read(b)
		term.mu.Lock()
		term.screen.Write(b[:n])
		term.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// resize sets the terminal's size; the kernel sends SIGWINCH to its
// foreground process group (cove).
func (term *terminal) resize(rows, cols uint16) {
	term.t.Helper()
	if err := tty.SetSize(term.master, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		term.t.Fatal(err)
	}
}

// typeKeys types s.
func (term *terminal) typeKeys(s string) {
	term.t.Helper()
	if _, err := term.master.Write([]byte(s)); err != nil {
		term.t.Fatalf("type %q: %v", s, err)
	}
}

// run types a shell command line followed by an echo of a marker the
// line itself does not contain, waits for the marker and returns the
// screen written since the line was typed, carriage returns dropped.
func (term *terminal) run(line string) string {
	term.t.Helper()
	n := time.Now().UnixNano() % 100000
	term.typeKeys(fmt.Sprintf("%s; echo MARK$((%d+1))\r", line, n))
	return term.expect(regexp.MustCompile(fmt.Sprintf(`(?m)^MARK%d\r?$`, n+1)), 30*time.Second)
}

// expect waits until re matches the screen after what earlier calls
// matched and returns that part of the screen, carriage returns dropped.
func (term *terminal) expect(re *regexp.Regexp, d time.Duration) string {
	term.t.Helper()
	deadline := time.Now().Add(d)
	for {
		term.mu.Lock()
		s := term.screen.String()[term.seen:]
		term.mu.Unlock()
		if loc := re.FindStringIndex(s); loc != nil {
			term.seen += loc[1]
			return strings.ReplaceAll(s[:loc[1]], "\r", "")
		}
		select {
		case <-term.exited:
			term.t.Fatalf("cove exited (%v) before the screen showed %q; it shows:\n%s", term.cmd.ProcessState, re, s)
		default:
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("timed out after %s waiting for %q on the screen:\n%s", d, re, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits until cove exits and returns its exit status and the screen
// not matched yet.
func (term *terminal) wait(d time.Duration) (int, string) {
	term.t.Helper()
	select {
	case <-term.exited:
	case <-time.After(d):
		term.t.Fatalf("cove did not exit within %s", d)
	}
	time.Sleep(100 * time.Millisecond) // the last output
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.cmd.ProcessState.ExitCode(), term.screen.String()[term.seen:]
}

// restored checks that cove left the terminal as it found it: canonical
// mode with echo, not raw.
func (term *terminal) restored() {
	term.t.Helper()
	tio, err := unix.IoctlGetTermios(int(term.slave.Fd()), unix.TCGETS)
	if err != nil || tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != unix.ICANON|unix.ECHO|unix.ISIG {
		term.t.Errorf("cove left the terminal raw: lflag %#x, %v", tio.Lflag, err)
	}
}

// shellSeesTerminal checks, in a shell on term, that its stdin is a
// terminal of the container (/dev/pts/N) of the size the user's has, with
// the user's TERM (onTerminal's xterm-256color), and that a resize reaches
// it.
func shellSeesTerminal(t *testing.T, term *terminal, rows, cols uint16) {
	t.Helper()
	shellSeesTerminalAs(t, term, rows, cols, "xterm-256color")
}

// shellSeesTerminalAs is shellSeesTerminal with TERM=termName.
func shellSeesTerminalAs(t *testing.T, term *terminal, rows, cols uint16, termName string) {
	t.Helper()
	out := term.run("tty; stty size; echo TERM=$TERM")
	if !regexp.MustCompile(`(?m)^/dev/pts/\d+$`).MatchString(out) {
		t.Errorf("tty inside does not print a /dev/pts path:\n%s", out)
	}
	if want := fmt.Sprintf("\n%d %d\n", rows, cols); !strings.Contains(out, want) {
		t.Errorf("stty size inside: want %q:\n%s", want, out)
	}
	if !strings.Contains(out, "\nTERM="+termName+"\n") {
		t.Errorf("TERM is not %s:\n%s", termName, out)
	}
	term.resize(rows+7, cols+9)
	term.sizeReaches(rows+7, cols+9, "after a resize")
}

// sizeReaches waits up to 10 s for stty size in the shell on term to
// show rows and columns.
func (term *terminal) sizeReaches(rows, cols uint16, when string) {
	term.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	want := fmt.Sprintf("\n%d %d\n", rows, cols)
	for out := term.run("stty size"); !strings.Contains(out, want); out = term.run("stty size") {
		if time.Now().After(deadline) {
			term.t.Fatalf("%s, stty size inside: want %q:\n%s", when, want, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dockerShellSeesTerminal is shellSeesTerminalAs for the docker CLI of
// Debian 12 (20.10) with Docker's TERM: it sends the user's size only in a
// resize after the start (as with Docker's own daemon, what the payload
// reads before that is the default 24x80; a CLI of 23 or later sends it
// in the create too: TestDockerConsoleSize), so the size is waited for.
func dockerShellSeesTerminal(t *testing.T, term *terminal, rows, cols uint16) {
	t.Helper()
	term.sizeReaches(rows, cols, "after the docker CLI's first resize")
	shellSeesTerminalAs(t, term, rows, cols, "xterm")
}

// TestRunTTY: cove run -it gives the payload a real terminal: tty, its
// size and resizes, TERM; Ctrl-C interrupts what runs in the shell, not
// the shell or cove; the shell's exit status is cove's; the terminal is
// restored.
func TestRunTTY(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "ttyrun")
	term := onTerminal(t, 30, 100, runArgs("-it", "--rm", "--name", "ttyrun", "--", "/bin/sh")...)
	shellSeesTerminal(t, term, 30, 100)

	term.typeKeys("sleep 100\r")
	eventually(t, 20*time.Second, "sleep 100 to run in the container", func() bool {
		return inside(t, "pgrep", "-fx", "sleep 100").Code == 0
	})
	start := time.Now()
	term.typeKeys("\x03")
	out := term.run("echo after-interrupt")
	if time.Since(start) > 20*time.Second || !strings.Contains(out, "\nafter-interrupt\n") {
		t.Errorf("Ctrl-C did not interrupt sleep (%s):\n%s", time.Since(start), out)
	}
	if inside(t, "pgrep", "-fx", "sleep 100").Code == 0 {
		t.Error("sleep 100 still runs after Ctrl-C")
	}

	term.typeKeys("exit 3\r")
	if code, screen := term.wait(30 * time.Second); code != 3 {
		t.Errorf("cove run -it after exit 3: exit status %d:\n%s", code, screen)
	}
	term.restored()
}

// TestTTYDetachAndExec: Ctrl-] detaches cove run -it and cove exec -it
// with a message; the workload (and the exec'd shell) keep running. cove
// exec -it gives the command a terminal of its own, with the user's size,
// and passes its exit status.
func TestTTYDetachAndExec(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "ttydet")
	term := onTerminal(t, 24, 80, runArgs("-it", "--name", "ttydet", "--", "/bin/sh")...)
	term.run("echo started")
	pid := show(t, "cove-ttydet.service", "MainPID")
	term.typeKeys("\x1d")
	code, screen := term.wait(30 * time.Second)
	if code != 0 || !strings.Contains(screen, "detached from ttydet") || !strings.Contains(screen, "cove stop ttydet") {
		t.Errorf("detach: exit %d, screen:\n%s", code, screen)
	}
	term.restored()
	time.Sleep(time.Second) // a hung-up shell would exit now
	if st, now := show(t, "cove-ttydet.service", "ActiveState"), show(t, "cove-ttydet.service", "MainPID"); st != "active" || now != pid {
		t.Fatalf("after the detach: %s, MainPID %s (was %s); want the shell still running", st, now, pid)
	}

	ex := onTerminal(t, 20, 70, "exec", "-it", "ttydet", "--", "/bin/sh")
	shellSeesTerminal(t, ex, 20, 70)
	ex.typeKeys("exit 4\r")
	if code, screen := ex.wait(30 * time.Second); code != 4 {
		t.Errorf("cove exec -it after exit 4: exit status %d:\n%s", code, screen)
	}
	ex.restored()

	ex = onTerminal(t, 20, 70, "exec", "-it", "ttydet", "--", "/bin/sh")
	ex.run("echo exec-started")
	ex.typeKeys("\x1d")
	if code, screen := ex.wait(30 * time.Second); code != 0 || !strings.Contains(screen, "detached from /bin/sh in ttydet") {
		t.Errorf("exec detach: exit %d, screen:\n%s", code, screen)
	}
	time.Sleep(time.Second)
	shells := `for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline; echo; done | grep -cx '/bin/sh '`
	if r := cove(t, "exec", "ttydet", "--", "/bin/sh", "-c", shells); strings.TrimSpace(r.Stdout) != "2" {
		t.Errorf("after detaching cove exec -it, want the payload's and the exec'd shell running:\n%s%s", r.Stdout, r.Stderr)
	}
}

// TestRunDetachedTTY: cove run -dit starts a shell on a terminal of the
// container and returns at once with its name; the shell keeps running,
// waiting on its terminal (the unit's file descriptor store holds the
// master), and cove exec reaches it; no terminal is needed on cove's side.
func TestRunDetachedTTY(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "ttybg")
	r := cove(t, runArgs("-dit", "--name", "ttybg", "--", "/bin/sh")...)
	if r.Code != 0 || r.Stdout != "ttybg\n" {
		t.Fatalf("cove run -dit: exit %d, %q %s", r.Code, r.Stdout, r.Stderr)
	}
	pid := show(t, "cove-ttybg.service", "MainPID")
	time.Sleep(time.Second) // a shell whose terminal was hung up, or that read EOF, would have exited now
	if st, now := show(t, "cove-ttybg.service", "ActiveState"), show(t, "cove-ttybg.service", "MainPID"); st != "active" || now != pid {
		t.Fatalf("after cove run -dit returned: %s, MainPID %s (was %s); want the shell running", st, now, pid)
	}
	out := mustCove(t, "exec", "ttybg", "--", "/bin/sh", "-c", "readlink /proc/1/fd/0; tr '\\0' ' ' < /proc/1/cmdline")
	if !regexp.MustCompile(`^/dev/pts/\d+\n/bin/sh $`).MatchString(out) {
		t.Errorf("the detached shell's stdin and command line: %q, want a pty of the container and /bin/sh", out)
	}
}

// TestTTYOutputOfQuickPayload: the output of a removed run's payload
// that ends at once on its terminal is in the journal, however slowly the
// terminal's relay starts: with 2 % of a CPU the relay's start takes a
// good part of a second, and a payload released before the relay handled
// SIGTERM ended first, whereupon systemd's stop of the unit killed the
// starting relay: the output was lost, and cove run said "the process
// ended before handing over its terminal" (the launcher now waits for the
// relay's ready byte). Docker's containers stop so at their payload's end
// too (TestDockerConsoleSize's flake).
func TestTTYOutputOfQuickPayload(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "ttyquick")
	for i := range 3 {
		word := fmt.Sprintf("quick-output-%d", i)
		r := cove(t, runArgs("-dt", "--rm", "--cpus", "0.02", "--name", "ttyquick", "--", "/bin/echo", word)...)
		if r.Code != 0 {
			t.Fatalf("cove run -dt --rm: exit %d: %s", r.Code, r.Stderr)
		}
		eventually(t, 30*time.Second, "ttyquick to be gone", func() bool {
			return show(t, "cove-ttyquick.service", "LoadState") == "not-found"
		})
		if logs := journalOf(t, "ttyquick"); !strings.Contains(logs, word) {
			t.Fatalf("the journal of a payload that ended at once on its terminal lacks its output %q:\n%s", word, logs)
		}
	}
}

// TestTTYOutputLoggedLate: the output of a payload on a terminal is its
// unit's in the journal even when journald reads it only after the relay
// that wrote it has ended (a busy journald: TestDockerConsoleSize's
// flake on CI, where the second run's output was in no unit's journal).
// journald, stopped here during the run, then finds no cgroup of the
// writer's process; the relay's stream names the unit, as systemd's own
// streams do.
func TestTTYOutputLoggedLate(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "ttylate")
	journald := show(t, "systemd-journald.service", "MainPID")
	if pid, err := strconv.Atoi(journald); err != nil || pid <= 0 {
		t.Fatalf("journald's MainPID %q: want a process", journald) // kill 0 would stop this test's process group
	}
	resume := func() {
		if r := inside(t, "kill", "-CONT", journald); r.Code != 0 {
			t.Fatalf("resume journald (PID %s): exit %d: %s", journald, r.Code, r.Stderr)
		}
	}
	t.Cleanup(resume) // first: a failed kill may have stopped it all the same
	if r := inside(t, "kill", "-STOP", journald); r.Code != 0 {
		t.Fatalf("stop journald (PID %s): exit %d: %s", journald, r.Code, r.Stderr)
	}
	if r := cove(t, runArgs("-dt", "--rm", "--name", "ttylate", "--", "/bin/echo", "late-output")...); r.Code != 0 {
		t.Fatalf("cove run -dt --rm: exit %d: %s", r.Code, r.Stderr)
	}
	eventually(t, 30*time.Second, "ttylate to be gone", func() bool {
		return show(t, "cove-ttylate.service", "LoadState") == "not-found"
	})
	resume()
	eventually(t, 10*time.Second, "the output in the unit's journal", func() bool {
		return strings.Contains(journalOf(t, "ttylate"), "late-output")
	})
}

// floodLines is how many lines floodScript writes: about 280 KiB, where a
// pty holds about 64 KiB.
const floodLines = 3000

// floodScript writes floodLines numbered lines to its terminal, then
// all-written, then runs a shell there.
var floodScript = fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo "line-$i-................................................................................"; i=$((i+1)); done; echo all-written; exec sh`, floodLines)

// TestAttachDetachedTTY: the terminal of a cove run -dt payload has a
// reader in its unit (the relay, in the unit's cgroup beside the payload):
// a payload writing far more than a pty holds is not blocked, and all of
// it is in the journal; cove attach shows the output from then on, passes
// input, sets the size, detaches with Ctrl-] (the payload keeps running),
// and ends with the payload's exit status; cove attach to a workload
// without a terminal, or to none, says so.
func TestAttachDetachedTTY(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "ttyatt")
	mustCove(t, runArgs("-dit", "--name", "ttyatt", "--", "/bin/sh", "-c", floodScript)...)
	eventually(t, 30*time.Second, "the payload's output, all of it, in its journal", func() bool {
		return strings.Contains(cove(t, "logs", "ttyatt").Stdout, "all-written")
	})
	if logs := cove(t, "logs", "ttyatt").Stdout; !strings.Contains(logs, fmt.Sprintf("line-%d-", floodLines-1)) || !strings.Contains(logs, "line-0-") {
		t.Errorf("the journal lacks some of the payload's lines (%d bytes)", len(logs))
	}
	procs := inside(t, "systemd-cgls", "--no-pager", "-u", "cove-ttyatt.service").Stdout
	if !strings.Contains(procs, "launch-relay --name ttyatt") {
		t.Errorf("no relay in the unit's cgroup:\n%s", procs)
	}

	term := onTerminal(t, 27, 91, "attach", "ttyatt")
	term.expect(regexp.MustCompile(`attached to ttyatt`), 20*time.Second)
	out := term.run("tty; stty size; echo typed-$((40+2))")
	if !regexp.MustCompile(`(?m)^/dev/pts/\d+$`).MatchString(out) || !strings.Contains(out, "\n27 91\n") || !strings.Contains(out, "\ntyped-42\n") {
		t.Errorf("attached: the shell's terminal, size and an echo:\n%s", out)
	}
	term.typeKeys("\x1d")
	if code, screen := term.wait(30 * time.Second); code != 0 || !strings.Contains(screen, "detached from ttyatt") {
		t.Errorf("detach: exit %d, screen:\n%s", code, screen)
	}
	term.restored()
	if st := show(t, "cove-ttyatt.service", "SubState"); st != "running" {
		t.Fatalf("after the detach the unit is %s, want running", st)
	}
	eventually(t, 10*time.Second, "what was typed while attached in the journal", func() bool {
		return strings.Contains(cove(t, "logs", "ttyatt").Stdout, "typed-42")
	})

	term = onTerminal(t, 24, 80, "attach", "ttyatt")
	term.expect(regexp.MustCompile(`attached to ttyatt`), 20*time.Second)
	term.run("echo again")
	term.typeKeys("exit 5\r")
	if code, screen := term.wait(30 * time.Second); code != 5 {
		t.Errorf("cove attach when the shell exits 5: exit status %d:\n%s", code, screen)
	}
	eventually(t, 10*time.Second, "the relay to end with the terminal", func() bool {
		return !strings.Contains(inside(t, "ps", "-eo", "args").Stdout, "launch-relay --name ttyatt")
	})

	cleanupWorkload(t, "noterm")
	mustCove(t, runArgs("-d", "--name", "noterm", "--", "sleep", "100")...)
	if r := cove(t, "attach", "noterm"); r.Code != 1 || !strings.Contains(r.Stderr, "it has no terminal") {
		t.Errorf("cove attach to a container without a terminal: exit %d, %s", r.Code, r.Stderr)
	}
	if r := cove(t, "attach", "nosuch"); r.Code != 1 || !strings.Contains(r.Stderr, "no such workload nosuch") {
		t.Errorf("cove attach nosuch: exit %d, %s", r.Code, r.Stderr)
	}
}

// TestTTYRestart: a payload with a terminal that systemd restarts
// (restart = "always") gets a terminal at every start, though the cove
// that started it is gone; its output reaches the journal each time.
func TestTTYRestart(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "ttyre")
	mustCove(t, runArgs("-dit", "--restart", "always", "--name", "ttyre", "--", "/bin/sh", "-c", "echo started-on-$(tty); sleep 1; exit 3")...)
	eventually(t, 30*time.Second, "a restart with a terminal", func() bool {
		return strings.Count(cove(t, "logs", "ttyre").Stdout, "started-on-/dev/pts/") >= 2
	})
	if n := show(t, "cove-ttyre.service", "NRestarts"); n == "0" {
		t.Errorf("NRestarts %s after two starts", n)
	}
}

// TestDockerExecTTY: the real docker CLI's exec -it on a terminal gets a
// terminal of the container through the API: tty, the user's size (the
// CLI's resize), a resize when the user's terminal changes, typed input,
// and the shell's exit status.
func TestDockerExecTTY(t *testing.T) {
	needAPI(t)
	docker, ref := dockerWithImage(t)
	t.Cleanup(func() { docker("rm", "-f", "exit"); cove(t, "rmi", "--force", ref); cove(t, "image", "prune") })
	if r := docker("run", "-d", "--name", "exit", ref, "sleep", "1000"); r.Code != 0 {
		t.Fatalf("docker run -d: exit %d: %s", r.Code, r.Stderr)
	}
	term := onTerminalRun(t, 30, 100, harness.DockerCLI(t, sb), "-H", apiHost, "exec", "-it", "exit", "/bin/sh")
	dockerShellSeesTerminal(t, term, 30, 100)
	term.typeKeys("exit 6\r")
	if code, screen := term.wait(30 * time.Second); code != 6 {
		t.Errorf("docker exec -it after exit 6: exit status %d:\n%s", code, screen)
	}
}

// TestDockerRunTTY: the real docker CLI's run -it on a terminal gives the
// payload a terminal of the container through the API (tty, the CLI's
// size and a later resize, TERM=xterm, typed input, the exit status, --rm
// leaving nothing); run -dit keeps the terminal in its relay: a payload
// writing far more than a pty holds is not blocked, docker logs shows its
// output raw (inspect says Tty), and docker attach reaches the terminal.
func TestDockerRunTTY(t *testing.T) {
	needAPI(t)
	docker, ref := dockerWithImage(t)
	t.Cleanup(func() { docker("rm", "-f", "dtty", "dbg"); cove(t, "rmi", "--force", ref); cove(t, "image", "prune") })
	cli := harness.DockerCLI(t, sb)
	term := onTerminalRun(t, 30, 100, cli, "-H", apiHost, "run", "-it", "--rm", "--name", "dtty", ref, "/bin/sh")
	dockerShellSeesTerminal(t, term, 30, 100)
	term.typeKeys("exit 7\r")
	if code, screen := term.wait(30 * time.Second); code != 7 {
		t.Errorf("docker run -it after exit 7: exit status %d:\n%s", code, screen)
	}
	eventually(t, 10*time.Second, "nothing left of the --rm run", func() bool {
		return show(t, "cove-dtty.service", "LoadState") == "not-found" && docker("ps", "-a", "-q", "--filter", "name=dtty").Stdout == ""
	})

	if r := docker("run", "-dit", "--name", "dbg", ref, "/bin/sh", "-c", floodScript); r.Code != 0 {
		t.Fatalf("docker run -dit: exit %d: %s", r.Code, r.Stderr)
	}
	eventually(t, 30*time.Second, "all of the output in docker logs", func() bool {
		return strings.Contains(docker("logs", "dbg").Stdout, "all-written")
	})
	logs := docker("logs", "dbg").Stdout
	if !strings.HasPrefix(logs, "line-0-....") || !strings.Contains(logs, fmt.Sprintf("\nline-%d-", floodLines-1)) {
		t.Errorf("docker logs of a terminal: want its lines raw, got %d bytes starting %q", len(logs), logs[:min(len(logs), 40)])
	}
	if r := docker("inspect", "-f", "{{.Config.Tty}}", "dbg"); strings.TrimSpace(r.Stdout) != "true" {
		t.Errorf("docker inspect: Config.Tty %q, want true", r.Stdout)
	}
	att := onTerminalRun(t, 28, 90, cli, "-H", apiHost, "attach", "dbg")
	time.Sleep(500 * time.Millisecond) // the CLI's attach and resize
	out := att.run("stty size; echo attached-$((40+2))")
	if !strings.Contains(out, "\n28 90\n") || !strings.Contains(out, "\nattached-42\n") {
		t.Errorf("docker attach: the shell's size and echo:\n%s", out)
	}
	att.typeKeys("\x10\x11") // Docker's detach keys, Ctrl-P Ctrl-Q: the CLI (20.10) detaches, exit 1
	if code, screen := att.wait(30 * time.Second); code > 1 || !strings.Contains(screen, "read escape sequence") {
		t.Errorf("docker attach, Ctrl-P Ctrl-Q: exit status %d:\n%s", code, screen)
	}
	if r := docker("inspect", "-f", "{{.State.Status}}", "dbg"); strings.TrimSpace(r.Stdout) != "running" {
		t.Errorf("after detaching, docker inspect: %q, want running", r.Stdout)
	}
	att = onTerminalRun(t, 28, 90, cli, "-H", apiHost, "attach", "dbg")
	time.Sleep(500 * time.Millisecond)
	att.run("echo again")
	att.typeKeys("exit 3\r")
	if code, screen := att.wait(30 * time.Second); code != 3 {
		t.Errorf("docker attach when the shell exits 3: exit status %d:\n%s", code, screen)
	}
}

// TestDockerConsoleSize: a container created through the API with Tty
// and HostConfig.ConsoleSize (what the docker CLI since 23 sends) has
// that terminal size from its start, at every start (without it: 24x80);
// an exec's ConsoleSize, its create's or its start's (which wins), sizes
// its terminal from the start.
func TestDockerConsoleSize(t *testing.T) {
	needAPI(t)
	docker, ref := dockerWithImage(t)
	t.Cleanup(func() {
		docker("rm", "-f", "dsize", "dnosize", "dsizex")
		cove(t, "rmi", "--force", ref)
		cove(t, "image", "prune")
	})
	create := func(name, body string) {
		t.Helper()
		if code, out := rawRequest(t, post("/v1.43/containers/create?name="+name, body)); code != 201 {
			t.Fatalf("create %s: %d %s", name, code, out)
		}
	}
	create("dsize", fmt.Sprintf(`{"Image":%q,"Tty":true,"Cmd":["stty","size"],"HostConfig":{"ConsoleSize":[33,111]}}`, ref))
	create("dnosize", fmt.Sprintf(`{"Image":%q,"Tty":true,"Cmd":["stty","size"]}`, ref))
	for i := 1; i <= 2; i++ {
		for _, name := range []string{"dsize", "dnosize"} {
			if r := docker("start", name); r.Code != 0 {
				t.Fatalf("docker start %s (%d): exit %d: %s", name, i, r.Code, r.Stderr)
			}
		}
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(docker("logs", "dsize").Stdout, "33 111") != i || strings.Count(docker("logs", "dnosize").Stdout, "24 80") != i {
			if time.Now().After(deadline) {
				t.Fatalf("start %d: timed out after 20s waiting for both sizes in the logs; dsize's %q (%s), dnosize's %q (%s)", i,
					docker("logs", "dsize").Stdout, journalOf(t, "dsize"), docker("logs", "dnosize").Stdout, journalOf(t, "dnosize"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Output in the journal comes before the unit's end; a start of a
		// container still running is a no-op (Docker's 304), so the next
		// start waits until both have exited.
		eventually(t, 20*time.Second, "dsize and dnosize to have exited", func() bool {
			return strings.TrimSpace(docker("inspect", "-f", "{{.State.Status}}", "dsize", "dnosize").Stdout) == "exited\nexited"
		})
	}
	if logs := docker("logs", "dsize").Stdout; strings.Contains(logs, "24 80") {
		t.Errorf("a run of a container with ConsoleSize [33, 111] saw 24x80:\n%s", logs)
	}

	create("dsizex", fmt.Sprintf(`{"Image":%q,"Tty":true,"Cmd":["sleep","1000"]}`, ref))
	if r := docker("start", "dsizex"); r.Code != 0 {
		t.Fatalf("docker start dsizex: exit %d: %s", r.Code, r.Stderr)
	}
	for _, tc := range []struct{ create, start, want string }{
		{`[41,123]`, `null`, "41 123"},
		{`[41,123]`, `[42,124]`, "42 124"},
		{`null`, `null`, "24 80"},
	} {
		code, out := rawRequest(t, post("/v1.43/containers/dsizex/exec", `{"AttachStdout":true,"AttachStderr":true,"Tty":true,"Cmd":["stty","size"],"ConsoleSize":`+tc.create+`}`))
		var id struct{ Id string }
		if code != 201 || json.Unmarshal([]byte(out), &id) != nil {
			t.Fatalf("exec create with ConsoleSize %s: %d %s", tc.create, code, out)
		}
		code, out = rawRequest(t, post("/v1.43/exec/"+id.Id+"/start", `{"Tty":true,"ConsoleSize":`+tc.start+`}`))
		if code != 200 || !strings.Contains(out, tc.want+"\r\n") {
			t.Errorf("exec with ConsoleSize %s, started with %s: %d %q, want %q", tc.create, tc.start, code, out, tc.want)
		}
	}
}

// journalOf is the journal of workload name's unit, for a failure's
// message: its runs' output and systemd's account of them.
func journalOf(t *testing.T, name string) string {
	t.Helper()
	return inside(t, "journalctl", "--no-pager", "-o", "short-monotonic", "-u", spec.UnitName(name)).Stdout
}
