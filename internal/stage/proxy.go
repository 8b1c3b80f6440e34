package stage

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/ondemand"
	"github.com/cove-project/cove/internal/udpproxy"
	"github.com/cove-project/cove/launch"
)

// proxyd is systemd's socket proxy, where Debian (usr-merged or not) and
// other distributions install it.
var proxyd = []string{"/usr/lib/systemd/systemd-socket-proxyd", "/lib/systemd/systemd-socket-proxyd"}

// proxyIdle is how long a port's proxy waits without a connection (for
// UDP: a datagram) before it exits; its socket stays and the next
// connection starts it again. A UDP client's flow lives as long without
// a datagram either way.
const proxyIdle = 30 * time.Second

// proxyFlows bounds the UDP clients a proxy relays at once (a socket
// each).
const proxyFlows = 4096

// portProxy is the service of a published port's [::1] proxy (units.Unit's
// Proxies): "port-proxy --network NET --port PORT[/udp] WORKLOAD",
// started by its socket with the listening socket passed as systemd
// passes it (LISTEN_FDS). It finds WORKLOAD's address on NET; for TCP it
// executes systemd-socket-proxyd to ADDRESS:PORT, which keeps the same
// process and so the passed socket; for UDP it relays datagrams there
// itself (udpproxy) until idle. A workload with no lease (it has left the
// network meanwhile) fails the start: the connection is closed (the
// datagrams dropped).
func portProxy(_ string, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet(launch.ProxyVerb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	onNet := fs.String("network", "", "the network the workload is on")
	port := fs.String("port", "", "the workload's port, PORT or PORT/udp")
	if err := fs.Parse(args); err != nil {
		return usagef("%s: %v", launch.ProxyVerb, err)
	}
	number, proto, _ := strings.Cut(*port, "/")
	n, err := strconv.ParseUint(number, 10, 16)
	if fs.NArg() != 1 || *onNet == "" || err != nil || n == 0 || (proto != "" && proto != plan.UDP) {
		return usagef("%s: want --network NET --port PORT[/udp] (PORT 1 to 65535) WORKLOAD", launch.ProxyVerb)
	}
	workload := fs.Arg(0)
	if proto == plan.UDP {
		return relayUDP(*onNet, workload, uint16(n))
	}
	addr, err := workloadAddr(*onNet, workload)
	if err != nil {
		return err
	}
	return execProxyd(workload, netip.AddrPortFrom(addr, uint16(n)))
}

// execProxyd executes systemd-socket-proxyd to the workload's address to.
func execProxyd(workload string, to netip.AddrPort) error {
	path, err := firstExecutable(proxyd)
	if err != nil {
		return fmt.Errorf("proxy to %s at %v: %w", workload, to, err)
	}
	argv := []string{path, "--exit-idle-time=" + proxyIdle.String(), to.String()}
	if err := unix.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("proxy to %s: execve %s: %w", workload, path, err)
	}
	return nil
}

// relayUDP relays the datagrams of the passed socket to port of
// workload's address on network, and its replies back, until idle. When
// the workload has no lease there it reads and drops what is queued
// first, which would otherwise start the service again at once.
func relayUDP(onNet, workload string, port uint16) error {
	conns, lns, err := ondemand.Sockets("a cove-NAME-proxy-udp-PORT.socket")
	if err != nil {
		return fmt.Errorf("proxy to %s: %w", workload, err)
	}
	var listen *net.UDPConn
	if len(conns) == 1 && len(lns) == 0 {
		listen, _ = conns[0].(*net.UDPConn)
	}
	if listen == nil {
		return fmt.Errorf("proxy to %s: want one UDP socket from systemd, got %d datagram and %d stream sockets", workload, len(conns), len(lns))
	}
	addr, err := workloadAddr(onNet, workload)
	if err != nil {
		drain(listen)
		return err
	}
	p := udpproxy.Proxy{Listen: listen, To: netip.AddrPortFrom(addr, port), Idle: proxyIdle, MaxFlows: proxyFlows}
	if err := p.Serve(); err != nil {
		return fmt.Errorf("proxy to %s: %w", workload, err)
	}
	return nil
}

// drain reads and drops the datagrams queued on c.
func drain(c *net.UDPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	var b [1]byte
	rc.Read(func(fd uintptr) bool {
		for {
			if _, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_DONTWAIT); err != nil && err != unix.EINTR {
				return true
			}
		}
	})
}

// workloadAddr is workload's address on network onNet, from its lease.
func workloadAddr(onNet, workload string) (netip.Addr, error) {
	addr, err := network.Leases{Root: network.DefaultLeaseRoot}.Of(onNet, workload)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("proxy to %s: %w", workload, err)
	}
	return addr, nil
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
