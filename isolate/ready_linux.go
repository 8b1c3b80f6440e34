package isolate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/isolate/inside"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// notifyProxy is the socket a ready = "notify" payload sends READY=1 to.
// The launcher forwards READY=1 (and STATUS=) to systemd and nothing
// else: a payload can never make systemd adopt another process
// (MAINPID=) or change its watchdog.
type notifyProxy struct {
	fd  int
	dir string
}

// newNotifyProxy binds the socket in launch.NotifyDir/NAME/.
func newNotifyProxy(name string) (*notifyProxy, error) {
	dir := filepath.Join(launch.NotifyDir, name)
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("notify socket: socket(AF_UNIX, SOCK_DGRAM): %w", err)
	}
	path := filepath.Join(dir, inside.NotifySocketName)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("notify socket: bind %s: %w", path, err)
	}
	os.Chmod(path, 0o777) // the payload may run as any uid
	return &notifyProxy{fd: fd, dir: dir}, nil
}

// close removes the socket.
func (p *notifyProxy) close() {
	unix.Close(p.fd)
	os.RemoveAll(p.dir)
}

// wait reads messages until one carries READY=1 and returns the lines to
// forward (READY=1 and any STATUS=).
func (p *notifyProxy) wait(payloadFd int) (string, error) {
	buf := make([]byte, 4096)
	for {
		ready, err := pollPayload(payloadFd, p.fd, -1)
		if err != nil || !ready {
			return "", err
		}
		n, _, _, _, err := unix.Recvmsg(p.fd, buf, nil, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read the notify socket: recvmsg %s: %w", filepath.Join(p.dir, inside.NotifySocketName), err)
		}
		if fwd := filterNotify(string(buf[:n])); strings.Contains(fwd, "READY=1") {
			return fwd, nil
		}
	}
}

// filterNotify keeps only the READY=1 and STATUS= lines of a message.
func filterNotify(msg string) string {
	var keep []string
	for _, l := range strings.Split(msg, "\n") {
		if l == "READY=1" || strings.HasPrefix(l, "STATUS=") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// errPayloadExited is returned when the payload ends before it is ready.
var errPayloadExited = errors.New("the payload exited before it was ready")

// pollPayload waits until fd is readable (true), the payload (its pidfd)
// exits (errPayloadExited) or timeout passes (false; -1 waits forever).
func pollPayload(payloadFd, fd int, timeout time.Duration) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(payloadFd), Events: unix.POLLIN}}
	if fd >= 0 {
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	ms := -1
	if timeout >= 0 {
		ms = int(timeout / time.Millisecond)
	}
	for {
		_, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("wait for the payload: poll pidfd %d: %w", payloadFd, err)
		}
		if fds[0].Revents != 0 {
			return false, errPayloadExited
		}
		return len(fds) > 1 && fds[1].Revents != 0, nil
	}
}

// waitReady blocks until the payload is ready as c.Ready says and returns
// the message for systemd.
func waitReady(self string, c launch.Config, payload int, proxy *notifyProxy) (string, error) {
	// One pidfd for the whole wait: it also pins the process, so a reused
	// PID can never be mistaken for the payload.
	pfd, err := unix.PidfdOpen(payload, 0)
	if errors.Is(err, unix.ESRCH) {
		return "", fmt.Errorf("%w: pidfd_open pid %d: %w", errPayloadExited, payload, err)
	}
	if err != nil {
		return "", fmt.Errorf("pin the payload: pidfd_open pid %d: %w", payload, err)
	}
	defer unix.Close(pfd)
	switch c.Ready {
	case spec.ReadyNotify:
		return proxy.wait(pfd)
	case spec.ReadyTCP:
		return poll(pfd, c.ProbeInterval, func() bool { return tcpOpen(payload, c.ReadyPort) })
	case spec.ReadyHealthy:
		return poll(pfd, c.ProbeInterval, func() bool {
			t, err := OpenTarget(payload, nil)
			if err != nil {
				return false
			}
			defer t.Close()
			probe := c
			probe.Argv = c.Probe
			_, err = Probe(launch.InsidePath(self), probe, t, c.ProbeTimeout)
			return err == nil
		})
	}
	return "READY=1", nil
}

// poll calls check every interval until it succeeds or the payload exits.
func poll(payloadFd int, interval time.Duration, check func() bool) (string, error) {
	for !check() {
		if _, err := pollPayload(payloadFd, -1, interval); err != nil {
			return "", err
		}
	}
	return "READY=1", nil
}

// tcpOpen reports whether something accepts connections on port in the
// payload's network namespace.
func tcpOpen(payload, port int) bool {
	done := make(chan bool)
	go func() {
		runtime.LockOSThread() // the namespace switch is per thread; this one dies after
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", payload))
		if err != nil {
			done <- false
			return
		}
		defer ns.Close()
		if unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET) != nil {
			done <- false
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			done <- false
			return
		}
		defer unix.Close(fd)
		done <- unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}) == nil
	}()
	return <-done
}
