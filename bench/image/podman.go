package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// podmanSetup is how podman runs in the sandbox: a private store in the
// work directory, and the global flags that made podman run work there.
type podmanSetup struct {
	env   []string // CONTAINERS_CONF
	store []string // podman --root R --runroot RR
	root  string   // R, on the host's file system
	run   []string // cgroup manager, runtime, events backend; nil if run failed
}

// pushArgv is podman push of ref from the private store to dest.
func (p *podmanSetup) pushArgv(ref, dest string) []string {
	return append(append([]string(nil), p.store...), "push", "--tls-verify=false", "-q", ref, "docker://"+dest)
}

// pullArgv is podman pull of ref into the private store.
func (p *podmanSetup) pullArgv(ref string) []string {
	return append(append([]string(nil), p.store...), "pull", "--tls-verify=false", "-q", ref)
}

// runArgv is podman run --rm of ref with the settings that worked.
func (p *podmanSetup) runArgv(ref string) []string {
	argv := append(append([]string(nil), p.store...), p.run...)
	return append(argv, "run", "--rm", "--network=none", ref, "/bin/true")
}

// reset empties podman's store (inside the sandbox, then sync).
func (p *podmanSetup) reset() string {
	return fmt.Sprintf("rm -rf %s %s && sync", p.root, podmanRunRoot)
}

// setupPodman pulls image A once into podman's private store and finds
// settings under which podman runs it; it records in rep why podman, or
// only its run, is left out.
func (f *fixture) setupPodman(o options, rep *report) error {
	switch _, err := exec.LookPath("podman"); {
	case !o.podman:
		rep.PodmanSkip = "podman: left out (-podman=false)"
		return nil
	case err != nil:
		rep.PodmanSkip = "podman: not installed (apt-get install podman crun)"
		return nil
	}
	benchbox.Progress("setting up podman")
	conf := filepath.Join(f.box.Work, "containers.conf")
	if err := os.WriteFile(conf, []byte(benchbox.PodmanConf), 0o644); err != nil {
		return err
	}
	root := filepath.Join(f.box.Work, "podman")
	p := &podmanSetup{
		env:   []string{"CONTAINERS_CONF=" + conf},
		store: []string{"podman", "--root", root, "--runroot", podmanRunRoot},
		root:  root,
	}
	if _, err := f.inside(p.env, p.pullArgv(f.refA)...); err != nil {
		rep.PodmanSkip = "podman pull failed: " + benchbox.FirstLine(err.Error())
		benchbox.Progress(rep.PodmanSkip)
		return nil
	}
	f.podman = p
	rep.PodmanSetup, rep.PodmanRunSkip = p.findRun(f)
	benchbox.Progress("podman: " + rep.PodmanSetup + rep.PodmanRunSkip)
	return nil
}

// findRun tries cgroup managers (systemd, which runs in the sandbox,
// then cgroupfs) and event backends (podman's default, then file) with
// crun, until podman run works; it says which worked, or why none did.
func (p *podmanSetup) findRun(f *fixture) (setup, skip string) {
	var tried []string
	for _, m := range []string{"systemd", "cgroupfs"} {
		for _, ev := range []string{"", "file"} {
			flags := []string{"--cgroup-manager", m, "--runtime", "crun"}
			if ev != "" {
				flags = append(flags, "--events-backend", ev)
			}
			p.run = flags
			desc := strings.Join(flags, " ")
			_, err := f.inside(p.env, p.runArgv(f.refA)...)
			if err == nil {
				if len(tried) > 0 {
					desc += "; failed before: " + strings.Join(tried, "; ")
				}
				return desc + ", no default sysctls (CONTAINERS_CONF)", ""
			}
			tried = append(tried, desc+" ("+benchbox.FirstLine(err.Error())+")")
		}
	}
	p.run = nil
	return "", "podman run: no setting worked: " + strings.Join(tried, "; ")
}
