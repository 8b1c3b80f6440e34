package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/bench/internal/benchbox"
	"github.com/cove-project/cove/tests/registry"
)

// imageConfig is the test images' configuration.
var imageConfig = v1.Config{
	Cmd: []string{"/bin/sh"},
	Env: []string{"PATH=/bin:/sbin"},
}

// pushImages builds the two images and pushes them: A is the busybox
// rootfs as one layer and o.layers layers of o.layerMiB MiB of random
// data each (incompressible, so the time goes to moving and unpacking
// bytes); B shares A's two bottom layers and adds one of its own. It also
// unpacks A into f.tree, systemd-run's root.
func (f *fixture) pushImages(o options, rep *report) error {
	benchbox.Progress("building and pushing the images")
	base, err := registry.DirLayer(f.box.Rootfs)
	if err != nil {
		return err
	}
	layersA := []v1.Layer{base}
	for i := 1; i <= o.layers+1; i++ {
		l, err := randomLayer(filepath.Join(f.box.Work, "layers"), i, o.layerMiB)
		if err != nil {
			return err
		}
		layersA = append(layersA, l)
	}
	ownB := layersA[len(layersA)-1] // the extra layer is B's own
	layersA = layersA[:len(layersA)-1]
	layersB := []v1.Layer{layersA[0], layersA[1], ownB}
	for _, p := range []struct {
		ref    string
		layers []v1.Layer
		info   *imageInfo
	}{{repoA, layersA, &rep.ImageA}, {repoB, layersB, &rep.ImageB}} {
		if err := push(f, p.ref, p.layers, p.info); err != nil {
			return err
		}
	}
	return f.unpackTree(layersA, &rep.ImageA)
}

// push pushes one image and describes it in info.
func push(f *fixture, ref string, layers []v1.Layer, info *imageInfo) error {
	img, err := registry.Image(imageConfig, layers...)
	if err != nil {
		return err
	}
	full, err := f.reg.Push(ref, img)
	if err != nil {
		return err
	}
	info.Ref = full
	info.Layers = len(layers)
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return err
		}
		info.CompressedBytes += n
	}
	return nil
}

// randomLayer writes mib files of 1 MiB of random data (seeded by i)
// under dir/i/data/i and returns that tree as a layer.
func randomLayer(dir string, i, mib int) (v1.Layer, error) {
	root := filepath.Join(dir, fmt.Sprint(i))
	data := filepath.Join(root, "data", fmt.Sprint(i))
	if err := mkdir(data); err != nil {
		return nil, err
	}
	rng := rand.NewChaCha8([32]byte{byte(i), 'c', 'o', 'v', 'e'})
	buf := make([]byte, 1<<20)
	for k := 0; k < mib; k++ {
		rng.Read(buf)
		if err := os.WriteFile(filepath.Join(data, fmt.Sprintf("blob%02d", k)), buf, 0o644); err != nil {
			return nil, err
		}
	}
	return registry.DirLayer(root)
}

// unpackTree extracts the layers (bottom first; they hold no whiteouts)
// into f.tree with tar, and counts their uncompressed bytes.
func (f *fixture) unpackTree(layers []v1.Layer, info *imageInfo) error {
	if err := mkdir(f.tree); err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		cr := &countingReader{r: rc}
		tar := exec.Command("tar", "-x", "-p", "--numeric-owner", "-C", f.tree)
		tar.Stdin = cr
		out, err := tar.CombinedOutput()
		rc.Close()
		if err != nil {
			return fmt.Errorf("unpack a layer into %s: %v: %s", f.tree, err, out)
		}
		info.UncompressedBytes += cr.n
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// mkdir creates dir and its parents.
func mkdir(dir string) error {
	return os.MkdirAll(dir, 0o755)
}
