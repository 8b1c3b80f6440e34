package launch

import "path/filepath"

// VolumesDir is the volume store: named volume NAME is the directory
// VolumesDir/NAME, its data in VolumeData(NAME) (Docker's layout), its
// record and markers beside it (package volume).
const VolumesDir = "/var/lib/cove/volumes"

// VolumeDir is the directory of volume name, a valid volume name
// (spec.ValidVolumeName: one path component).
func VolumeDir(name string) string { return filepath.Join(VolumesDir, name) }

// VolumeData is where volume name's content is: what a container mounts.
func VolumeData(name string) string { return filepath.Join(VolumeDir(name), "_data") }
