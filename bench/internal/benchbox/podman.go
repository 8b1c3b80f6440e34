package benchbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// PodmanConf is the containers.conf podman gets in a sandbox
// (CONTAINERS_CONF): the packaged defaults without the one default sysctl
// (net.ipv4.ping_group_range), which crun cannot write where the
// sandbox's /proc/sys is read-only.
const PodmanConf = `[containers]
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
  "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]
default_sysctls = []
`

// PodmanNotInstalled is the reason a benchmark gives for leaving podman
// out when it is not installed.
const PodmanNotInstalled = "podman: not installed (apt-get install podman crun)"

// Podman is podman with a private store in a benchmark's work directory,
// run inside the sandbox.
type Podman struct {
	Env   []string // CONTAINERS_CONF=…
	Store []string // podman --root DIR --runroot RUNROOT
	Flags []string // the global flags that worked (see Probe)
	Setup string   // Flags described, and what failed before them
	box   *Box
}

// PodmanSkip says why podman is left out ("" if it can be used): want is
// the benchmark's -podman flag.
func PodmanSkip(want bool) string {
	if !want {
		return "podman: left out (-podman=false)"
	}
	if _, err := exec.LookPath("podman"); err != nil {
		return PodmanNotInstalled
	}
	return ""
}

// NewPodman writes PodmanConf into the work directory and returns podman
// with its store in WORK/podman and its run root at runRoot (a path in
// the sandbox's private /run).
func NewPodman(b *Box, runRoot string) (*Podman, error) {
	conf := filepath.Join(b.Work, "containers.conf")
	if err := os.WriteFile(conf, []byte(PodmanConf), 0o644); err != nil {
		return nil, fmt.Errorf("podman's containers.conf: %w", err)
	}
	return &Podman{
		Env:   []string{"CONTAINERS_CONF=" + conf},
		Store: []string{"podman", "--root", filepath.Join(b.Work, "podman"), "--runroot", runRoot},
		box:   b,
	}, nil
}

// Argv is a podman command line: the store, the flags found by Probe,
// then args.
func (p *Podman) Argv(args ...string) []string {
	argv := append(append([]string(nil), p.Store...), p.Flags...)
	return append(argv, args...)
}

// Run runs podman with args inside the sandbox (bounded by CmdTimeout)
// and returns its output.
func (p *Podman) Run(ctx context.Context, args ...string) (string, error) {
	out, err := Inside(ctx, p.box.SB, CmdTimeout, p.Env, p.Argv(args...)...)
	if err != nil {
		return out, fmt.Errorf("podman %s: %w", args[0], err)
	}
	return out, nil
}

// Probe sets Flags to the first cgroup manager (systemd, which runs in
// the sandbox, then cgroupfs) and runtime (crun, then runc) under which
// podman runs args (e.g. run --rm … /bin/true), and describes them in
// Setup; it fails, listing what was tried, if none works.
func (p *Podman) Probe(ctx context.Context, args ...string) error {
	var tried []string
	for _, m := range []string{"systemd", "cgroupfs"} {
		for _, r := range []string{"crun", "runc"} {
			if _, err := exec.LookPath(r); err != nil {
				tried = append(tried, r+": not installed")
				continue
			}
			p.Flags = []string{"--cgroup-manager", m, "--runtime", r}
			desc := fmt.Sprintf("cgroup manager %s, runtime %s", m, r)
			if _, err := p.Run(ctx, args...); err != nil {
				tried = append(tried, desc+" ("+FirstLine(err.Error())+")")
				continue
			}
			p.Setup = desc + ", no default sysctls (CONTAINERS_CONF)"
			if len(tried) > 0 {
				p.Setup += "; failed before: " + strings.Join(tried, "; ")
			}
			return nil
		}
	}
	p.Flags = nil
	return fmt.Errorf("no podman setting worked:\n%s", strings.Join(tried, "\n"))
}
