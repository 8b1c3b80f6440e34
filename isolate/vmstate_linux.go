package isolate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/internal/vmhost"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// prepareState creates c's state directory (0700: it holds the guest's
// disks and TPM secrets) and, once, what the VM keeps there: the overlay
// of each base image and the UEFI NVRAM. Every base's chain is checked
// again (vmhost.CheckBase) right before QEMU opens it.
func prepareState(c launch.VMConfig) error {
	if c.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(c.StateDir, 0o700); err != nil {
		return err
	}
	for _, d := range c.Disks {
		if d.Base == "" {
			continue
		}
		if err := prepareOverlay(d); err != nil {
			return err
		}
	}
	if _, vars := launch.FirmwareFiles(c.Firmware); vars != "" {
		if err := copyOnce(vars, c.NVRAM()); err != nil {
			return fmt.Errorf("copy NVRAM template: %w", err)
		}
	}
	return nil
}

// prepareOverlay creates d's overlay of d.Base at its first start
// (qemu-img create into a temporary name, renamed into place), and grows
// it to d.Size when that is more than its virtual size. An overlay backed
// by another file than d.Base (the spec's base changed) is refused.
func prepareOverlay(d launch.VMDisk) error {
	baseSize, err := checkBase(&d)
	if err != nil {
		return err
	}
	want := max(d.Size, baseSize)
	if _, err := os.Stat(d.Path); errors.Is(err, fs.ErrNotExist) {
		tmp := d.Path + ".new"
		os.Remove(tmp)
		if err := qemuImg("create", "-q", "-f", spec.FormatQcow2, "-F", d.BaseFmt, "-b", d.Base, tmp, strconv.FormatUint(want, 10)); err != nil {
			return fmt.Errorf("create overlay of %s: %w", d.Base, err)
		}
		return os.Rename(tmp, d.Path)
	} else if err != nil {
		return err
	}
	size, backing, err := vmhost.Overlay(d.Path)
	switch {
	case err != nil:
		return err
	case backing != d.Base:
		return fmt.Errorf("overlay %s is backed by %s, not by the spec's base %s: the spec's base changed since the overlay was made; remove the VM (cove rm) to start again from the new base", d.Path, backing, d.Base)
	case size >= want:
		return nil
	}
	if err := qemuImg("resize", "-q", "-f", spec.FormatQcow2, d.Path, strconv.FormatUint(want, 10)); err != nil {
		return fmt.Errorf("grow overlay %s: %w", d.Path, err)
	}
	return nil
}

// checkBase checks d's base before the overlay is made or opened
// (vmhost.CheckBase), and returns its virtual size. A base of no format
// is a registry image's disk file (stored.Store.CompleteDisk), which
// nothing writes: its format is read from its first bytes and it must be
// self-contained (vmhost.CheckImageDisk).
func checkBase(d *launch.VMDisk) (uint64, error) {
	if d.BaseFmt != "" {
		return vmhost.CheckBase(d.Base, d.BaseFmt)
	}
	format, err := vmhost.DetectDiskFormat(d.Base)
	if err != nil {
		return 0, fmt.Errorf("base image %s: %w", d.Base, err)
	}
	d.BaseFmt = format
	return vmhost.CheckImageDisk(d.Base, format)
}

// qemuImg runs qemu-img with args; its error output becomes the error's.
func qemuImg(args ...string) error {
	return run("qemu-img", args...)
}

// run runs name with args; its output becomes the error's.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, args[0], err, bytes.TrimSpace(out))
	}
	return nil
}

// copyOnce copies the file src to dst (0600) unless dst exists.
func copyOnce(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".new"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err = errors.Join(err, out.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// MaxSeedFile is the largest user-data or network-config file a seed
// takes.
const MaxSeedFile = 16 << 20

// buildSeed writes c's cloud-init seed (c.Seed): a vfat image labelled
// CIDATA (cloud-init's NoCloud source matches the label in any case)
// holding the files of SeedFiles, made with mkfs.vfat and mcopy (no loop
// mount). ep is the guest's endpoint on a bridge, or nil.
func buildSeed(c launch.VMConfig, ep *plan.Endpoint) error {
	read := func(p string) ([]byte, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, MaxSeedFile+1))
		if err == nil && len(b) > MaxSeedFile {
			err = fmt.Errorf("%s is larger than %d bytes", p, MaxSeedFile)
		}
		return b, err
	}
	files, err := SeedFiles(c, ep, read)
	if err != nil {
		return fmt.Errorf("cloud-init seed: %w", err)
	}
	dir, err := os.MkdirTemp(c.StateDir, "seed-")
	if err != nil {
		return fmt.Errorf("cloud-init seed: %w", err)
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "cidata.img")
	total := 0
	for _, f := range files {
		total += len(f.Data)
	}
	if err := run("mkfs.vfat", "-n", "CIDATA", "-C", img, strconv.Itoa(max(1024, 2*total/1024+512))); err != nil {
		return fmt.Errorf("cloud-init seed: %w", err)
	}
	for _, f := range files {
		src := filepath.Join(dir, f.Name)
		if err := os.WriteFile(src, f.Data, 0o600); err != nil {
			return fmt.Errorf("cloud-init seed: %w", err)
		}
		if err := run("mcopy", "-i", img, src, "::"+f.Name); err != nil {
			return fmt.Errorf("cloud-init seed: %w", err)
		}
	}
	return os.Rename(img, c.Seed())
}

// startTPM starts swtpm for c: a TPM 2.0 whose state persists in
// c.TPMState, reached on c.TPMSocket, and returns once the socket is
// there. swtpm stays in the unit's cgroup (its stop kills it) and
// --terminate ends it when QEMU's connection closes, so it never outlives
// the VM: not after a graceful stop, a guest poweroff or a SIGKILL of
// QEMU.
func startTPM(c launch.VMConfig) (*os.Process, error) {
	if err := os.MkdirAll(c.TPMState(), 0o700); err != nil {
		return nil, fmt.Errorf("tpm: %w", err)
	}
	if err := removeStaleSocket(c.TPMSocket()); err != nil {
		return nil, fmt.Errorf("tpm: %w", err)
	}
	cmd := exec.Command(launch.SWTPMBinary, "socket", "--tpm2", "--terminate",
		"--tpmstate", "dir="+c.TPMState()+",mode=0600",
		"--ctrl", "type=unixio,path="+c.TPMSocket()+",mode=0600")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("tpm: start %s: %w", launch.SWTPMBinary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if _, err := os.Stat(c.TPMSocket()); err == nil {
			return cmd.Process, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("tpm: %s exited: %v", launch.SWTPMBinary, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("tpm: %s made no socket %s in 10s", launch.SWTPMBinary, c.TPMSocket())
}
