package benchbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/tests/sandbox"
)

// TimeOnce runs argv inside the sandbox (stdio on /dev/null), bounded by
// timeout, and returns the wall-clock time of the whole nsenter invocation
// in milliseconds. On failure it runs the command again to show its
// output.
func TimeOnce(ctx context.Context, sb *sandbox.Sandbox, timeout time.Duration, env, argv []string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := sb.Command(ctx, argv[0], argv[1:]...)
	cmd.Env = append(cmd.Env, env...)
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		out, err2 := Inside(ctx, sb, timeout, env, argv...)
		return 0, fmt.Errorf("%v; again: %v\nstdout: %s", err, err2, out)
	}
	return Millis(d), nil
}

// Inside runs argv in the sandbox, with env added to its environment and
// bounded by timeout, and returns its output; it fails unless argv exits 0.
func Inside(ctx context.Context, sb *sandbox.Sandbox, timeout time.Duration, env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := sb.Command(ctx, argv[0], argv[1:]...)
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

// Machine describes the machine a benchmark runs on: CPUs, Go, kernel,
// the sandbox's systemd and the CPU model.
func Machine(ctx context.Context, sb *sandbox.Sandbox) map[string]string {
	m := map[string]string{
		"cpus": fmt.Sprint(runtime.NumCPU()),
		"go":   runtime.Version(),
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m["kernel"] = unix.ByteSliceToString(u.Release[:])
	}
	if out, err := Inside(ctx, sb, CmdTimeout, nil, "systemctl", "--version"); err == nil {
		m["systemd"], _, _ = strings.Cut(out, "\n")
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// NsenterPrefix is what sb.Command puts before a command.
func NsenterPrefix(ctx context.Context, sb *sandbox.Sandbox) []string {
	args := sb.Command(ctx, "CMD").Args
	return args[:len(args)-1]
}
