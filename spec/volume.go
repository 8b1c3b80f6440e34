package spec

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// VolumesDir is where volume files live: VolumesDir/NAME.toml declares
// the named volume NAME (kind = "volume"). A file per volume, as networks
// have, not a [[volume]] table in a workload's spec: a volume outlives
// and is shared by workloads, so no one spec owns it; its name follows
// Docker's rule (upper case allowed), not a workload's; and a
// configuration-management tool places or removes one file per object.
const VolumesDir = "/etc/cove/volumes"

// Volume is a volume file's [volume] table.
type Volume struct {
	Labels map[string]string // Docker's volume labels
	Size   uint64            // bytes, MinVolumeSize..MaxVolumeSize: the volume is a file system of that size; 0: a directory, unlimited
}

// The bounds of a volume's size. A sized volume is an ext4 file system
// in a sparse file: below 16 MiB its journal and inode tables leave
// little room; 16 TiB is the largest file ext4 (with 4 KiB blocks) holds,
// which /var/lib may be.
const (
	MinVolumeSize = 16 << 20
	MaxVolumeSize = 16 << 40
)

// CheckVolumeSize returns an error if size, in bytes, is out of
// MinVolumeSize..MaxVolumeSize.
func CheckVolumeSize(size uint64) error {
	if size < MinVolumeSize || size > MaxVolumeSize {
		return fmt.Errorf("volume size %s is out of range; must be %s to %s", FormatSize(size), FormatSize(MinVolumeSize), FormatSize(MaxVolumeSize))
	}
	return nil
}

// ParseVolumeFile parses the volume file data, read from file, for the
// volume name ("" takes it from the file name, as Parse does for
// workloads). It returns the [volume] table (empty if the file has none),
// or Errors positioned at the keys at fault.
func ParseVolumeFile(file string, data []byte, name string) (Volume, error) {
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(file), ".toml")
	}
	s, err := parse(file, data, name, ValidVolumeName)
	if err != nil {
		return Volume{}, err
	}
	if s.Kind != KindVolume {
		return Volume{}, Errors{keyError(file, data, "kind", fmt.Sprintf(`a volume file must have kind = "volume", not %q`, s.Kind))}
	}
	if s.Volume == nil {
		return Volume{}, nil
	}
	return *s.Volume, nil
}

// LoadVolumeFile reads the volume file at path and parses it with
// ParseVolumeFile (the volume named after the file).
func LoadVolumeFile(path string) (Volume, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Volume{}, fmt.Errorf("read volume file: %w", err)
	}
	return ParseVolumeFile(path, data, "")
}

// readVolume builds a Volume from the [volume] table t.
func readVolume(t table) *Volume {
	vol := &Volume{}
	t.read("labels", &vol.Labels)
	t.read("size", &vol.Size)
	return vol
}

// volume checks a volume file: only the tables a volume has, label
// values that are text, and a size in range.
func (v *validator) volume(s *Spec) {
	for _, k := range []string{"container", "vm", "resources", "service", "security", "depends", "health", "install", "network"} {
		if v.src.has(k) {
			v.add(k, fmt.Sprintf(`[%s] does not belong in a volume file (kind = "volume"), which has version, kind, description and [volume]`, k))
		}
	}
	if s.Volume == nil {
		return
	}
	v.labels("volume.labels", s.Volume.Labels)
	if v.src.has("volume.size") && !v.src.failedAt("volume.size") {
		if err := CheckVolumeSize(s.Volume.Size); err != nil {
			v.add("volume.size", err.Error())
		}
	}
}

// labels checks the labels at key: text, keys and values alike.
func (v *validator) labels(key string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		if msg := checkText(k + labels[k]); msg != "" {
			v.add(key+"."+tomlKey(k), msg)
		}
	}
}

// volumeSource checks a volume mount's source: a volume's name. A path
// is named as such: the mount's type is then most likely wrong.
func (v *validator) volumeSource(key, name string) {
	switch {
	case name == "":
		v.add(key, `missing; required with type = "volume": a volume's name, such as "data"`)
	case path.IsAbs(name):
		v.add(key, fmt.Sprintf(`%q is a host path, not a volume's name; for a host directory leave type out (type = "bind")`, name))
	default:
		if err := ValidVolumeName(name); err != nil {
			v.add(key, err.Error())
		}
	}
}
