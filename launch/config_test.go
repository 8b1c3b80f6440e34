package launch

import (
	"reflect"
	"testing"
	"time"

	"github.com/cove-project/cove/spec"
)

// TestArgsRoundTrip checks that ParseArgs reads back what Args writes,
// including awkward values.
func TestArgsRoundTrip(t *testing.T) {
	c := Config{
		Name: "web", Rootfs: "/srv/root fs", Argv: []string{"/bin/sh", "-c", "echo --rootfs; exit 3", "--"},
		Env: []string{"A=b=c", "EMPTY="}, Workdir: "/tmp", UID: 1000, GID: 100, Hostname: "web",
		PrivateNetwork: true, Caps: []string{"CAP_CHOWN", "CAP_KILL"}, Seccomp: true, NoNewPrivs: false,
		Ready: spec.ReadyHealthy, ReadyPort: 0, Probe: []string{"/bin/sh", "-c", "test -e /ok"},
		ProbeInterval: 250 * time.Millisecond, ProbeTimeout: 2 * time.Second,
		ReadOnly: true, Volatile: true, Mounts: []spec.Mount{
			{Type: spec.MountBind, Source: "/srv/a \"b\",c:d", Target: "/data", ReadOnly: true},
			{Type: spec.MountTmpfs, Target: "/tmp", Size: 1 << 20},
		},
	}
	got, err := ParseArgs(c.Args())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
	}
}

// TestParseArgsErrors checks that malformed launcher arguments are refused.
func TestParseArgsErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--rootfs", "rel", "--", "x"},
		{"--rootfs", "/r"},
		{"--rootfs", "/r", "--user", "x", "--", "x"},
		{"--rootfs", "/r", "--caps", "CAP_FLY", "--", "x"},
		{"--rootfs", "/r", "--env", "NOEQUALS", "--", "x"},
		{"--bogus", "--", "x"},
		{"--rootfs", "/r", "--mount", `{"type":"bind","target":"/a"}`, "--", "x"},
		{"--rootfs", "/r", "--mount", `{"type":"tmpfs","target":"/"}`, "--", "x"},
		{"--rootfs", "/r", "--mount", `{"type":"overlay","target":"/a"}`, "--", "x"},
		{"--rootfs", "/r", "--mount", `{"type":"tmpfs","target":"/a","mode":"0777"}`, "--", "x"},
		{"--rootfs", "/r", "--mount", `not json`, "--", "x"},
	} {
		if _, err := ParseArgs(args); err == nil {
			t.Errorf("ParseArgs(%q) succeeded", args)
		}
	}
}

// TestCapSet checks the default bounding set and the add/drop arithmetic.
func TestCapSet(t *testing.T) {
	got := CapSet([]string{"net_admin", "CAP_SYS_TIME"}, []string{"NET_RAW", "cap_mknod"})
	has := map[string]bool{}
	for _, c := range got {
		has[c] = true
	}
	for _, c := range []string{"CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_CHOWN", "CAP_SETUID"} {
		if !has[c] {
			t.Errorf("CapSet lacks %s: %v", c, got)
		}
	}
	for _, c := range []string{"CAP_NET_RAW", "CAP_MKNOD", "CAP_SYS_ADMIN", "CAP_SYS_MODULE"} {
		if has[c] {
			t.Errorf("CapSet has %s: %v", c, got)
		}
	}
}

// TestCapNumbers checks a few numbers against the kernel's.
func TestCapNumbers(t *testing.T) {
	for name, want := range map[string]int{"CAP_CHOWN": 0, "net_admin": 12, "CAP_SYS_ADMIN": 21, "checkpoint_restore": 40} {
		if got, ok := CapNumber(name); !ok || got != want {
			t.Errorf("CapNumber(%s) = %d, %v; want %d", name, got, ok, want)
		}
	}
}
