package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// resetCove empties cove's image store (inside the sandbox, then sync).
const resetCove = "find " + storeDir + " -mindepth 1 -delete && sync"

// pullBenches lists the pulls of image A: A cove, B podman, C skopeo. Each
// starts from an empty store; the sync after emptying it leaves no dirty
// pages for a command's own syncs to flush.
func pullBenches(f *fixture, rep *report) []*bench {
	bs := []*bench{{Key: "A", Name: "cove pull", Argv: []string{f.box.Cove, "pull", f.refA},
		Reset: resetCove, phases: true}}
	if f.podman != nil {
		bs = append(bs, &bench{Key: "B", Name: "podman pull", Argv: f.podman.pullArgv(f.refA),
			Env: f.podman.env, Reset: f.podman.reset()})
	}
	if _, err := exec.LookPath("skopeo"); err != nil { // the sandbox shares the host's /usr
		rep.SkopeoSkip = "skopeo: not installed (apt-get install skopeo)"
		return bs
	}
	return append(bs, &bench{Key: "C", Name: "skopeo copy", Argv: []string{"skopeo", "copy", "-q",
		"--src-tls-verify=false", "docker://" + f.refA, "dir:" + f.skopeoDir},
		Reset: "rm -rf " + f.skopeoDir + " && sync"})
}

// measurePull runs the pulls interleaved round-robin and fills in the
// statistics, cove's phases and the ratios.
func measurePull(f *fixture, rep *report) error {
	rep.Pull = pullBenches(f, rep)
	benchbox.Progress("pull: " + order(rep.Pull))
	ph := newPhaseSamples()
	if err := rounds(f, rep, rep.Pull, ph); err != nil {
		return err
	}
	summarize(rep.Pull)
	rep.Phases = ph.summary()
	ratio(rep, "pull cove/skopeo", find(rep.Pull, "A"), find(rep.Pull, "C"))
	ratio(rep, "pull cove/podman", find(rep.Pull, "A"), find(rep.Pull, "B"))
	return nil
}

// sample resets b's store, times b once and keeps the time (and cove's
// phases) if measure is set.
func sample(f *fixture, b *bench, measure bool, ph *phaseSamples) error {
	if b.Reset != "" {
		if _, err := f.inside(nil, "sh", "-c", b.Reset); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	var d float64
	var err error
	if b.phases {
		var lines []stamp
		if d, lines, err = timeLines(f.ctx(), f.sb(), b.Argv); err == nil && measure {
			err = ph.add(lines, d)
		}
	} else {
		d, err = benchbox.TimeOnce(f.ctx(), f.sb(), benchbox.CmdTimeout, b.Env, b.Argv)
	}
	if f.ctx().Err() != nil {
		return errors.New("interrupted")
	}
	if err != nil {
		return err
	}
	if measure {
		b.Samples = append(b.Samples, d)
	}
	return nil
}

// runBenches lists the starts of a container of image A: A cove (in a
// user namespace, the default for an image: idmapped layers), B
// systemd-run on the unpacked tree, C podman, D the nsenter floor, E cove
// on the unpacked tree (what the image costs cove) and F cove with
// --userns host (what the user namespace costs).
func runBenches(f *fixture) []*bench {
	bs := []*bench{
		{Key: "A", Name: "cove run", Argv: []string{f.box.Cove, "run", "--rm", "--network", "none", f.refA, "/bin/true"}},
		{Key: "B", Name: "systemd-run", Argv: []string{"systemd-run", "--wait", "--quiet",
			"-p", "RootDirectory=" + f.tree, "-p", "PrivateNetwork=yes", "/bin/true"}},
	}
	if f.podman != nil && f.podman.run != nil {
		bs = append(bs, &bench{Key: "C", Name: "podman run", Argv: f.podman.runArgv(f.refA), Env: f.podman.env})
	}
	return append(bs, &bench{Key: "D", Name: "nsenter floor", Argv: []string{"/bin/true"}},
		&bench{Key: "E", Name: "cove run --rootfs", Argv: []string{f.box.Cove, "run", "--rm",
			"--rootfs", f.tree, "--network", "none", "--", "/bin/true"}},
		&bench{Key: "F", Name: "cove run --userns host", Argv: []string{f.box.Cove, "run", "--rm", "--userns", "host",
			"--network", "none", f.refA, "/bin/true"}})
}

// measureRun makes sure cove's and podman's stores hold image A, runs the
// starts interleaved round-robin and fills in the statistics and ratios.
func measureRun(f *fixture, rep *report) error {
	if _, err := f.inside(nil, f.box.Cove, "pull", "-q", "--policy", "missing", f.refA); err != nil {
		return err
	}
	if f.podman != nil {
		if _, err := f.inside(f.podman.env, f.podman.pullArgv(f.refA)...); err != nil {
			return err
		}
	}
	rep.Run = runBenches(f)
	benchbox.Progress("run: " + order(rep.Run))
	if f.writer {
		rep.Writer = true
		defer f.startWriter()()
	}
	if err := rounds(f, rep, rep.Run, nil); err != nil {
		return err
	}
	summarize(rep.Run)
	rep.Leftovers = leftovers(f)
	a, b, c, d := find(rep.Run, "A"), find(rep.Run, "B"), find(rep.Run, "C"), find(rep.Run, "D")
	ratio(rep, "run cove/systemd-run", a, b)
	ratio(rep, "run podman/cove", c, a)
	netRatio(rep, "run cove/systemd-run net of floor", a, b, d)
	netRatio(rep, "run podman/cove net of floor", c, a, d)
	ratio(rep, "run cove image/cove rootfs", a, find(rep.Run, "E"))
	ratio(rep, "run cove userns auto/host", a, find(rep.Run, "F"))
	return nil
}

// startWriter starts writing 32 MiB at a time, over and over and never
// synced, to a file in the work directory, which holds the containers'
// writable layers: the dirty data a busy host has, which a sync of that
// file system (an overlay's unmount does one unless it is volatile) must
// write out first. The function it returns stops it and removes the file.
func (f *fixture) startWriter() (stop func()) {
	path := filepath.Join(f.box.Work, "writer")
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 32<<20)
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := os.WriteFile(path, buf, 0o600); err != nil {
				benchbox.Progress("writer: " + err.Error())
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		os.Remove(path)
	}
}
