package spec

import (
	"fmt"
	"strings"
)

// ParseVolume parses Docker's bind-mount syntax "SOURCE:TARGET[:ro|rw]"
// into a bind Mount. SOURCE must be an absolute host path (cove has no
// named volumes) and neither path may contain ':'. Validate checks the
// paths further.
func ParseVolume(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	m := Mount{Type: MountBind}
	switch len(parts) {
	case 3:
		switch parts[2] {
		case "ro":
			m.ReadOnly = true
		case "rw":
		default:
			return m, fmt.Errorf("invalid volume %q: mode %q is not ro or rw; want SOURCE:TARGET[:ro|rw]", s, parts[2])
		}
	case 2:
	default:
		return m, fmt.Errorf("invalid volume %q: want SOURCE:TARGET[:ro|rw] with absolute paths", s)
	}
	if !strings.HasPrefix(parts[0], "/") {
		return m, fmt.Errorf("invalid volume %q: source %q is not an absolute host path (cove has no named volumes)", s, parts[0])
	}
	m.Source, m.Target = cleanPath(parts[0]), cleanPath(parts[1])
	return m, nil
}

// ParseTmpfs parses Docker's tmpfs syntax "TARGET[:OPTIONS]" into a tmpfs
// Mount; OPTIONS are comma-separated: ro, rw and size=SIZE (e.g. 64M).
func ParseTmpfs(s string) (Mount, error) {
	target, opts, _ := strings.Cut(s, ":")
	m := Mount{Type: MountTmpfs, Target: cleanPath(target)}
	for _, o := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(o, "=")
		var err error
		switch k {
		case "":
		case "ro":
			m.ReadOnly = true
		case "rw":
			m.ReadOnly = false
		case "size":
			m.Size, err = ParseSize(v)
		default:
			err = fmt.Errorf("unknown option %q", o)
		}
		if err != nil {
			return m, fmt.Errorf("invalid tmpfs %q: %w; want TARGET[:ro|rw][,size=SIZE]", s, err)
		}
	}
	return m, nil
}
