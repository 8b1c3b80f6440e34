package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/internal/vmhost"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/tests/vmguest"
	"github.com/cove-project/cove/units"
)

// Workload names: distinctive, so that a QEMU of this program can be told
// from the integration tests' on the host.
const (
	bootName = "benchvm"
	idleName = "benchvmidle"
)

// buildGuest checks for QEMU and builds (or finds) the test guest.
func buildGuest() (vmguest.Guest, error) {
	if _, err := lookPath("qemu-system-x86_64"); err != nil {
		return vmguest.Guest{}, errors.New("qemu-system-x86_64 missing: apt-get install qemu-system-x86")
	}
	benchbox.Progress("building the test guest in " + vmguest.DefaultCacheDir)
	g, err := vmguest.Build(vmguest.DefaultCacheDir)
	if err != nil {
		return vmguest.Guest{}, fmt.Errorf("build the test guest: %w", err)
	}
	return g, nil
}

// newReport starts the report.
func newReport(box *benchbox.Box, g vmguest.Guest, o options) *report {
	ctx, sb := box.Ctx, box.SB
	rep := &report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Invocation: benchbox.Invocation("vm"),
		Rounds:     o.n,
		Warmup:     o.warmup,
		Machine:    benchbox.Machine(ctx, sb),
		Prefix:     benchbox.NsenterPrefix(ctx, sb),
		Guest:      g,
		TSCkHz:     vmhost.HostTSCkHz(),
		work:       box.Work,
	}
	if out, err := benchbox.Inside(ctx, sb, benchbox.CmdTimeout, nil, "qemu-system-x86_64", "--version"); err == nil {
		rep.Machine["qemu"], _, _ = strings.Cut(strings.TrimSpace(out), "\n")
	}
	return rep
}

// runPlan is what the rounds and the memory sample run.
type runPlan struct {
	a, b     *bench
	idleSpec string          // the spec of the idle guest
	conf     launch.VMConfig // B's QEMU configuration, sockets aside
	aDir     string          // host path of A's socket directory
	sockets  string          // host directory of B's socket directories
}

// plan writes the specs, works out B's QEMU command and adds A and B to
// the report.
func plan(box *benchbox.Box, rep *report) (*runPlan, error) {
	g := rep.Guest
	specDir := filepath.Join(box.Work, "vms")
	bootSpec, err := writeSpec(specDir, bootName, g, "poweroff")
	if err != nil {
		return nil, err
	}
	rep.Spec = specText(g, "poweroff")
	p := &runPlan{
		a:       &bench{Key: "A", Name: "cove run --rm", Argv: []string{box.Cove, "run", "--rm", bootSpec}},
		b:       &bench{Key: "B", Name: "QEMU directly"},
		aDir:    fmt.Sprintf("/proc/%d/root%s", box.SB.PID(), filepath.Dir(launch.QMPSocket(bootName))),
		sockets: filepath.Join(box.Work, "sockets"),
	}
	if p.idleSpec, err = writeSpec(specDir, idleName, g, "wait"); err != nil {
		return nil, err
	}
	if p.conf, err = directConfig(bootSpec, rep.TSCkHz); err != nil {
		return nil, err
	}
	rep.Benches = []*bench{p.a, p.b}
	return p, os.MkdirAll(p.sockets, 0o755)
}

// specText is the VM spec booting g in mode: microvm, TCG, 1 vCPU, 256 MiB,
// as the integration tests write it.
func specText(g vmguest.Guest, mode string) string {
	return fmt.Sprintf(`version = 1
kind = "vm"
[vm]
kernel = %q
initrd = %q
cmdline = %q
machine = "microvm"
cpus = 1
memory = "256M"
accel = "tcg"
[service]
stop_timeout = "10s"
`, g.Kernel, g.Initrd, vmguest.Cmdline(mode))
}

// writeSpec writes dir/name.toml and returns its path.
func writeSpec(dir, name string, g vmguest.Guest, mode string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, name+".toml")
	return p, os.WriteFile(p, []byte(specText(g, mode)), 0o644)
}

// directConfig is what cove's launcher would exec for the spec at path:
// the unit's launcher configuration (PrepareVM, units.VMConfig), accel
// resolved to tcg and the TSC hint added. Only the sockets differ per run.
func directConfig(path string, khz uint64) (launch.VMConfig, error) {
	s, err := spec.Load(path, "")
	if err != nil {
		return launch.VMConfig{}, err
	}
	if err := hostcheck.PrepareVM(s); err != nil {
		return launch.VMConfig{}, err
	}
	c := units.VMConfig(s)
	c.Accel = spec.AccelTCG
	return isolate.TSCHint(c, khz), nil
}

// lookPath finds name in the sandbox's PATH order on the host.
func lookPath(name string) (string, error) {
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}
