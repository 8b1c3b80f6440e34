//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cove-project/cove/internal/mountinfo"
)

// Options for Boot.
type Options struct {
	// Overlays are host directories (e.g. "/etc", "/var/lib",
	// "/usr/lib/systemd/system-generators") that get a private writable
	// overlayfs inside the sandbox: lower is the host directory, upper and
	// work lie in StateDir. Writes inside never reach the host; HostPath
	// finds them. Each directory must exist on the host, must not be nested
	// in another overlay and must have no mount points below it.
	Overlays []string

	// Binds maps a target path inside the sandbox to a host source path (a
	// file or a directory), bind-mounted read-write before systemd starts and
	// after the overlays. A missing target is created if it lies in an
	// overlay, /run or /tmp (all private); elsewhere it must exist. Sources
	// under the host's /tmp (e.g. t.TempDir()) work; sources under /run
	// do not (the host's /run is not reachable inside).
	Binds map[string]string

	// Wants are further units the boot target pulls in, e.g.
	// "multi-user.target" for a reboot test whose units are enabled there.
	// Units the host enables are masked either way.
	Wants []string

	// StateDir is a host directory (not under /tmp or /run, which are
	// private inside) that holds the overlays' upper directories. Reusing it
	// in a later Boot models a reboot: the upper directories persist. If
	// empty, Boot makes one under /var/tmp and Shutdown removes it. Only one
	// sandbox may use a state directory at a time.
	StateDir string

	// BootTimeout bounds Boot (default 30 s). Boot is ~0.3-1.5 s on an idle
	// machine, but took up to 20 s on a 2-CPU machine with a fuzzer running.
	BootTimeout time.Duration

	// PrivateNetwork boots systemd in a network namespace of its own
	// (unshare --net) with only lo, which is brought up, and makes
	// /proc/sys/net writable inside (its sysctls are the namespace's own).
	// Commands run inside (Command, Run) join it. Off by default: tests
	// that reach a server on the host's 127.0.0.1 (a registry) need the
	// host's network. For network tests, see shared docs/network-testing.md.
	PrivateNetwork bool

	// Log receives the sandbox's console output (systemd's log, the inner
	// step's errors) and the harness's own notes; nil discards them.
	Log io.Writer
}

// Sandbox is a running private systemd.
type Sandbox struct {
	pid      int    // systemd's PID in the host's PID namespace
	outerPID int    // the unshare process (parent of systemd)
	name     string // cgroup name, cove-sandbox-<outerPID>
	stateDir string
	ownState bool
	overlays []string
	hier     []hierarchy
	log      *logWriter
	console  *console
	lock     *os.File
	ownNet   bool // systemd runs in a network namespace of its own

	done    chan struct{} // closed when the unshare process has exited
	waitErr error

	shutOnce sync.Once
	shutErr  error
}

// defaultBootTimeout bounds Boot unless Options.BootTimeout is set.
const defaultBootTimeout = 30 * time.Second

// sigPoweroff is SIGRTMIN+4 as systemd counts it (glibc's SIGRTMIN is 34):
// systemd powers off on it.
const sigPoweroff = syscall.Signal(34 + 4)

// sandboxPATH is the PATH of commands run inside.
const sandboxPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Boot starts a private systemd and waits (at most Options.BootTimeout, or
// until ctx ends) until `systemctl is-system-running` says running. A
// degraded system is accepted: the failed units are written to Options.Log.
// On error everything started is stopped and removed again, and the error
// quotes the end of the console output.
//
// Boot also makes SIGINT and SIGTERM shut down all running sandboxes before
// the process dies, and ties the sandbox's life to the calling process (it
// is killed if the test binary dies, e.g. on a test timeout); tests should
// still call Shutdown, e.g. deferred in TestMain.
func Boot(ctx context.Context, opts Options) (_ *Sandbox, err error) {
	if ok, reason := Usable(); !ok {
		return nil, errors.New("sandbox: not usable here: " + reason)
	}
	timeout := opts.BootTimeout
	if timeout <= 0 {
		timeout = defaultBootTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	hier, err := readHierarchies()
	if err != nil {
		return nil, err
	}
	overlays, err := checkOverlays(opts.Overlays)
	if err != nil {
		return nil, err
	}
	s := &Sandbox{hier: hier, overlays: overlays, log: newLogWriter(opts.Log), done: make(chan struct{}), ownNet: opts.PrivateNetwork}
	defer func() {
		if err != nil {
			_ = s.Shutdown()
			if tail := s.log.tail(); tail != "" {
				err = fmt.Errorf("%w\nconsole output (end):\n%s", err, tail)
			}
		}
	}()
	if err := s.setupStateDir(opts.StateDir); err != nil {
		return nil, err
	}
	for _, u := range opts.Wants {
		if u == "" || strings.ContainsAny(u, " \t\n/") {
			return nil, fmt.Errorf("sandbox: bad unit name %q in Wants", u)
		}
	}
	p := innerParams{hierarchies: hier, masks: masks(), wants: opts.Wants, privateNet: opts.PrivateNetwork}
	for _, o := range overlays {
		om := overlayMount{target: o, upper: s.upperDir(o), work: filepath.Join(s.stateDir, "work", overlayKey(o))}
		for _, d := range []string{om.upper, om.work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, fmt.Errorf("sandbox: %w", err)
			}
		}
		p.overlays = append(p.overlays, om)
	}
	if p.binds, err = checkBinds(opts.Binds, overlays); err != nil {
		return nil, err
	}
	if s.console, err = newConsole(s.log); err != nil {
		return nil, err
	}
	p.console = s.console.slave
	script := filepath.Join(s.stateDir, "inner.sh")
	if err := os.WriteFile(script, []byte(innerScript(p)), 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}

	sweepStaleCgroups(hier)
	sweepStaleStateDirs()
	register(s)
	if err := s.start(script); err != nil {
		return nil, err
	}
	if err := s.findSystemd(ctx); err != nil {
		return nil, err
	}
	if err := s.waitRunning(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// checkOverlays validates and cleans the overlay directories.
func checkOverlays(dirs []string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("sandbox: overlay %q is not an absolute path", d)
		}
		d = filepath.Clean(d)
		if d == "/" || under(d, "/proc") || under(d, "/sys") || under(d, "/dev") || under(d, "/run") || under(d, "/tmp") {
			return nil, fmt.Errorf("sandbox: overlay %s: not allowed", d)
		}
		if strings.ContainsAny(d, ",:\\") {
			return nil, fmt.Errorf("sandbox: overlay %s: path contains ',', ':' or '\\'", d)
		}
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("sandbox: overlay %s: host directory must exist", d)
		}
		out = append(out, d)
	}
	sort.Strings(out)
	for i := range out {
		for j := range out {
			if i != j && under(out[j], out[i]) {
				return nil, fmt.Errorf("sandbox: overlay %s lies in overlay %s", out[j], out[i])
			}
		}
	}
	if len(out) > 0 {
		ms, err := mountPoints()
		if err != nil {
			return nil, err
		}
		for _, o := range out {
			for _, m := range ms {
				if m != o && under(m, o) {
					return nil, fmt.Errorf("sandbox: overlay %s has a mount point below it (%s), which it would hide", o, m)
				}
			}
		}
	}
	return out, nil
}

// checkBinds validates the bind mounts and stages sources under /tmp.
func checkBinds(binds map[string]string, overlays []string) ([]bindMount, error) {
	var out []bindMount
	for target, source := range binds {
		if !filepath.IsAbs(target) || !filepath.IsAbs(source) {
			return nil, fmt.Errorf("sandbox: bind %s -> %s: paths must be absolute", target, source)
		}
		target, source = filepath.Clean(target), filepath.Clean(source)
		if target == "/" || under(target, "/proc") || under(target, "/sys") {
			return nil, fmt.Errorf("sandbox: bind target %s: not allowed", target)
		}
		fi, err := os.Stat(source)
		if err != nil {
			return nil, fmt.Errorf("sandbox: bind source: %w", err)
		}
		if under(source, "/run") {
			return nil, fmt.Errorf("sandbox: bind source %s: the host's /run is not reachable inside", source)
		}
		private := under(target, "/run") || under(target, "/tmp")
		for _, o := range overlays {
			private = private || under(target, o)
		}
		if _, err := os.Lstat(target); err != nil && !private {
			return nil, fmt.Errorf("sandbox: bind target %s does not exist and lies in no overlay, /run or /tmp", target)
		}
		inside := source
		if rel, ok := strings.CutPrefix(source, "/tmp"); ok && (rel == "" || rel[0] == '/') {
			inside = hostTmpStage + rel
		}
		out = append(out, bindMount{target: target, source: inside, dir: fi.IsDir()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].target < out[j].target })
	return out, nil
}

// mountPoints lists the host's mount points.
func mountPoints() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var ms []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			ms = append(ms, mountinfo.Unescape(f[4]))
		}
	}
	return ms, nil
}

// under reports whether p is dir or lies below it (both clean).
func under(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// overlayKey names an overlay's directories in the state directory.
func overlayKey(dir string) string {
	return url.PathEscape(strings.TrimPrefix(dir, "/"))
}

// upperDir is the overlay upper directory of the overlay over dir.
func (s *Sandbox) upperDir(dir string) string {
	return filepath.Join(s.stateDir, "upper", overlayKey(dir))
}

// setupStateDir creates (or checks) and locks the state directory.
func (s *Sandbox) setupStateDir(dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("/var/tmp", "cove-sandbox-state-")
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		s.stateDir, s.ownState = d, true
	} else {
		d, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if under(d, "/tmp") || under(d, "/run") || under(d, "/dev") {
			return fmt.Errorf("sandbox: state dir %s: must not lie under /tmp, /run or /dev (private inside)", d)
		}
		if strings.ContainsAny(d, ",:\\") {
			return fmt.Errorf("sandbox: state dir %s: path contains ',', ':' or '\\'", d)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		s.stateDir = d
	}
	for _, o := range s.overlays {
		if under(s.stateDir, o) {
			return fmt.Errorf("sandbox: state dir %s lies in overlay %s", s.stateDir, o)
		}
	}
	f, err := os.OpenFile(filepath.Join(s.stateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("sandbox: state dir %s is in use by another sandbox", s.stateDir)
	}
	s.lock = f
	if s.ownState {
		// Written only while locked: marks the directory as the harness's,
		// for sweepStaleStateDirs.
		if err := os.WriteFile(filepath.Join(s.stateDir, ownedMarker), nil, 0o644); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	return nil
}

// ownedMarker marks a state directory that Boot created.
const ownedMarker = "owned-by-sandbox"

// sweepStaleStateDirs removes state directories that Boot created for
// sandboxes whose process died before Shutdown: marked as Boot's own, and no
// longer locked.
func sweepStaleStateDirs() {
	dirs, _ := filepath.Glob("/var/tmp/cove-sandbox-state-*")
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, ownedMarker)); err != nil {
			continue
		}
		f, err := os.Open(filepath.Join(d, "lock"))
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			_ = os.RemoveAll(d)
		}
		f.Close()
	}
}

// start spawns the outer process: a shell that waits on its stdin, is moved
// into the sandbox cgroups meanwhile, then execs unshare. The process is
// started from a goroutine locked to its OS thread, which lives until the
// process exits, so that its parent-death signal fires only when the test
// process dies (Pdeathsig follows the creating thread).
func (s *Sandbox) start(script string) error {
	unshare, _ := exec.LookPath("unshare")
	ns := []string{"--cgroup", "--pid", "--mount", "--uts"}
	if s.ownNet {
		ns = append(ns, "--net")
	}
	args := append([]string{"-c", `read _ && exec "$@"`, "sh", unshare}, ns...)
	cmd := exec.Command("/bin/sh", append(args, "--fork", "--kill-child",
		"--propagation", "private", "/bin/sh", script)...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + sandboxPATH, "LANG=C.UTF-8"}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			runtime.UnlockOSThread()
			close(s.done)
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		close(s.done)
		runtime.UnlockOSThread()
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("sandbox: start: %w", err)
	}
	s.outerPID = cmd.Process.Pid
	s.name = namePrefix + strconv.Itoa(s.outerPID)
	if err := createCgroups(s.hier, s.name, s.outerPID); err != nil {
		stdin.Close() // read fails on EOF: the shell exits without unsharing.
		return err
	}
	_, err = io.WriteString(stdin, "go\n")
	stdin.Close()
	if err != nil {
		return fmt.Errorf("sandbox: release outer process: %w", err)
	}
	return nil
}

// findSystemd finds the PID of the namespace's PID 1 (which execs systemd):
// the child of the unshare process.
func (s *Sandbox) findSystemd(ctx context.Context) error {
	ourNS, _ := os.Readlink("/proc/self/ns/pid")
	for {
		if pid := childOf(s.outerPID); pid > 0 {
			if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && ns != ourNS {
				s.pid = pid
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("sandbox: outer process exited early: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("sandbox: namespace init not found: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// childOf returns a child of pid, or 0.
func childOf(pid int) int {
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		if f := strings.Fields(string(data)); len(f) > 0 {
			c, _ := strconv.Atoi(f[0])
			return c
		}
		return 0
	}
	// No CONFIG_PROC_CHILDREN: scan /proc for the parent PID.
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the parenthesised command: state ppid ...
		if i := bytes.LastIndexByte(data, ')'); i >= 0 {
			if f := strings.Fields(string(data[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				return c
			}
		}
	}
	return 0
}

// waitRunning waits for the manager's private socket, then for the end of
// the boot, and reports failed units of a degraded system to the log.
func (s *Sandbox) waitRunning(ctx context.Context) error {
	start := time.Now()
	for {
		if _, _, code, err := s.Run(ctx, "test", "-S", "/run/systemd/private"); err == nil && code == 0 {
			break
		}
		select {
		case <-s.done:
			return fmt.Errorf("sandbox: systemd exited during boot: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("sandbox: systemd's private socket did not appear: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.log.note("sandbox: systemd (pid %d) listening after %v", s.pid, time.Since(start).Round(time.Millisecond))
	out, errOut, code, err := s.Run(ctx, "systemctl", "is-system-running", "--wait")
	s.log.note("sandbox: system %s after %v", strings.TrimSpace(out), time.Since(start).Round(time.Millisecond))
	if err != nil {
		return fmt.Errorf("sandbox: systemctl is-system-running: %w", err)
	}
	state := strings.TrimSpace(out)
	switch state {
	case "running":
		return nil
	case "degraded":
		failed, _, _, _ := s.Run(ctx, "systemctl", "--failed", "--no-legend", "--plain", "--no-pager")
		s.log.note("sandbox: system is degraded; failed units:\n%s", failed)
		return nil
	}
	return fmt.Errorf("sandbox: system state %q (exit %d) %s", state, code, strings.TrimSpace(errOut))
}

// PID returns systemd's PID in the host's PID namespace.
func (s *Sandbox) PID() int { return s.pid }

// CgroupName returns the name of the sandbox's cgroup, the same in every
// hierarchy, below the cgroups of the process that booted it.
func (s *Sandbox) CgroupName() string { return s.name }

// CgroupDirs returns the host directories of the sandbox's cgroup in every
// hierarchy, keyed by the hierarchy's controllers as /proc/self/cgroup names
// them ("memory", "name=systemd", "" for cgroup2). Inside, each of these
// directories is the root of its hierarchy.
func (s *Sandbox) CgroupDirs() map[string]string {
	m := map[string]string{}
	for _, h := range s.hier {
		m[h.controllers] = filepath.Join(h.dir, s.name)
	}
	return m
}

// NetNS returns the path, on the host, of the network namespace systemd
// runs in (/proc/PID/ns/net): the sandbox's own with
// Options.PrivateNetwork, else the host's.
func (s *Sandbox) NetNS() string { return fmt.Sprintf("/proc/%d/ns/net", s.pid) }

// StateDir returns the sandbox's state directory.
func (s *Sandbox) StateDir() string { return s.stateDir }

// HostPath returns the host path that the inside path p, within one of the
// overlays, is stored at: its place in the overlay's upper directory. Files
// written inside can be read back there. It returns "" if p lies in no
// overlay. Files not changed inside are not in the upper directory (they
// are the host's).
func (s *Sandbox) HostPath(p string) string {
	if !filepath.IsAbs(p) {
		return ""
	}
	p = filepath.Clean(p)
	for _, o := range s.overlays {
		if under(p, o) {
			return filepath.Join(s.upperDir(o), strings.TrimPrefix(p, o))
		}
	}
	return ""
}

// defaultEnv is the environment of commands run inside.
var defaultEnv = []string{"PATH=" + sandboxPATH, "HOME=/root", "LANG=C.UTF-8"}

// Command returns a command that runs name with args inside the sandbox's
// mount, PID, cgroup and UTS namespaces (and network namespace, with
// Options.PrivateNetwork) through nsenter, with a plain
// environment (PATH, HOME, LANG; append to Env to add). The process gets
// SIGKILL when nsenter dies (e.g. when ctx ends), so it does not linger
// inside. It stays in the caller's cgroups, not the sandbox's.
func (s *Sandbox) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	nsenter, _ := exec.LookPath("nsenter")
	argv := []string{"-t", strconv.Itoa(s.pid), "-m", "-p", "-C", "-u", "--"}
	if s.ownNet {
		argv = append(argv[:len(argv)-1], "-n", "--")
	}
	if setpriv, err := exec.LookPath("setpriv"); err == nil {
		argv = append(argv, setpriv, "--pdeathsig", "KILL", "--")
	}
	argv = append(append(argv, name), args...)
	cmd := exec.CommandContext(ctx, nsenter, argv...)
	cmd.Env = append([]string(nil), defaultEnv...)
	cmd.Dir = "/"
	if s.pid <= 0 || s.stopped() {
		cmd.Err = errors.New("sandbox: not running")
	}
	return cmd
}

// Run runs name with args inside the sandbox and returns its stdout, stderr
// and exit code (128+n when killed by signal n). err is set only when the
// command could not be run at all, or ctx ended.
func (s *Sandbox) Run(ctx context.Context, name string, args ...string) (stdout, stderr string, code int, err error) {
	cmd := s.Command(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return o.String(), e.String(), -1, ctx.Err()
	case errors.As(err, &ee):
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		err = nil
	default:
		return o.String(), e.String(), -1, err
	}
	return o.String(), e.String(), code, nil
}

// stopped reports whether the sandbox's processes have exited.
func (s *Sandbox) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// waitDone waits up to d for the sandbox's processes to exit.
func (s *Sandbox) waitDone(d time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Shutdown powers the sandbox off (SIGRTMIN+4 to systemd, SIGKILL after
// 10 s), waits for it to exit, removes its cgroups in every hierarchy and,
// if Boot created it, the state directory. Mounts need no cleanup: they all
// lie in the sandbox's mount namespace. Shutdown is idempotent and safe on a
// partly booted sandbox.
func (s *Sandbox) Shutdown() error {
	s.shutOnce.Do(func() { s.shutErr = s.shutdown() })
	return s.shutErr
}

func (s *Sandbox) shutdown() error {
	unregister(s)
	var errs []error
	if s.outerPID > 0 && !s.stopped() {
		if s.pid > 0 {
			_ = syscall.Kill(s.pid, sigPoweroff)
			if !s.waitDone(10 * time.Second) {
				s.log.note("sandbox: systemd did not power off within 10s; killing it")
				if !s.stopped() {
					_ = syscall.Kill(s.pid, syscall.SIGKILL)
				}
			}
		}
		if !s.waitDone(5 * time.Second) {
			// unshare --kill-child kills the namespace's init with it.
			_ = syscall.Kill(s.outerPID, syscall.SIGKILL)
			if !s.waitDone(5 * time.Second) {
				errs = append(errs, fmt.Errorf("sandbox: process %d did not exit", s.outerPID))
			}
		}
	}
	if s.console != nil {
		s.console.close()
	}
	if s.name != "" {
		if err := removeCgroups(s.hier, s.name); err != nil {
			errs = append(errs, err)
		}
	}
	if s.lock != nil {
		s.lock.Close()
	}
	if s.ownState && s.stateDir != "" {
		if err := os.RemoveAll(s.stateDir); err != nil {
			errs = append(errs, fmt.Errorf("sandbox: %w", err))
		}
	}
	return errors.Join(errs...)
}

// live holds the booted sandboxes, for the signal handler.
var (
	liveMu     sync.Mutex
	live       = map[*Sandbox]bool{}
	signalOnce sync.Once
)

// register records s and installs (once) the SIGINT/SIGTERM handler that
// shuts down all sandboxes and then dies of the signal.
func register(s *Sandbox) {
	liveMu.Lock()
	live[s] = true
	liveMu.Unlock()
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-ch
			liveMu.Lock()
			var all []*Sandbox
			for sb := range live {
				all = append(all, sb)
			}
			liveMu.Unlock()
			for _, sb := range all {
				_ = sb.Shutdown()
			}
			signal.Reset(syscall.SIGINT, syscall.SIGTERM)
			_ = syscall.Kill(os.Getpid(), sig.(syscall.Signal))
		}()
	})
}

// unregister forgets s.
func unregister(s *Sandbox) {
	liveMu.Lock()
	delete(live, s)
	liveMu.Unlock()
}

// logWriter serialises writes to the user's log and keeps the last few KiB
// for error messages.
type logWriter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// tailSize is how much console output error messages quote.
const tailSize = 4096

func newLogWriter(w io.Writer) *logWriter {
	if w == nil {
		w = io.Discard
	}
	return &logWriter{w: w}
}

// Write writes p to the log.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) > tailSize {
		l.buf = append([]byte(nil), l.buf[len(l.buf)-tailSize:]...)
	}
	_, _ = l.w.Write(p) // a failing log must not stall the console pipe
	return len(p), nil
}

// note writes a line of the harness's own to the log.
func (l *logWriter) note(format string, a ...any) {
	_, _ = fmt.Fprintf(l, format+"\n", a...)
}

// tail returns the last console output.
func (l *logWriter) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
