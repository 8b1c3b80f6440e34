// Command cove-sandbox gives the test harness's private systemd to scripts
// (the README's demo, benchmarks) on machines whose PID 1 is not systemd.
//
//	cove-sandbox rootfs DIR      build a busybox root filesystem in DIR
//	cove-sandbox run -- CMD...   boot a private systemd 252, run CMD inside
//	                             it with this terminal's stdio, shut down,
//	                             exit with CMD's status
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cove-project/cove/tests/sandbox"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run dispatches the two verbs and returns the exit status.
func run(args []string) int {
	switch {
	case len(args) == 2 && args[0] == "rootfs":
		if err := sandbox.Rootfs(args[1]); err != nil {
			fmt.Fprintf(os.Stderr, "cove-sandbox: %v\n", err)
			return 1
		}
		return 0
	case len(args) >= 3 && args[0] == "run" && args[1] == "--":
		return runInside(args[2:])
	}
	fmt.Fprintln(os.Stderr, "usage: cove-sandbox rootfs DIR | cove-sandbox run -- CMD [ARG...]")
	return 2
}

// runInside boots a sandbox, runs cmd in it and always shuts it down.
func runInside(cmd []string) int {
	if ok, why := sandbox.Usable(); !ok {
		fmt.Fprintf(os.Stderr, "cove-sandbox: cannot boot a private systemd here: %s\n", why)
		return 1
	}
	ctx := context.Background()
	sb, err := sandbox.Boot(ctx, sandbox.Options{BootTimeout: 2 * time.Minute})
	if err != nil {
		fmt.Fprintf(os.Stderr, "cove-sandbox: %v\n", err)
		return 1
	}
	defer sb.Shutdown()
	c := sb.Command(ctx, cmd[0], cmd[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.Env = append(c.Env, "TERM="+os.Getenv("TERM"))
	if err := c.Run(); err != nil && c.ProcessState == nil {
		fmt.Fprintf(os.Stderr, "cove-sandbox: run %s: %v\n", cmd[0], err)
		return 1
	}
	return c.ProcessState.ExitCode()
}
