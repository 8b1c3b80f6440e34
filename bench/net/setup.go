package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// Names, ports and paths inside the sandbox.
const (
	echoPath      = "/bin/netbench"  // the helper, in the rootfs
	serverPort    = "7000"           // the servers' port in their containers
	floorAddr     = "127.0.0.1:7001" // in floorNS
	floorUnit     = "nb-floor.service"
	floorNS       = "cove-bench-floor" // an empty namespace: only lo
	clientLoop    = "127.0.0.1:7003"   // in each client container
	covePub       = "18080"            // cove's published port (→ serverPort)
	podmanPub     = "18081"            // podman's published port (→ serverPort)
	coveServer    = "nb-srv"
	coveClient    = "nb-cli"
	podmanServer  = "nb-psrv"
	podmanClient  = "nb-pcli"
	podmanRunRoot = "/run/cove-bench-net-podman" // the sandbox's private /run
)

// linksAllowed are the links the sandbox may have while the systems run:
// the uplink to the outside, cove's bridge and veths, podman's bridge and
// veths.
var linksAllowed = []string{benchbox.UplinkLink, "cove0", "cv*", "podman*", "veth*"}

// fixture is the booted sandbox with the systems under test running.
type fixture struct {
	box      *benchbox.Box
	o        options
	echo     string           // the helper in the sandbox's own namespace
	podman   *benchbox.Podman // nil if podman is left out
	cleanups []func()         // run in reverse by close
}

// setup builds the helper into the rootfs, makes the closed world,
// starts the servers and clients of cove, the floor and podman, and
// returns the report with the commands to run.
func (f *fixture) setup() (*report, error) {
	if err := f.buildEcho(); err != nil {
		return nil, err
	}
	if err := f.box.InstallNetworkUnits(); err != nil {
		return nil, err
	}
	rep := newReport(f)
	if err := f.makeWorld(rep); err != nil {
		return nil, err
	}
	coveSrv, err := f.startCove()
	if err != nil {
		return nil, err
	}
	if err := f.startFloor(); err != nil {
		return nil, err
	}
	podmanSrv := ""
	rep.PodmanSkip = benchbox.PodmanSkip(f.o.podman)
	if rep.PodmanSkip != "" {
		benchbox.Progress(rep.PodmanSkip)
	} else {
		if podmanSrv, err = f.startPodman(); err != nil {
			return nil, err
		}
		rep.PodmanSetup = f.podman.Setup
	}
	rep.Addrs = map[string]string{"cove server": coveSrv, "podman server": podmanSrv}
	rep.Series = f.series(coveSrv, podmanSrv)
	if err := f.waitReady(rep); err != nil {
		return nil, err
	}
	if err := f.checkWorld(rep, "with every system running"); err != nil {
		return nil, err
	}
	return rep, nil
}

// buildEcho builds bench/net/echo, static, into the rootfs.
func (f *fixture) buildEcho() error {
	benchbox.Progress("building bench/net/echo into the rootfs")
	bin := filepath.Join(f.box.Rootfs, echoPath)
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./bench/net/echo")
	build.Dir = f.box.Repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./bench/net/echo: %v\n%s", err, out)
	}
	f.echo = bin
	return nil
}

// makeWorld checks that the sandbox's namespace is closed, joins it to
// the outside namespace, and checks again; rep notes both checks.
func (f *fixture) makeWorld(rep *report) error {
	if err := f.box.ClosedWorld(); err != nil {
		return err
	}
	rep.ClosedWorld = append(rep.ClosedWorld, "at the start (only lo)")
	remove, err := f.box.MakeOutside()
	if err != nil {
		return err
	}
	f.defer_(remove)
	if err := f.box.ClosedWorld(benchbox.UplinkLink); err != nil {
		return err
	}
	rep.ClosedWorld = append(rep.ClosedWorld, "with the outside namespace")
	return nil
}

// checkWorld asserts the closed world with the systems' links allowed,
// and notes in rep that it held at when.
func (f *fixture) checkWorld(rep *report, when string) error {
	if err := f.box.ClosedWorld(linksAllowed...); err != nil {
		return fmt.Errorf("%s: %w", when, err)
	}
	rep.ClosedWorld = append(rep.ClosedWorld, when)
	return nil
}

// container is one container to start: its name, the run flags before
// the root and its command.
type container struct {
	name        string
	flags, argv []string
}

// containers are the server (published on port pub) and the client,
// which serves on its own loopback (clientLoop) for the loopback control.
func containers(server, client, pub string) []container {
	return []container{
		{server, []string{"-p", pub + ":" + serverPort}, []string{echoPath, "serve", "-addr", ":" + serverPort}},
		{client, nil, []string{echoPath, "serve", "-addr", clientLoop}},
	}
}

// startCove starts cove's server and client containers on the default
// network and returns the server's address.
func (f *fixture) startCove() (string, error) {
	benchbox.Progress("starting cove's containers on network cove")
	for _, c := range containers(coveServer, coveClient, covePub) {
		name := c.name
		f.defer_(func() { f.inside(nil, f.box.Cove, "rm", name) })
		argv := []string{f.box.Cove, "run", "-d", "--name", name, "--network", "cove", "--stop-timeout", "2s"}
		argv = append(append(argv, c.flags...), "--rootfs", f.box.Rootfs, "--volatile", "--")
		if _, err := f.inside(nil, append(argv, c.argv...)...); err != nil {
			return "", fmt.Errorf("start cove container %s: %w", name, err)
		}
	}
	return f.addrOf([]string{f.box.Cove, "exec", coveServer, "--"})
}

// floorNetNS is floorNS's path inside the sandbox.
const floorNetNS = "/run/netns/" + floorNS

// startFloor makes the empty namespace floorNS (lo up, no firewall
// table) and runs the loopback floor's server there, as a transient unit.
func (f *fixture) startFloor() error {
	f.defer_(func() { f.inside(nil, "ip", "netns", "del", floorNS) })
	if _, err := f.inside(nil, "sh", "-c", "ip netns add "+floorNS+" && ip -n "+floorNS+" link set lo up"); err != nil {
		return fmt.Errorf("the floor's namespace: %w", err)
	}
	f.defer_(func() { f.inside(nil, "systemctl", "stop", floorUnit) })
	_, err := f.inside(nil, "systemd-run", "--quiet", "--unit", floorUnit, "-p", "NetworkNamespacePath="+floorNetNS,
		f.echo, "serve", "-addr", floorAddr)
	if err != nil {
		return fmt.Errorf("start the floor's server: %w", err)
	}
	return nil
}

// startPodman finds podman settings that work in the sandbox, starts
// podman's server (published on podmanPub) and client containers on
// podman's default bridge network, and returns the server's address.
func (f *fixture) startPodman() (string, error) {
	benchbox.Progress("setting up podman")
	p, err := benchbox.NewPodman(f.box, podmanRunRoot)
	if err != nil {
		return "", err
	}
	if err := p.Probe(f.box.Ctx, "run", "--rm", "--network", "none", "--rootfs", f.box.Rootfs, "/bin/true"); err != nil {
		return "", err
	}
	benchbox.Progress("podman: " + p.Setup)
	f.podman = p
	for _, c := range containers(podmanServer, podmanClient, podmanPub) {
		name := c.name
		f.defer_(func() { p.Run(f.box.Ctx, "rm", "-f", "-t", "0", name) })
		args := append([]string{"run", "-d", "--name", name, "--network", "podman"}, c.flags...)
		args = append(append(args, "--rootfs", f.box.Rootfs), c.argv...)
		if _, err := p.Run(f.box.Ctx, args...); err != nil {
			return "", fmt.Errorf("start podman container %s: %w", name, err)
		}
	}
	return f.addrOf(p.Argv("exec", podmanServer))
}

// addrOf runs the helper's ip command through exec (a container's exec
// prefix) and returns the container's IPv4 address.
func (f *fixture) addrOf(exec []string) (string, error) {
	out, err := f.inside(f.envOf(exec), append(exec, echoPath, "ip")...)
	if err != nil {
		return "", fmt.Errorf("the server's address: %w", err)
	}
	var addr string
	if err := json.Unmarshal([]byte(out), &addr); err != nil {
		return "", fmt.Errorf("the server's address: %q: %w", out, err)
	}
	return addr, nil
}

// envOf is the environment a command needs: podman's for podman's.
func (f *fixture) envOf(argv []string) []string {
	if f.podman != nil && len(argv) > 0 && argv[0] == "podman" {
		return f.podman.Env
	}
	return nil
}

// inside runs argv in the sandbox with env added and returns its output.
func (f *fixture) inside(env []string, argv ...string) (string, error) {
	return benchbox.Inside(f.box.Ctx, f.box.SB, benchbox.CmdTimeout, env, argv...)
}

// defer_ registers fn for close.
func (f *fixture) defer_(fn func()) { f.cleanups = append(f.cleanups, fn) }

// close runs the cleanups in reverse order, once.
func (f *fixture) close() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.cleanups = nil
}

// waitReady retries a one-round-trip client of every rr series until the
// servers answer (at most 10 s each).
func (f *fixture) waitReady(rep *report) error {
	for _, s := range rep.Series {
		if s.Test != "rr" {
			continue
		}
		argv := append(append([]string(nil), s.Argv...), "-n", "1")
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if _, err = f.inside(s.Env, argv...); err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("%s's server does not answer: %w", s.System, err)
		}
	}
	return nil
}
