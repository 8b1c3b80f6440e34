package spec

import (
	"errors"
	"fmt"
	"strings"
)

// ParseVolume parses Docker's -v syntax "SOURCE:TARGET[:ro|rw]". A SOURCE
// that starts with '/' is a host path (a bind Mount); any other is the
// name of a named volume (a MountVolume), as in Docker, where a relative
// host path is not allowed either. Neither part may contain ':'. The
// volume's name and the paths are checked by Validate (ValidVolumeName).
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
		return m, fmt.Errorf("invalid volume %q: want SOURCE:TARGET[:ro|rw], SOURCE an absolute host path or a volume's name (a spec and cove run have no anonymous volumes: name it)", s)
	}
	m.Source, m.Target = cleanPath(parts[0]), cleanPath(parts[1])
	if !strings.HasPrefix(parts[0], "/") {
		m.Type = MountVolume
	}
	return m, nil
}

// MaxVolumeNameLen is the longest volume name: it is a directory's name
// in the volume store and, with ".toml", a file's name in VolumesDir.
const MaxVolumeNameLen = 128

// volumeNameRule says what a volume name may be.
const volumeNameRule = "a volume name is 2 to 128 letters, digits, '_', '.' and '-', starting with a letter or digit ([a-zA-Z0-9][a-zA-Z0-9_.-]+, Docker's rule)"

// ErrVolumeName is wrapped by ValidVolumeName's errors.
var ErrVolumeName = errors.New("invalid volume name")

// ValidVolumeName returns nil if name is a valid volume name: Docker's
// [a-zA-Z0-9][a-zA-Z0-9_.-]+, at most MaxVolumeNameLen bytes. Such a name
// is one path component and never "." or "..", so it cannot lead out of
// the volume store. Otherwise the error, wrapping ErrVolumeName, quotes
// name and says what is allowed.
func ValidVolumeName(name string) error {
	ok := len(name) >= 2 && len(name) <= MaxVolumeNameLen && isAlnum(name[0])
	for i := 1; ok && i < len(name); i++ {
		ok = isAlnum(name[i]) || name[i] == '_' || name[i] == '.' || name[i] == '-'
	}
	if !ok {
		return fmt.Errorf("%w %.140q: %s; a host path must be absolute", ErrVolumeName, name, volumeNameRule)
	}
	return nil
}

// isAlnum reports whether c is an ASCII letter or digit.
func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
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
