// This file is cove's systemd generator: at boot and on every
// daemon-reload it renders each declared spec into cove-NAME.service in the
// generator directory (a container's launcher arguments into
// /run/cove/launch/NAME.json) and links enabled ones into TARGET.wants/. It never
// aborts on a bad spec (the others are still generated; the bad one is
// logged) and uses no D-Bus, as systemd.generator(7) requires.

package declared

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/units"
)

// Result counts what Run did.
type Result struct {
	Generated int
	Failed    int
}

// Generate renders the specs of paths into outDir: each workload's
// units, and into paths.Launch (when not "") a container's launcher
// configuration file (see launch.ConfigFile), removing there those of
// workloads no longer declared, all under the launch lock (see
// Paths.lockLaunch). Problems with single specs are written to log (one
// line each, FILE:LINE:COL first) and counted; an error is returned only
// when outDir or paths.Launch cannot be written at all.
func Generate(paths Paths, outDir, launcher string, log io.Writer) (Result, error) {
	var res Result
	unlock, err := paths.lockLaunch()
	if err != nil {
		return res, err
	}
	defer unlock()
	files, err := paths.SpecFiles()
	if err != nil {
		fmt.Fprintf(log, "cove-generator: %v\n", err)
	}
	configs := map[string]bool{}
	for _, f := range files {
		if err := generate(f.Path, outDir, launcher, paths.Launch, configs); err != nil {
			res.Failed++
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(log, "cove-generator: %s\n", line)
			}
			if errors.Is(err, fs.ErrPermission) {
				return res, err
			}
			continue
		}
		res.Generated++
	}
	if err := removeOtherConfigs(paths.Launch, configs); err != nil {
		fmt.Fprintf(log, "cove-generator: %v\n", err)
	}
	return res, generateNetworks(network.Catalog{Dir: paths.Networks}, outDir, log)
}

// configName is the base name of workload name's launcher configuration
// file (launch.ConfigFile) in whichever directory holds it.
func configName(name string) string { return filepath.Base(launch.ConfigFile(name)) }

// writeConfigFile writes the launcher configuration file holding args.
func writeConfigFile(file string, args []string) error {
	if err := WriteFile(file, launch.ConfigFileText(args)); err != nil {
		return fmt.Errorf("write the launcher configuration: %w", err)
	}
	return nil
}

// removeOtherConfigs removes the launcher configurations (*.json) in dir
// (if not "") that are not in keep (by base name): those of workloads no
// longer declared.
func removeOtherConfigs(dir string, keep map[string]bool) error {
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list the launcher configurations: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".json" && !keep[e.Name()] {
			errs = append(errs, Remove(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// generateNetworks writes the sockets of every declared network, each
// linked into its network unit's .wants: its DHCP responder's
// (units.CompileDHCP), if it has IPv6 its router advertisements'
// (units.CompileRA) and, if it has DNS, its name service's
// (units.CompileDNS). A bad network file is logged and skipped.
func generateNetworks(c network.Catalog, outDir string, log io.Writer) error {
	names, err := c.Names()
	if err != nil {
		fmt.Fprintf(log, "cove-generator: %v\n", err)
	}
	for _, name := range names {
		n, err := c.Named(name)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintf(log, "cove-generator: %s\n", line)
			}
			continue
		}
		sockets := []units.Unit{units.CompileDHCP(n)}
		if n.Subnet6.IsValid() {
			sockets = append(sockets, units.CompileRA(n))
		}
		if !n.NoDNS {
			sockets = append(sockets, units.CompileDNS(n))
		}
		for _, u := range sockets {
			if err := writeUnit(outDir, u, c.Path(name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeUnit writes u's text (its source named in the header) into
// outDir and links it into TARGET.wants/ for each of u.WantedBy.
func writeUnit(outDir string, u units.Unit, source string) error {
	text, err := u.Text(source)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, u.Name), []byte(text), 0o644); err != nil {
		return fmt.Errorf("generate %s: %w", u.Name, err)
	}
	for _, target := range u.WantedBy {
		dir := filepath.Join(outDir, target+".wants")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("enable %s: %w", u.Name, err)
		}
		for _, link := range u.Linked() {
			if err := os.Symlink("../"+u.Name, filepath.Join(dir, link)); err != nil && !os.IsExist(err) {
				return fmt.Errorf("enable %s: %w", link, err)
			}
		}
	}
	return nil
}

// generate renders one spec file into outDir, and its container's
// launcher configuration into launchDir (if not ""), adding the file's
// name to configs.
func generate(file, outDir, launcher, launchDir string, configs map[string]bool) error {
	s, err := spec.Load(file, "")
	if err != nil {
		return err
	}
	all, err := Units(s, launcher)
	if err != nil {
		return err
	}
	if args := all[0].LaunchArgs; args != nil && launchDir != "" {
		name := configName(s.Name)
		if err := writeConfigFile(filepath.Join(launchDir, name), args); err != nil {
			return err
		}
		configs[name] = true
	}
	for i, unit := range all {
		if i > 0 {
			unit.WantedBy = nil // only the workload's own unit is enabled
		}
		if err := writeUnit(outDir, unit, file); err != nil {
			return err
		}
	}
	return nil
}
