// Package hostconf reads cove's host settings, /etc/cove/cove.toml: what
// this host wants of the commands that build a spec without a file (cove
// run without a spec file, the Docker API's container create), and where
// its image store is. The name is one of spec.ReservedNames, so no
// workload is ever called "cove".
//
//	[run]
//	network = "cove"   # "host", "none" or a network's name; default "cove"
//
//	[images]
//	store = "/var/lib/cove/images"   # an absolute path; the default
//
// Parsing is strict, as for specs: an unknown key, a wrong type or a bad
// value is an error FILE:LINE:COL: KEY: what is wrong (spec.Errors, so
// the CLI exits 2). A missing file, or a missing key, is the default.
package hostconf

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// Path is the host settings file.
const Path = "/etc/cove/cove.toml"

// Settings are the host settings, with every default filled in.
type Settings struct {
	// RunNetwork is the network of a container whose spec is built
	// without a file (cove run without SPEC, Docker's create with the
	// default network): spec.NetworkHost, spec.NetworkNone or a network's
	// name. A spec file keeps its own default, "host".
	RunNetwork string
	// ImageStore is the root of the image store (package image):
	// launch.ImagesDir unless the host moves it.
	ImageStore string
}

// Defaults are the settings of a host without the file: containers run
// imperatively join the default network, as Docker's do; images are
// stored under launch.ImagesDir.
func Defaults() Settings { return Settings{RunNetwork: plan.DefaultName, ImageStore: launch.ImagesDir} }

// Load reads Path (Read).
func Load() (Settings, error) { return Read(Path) }

// Read reads the settings file at path. A missing file is Defaults; a file
// that cannot be read is an error naming it; bad content is spec.Errors,
// each at its key's position.
func Read(path string) (Settings, error) {
	s, errs, err := read(path)
	switch {
	case err != nil:
		return Settings{}, err
	case len(errs) > 0:
		return Settings{}, errs
	}
	return s, nil
}

// Parse parses the settings file data, read from file (for messages and
// positions: spec.Spec.KeyError reads file again to find a key).
func Parse(file string, data []byte) (Settings, error) {
	s, errs := parse(file, data)
	if len(errs) > 0 {
		return Settings{}, errs
	}
	return s, nil
}

// ImageStore is the image store's directory by the settings file at path
// (Read): only a problem of its [images] table, or a file that cannot be
// read or parsed, is an error; one of another table is left to what
// reads that (cove run, Docker's create), not to every image operation.
func ImageStore(path string) (string, error) {
	s, errs, err := read(path)
	if err != nil {
		return "", err
	}
	errs = slices.DeleteFunc(errs, func(e *spec.Error) bool {
		return e.Key != "" && e.Key != "images" && !strings.HasPrefix(e.Key, "images.")
	})
	if len(errs) > 0 {
		return "", errs
	}
	return s.ImageStore, nil
}

// read reads the settings file at path as parse does; a missing file is
// Defaults, one that cannot be read an error naming it.
func read(path string) (Settings, spec.Errors, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Defaults(), nil, nil
	}
	if err != nil {
		return Settings{}, nil, fmt.Errorf("read cove's host settings: %w", err)
	}
	s, errs := parse(path, data)
	return s, errs, nil
}

// parse reads what it can of data: the settings (defaults where a value
// is missing or wrong) and every problem, sorted by position.
func parse(file string, data []byte) (Settings, spec.Errors) {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return Defaults(), syntaxError(file, err)
	}
	s, errs := Defaults(), spec.Errors{}
	at := &spec.Spec{File: file}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		t, known := tables[k]
		if !known {
			errs = append(errs, at.KeyError(k, "unknown key; cove.toml has the tables "+tableNames()))
			continue
		}
		errs = append(errs, t.read(at, k, doc[k], &s)...)
	}
	slices.SortStableFunc(errs, func(a, b *spec.Error) int { return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col)) })
	return s, errs
}

// tableNames are the file's tables with their keys, as messages name
// them: "[images] (store) and [run] (network)".
func tableNames() string {
	var names []string
	for _, name := range slices.Sorted(maps.Keys(tables)) {
		names = append(names, fmt.Sprintf("[%s] (%s)", name, strings.Join(slices.Sorted(maps.Keys(tables[name])), ", ")))
	}
	return strings.Join(names, " and ")
}

// table is one table of the file: its keys, each with what checks its
// value and sets it in Settings (or says what is wrong).
type table map[string]func(v any, s *Settings) string

// tables are the file's tables, with an example of each for messages.
var tables = map[string]table{
	"run": {"network": func(v any, s *Settings) (msg string) {
		s.RunNetwork, msg = runNetwork(v)
		return msg
	}},
	"images": {"store": func(v any, s *Settings) (msg string) {
		s.ImageStore, msg = imageStore(v)
		return msg
	}},
}

// examples are a line of each table, for messages.
var examples = map[string]string{"run": `network = "cove"`, "images": `store = "/var/lib/cove/images"`}

// read reads table name's value v into s; errors at their keys.
func (t table) read(at *spec.Spec, name string, v any, s *Settings) spec.Errors {
	keys := slices.Sorted(maps.Keys(t))
	m, ok := v.(map[string]any)
	if !ok {
		return spec.Errors{at.KeyError(name, fmt.Sprintf("must be a table: [%s] with %s", name, examples[name]))}
	}
	var errs spec.Errors
	for _, k := range slices.Sorted(maps.Keys(m)) {
		set, known := t[k]
		switch {
		case !known:
			errs = append(errs, at.KeyError(name+"."+k, fmt.Sprintf("unknown key; [%s] has %s only", name, strings.Join(keys, ", "))))
		default:
			if msg := set(m[k], s); msg != "" {
				errs = append(errs, at.KeyError(name+"."+k, msg))
			}
		}
	}
	return errs
}

// imageStore checks the value of images.store: the clean path, or why
// it is wrong (it may not be /, nor hold or lie in another of cove's
// state directories).
func imageStore(v any) (string, string) {
	p, ok := v.(string)
	switch {
	case !ok:
		return "", "must be a string: the image store's directory, an absolute path"
	case !filepath.IsAbs(p):
		return "", fmt.Sprintf("%q is not an absolute path", p)
	}
	p = filepath.Clean(p)
	if p == "/" {
		return "", fmt.Sprintf("%q overlaps every directory of cove's", p)
	}
	for _, d := range []string{launch.ContainersDir, launch.VolumesDir, launch.VMStateDir, launch.VMImagesDir, launch.UserNSDir, filepath.Dir(Path)} {
		if p == d || strings.HasPrefix(d, p+"/") || strings.HasPrefix(p, d+"/") {
			return "", fmt.Sprintf("%q overlaps %s, another of cove's directories", p, d)
		}
	}
	return p, ""
}

// runNetwork checks the value of run.network: "" and the network, or why
// it is wrong.
func runNetwork(v any) (string, string) {
	const allowed = `"host", "none" or a network's name ([a-z0-9][a-z0-9_.-]*, at most 64 characters, such as "cove")`
	n, ok := v.(string)
	switch {
	case !ok:
		return "", fmt.Sprintf("must be a string: %s", allowed)
	case n == spec.NetworkHost || n == spec.NetworkNone || plan.ValidName(n) == nil:
		return n, ""
	}
	return "", fmt.Sprintf("invalid network %q; allowed: %s", n, allowed)
}

// syntaxError positions a TOML syntax error in file.
func syntaxError(file string, err error) spec.Errors {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return spec.Errors{{File: file, Msg: err.Error()}}
	}
	msg := strings.TrimPrefix(pe.Message, "toml: ")
	return spec.Errors{{File: file, Line: pe.Position.Line, Col: pe.Position.Col, Msg: "TOML syntax: " + msg}}
}
