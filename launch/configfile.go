package launch

import (
	"encoding/json"
	"fmt"
	"path/filepath"
)

// A declared container's unit does not carry its launcher arguments: its
// ExecStart= is "cove-launch launch --config-file FILE" (FileArgs), and
// FILE (ConfigFile) holds the arguments Args wrote, as a JSON array of
// strings (ConfigFileText). systemd reads a unit file only on a reload,
// which takes seconds with many units and stalls every systemd operation
// meanwhile, but the launcher reads FILE at every start: cove apply of a
// changed command, environment, image or mount rewrites FILE and restarts
// the workload, with no reload. cove's generator writes every FILE at boot
// and on each reload, from the same specs as the units, and removes those
// of workloads no longer declared; each is replaced whole (a rename), so
// a launcher never finds none or half of one. FILE is not in the
// generator's output directory, which systemd empties when a reload
// begins. Units started by cove run and the API (transient) carry their
// arguments in ExecStart= itself.

// ConfigDir holds the launcher configurations of declared containers.
const ConfigDir = "/run/cove/launch"

// GeneratorDir is systemd's output directory for generators' units of
// normal priority: only a generator run there writes the files of
// ConfigDir (one run by hand into another directory leaves the running
// workloads' files alone).
const GeneratorDir = "/run/systemd/generator"

// ConfigFileFlag is the one launcher argument of a unit whose arguments
// are in a file: ConfigFileFlag FILE.
const ConfigFileFlag = "--config-file"

// ConfigFile is the launcher configuration of declared container name
// (for a replicated one, name is the workload's: its instances share it).
func ConfigFile(name string) string { return filepath.Join(ConfigDir, name+".json") }

// FileArgs are the launcher arguments that send it to file for the rest.
func FileArgs(file string) []string { return []string{ConfigFileFlag, file} }

// FileOf returns the file that launcher arguments args send it to, ""
// when they are the arguments themselves.
func FileOf(args []string) string {
	if len(args) != 2 || args[0] != ConfigFileFlag {
		return ""
	}
	return args[1]
}

// ConfigFileText is the text of a configuration file holding args.
func ConfigFileText(args []string) []byte {
	b, _ := json.Marshal(args) // a []string always marshals
	return append(b, '\n')
}

// ExpandArgs returns the launcher arguments args stand for: the ones in
// the file when args are FileArgs (read with read), else args themselves.
func ExpandArgs(args []string, read func(string) ([]byte, error)) ([]string, error) {
	file := FileOf(args)
	if file == "" {
		return args, nil
	}
	data, err := read(file)
	if err != nil {
		return nil, fmt.Errorf("read the launcher configuration: %w", err)
	}
	var out []string
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("read the launcher configuration %s: not a JSON array of strings: %w", file, err)
	}
	return out, nil
}
