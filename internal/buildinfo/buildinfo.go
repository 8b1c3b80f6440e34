// Package buildinfo says which cove this binary is: the version packaging
// stamped into it, else the one Go recorded.
package buildinfo

import "runtime/debug"

// stamped is set by packaging (scripts/package) with
// -ldflags "-X github.com/cove-project/cove/buildinfo.stamped=VERSION".
var stamped string

// Version is cove's version: the stamped one, else the main module's
// version from Go's build information, else "devel".
func Version() string {
	if stamped != "" {
		return stamped
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// Commit is the VCS revision the binary was built from, or "".
func Commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}
