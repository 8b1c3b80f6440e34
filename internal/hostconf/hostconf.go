// Package hostconf reads cove's host settings, /etc/cove/cove.toml: what
// this host wants of the commands that build a spec without a file (cove
// run without a spec file, the Docker API's container create). The name
// is one of spec.ReservedNames, so no workload is ever called "cove".
//
//	[run]
//	network = "cove"   # "host", "none" or a network's name; default "cove"
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
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/cove-project/cove/internal/network/plan"
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
}

// Defaults are the settings of a host without the file: containers run
// imperatively join the default network, as Docker's do.
func Defaults() Settings { return Settings{RunNetwork: plan.DefaultName} }

// Load reads Path (Read).
func Load() (Settings, error) { return Read(Path) }

// Read reads the settings file at path. A missing file is Defaults; a file
// that cannot be read is an error naming it; bad content is spec.Errors,
// each at its key's position.
func Read(path string) (Settings, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Defaults(), nil
	}
	if err != nil {
		return Settings{}, fmt.Errorf("read cove's host settings: %w", err)
	}
	return Parse(path, data)
}

// Parse parses the settings file data, read from file (for messages and
// positions: spec.Spec.KeyError reads file again to find a key).
func Parse(file string, data []byte) (Settings, error) {
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return Settings{}, syntaxError(file, err)
	}
	s, errs := Defaults(), spec.Errors{}
	at := &spec.Spec{File: file}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		if k != "run" {
			errs = append(errs, at.KeyError(k, `unknown key; cove.toml has a [run] table only (network = "cove")`))
		}
	}
	run, ok := doc["run"].(map[string]any)
	if _, present := doc["run"]; present && !ok {
		errs = append(errs, at.KeyError("run", `must be a table: [run] with network = "cove"`))
	}
	for _, k := range slices.Sorted(maps.Keys(run)) {
		if k != "network" {
			errs = append(errs, at.KeyError("run."+k, "unknown key; [run] has network only"))
		}
	}
	if v, present := run["network"]; present {
		n, msg := runNetwork(v)
		if msg != "" {
			errs = append(errs, at.KeyError("run.network", msg))
		}
		s.RunNetwork = n
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *spec.Error) int { return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col)) })
		return Settings{}, errs
	}
	return s, nil
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
func syntaxError(file string, err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return spec.Errors{{File: file, Msg: err.Error()}}
	}
	msg := strings.TrimPrefix(pe.Message, "toml: ")
	return spec.Errors{{File: file, Line: pe.Position.Line, Col: pe.Position.Col, Msg: "TOML syntax: " + msg}}
}
