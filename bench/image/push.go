package main

import (
	"fmt"
	"os/exec"
	"path/filepath"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// pushRepo is the registry's directory of repository bench/NAME
// (registry.Start's storage): removed, the registry holds nothing of it,
// so a push of it uploads every blob again.
func (f *fixture) pushRepo(name string) string {
	return filepath.Join(f.box.Work, "registry", "data", "docker", "registry", "v2", "repositories", "bench", name)
}

// pushBenches lists the pushes of image A, each to a repository of its
// own that the reset empties: A cove push from its store (every layer
// written anew from its directory and gzipped), B podman push from its
// store (likewise), C skopeo copy of the compressed blobs as the pull
// part's skopeo left them (no compression: the transfer floor).
func pushBenches(f *fixture) []*bench {
	dest := func(name string) string { return f.reg.Addr + "/bench/" + name + ":1" }
	reset := func(name string) string { return "rm -rf " + f.pushRepo(name) + " && sync" }
	bs := []*bench{{Key: "A", Name: "cove push", Argv: []string{f.box.Cove, "push", "-q", f.refA, dest("pushed-cove")}, Reset: reset("pushed-cove")}}
	if f.podman != nil {
		bs = append(bs, &bench{Key: "B", Name: "podman push", Argv: f.podman.pushArgv(f.refA, dest("pushed-podman")),
			Env: f.podman.env, Reset: reset("pushed-podman")})
	}
	if _, err := exec.LookPath("skopeo"); err == nil {
		bs = append(bs, &bench{Key: "C", Name: "skopeo copy", Argv: []string{"skopeo", "copy", "-q", "--dest-tls-verify=false",
			"dir:" + f.skopeoDir, "docker://" + dest("pushed-skopeo")}, Reset: reset("pushed-skopeo")})
	}
	return bs
}

// measurePush makes sure cove's store and skopeo's directory hold image
// A, runs the pushes interleaved round-robin and fills in the statistics
// and ratios.
func measurePush(f *fixture, rep *report) error {
	if _, err := f.inside(nil, f.box.Cove, "pull", "-q", "--policy", "missing", f.refA); err != nil {
		return err
	}
	if _, err := exec.LookPath("skopeo"); err == nil {
		copyA := "rm -rf " + f.skopeoDir + " && skopeo copy -q --src-tls-verify=false docker://" + f.refA + " dir:" + f.skopeoDir
		if _, err := f.inside(nil, "sh", "-c", copyA); err != nil {
			return err
		}
	}
	rep.Push = pushBenches(f)
	benchbox.Progress("push: " + order(rep.Push))
	if err := rounds(f, rep, rep.Push, nil); err != nil {
		return err
	}
	summarize(rep.Push)
	ratio(rep, "push cove/skopeo", find(rep.Push, "A"), find(rep.Push, "C"))
	ratio(rep, "push cove/podman", find(rep.Push, "A"), find(rep.Push, "B"))
	return nil
}

// rounds runs bs interleaved round-robin, the warm-up rounds first, and
// keeps the samples of the measured ones (and cove's phases in ph).
func rounds(f *fixture, rep *report, bs []*bench, ph *phaseSamples) error {
	return benchbox.Rounds(rep.Warmup, rep.Rounds, true, func(round int, measure bool) error {
		for _, b := range bs {
			if err := sample(f, b, measure, ph); err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, b.Name, err)
			}
		}
		return nil
	})
}
