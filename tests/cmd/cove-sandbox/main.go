// Command cove-sandbox gives the test harness's private systemd to scripts
// and users (scripts/setup, scripts/shell, scripts/uninstall) on machines
// whose PID 1 is not systemd.
//
//	cove-sandbox rootfs DIR        build a busybox root filesystem in DIR
//	cove-sandbox start             boot the persistent private systemd 252,
//	                               unless it runs already; it keeps running
//	                               after cove-sandbox exits
//	cove-sandbox shell [CMD...]    run CMD (default: a login shell) inside
//	                               it, with the host's /tmp and the current
//	                               directory; exit with CMD's status
//	cove-sandbox stop              shut it down and remove what it made
//
// The persistent sandbox is the one tests/sandbox boots for tests (own PID,
// mount, cgroup and UTS namespaces, the host's network and root file
// system, a private /run and /tmp), held by a background cove-sandbox
// process; /run/cove-sandbox/pid finds it again.
package main

import (
	"fmt"
	"os"

	"github.com/cove-project/cove/tests/sandbox"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// usage is the synopsis printed on bad usage.
const usage = "usage: cove-sandbox rootfs DIR | start | shell [CMD [ARG...]] | stop"

// run dispatches the verbs and returns the exit status.
func run(args []string) int {
	verb := ""
	if len(args) > 0 {
		verb = args[0]
	}
	switch {
	case verb == "rootfs" && len(args) == 2:
		return report(sandbox.Rootfs(args[1]))
	case verb == "start" && len(args) == 1:
		return report(start())
	case verb == serveVerb && len(args) == 1:
		return serve()
	case verb == "shell":
		return report(shell(args[1:]))
	case verb == "stop" && len(args) == 1:
		return report(stop())
	}
	fmt.Fprintln(os.Stderr, usage)
	return 2
}

// report prints err, if any, and returns the exit status for it.
func report(err error) int {
	if err != nil {
		fmt.Fprintf(os.Stderr, "cove-sandbox: %v\n", err)
		return 1
	}
	return 0
}
