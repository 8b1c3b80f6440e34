package spec

import (
	"strings"
	"testing"
)

// TestVolumeFile: a volume file declares a volume with labels; its name
// comes from the file and follows Docker's rule; a size parses as
// spec sizes do and must be in range; a workload's tables and a
// workload's kind are refused.
func TestVolumeFile(t *testing.T) {
	const head = "version = 1\nkind = \"volume\"\n"
	v, err := ParseVolumeFile("/etc/cove/volumes/Pg_data.1.toml", []byte(head+"[volume]\nlabels = { team = \"db\" }\n"), "")
	if err != nil || v.Labels["team"] != "db" {
		t.Fatalf("labels: %+v, %v", v, err)
	}
	if v, err := ParseVolumeFile("/etc/cove/volumes/db.toml", []byte(head+"[volume]\nsize = \"1.5G\"\n"), ""); err != nil || v.Size != 3<<29 {
		t.Errorf("size 1.5G: %+v, %v", v, err)
	}
	if v, err := ParseVolumeFile("/etc/cove/volumes/bare.toml", []byte(head), ""); err != nil || v.Labels != nil || v.Size != 0 {
		t.Errorf("a file without [volume]: %+v, %v", v, err)
	}
	for _, tc := range []struct{ file, data, want string }{
		{"small.toml", head + "[volume]\nsize = \"15M\"\n", "small.toml:4:1: volume.size: volume size 15M is out of range; must be 16M to 16T"},
		{"zero.toml", head + "[volume]\nsize = 0\n", "zero.toml:4:1: volume.size: volume size 0 bytes is out of range"},
		{"huge.toml", head + "[volume]\nsize = \"17T\"\n", "huge.toml:4:1: volume.size: volume size 17T is out of range"},
		{"bad.toml", head + "[volume]\nsize = \"1 G\"\n", `bad.toml:4:1: volume.size: invalid size "1 G"`},
		{"neg.toml", head + "[volume]\nsize = -1\n", "neg.toml:4:1: volume.size: -1 is negative"},
		{"-x.toml", head, `invalid volume name "-x"`},
		{"db.toml", head + "[container]\nrootfs = \"/r\"\n", "db.toml:3:2: container: [container] does not belong in a volume file"},
		{"db.toml", "version = 1\nkind = \"network\"\n[network]\nsubnet4 = \"10.78.0.0/24\"\n", `a volume file must have kind = "volume", not "network"`},
		{"db.toml", head + "[volume]\nlabels = { a = \"x\\ny\" }\n", "volume.labels.a"},
	} {
		if _, err := ParseVolumeFile(tc.file, []byte(tc.data), ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: error %v, want %q", tc.file, tc.data, err, tc.want)
		}
	}
}

// TestVolumeNames: Docker's rule, one path component, never a way out of
// the store.
func TestVolumeNames(t *testing.T) {
	for _, ok := range []string{"data", "My_vol.1", "a-", "0.", strings.Repeat("v", MaxVolumeNameLen)} {
		if err := ValidVolumeName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "x", "..", ".data", "_a", "-a", "a/b", "../etc", "a b", "a:b", "é1", "a\x00b", strings.Repeat("v", MaxVolumeNameLen+1)} {
		if err := ValidVolumeName(bad); err == nil {
			t.Errorf("%q is accepted", bad)
		}
	}
}

// TestVolumeFlag: cove run's -v takes a volume's name as Docker does; a
// bad name is refused by validation, naming the mount.
func TestVolumeFlag(t *testing.T) {
	s := Defaults("web")
	s.Container.Rootfs, s.Container.Command = "/r", []string{"/bin/true"}
	for _, v := range []string{"data:/data:ro", "/srv/www:/www"} {
		if err := s.SetFlag("v", v); err != nil {
			t.Fatalf("-v %s: %v", v, err)
		}
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	want := []Mount{{Type: MountVolume, Source: "data", Target: "/data", ReadOnly: true}, {Type: MountBind, Source: "/srv/www", Target: "/www"}}
	if len(s.Container.Mounts) != 2 || s.Container.Mounts[0] != want[0] || s.Container.Mounts[1] != want[1] {
		t.Errorf("mounts %+v, want %+v", s.Container.Mounts, want)
	}
	if err := s.SetFlag("volume", "../etc:/e"); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `container.mount[3].source: invalid volume name "../etc"`) {
		t.Errorf("-v ../etc:/e: %v", err)
	}
}

// TestMountableTarget: a mount's target is clean and absolute, not "/"
// and in none of the directories cove mounts itself.
func TestMountableTarget(t *testing.T) {
	for target, want := range map[string]bool{"/data": true, "/var/lib/db": true, "/procfs": true, "/": false, "/proc": false,
		"/dev/shm": false, "/data/": false, "data": false, "/a/../b": false, "": false} {
		if got := MountableTarget(target); got != want {
			t.Errorf("MountableTarget(%q) = %v, want %v", target, got, want)
		}
	}
}
