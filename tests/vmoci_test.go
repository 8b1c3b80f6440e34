package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/tests/harness"
	"github.com/cove-project/cove/tests/registry"
	"github.com/cove-project/cove/tests/vmguest"
)

// TestVMOCIDisk: base = "oci:REF" takes a VM's disk from a registry image
// holding one qcow2 under /disk (KubeVirt's containerDisk layout): cove
// run pulls it, the VM boots from its own overlay of the file in the
// store, which keeps what the guest wrote across a restart while the
// image's file is never written; rmi is refused and prune keeps the
// image while the overlay exists, also with the VM stopped; cove rm of
// the stopped VM (whose transient unit systemd has collected) removes
// its state, and rmi then works; cove apply of a spec of that disk pulls
// the image again and boots a fresh overlay. An image whose disk has a
// backing file, whose /disk is a symbolic link, or with no disk at all is
// refused.
func TestVMOCIDisk(t *testing.T) {
	g := needGuest(t)
	_, reg := testImage(t)
	t.Cleanup(func() { cove(t, "image", "prune") })
	ref := pushDiskImage(t, reg, "vm/disk:1", func(dir string) {
		mkdirs(t, filepath.Join(dir, "disk"))
		qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(dir, "disk", "disk.qcow2"), "64M")
	})
	cleanupWorkload(t, "vmoci")
	disk := fmt.Sprintf("[[vm.disk]]\nbase = \"oci:%s\"\nsize = \"128M\"\n", ref)
	spec := vmSpec(t, g, "vmoci", "disk", disk, "")
	mustCove(t, "run", "-d", spec)
	waitLog(t, "vmoci", vmguest.MarkerDiskCount+"1", 60*time.Second)
	const overlay = "/var/lib/cove/vms/vmoci/disk1.qcow2"
	backing := backingFile(t, overlay)
	if !strings.HasPrefix(backing, "/var/lib/cove/images/layers/sha256/") || !strings.HasSuffix(backing, "/disk/disk.qcow2") {
		t.Fatalf("the overlay's backing file is %q, want the image's /disk file in the store", backing)
	}
	stored := filepath.Join(workDir, strings.TrimPrefix(backing, "/var/lib/cove/"))
	before := sha256File(t, stored)
	mustCove(t, "restart", "vmoci")
	waitLog(t, "vmoci", vmguest.MarkerDiskCount+"2", 60*time.Second)
	if after := sha256File(t, stored); after != before {
		t.Errorf("the image's disk file changed: sha256 %s, was %s", after, before)
	}
	digest := strings.TrimSpace(inside(t, "cat", overlay+".image").Stdout)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Errorf("the overlay's image record holds %q, want a digest", digest)
	}
	if r := cove(t, "rmi", ref); r.Code == 0 || !strings.Contains(r.Stderr, "vmoci") {
		t.Errorf("cove rmi of a VM's disk image: exit %d, stderr %q; want a refusal naming vmoci", r.Code, r.Stderr)
	}
	mustCove(t, "stop", "vmoci")
	if r := cove(t, "image", "prune"); r.Code != 0 || strings.Contains(r.Stdout, digest) {
		t.Errorf("cove image prune with the VM stopped (overlay kept): exit %d, output %q; want the image kept", r.Code, r.Stdout)
	}
	mustCove(t, "rm", "vmoci") // its unit collected after the stop: the state directory is what is left
	if r := inside(t, "test", "-e", "/var/lib/cove/vms/vmoci"); r.Code == 0 {
		t.Error("cove rm of the stopped VM left its state directory")
	}
	mustCove(t, "rmi", ref)
	pruneAll(t)
	declared := vmSpec(t, g, "vmocidecl", "disk", disk, "")
	if out := mustCove(t, "apply", declared); !strings.Contains(out, "pulled "+ref) {
		t.Errorf("cove apply of a VM whose disk image is not in the store did not pull it:\n%s", out)
	}
	waitLog(t, "vmocidecl", vmguest.MarkerDiskCount+"1", 60*time.Second)
	mustCove(t, "apply", "--prune", filepath.Join(workDir, "empty"))
	refusedDiskImages(t, g, reg)
}

// refusedDiskImages: a VM from an image whose disk names a backing file,
// whose /disk is a symbolic link (to a directory of the host), or with no
// /disk does not start, and says why.
func refusedDiskImages(t *testing.T, g vmguest.Guest, reg *registry.Registry) {
	for name, c := range map[string]struct {
		layer func(dir string)
		want  string
	}{
		"backing": {func(dir string) {
			mkdirs(t, filepath.Join(dir, "disk"))
			qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/var/lib/cove/vm-images/any.raw", "-u", filepath.Join(dir, "disk", "disk.qcow2"), "64M")
		}, "may have no backing file"},
		"symlink": {func(dir string) {
			if err := os.Symlink("/var/lib/cove/vms", filepath.Join(dir, "disk")); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
		"empty": {func(dir string) { mkdirs(t, filepath.Join(dir, "etc")) }, "holds 0 files under /disk"},
	} {
		ref := pushDiskImage(t, reg, "vm/"+name+":1", c.layer)
		vm := "vmoci" + name
		cleanupWorkload(t, vm)
		r := cove(t, "run", "-d", vmSpec(t, g, vm, "disk", fmt.Sprintf("[[vm.disk]]\nbase = \"oci:%s\"\n", ref), ""))
		var logs string
		eventually(t, 30*time.Second, vm+" to fail saying "+c.want, func() bool {
			logs = cove(t, "logs", vm).Stdout + r.Stderr
			return strings.Contains(logs, c.want) && show(t, "cove-"+vm+".service", "ActiveState") != "active"
		})
		if !strings.Contains(logs, "oci:") && !strings.Contains(logs, ref) {
			t.Errorf("%s: the refusal names neither the image nor its reference:\n%s", name, harness.Tail(logs, 10))
		}
		cove(t, "rm", vm)
		cove(t, "rmi", ref)
	}
}

// pushDiskImage pushes an image of one layer whose tree makeLayer writes
// into an empty directory, and returns its reference.
func pushDiskImage(t *testing.T, reg *registry.Registry, name string, makeLayer func(dir string)) string {
	t.Helper()
	dir := filepath.Join(workDir, "diskimage-"+strings.NewReplacer("/", "-", ":", "-").Replace(name))
	mkdirs(t, dir)
	makeLayer(dir)
	return pushImage(t, reg, name, v1.Config{}, dir)
}

// mkdirs creates dir and its parents.
func mkdirs(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// backingFile is the backing file qemu-img names for the image at path in
// the sandbox.
func backingFile(t *testing.T, path string) string {
	t.Helper()
	for _, line := range strings.Split(inside(t, "qemu-img", "info", "-U", path).Stdout, "\n") {
		if f, ok := strings.CutPrefix(line, "backing file: "); ok {
			return f
		}
	}
	t.Fatalf("%s has no backing file", path)
	return ""
}
