package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/sandbox"
)

// podmanImage is the name the rootfs is imported under.
const podmanImage = "localhost/bb"

// podmanRunRoot is podman's run root inside the sandbox (a private /run).
const podmanRunRoot = "/run/cove-bench-podman"

// setup starts the report and lists the commands to time: A cove, B
// systemd-run, C podman (if it is wanted, installed and works in the
// sandbox), D the nsenter floor, E cove in a user namespace of its own
// (--userns auto; named, so that every run reuses its block).
func setup(box *benchbox.Box, o options) (*report, error) {
	rep := &report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Invocation: benchbox.Invocation("run"),
		Rounds:     o.n,
		Warmup:     o.warmup,
		Machine:    machine(box.Ctx, box.SB),
		Prefix:     benchbox.NsenterPrefix(box.Ctx, box.SB),
		Rootfs:     box.Rootfs,
		Ratios:     map[string]float64{},
	}
	rootfs := box.Rootfs
	rep.Benches = []*bench{
		{Key: "A", Name: "cove", Argv: []string{box.Cove, "run", "--rm", "--rootfs", rootfs, "--network", "none", "--", "/bin/true"}},
		{Key: "B", Name: "systemd-run", Argv: []string{"systemd-run", "--wait", "--quiet", "-p", "RootDirectory=" + rootfs, "-p", "PrivateNetwork=yes", "/bin/true"}},
	}
	if err := addPodman(box, o, rep); err != nil {
		return nil, err
	}
	rep.Benches = append(rep.Benches, &bench{Key: "D", Name: "nsenter floor", Argv: []string{"/bin/true"}},
		&bench{Key: "E", Name: "cove userns=auto", Argv: []string{box.Cove, "run", "--rm", "--name", usernsName, "--userns", "auto", "--rootfs", rootfs, "--network", "none", "--", "/bin/true"}})
	return rep, nil
}

// addPodman adds C, or says in the report why it is skipped.
func addPodman(box *benchbox.Box, o options, rep *report) error {
	if !o.podman {
		rep.PodmanSkip = "podman: left out (-podman=false)"
		return nil
	}
	if _, err := exec.LookPath("podman"); err != nil {
		rep.PodmanSkip = "podman: not installed (apt-get install podman crun)"
		benchbox.Progress(rep.PodmanSkip)
		return nil
	}
	benchbox.Progress("setting up podman")
	pb, setup, err := setupPodman(box.Ctx, box.SB, box.Work, box.Rootfs, o.podmanManager, o.podmanRuntime)
	if err != nil {
		return err
	}
	rep.Benches = append(rep.Benches, pb)
	rep.PodmanSetup = setup
	benchbox.Progress("podman: " + setup)
	return nil
}

// machine describes the machine the benchmark ran on.
func machine(ctx context.Context, sb *sandbox.Sandbox) map[string]string {
	m := benchbox.Machine(ctx, sb)
	if out, err := exec.Command("podman", "--version").Output(); err == nil {
		m["podman"] = strings.TrimSpace(string(out))
	}
	return m
}

// setupPodman imports the rootfs as an image into a private podman store
// and finds podman settings that work in the sandbox (see podmanTrial).
// manager and rt, if set, allow only that cgroup manager or runtime.
func setupPodman(ctx context.Context, sb *sandbox.Sandbox, work, rootfs, manager, rt string) (*bench, string, error) {
	conf := filepath.Join(work, "containers.conf")
	if err := os.WriteFile(conf, []byte(benchbox.PodmanConf), 0o644); err != nil {
		return nil, "", err
	}
	t := &podmanTrial{
		ctx:   ctx,
		sb:    sb,
		env:   []string{"CONTAINERS_CONF=" + conf},
		store: []string{"podman", "--root", filepath.Join(work, "podman"), "--runroot", podmanRunRoot},
	}
	imp := fmt.Sprintf("tar -C %s -c . | %s import - %s", rootfs, strings.Join(t.store, " "), podmanImage)
	if _, err := benchbox.Inside(ctx, sb, benchbox.CmdTimeout, t.env, "sh", "-c", imp); err != nil {
		return nil, "", fmt.Errorf("podman import: %w", err)
	}
	managers, runtimes := []string{"systemd", "cgroupfs"}, []string{"crun", "runc"}
	if manager != "" {
		managers = []string{manager}
	}
	if rt != "" {
		runtimes = []string{rt}
	}
	return t.find(managers, runtimes)
}

// podmanTrial tries podman settings in the sandbox: the systemd cgroup
// manager first (systemd runs there), then cgroupfs; crun, then runc;
// default ulimits, then ulimits within the sandbox's limits.
type podmanTrial struct {
	ctx   context.Context
	sb    *sandbox.Sandbox
	env   []string // CONTAINERS_CONF
	store []string // podman and its private store
	tried []string // settings that failed, and why
}

// podmanUlimits are within the sandbox's limits.
var podmanUlimits = []string{"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"}

// find returns the first setting that runs the image as C, and describes
// it.
func (t *podmanTrial) find(managers, runtimes []string) (*bench, string, error) {
	for _, m := range managers {
		for _, r := range runtimes {
			if _, err := exec.LookPath(r); err != nil {
				t.tried = append(t.tried, r+": not installed")
				continue
			}
			for _, ul := range [][]string{nil, podmanUlimits} {
				if b, setup, ok := t.try(m, r, ul); ok {
					return b, setup, nil
				}
			}
		}
	}
	return nil, "", fmt.Errorf("no podman setting worked:\n%s", strings.Join(t.tried, "\n"))
}

// try runs the image once with cgroup manager m, runtime r and ulimits ul.
func (t *podmanTrial) try(m, r string, ul []string) (*bench, string, bool) {
	argv := append(append([]string(nil), t.store...), "--cgroup-manager", m, "--runtime", r,
		"run", "--rm", "--network=none")
	argv = append(append(argv, ul...), podmanImage, "/bin/true")
	_, err := benchbox.Inside(t.ctx, t.sb, benchbox.CmdTimeout, t.env, argv...)
	setup := fmt.Sprintf("cgroup manager %s, runtime %s", m, r)
	if ul != nil {
		setup += ", ulimits nofile=20000 nproc=32768"
	}
	if err != nil {
		t.tried = append(t.tried, setup+" ("+benchbox.FirstLine(err.Error())+")")
		return nil, "", false
	}
	setup += ", no default sysctls (CONTAINERS_CONF)"
	if len(t.tried) > 0 {
		setup += "; failed before: " + strings.Join(t.tried, "; ")
	}
	return &bench{Key: "C", Name: "podman", Argv: argv, Env: t.env}, setup, true
}

// usernsName is E's workload name.
const usernsName = "bench-userns"
