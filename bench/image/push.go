package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// pushTarget is where a push part sends image A: a registry, the
// directory of its data (registry.Start's storage under the work
// directory), and, for a registry that must hold nothing before a
// sample (wipe), the blob caches podman and skopeo keep (where they found
// a blob before: they would mount it from there).
type pushTarget struct {
	addr, dir string
	wipe      []string
}

// pushTargets are the push parts' registries: the one image A is in (its
// layers can be mounted from bench/app), and the other one, whose data
// and the tools' blob caches are removed before each sample (every layer
// is uploaded).
func (f *fixture) pushTargets() (same, other pushTarget) {
	otherDir := filepath.Join(f.box.Work, "registry-other")
	caches := []string{filepath.Join(otherDir, "data"), "/var/lib/containers/cache"} // skopeo's, as root
	if f.podman != nil {
		caches = append(caches, filepath.Join(f.podman.root, "cache")) // podman's, in its store
	}
	return pushTarget{addr: f.reg.Addr, dir: filepath.Join(f.box.Work, "registry")}, pushTarget{addr: f.other.Addr, dir: otherDir, wipe: caches}
}

// reset is the command that empties the target's repository bench/NAME
// (a blob stays in the registry's store, but a push must put it in the
// repository again), or, with wipe, removes those paths.
func (t pushTarget) reset(name string) string {
	paths := t.wipe
	if len(paths) == 0 {
		paths = []string{filepath.Join(t.dir, "data", "docker", "registry", "v2", "repositories", "bench", name)}
	}
	return "rm -rf " + strings.Join(paths, " ") + " && sync"
}

// pushBenches lists the pushes of image A to t, each to a repository of
// its own that the reset empties: A cove push from its store (a layer is
// mounted from bench/app when t has it, else written anew from its
// directory and gzipped), B podman push from its store (likewise), C
// skopeo copy of the compressed blobs as the pull part's skopeo left them
// (never compressed again: the transfer floor).
func pushBenches(f *fixture, t pushTarget) []*bench {
	dest := func(name string) string { return t.addr + "/bench/" + name + ":1" }
	reset := t.reset
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
	same, other := f.pushTargets()
	for _, part := range []struct {
		name  string
		t     pushTarget
		bench *[]*bench
	}{{"push", same, &rep.Push}, {"push elsewhere", other, &rep.PushElsewhere}} {
		*part.bench = pushBenches(f, part.t)
		benchbox.Progress(part.name + ": " + order(*part.bench))
		if err := rounds(f, rep, *part.bench, nil); err != nil {
			return fmt.Errorf("%s: %w", part.name, err)
		}
		summarize(*part.bench)
		ratio(rep, part.name+" cove/skopeo", find(*part.bench, "A"), find(*part.bench, "C"))
		ratio(rep, part.name+" cove/podman", find(*part.bench, "A"), find(*part.bench, "B"))
	}
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
