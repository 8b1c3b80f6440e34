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
// which takes seconds with many units, but the launcher reads FILE at
// every start: cove apply of a changed command, environment, image or
// mount writes FILE and restarts the workload, with no reload. The
// generator writes every FILE at boot and on each reload, from the same
// specs as the units. Units started by cove run and the API (transient)
// carry their arguments in ExecStart= itself.

// ConfigDir holds the launcher configurations of declared containers.
const ConfigDir = "/run/cove/launch"

// ConfigFileFlag is the one launcher argument of a unit whose arguments
// are in a file: ConfigFileFlag FILE.
const ConfigFileFlag = "--config-file"

// ConfigFile is the path of the launcher configuration of declared
// container name (for a replicated one, name is the workload's: its
// instances share it).
func ConfigFile(name string) string { return filepath.Join(ConfigDir, name+".json") }

// FileArgs are the launcher arguments that send it to file for the rest.
func FileArgs(file string) []string { return []string{ConfigFileFlag, file} }

// ConfigFileText is the text of a configuration file holding args.
func ConfigFileText(args []string) []byte {
	b, _ := json.Marshal(args) // a []string always marshals
	return append(b, '\n')
}

// ExpandArgs returns the launcher arguments args stand for: the ones in
// the file when args are FileArgs (read with read), else args themselves.
func ExpandArgs(args []string, read func(string) ([]byte, error)) ([]string, error) {
	if len(args) != 2 || args[0] != ConfigFileFlag {
		return args, nil
	}
	data, err := read(args[1])
	if err != nil {
		return nil, fmt.Errorf("read the launcher configuration: %w", err)
	}
	var out []string
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("read the launcher configuration %s: not a JSON array of strings: %w", args[1], err)
	}
	return out, nil
}
