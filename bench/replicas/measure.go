package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// meter runs one count's measurements in the box.
type meter struct {
	box        *benchbox.Box
	dir, empty string // the spec's directory and an empty one (prune)
}

// result is one count's figures: times in ms, memory in KiB.
type result struct {
	k                                  int
	apply, ps, down, up, prune         float64
	availDrop, systemdRSS, cg, payload float64
}

// spec is the replicated workload: a shell that ends on SIGTERM around a
// sleep, on the read-only busybox rootfs.
func (m *meter) spec(k int) string {
	return fmt.Sprintf(`version = 1
kind = "container"
[container]
rootfs = %q
read_only = true
command = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
[service]
replicas = %d
stop_timeout = "2s"
`, m.box.Rootfs, k)
}

// measure applies K replicas, measures, scales and prunes.
func (m *meter) measure(k int) (result, error) {
	r := result{k: k}
	path := filepath.Join(m.dir, "rep.toml")
	if err := os.WriteFile(path, []byte(m.spec(k)), 0o644); err != nil {
		return r, err
	}
	benchbox.Progress(fmt.Sprintf("K = %d", k))
	availBefore, rssBefore, err := m.memory()
	if err != nil {
		return r, err
	}
	steps := []step{
		{&r.apply, []string{m.box.Cove, "apply", path}},
		{&r.ps, []string{m.box.Cove, "ps"}},
	}
	if err := m.timeAll(steps); err != nil {
		return r, err
	}
	if err := m.running(k); err != nil {
		return r, err
	}
	time.Sleep(2 * time.Second) // let the page cache and slab settle
	availAfter, rssAfter, err := m.memory()
	if err != nil {
		return r, err
	}
	if r.cg, r.payload, err = m.perInstance(k); err != nil {
		return r, err
	}
	r.availDrop, r.systemdRSS = float64(availBefore-availAfter)/float64(k), float64(rssAfter-rssBefore)/float64(k)
	return r, m.timeAll([]step{
		{&r.down, []string{m.box.Cove, "scale", fmt.Sprintf("rep=%d", k/2)}},
		{&r.up, []string{m.box.Cove, "scale", fmt.Sprintf("rep=%d", k)}},
		{&r.prune, []string{m.box.Cove, "apply", "--prune", m.empty}},
	})
}

// step is a command to time and where its time goes.
type step struct {
	ms   *float64
	argv []string
}

// timeAll runs each step's argv in the box and records its time.
func (m *meter) timeAll(steps []step) error {
	for _, s := range steps {
		ms, err := benchbox.TimeOnce(m.box.Ctx, m.box.SB, 20*time.Minute, nil, s.argv)
		if err != nil {
			return err
		}
		*s.ms = ms
	}
	return nil
}

// running fails unless k instances of rep are active.
func (m *meter) running(k int) error {
	out, err := m.inside("systemctl", "list-units", "--state=active", "--no-legend", "--plain", "cove-rep@*.service")
	if n := strings.Count(out, ".service"); err != nil || n != k {
		return fmt.Errorf("%d instances active after apply, want %d: %v", n, k, err)
	}
	return nil
}

// memory returns the machine's MemAvailable and the RSS of the box's
// systemd (its PID 1), in KiB.
func (m *meter) memory() (avail, systemd int, err error) {
	out, err := m.inside("/bin/sh", "-c", "awk '/^MemAvailable:/ {print $2}' /proc/meminfo; awk '/^VmRSS:/ {print $2}' /proc/1/status")
	f := strings.Fields(out)
	if err != nil || len(f) != 2 {
		return 0, 0, fmt.Errorf("read memory: %v: %q", err, out)
	}
	avail, _ = strconv.Atoi(f[0])
	systemd, _ = strconv.Atoi(f[1])
	return avail, systemd, nil
}

// perInstance returns the instances' mean cgroup memory (systemd's
// MemoryCurrent) and the mean RSS of their processes, in KiB.
func (m *meter) perInstance(k int) (cg, payload float64, err error) {
	out, err := m.inside("/bin/sh", "-c", `systemctl show -p MemoryCurrent --value 'cove-rep@*.service' | awk '$1 ~ /^[0-9]+$/ {s+=$1} END {print s/1024}'
for p in /proc/[0-9]*; do grep -qs 'cove-rep@' $p/cgroup && awk '/^VmRSS:/ {print $2}' $p/status; done | awk '{s+=$1} END {print s+0}'`)
	f := strings.Fields(out)
	if err != nil || len(f) != 2 {
		return 0, 0, fmt.Errorf("read the instances' memory: %v: %q", err, out)
	}
	c, _ := strconv.ParseFloat(f[0], 64)
	p, _ := strconv.ParseFloat(f[1], 64)
	return c / float64(k), p / float64(k), nil
}

// inside runs argv in the box and returns its output.
func (m *meter) inside(argv ...string) (string, error) {
	return benchbox.Inside(m.box.Ctx, m.box.SB, time.Minute, nil, argv...)
}

// row is r as a table row.
func (r result) row() string {
	ms := func(v float64) string {
		if v >= 1000 {
			return fmt.Sprintf("%.2f s", v/1000)
		}
		return fmt.Sprintf("%.0f ms", v)
	}
	kib := func(v float64) string { return fmt.Sprintf("%.0f KiB", v) }
	return fmt.Sprintf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", r.k, ms(r.apply), ms(r.apply/float64(r.k)),
		ms(r.ps), ms(r.down), ms(r.up), ms(r.prune), kib(r.availDrop), kib(r.systemdRSS), kib(r.cg), kib(r.payload))
}
