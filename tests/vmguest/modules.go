package vmguest

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// Debian's kernel package ships no modules.dep (depmod runs in its
// postinst, which cove never runs), so the dependencies are read from each
// module's own .modinfo section ("depends=a,b"), the data depmod itself
// uses.

// modName normalises a module name as the kernel does: '-' and '_' are
// the same.
func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleIndex maps module names to their .ko files under dir
// (lib/modules/VERSION).
func moduleIndex(dir string) (map[string]string, error) {
	idx := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			idx[modName(strings.TrimSuffix(d.Name(), ".ko"))] = p
		}
		return nil
	})
	return idx, err
}

// moduleDepends returns the "depends=" list of a .ko file.
func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("%s: no .modinfo section", path)
	}
	b, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

// resolveModules returns the .ko files for the wanted modules and all their
// dependencies, each after its dependencies: the order to insmod them in.
func resolveModules(dir string, want []string) ([]string, error) {
	idx, err := moduleIndex(dir)
	if err != nil {
		return nil, err
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, from string) error
	visit = func(name, from string) error {
		name = modName(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		p, ok := idx[name]
		if !ok {
			return fmt.Errorf("module %s (wanted by %s) not found under %s", name, from, dir)
		}
		state[name] = 1
		deps, err := moduleDepends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, p)
		return nil
	}
	for _, w := range want {
		if err := visit(w, "the guest"); err != nil {
			return nil, err
		}
	}
	return order, nil
}
