package stage

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/launch"
)

// proxyd is systemd's socket proxy, where Debian (usr-merged or not) and
// other distributions install it.
var proxyd = []string{"/usr/lib/systemd/systemd-socket-proxyd", "/lib/systemd/systemd-socket-proxyd"}

// proxyIdle is how long a port's proxy waits without a connection before
// it exits; its socket stays and the next connection starts it again.
const proxyIdle = "30s"

// portProxy is the service of a published port's [::1] proxy (units.Unit's
// Proxies): "port-proxy --network NET --port PORT WORKLOAD",
// started by its socket with the listening socket passed as systemd
// passes it (LISTEN_FDS), finds WORKLOAD's address on NET and executes
// systemd-socket-proxyd to ADDRESS:PORT, which keeps the same process
// and so the passed socket. A workload with no lease (it has left the
// network meanwhile) fails the start: the connection is closed.
func portProxy(_ string, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet(launch.ProxyVerb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	net := fs.String("network", "", "the network the workload is on")
	port := fs.Uint("port", 0, "the workload's port")
	if err := fs.Parse(args); err != nil {
		return usagef("%s: %v", launch.ProxyVerb, err)
	}
	if fs.NArg() != 1 || *net == "" || *port == 0 || *port > 65535 {
		return usagef("%s: want --network NET --port PORT (1 to 65535) WORKLOAD", launch.ProxyVerb)
	}
	workload := fs.Arg(0)
	addr, err := network.Leases{Root: network.DefaultLeaseRoot}.Of(*net, workload)
	if err != nil {
		return fmt.Errorf("proxy to %s: %w", workload, err)
	}
	to := netip.AddrPortFrom(addr, uint16(*port)).String()
	path, err := firstExecutable(proxyd)
	if err != nil {
		return fmt.Errorf("proxy to %s at %s: %w", workload, to, err)
	}
	argv := []string{path, "--exit-idle-time=" + proxyIdle, to}
	if err := unix.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("proxy to %s: execve %s: %w", workload, path, err)
	}
	return nil
}

// firstExecutable is the first of paths that exists.
func firstExecutable(paths []string) (string, error) {
	for _, p := range paths {
		if err := unix.Access(p, unix.X_OK); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %v is an executable (package systemd): %w", paths, errors.ErrUnsupported)
}
