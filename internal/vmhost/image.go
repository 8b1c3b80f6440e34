package vmhost

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// MaxBackingDepth is how long a base image's backing chain may be.
const MaxBackingDepth = 16

// imageInfo is what qemu-img info --output=json says about one image.
type imageInfo struct {
	VirtualSize    uint64 `json:"virtual-size"`
	Format         string `json:"format"`
	Backing        string `json:"backing-filename"`
	FullBacking    string `json:"full-backing-filename"`
	BackingFormat  string `json:"backing-filename-format"`
	FormatSpecific struct {
		Data struct {
			DataFile string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

// CheckBase checks the base image of an overlay before QEMU opens it, and
// returns its virtual size. The base (format, its pinned format) and every
// image of its backing chain must be a regular file in the allowed
// directories: the directory the base itself is in (symbolic links
// resolved) and launch.VMImagesDir. Each image of the chain is read by
// qemu-img info alone, which does not open its backing file: a hostile
// image naming /etc/shadow, a json: or nbd: pseudo-file or an external
// data file as its backing is refused before anything opens it. Every
// backing file must name its format (nothing is probed).
func CheckBase(base, format string) (uint64, error) { return checkChain(base, format, false) }

// CheckImageDisk is CheckBase for the disk file of a registry image in
// the store (stored.Store.DiskFile), which must be self-contained: a
// backing file of any name is refused.
func CheckImageDisk(path, format string) (uint64, error) { return checkChain(path, format, true) }

// checkChain checks base and its backing chain (see CheckBase); with
// selfContained, base may have no backing file.
func checkChain(base, format string, selfContained bool) (uint64, error) {
	resolved, err := filepath.EvalSymlinks(base)
	if err != nil {
		return 0, fmt.Errorf("base image %s: %w", base, err)
	}
	allowed := []string{filepath.Dir(resolved), launch.VMImagesDir}
	var size uint64
	path := resolved
	for depth := 0; ; depth++ {
		info, err := readImageInfo(path, format)
		if err != nil {
			return 0, err
		}
		if depth == 0 {
			size = info.VirtualSize
		}
		switch {
		case info.FormatSpecific.Data.DataFile != "":
			return 0, fmt.Errorf("base image %s: %s has an external data file (%s); cove opens only self-contained images", base, path, info.FormatSpecific.Data.DataFile)
		case info.FullBacking == "":
			return size, nil
		case selfContained:
			return 0, fmt.Errorf("base image %s: the disk of an image in the store may have no backing file; it names %s", base, info.FullBacking)
		case depth+1 >= MaxBackingDepth:
			return 0, fmt.Errorf("base image %s: backing chain longer than %d images", base, MaxBackingDepth)
		case info.BackingFormat != spec.FormatRaw && info.BackingFormat != spec.FormatQcow2:
			return 0, fmt.Errorf("base image %s: %s names its backing file %s with format %q; it must be raw or qcow2, given (qemu-img rebase -F)", base, path, info.FullBacking, info.BackingFormat)
		}
		next, err := allowedFile(info.FullBacking, allowed)
		if err != nil {
			return 0, fmt.Errorf("base image %s: backing file of %s: %w", base, path, err)
		}
		path, format = next, info.BackingFormat
	}
}

// allowedFile returns p with symbolic links resolved if it is an absolute
// path of a regular file under one of the directories allowed.
func allowedFile(p string, allowed []string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%q is not a file's absolute path", p)
	}
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	for _, dir := range allowed {
		if inside(resolved, dir) {
			if st, err := os.Stat(resolved); err != nil || !st.Mode().IsRegular() {
				return "", fmt.Errorf("%s is not a regular file", resolved)
			}
			return resolved, nil
		}
	}
	return "", fmt.Errorf("%s is outside the directories base images may use (%s)", resolved, strings.Join(allowed, ", "))
}

// inside reports whether path is dir or below it (both clean, absolute).
func inside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// Overlay returns the virtual size of the qcow2 overlay at path and its
// backing file as the overlay names it.
func Overlay(path string) (size uint64, backing string, err error) {
	info, err := readImageInfo(path, spec.FormatQcow2)
	return info.VirtualSize, info.Backing, err
}

// readImageInfo runs qemu-img info on the image path of format, without
// its backing chain, sharing locks with a QEMU that has it open.
func readImageInfo(path, format string) (imageInfo, error) {
	var info imageInfo
	cmd := exec.Command("qemu-img", "info", "--output=json", "-U", "-f", format, path)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return info, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return info, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	return info, nil
}
