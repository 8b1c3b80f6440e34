package launch

import (
	"net/netip"
	"strings"

	"reflect"
	"testing"
	"time"

	"github.com/cove-project/cove/internal/network/plan"

	"github.com/cove-project/cove/spec"
)

// TestArgsRoundTrip checks that ParseArgs reads back what Args writes,
// including awkward values.
func TestArgsRoundTrip(t *testing.T) {
	c := Config{
		Name: "web", Rootfs: "/srv/root fs", Argv: []string{"/bin/sh", "-c", "echo --rootfs; exit 3", "--"},
		Env: []string{"A=b=c", "EMPTY="}, Workdir: "/tmp", UID: 1000, GID: 100, Hostname: "web",
		PrivateNetwork: true, Network: "cove", MoreNetworks: []string{"back", "metrics"}, Aliases: []string{"db", "primary.db"}, IP: netip.MustParseAddr("10.77.0.9"),
		Ports: []plan.Port{{HostPort: 8080, ContainerPort: 80, Proto: plan.TCP}, {HostAddr: netip.MustParseAddr("2001:db8::10"), HostPort: 5353, ContainerPort: 53, Proto: plan.UDP}},
		Caps:  []string{"CAP_CHOWN", "CAP_KILL"}, Seccomp: true, NoNewPrivs: false,
		Ready: spec.ReadyHealthy, ReadyPort: 0, Probe: []string{"/bin/sh", "-c", "test -e /ok"},
		ProbeInterval: 250 * time.Millisecond, ProbeTimeout: 2 * time.Second,
		ReadOnly: true, Volatile: true, Init: true, UserNS: "1000000:65536", Mounts: []spec.Mount{
			{Type: spec.MountBind, Source: "/srv/a \"b\",c:d", Target: "/data", ReadOnly: true, Idmap: true},
			{Type: spec.MountTmpfs, Target: "/tmp", Size: 1 << 20},
			{Type: spec.MountVolume, Source: "pg_data.1", Target: "/var/lib/db", ReadOnly: true},
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

// TestNetworkOf: a container sharing another's network namespace reads
// back as it was written, may not have one of its own, and takes the
// other's resolv.conf unless it mounts its own (and none when the other
// has none).
func TestNetworkOf(t *testing.T) {
	c := Config{Name: "side", Rootfs: "/r", Argv: []string{"sleep", "1"}, Workdir: "/", Hostname: "side", NetworkOf: "web@2", Seccomp: true, NoNewPrivs: true,
		Ready: spec.ReadyStarted, ProbeInterval: time.Second, ProbeTimeout: 5 * time.Second}
	if got, err := ParseArgs(c.Args()); err != nil || !reflect.DeepEqual(got, c) {
		t.Errorf("round trip: %v\n got %+v\nwant %+v", err, got, c)
	}
	if _, err := ParseArgs(append([]string{"--network", "cove"}, c.Args()...)); err == nil || !strings.Contains(err.Error(), "--network-of web@2") {
		t.Errorf("--network-of with --network: %v", err)
	}
	resolv := spec.Mount{Type: spec.MountBind, Source: ResolvConf("cove"), Target: ResolvConfTarget, ReadOnly: true}
	own := spec.Mount{Type: spec.MountBind, Source: "/etc/my-resolv", Target: ResolvConfTarget}
	data := spec.Mount{Type: spec.MountTmpfs, Target: "/data"}
	web := Config{Mounts: []spec.Mount{data, resolv}}
	for _, tc := range []struct {
		name        string
		mine, other []spec.Mount
		want        []spec.Mount
	}{
		{"the other's", []spec.Mount{data}, web.Mounts, []spec.Mount{resolv, data}},
		{"its own", []spec.Mount{own}, web.Mounts, []spec.Mount{own}},
		{"none there", []spec.Mount{data}, []spec.Mount{data}, []spec.Mount{data}},
	} {
		got := Config{Mounts: tc.mine}.WithNetworkOf(Config{Mounts: tc.other}).Mounts
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: mounts %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestNetworkImpliesPrivate checks that --network gives the container
// its own network namespace even without --private-network.
func TestNetworkImpliesPrivate(t *testing.T) {
	c, err := ParseArgs([]string{"--rootfs", "/r", "--network", "cove", "--", "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.PrivateNetwork || c.Network != "cove" {
		t.Errorf("--network cove: PrivateNetwork %v, Network %q", c.PrivateNetwork, c.Network)
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
		{"--rootfs", "/r", "--mount", `{"type":"volume","source":"../../etc","target":"/a"}`, "--", "x"},
		{"--rootfs", "/r", "--mount", `{"type":"volume","target":"/a"}`, "--", "x"},
		{"--rootfs", "/r", "--userns", "pick", "--", "x"},
		{"--rootfs", "/r", "--userns", "0:65536", "--", "x"},
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

// TestImageArgsRoundTrip checks an image container's arguments, before and
// after the launcher has resolved the image.
func TestImageArgsRoundTrip(t *testing.T) {
	unit := Config{
		Name: "app", Argv: []string{"--port", "80"}, Hostname: "app", Caps: []string{"CAP_KILL"},
		Ready: spec.ReadyStarted, ProbeInterval: time.Second, ProbeTimeout: 5 * time.Second,
		Image: Image{Ref: "127.0.0.1:5000/app:1", StateDir: "/var/lib/cove/containers/app", Entrypoint: []string{}},
	}
	resolved := unit
	resolved.Argv, resolved.Workdir = []string{"/bin/app", "--port", "80"}, "/srv"
	resolved.Image.Digest, resolved.Image.Layers = "sha256:abc", []string{"/l/2", "/l/1"}
	resolved.Image.UserName = "www:www"
	numeric := resolved
	numeric.Image.UserName, numeric.Image.UserSet, numeric.UID, numeric.GID = "", true, 33, 44
	throwaway := numeric
	throwaway.Image.Throwaway = true
	for _, c := range []Config{unit, resolved, numeric, throwaway} {
		got, err := ParseArgs(c.Args())
		if err != nil {
			t.Fatalf("%q: %v", c.Args(), err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
		}
	}
	for _, bad := range [][]string{
		{"--image", "x", "--state-dir", "rel", "--"},
		{"--image", "x", "--rootfs", "/r", "--state-dir", "/s", "--", "a"},
		{"--image", "x", "--state-dir", "/s", "--layer", "/l", "--"},
		{"--image", "x", "--state-dir", "/s", "--layer", "rel", "--", "a"},
		{"--image", "x", "--state-dir", "/s", "--entrypoint", "not json", "--"},
	} {
		if _, err := ParseArgs(bad); err == nil {
			t.Errorf("ParseArgs(%q) succeeded", bad)
		}
	}
}

// TestWithImage checks Docker's rules for merging an image's configuration.
func TestWithImage(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"PATH=/img", "A=1"}, WorkingDir: "/w", User: "1000:1000"}
	base := Config{Image: Image{Ref: "r", StateDir: "/s"}}
	cases := []struct {
		name             string
		entry, argv, env []string
		workdir          string
		wantArgv, envOut []string
		wantDir          string
	}{
		{"image only", nil, nil, nil, "", []string{"/entry", "default"}, []string{"PATH=/img", "A=1"}, "/w"},
		{"command replaces cmd", nil, []string{"x"}, []string{"A=2", "B=3"}, "/mine", []string{"/entry", "x"}, []string{"PATH=/img", "A=2", "B=3"}, "/mine"},
		{"entrypoint drops cmd", []string{"/sh"}, nil, nil, "", []string{"/sh"}, []string{"PATH=/img", "A=1"}, "/w"},
		{"empty entrypoint", []string{}, []string{"/bin/true"}, nil, "", []string{"/bin/true"}, []string{"PATH=/img", "A=1"}, "/w"},
	}
	for _, tc := range cases {
		c := base
		c.Image.Entrypoint, c.Argv, c.Env, c.Workdir = tc.entry, tc.argv, tc.env, tc.workdir
		got, err := c.WithImage(img, "sha256:d", []string{"/l"})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(got.Argv, tc.wantArgv) || !reflect.DeepEqual(got.Env, tc.envOut) || got.Workdir != tc.wantDir {
			t.Errorf("%s: argv %q env %q workdir %q", tc.name, got.Argv, got.Env, got.Workdir)
		}
		if !got.Image.UserSet || got.UID != 1000 || got.GID != 1000 {
			t.Errorf("%s: user %+v %d:%d, want the image's 1000:1000", tc.name, got.Image, got.UID, got.GID)
		}
	}
	if _, err := base.WithImage(ImageConfig{}, "d", []string{"/l"}); err == nil {
		t.Error("an image with no command and a spec with none was accepted")
	}
	named, _ := base.WithImage(ImageConfig{Cmd: []string{"x"}, User: "nginx"}, "d", []string{"/l"})
	if named.Image.UserName != "nginx" || named.Workdir != "/" {
		t.Errorf("named user: %+v workdir %q", named.Image, named.Workdir)
	}
}

// TestForInstance: an instance of a replicated workload gets its own
// name, default hostname and state directory; a set hostname stays, and
// a name that is not an instance of the workload changes nothing.
func TestForInstance(t *testing.T) {
	c := Config{Name: "web", Hostname: "web", Image: Image{Ref: "r", StateDir: ContainerDir("web")}}
	got := c.ForInstance("web@2")
	if got.Name != "web@2" || got.Hostname != "web-2" || got.Image.StateDir != ContainerDir("web@2") {
		t.Errorf("web@2: %+v", got)
	}
	c.Hostname = "front"
	if got := c.ForInstance("web@2"); got.Hostname != "front" {
		t.Errorf("a set hostname became %q", got.Hostname)
	}
	for _, other := range []string{"web", "db@2", "web@0", "web@x"} {
		if got := c.ForInstance(other); got.Name != "web" || got.Image.StateDir != ContainerDir("web") {
			t.Errorf("%s changed the config: %+v", other, got)
		}
	}
}
