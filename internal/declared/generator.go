// This file is cove's systemd generator: at boot and on every
// daemon-reload it renders each declared spec into cove-NAME.service in the
// generator directory and links enabled ones into TARGET.wants/. It never
// aborts on a bad spec (the others are still generated; the bad one is
// logged) and uses no D-Bus, as systemd.generator(7) requires.

package declared

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/spec"
)

// Result counts what Run did.
type Result struct {
	Generated int
	Failed    int
}

// Generate renders the specs of paths into outDir. Problems with single specs
// are written to log (one line each, FILE:LINE:COL first) and counted;
// an error is returned only when outDir cannot be written at all.
func Generate(paths Paths, outDir, launcher string, log io.Writer) (Result, error) {
	var res Result
	files, err := paths.SpecFiles()
	if err != nil {
		fmt.Fprintf(log, "cove-generator: %v\n", err)
	}
	for _, f := range files {
		if err := generate(f.Path, outDir, launcher); err != nil {
			res.Failed++
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(log, "cove-generator: %s\n", line)
			}
			if os.IsPermission(err) {
				return res, err
			}
			continue
		}
		res.Generated++
	}
	return res, nil
}

// generate renders one spec file into outDir.
func generate(file, outDir, launcher string) error {
	s, err := spec.Load(file, "")
	if err != nil {
		return err
	}
	all, err := Units(s, launcher)
	if err != nil {
		return err
	}
	u := all[0]
	for _, unit := range all {
		text, err := unit.Text(file)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(outDir, unit.Name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("generate %s: %w", unit.Name, err)
		}
	}
	for _, target := range u.WantedBy {
		dir := filepath.Join(outDir, target+".wants")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("enable %s: %w", u.Name, err)
		}
		if err := os.Symlink("../"+u.Name, filepath.Join(dir, u.Name)); err != nil && !os.IsExist(err) {
			return fmt.Errorf("enable %s: %w", u.Name, err)
		}
	}
	return nil
}
