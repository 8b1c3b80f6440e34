package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cove-project/cove/bench/internal/benchbox"
)

// diskRow is what cove's store holds after pulling some images into an
// empty store.
type diskRow struct {
	What      string   `json:"what"`
	Refs      []string `json:"refs"`
	LayerDirs int      `json:"layer_dirs"` // directories in layers/sha256
	Bytes     int64    `json:"du_bytes"`   // du -s -B1 of the store
}

// disk is the result of the disk part.
type disk struct {
	Rows []diskRow `json:"rows"`
	// SharedLayers is how many layer directories A and B share: the
	// layers of A alone and of B alone, less those of both.
	SharedLayers int `json:"shared_layers"`
	// SavedBytes is du(A alone) + du(B alone) − du(both).
	SavedBytes int64 `json:"saved_bytes"`
}

// measureDisk pulls A, B, and A then B, each into an empty store, and
// counts the store's layer directories and its disk use.
func measureDisk(f *fixture, rep *report) error {
	benchbox.Progress("disk: A alone, B alone, A then B")
	d := &disk{}
	for _, step := range []struct {
		what string
		refs []string
	}{
		{"A alone", []string{f.refA}},
		{"B alone", []string{f.refB}},
		{"A, then B", []string{f.refA, f.refB}},
	} {
		row, err := f.diskRow(step.what, step.refs)
		if err != nil {
			return err
		}
		d.Rows = append(d.Rows, row)
	}
	a, b, both := d.Rows[0], d.Rows[1], d.Rows[2]
	d.SharedLayers = a.LayerDirs + b.LayerDirs - both.LayerDirs
	d.SavedBytes = a.Bytes + b.Bytes - both.Bytes
	rep.Disk = d
	_, err := f.inside(nil, "sh", "-c", resetCove)
	return err
}

// diskRow empties the store, pulls refs into it with cove and measures it.
func (f *fixture) diskRow(what string, refs []string) (diskRow, error) {
	if _, err := f.inside(nil, "sh", "-c", resetCove); err != nil {
		return diskRow{}, err
	}
	for _, ref := range refs {
		if _, err := f.inside(nil, f.box.Cove, "pull", "-q", ref); err != nil {
			return diskRow{}, err
		}
	}
	es, err := os.ReadDir(filepath.Join(f.store, "layers", "sha256"))
	if err != nil {
		return diskRow{}, err
	}
	n, err := du(f.store)
	return diskRow{What: what, Refs: refs, LayerDirs: len(es), Bytes: n}, err
}

// du returns the disk use of the tree under dir in bytes (du -s -B1).
func du(dir string) (int64, error) {
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		return 0, fmt.Errorf("du %s: %w", dir, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, fmt.Errorf("du %s printed nothing", dir)
	}
	return strconv.ParseInt(f[0], 10, 64)
}
