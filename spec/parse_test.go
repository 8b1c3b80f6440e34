package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// minimal is the smallest valid spec. Malformed specs are data files in
// testdata/bad (see TestBadSpecs).
const minimal = `version = 1
kind = "container"
[container]
rootfs = "/r"
command = ["/bin/true"]
`

func TestParseFull(t *testing.T) {
	want := &Spec{
		Name:        "web",
		File:        "testdata/web.toml",
		Version:     1,
		Kind:        KindContainer,
		Description: "static web server",
		Container: &Container{
			Rootfs:   "/var/lib/cove/rootfs/busybox",
			Command:  []string{"/bin/httpd", "-f", "-p", "8080"},
			Env:      map[string]string{"TZ": "UTC", "GREETING": `50% off $today "quoted"`},
			Workdir:  "/srv/www",
			User:     User{UID: 1000, GID: 1000, Set: true},
			Hostname: "web",
			Network:  NetworkNone,
			ReadOnly: true,
			Mounts: []Mount{
				{Type: MountBind, Source: "/srv/www", Target: "/srv/www", ReadOnly: true},
				{Type: MountTmpfs, Target: "/tmp", Size: 64 << 20},
			},
		},
		Resources: Resources{Memory: 256 << 20, CPUs: 0.5, Pids: 128},
		Service:   Service{Restart: RestartOnFailure, RestartDelay: 2 * time.Second, StopTimeout: 30 * time.Second, Ready: ReadyStarted},
		Security: Security{
			CapAdd:             []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"},
			CapDrop:            []string{"CAP_NET_RAW"},
			Seccomp:            SeccompUnconfined,
			AllowNewPrivileges: true,
		},
	}
	got, err := Load("testdata/web.toml", "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %#v\nwant %#v\n got container %#v\nwant container %#v", got, want, got.Container, want.Container)
	}
}

func TestParseDefaults(t *testing.T) {
	want := &Spec{
		Name:      "app",
		File:      "/etc/cove/app.toml",
		Version:   1,
		Kind:      KindContainer,
		Container: &Container{Rootfs: "/r", Command: []string{"/bin/true"}, Workdir: "/", Hostname: "app", Network: NetworkHost},
		Service:   Service{Restart: RestartNo, RestartDelay: time.Second, StopTimeout: 10 * time.Second, Ready: ReadyStarted},
		Security:  Security{Seccomp: SeccompDefault},
	}
	got, err := Parse("/etc/cove/app.toml", []byte(minimal), "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}

	// An explicit name wins over the file name; the default hostname is
	// derived from it.
	got, err = Parse("/etc/cove/app.toml", []byte(minimal), "my_db.v2-")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "my_db.v2-" || got.Container.Hostname != "my-db.v2" {
		t.Errorf("name %q hostname %q, want my_db.v2- and my-db.v2", got.Name, got.Container.Hostname)
	}
}

func TestParseLayouts(t *testing.T) {
	// Equivalent ways of writing the same spec.
	for _, src := range []string{
		minimal + "env = { TZ = \"UTC\" }\n",
		minimal + "env.TZ = \"UTC\"\n",
		minimal + "[container.env]\nTZ = 'UTC'\n",
		"version = 1\nkind = \"container\"\ncontainer.rootfs = \"/r\"\ncontainer.command = [\"/bin/true\"]\ncontainer.env.\"TZ\" = \"UTC\"\n",
		"\ufeffversion = 1\r\nkind = \"container\"\r\ncontainer = { rootfs = \"/r\", command = [\r\n  \"/bin/true\", # comment\r\n], env = { TZ = \"UTC\" } }\r\n",
	} {
		s, err := Parse("t.toml", []byte(src), "")
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if want := map[string]string{"TZ": "UTC"}; !reflect.DeepEqual(s.Container.Env, want) {
			t.Errorf("%q: env %v, want %v", src, s.Container.Env, want)
		}
	}
}

// TestParseNameArgument: a bad name passed to Parse (not taken from the
// file name; those cases are in testdata/bad) is the only error, without a
// position. Parse with no file and no name has no name to take.
func TestParseNameArgument(t *testing.T) {
	const rules = "names must start with a lowercase letter or digit, contain only a-z, 0-9, '_', '.' and '-', and be at most 64 characters"
	long := strings.Repeat("a", 65)
	for _, tt := range []struct{ file, name, want string }{
		{"t.toml", "../x", `t.toml: name: invalid workload name "../x": ` + rules},
		{"t.toml", "a b", `t.toml: name: invalid workload name "a b": ` + rules},
		{"t.toml", "UPPER", `t.toml: name: invalid workload name "UPPER": ` + rules},
		{"t.toml", long, `t.toml: name: invalid workload name "` + long + `": 65 characters is too long; ` + rules},
		{"", "", "name: workload name is empty; " + rules},
	} {
		s, err := Parse(tt.file, []byte(minimal), tt.name)
		var errs Errors
		if s != nil || !errors.As(err, &errs) || len(errs) != 1 || err.Error() != tt.want {
			t.Errorf("Parse(%q, minimal, %q) = %v, %v\nwant the one error %s", tt.file, tt.name, s, err, tt.want)
		}
	}
}

func TestValidateFlagBuilt(t *testing.T) {
	s := Defaults("web")
	s.Container.Rootfs = "/var/lib/cove/rootfs/busybox"
	s.Container.Command = []string{"/bin/httpd", "-f"}
	s.Security.CapAdd = []string{"net_admin"}
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	s.Container.Rootfs = "rootfs/"
	s.Container.Workdir = "/srv/"
	s.Container.Command = nil
	s.Resources.CPUs = 2000
	s.Security.Seccomp = ""
	err := s.Validate()
	want := `container.rootfs: "rootfs/" is not absolute; must be an absolute path such as /var/lib/cove/rootfs/NAME
container.command: missing or empty; required, an array of strings such as ["/bin/sh", "-c", "echo hi"]
container.workdir: "/srv/" is not clean; write it as "/srv"
resources.cpus: 2000 is out of range; must be a number > 0 and <= 1024, such as 0.5 or 2`
	if err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant\n%s", err, want)
	}
}

// TestValidNameOK: valid names pass; invalid ones, cove's own, and those
// whose unit would be another workload's health check, image pull or
// port proxy (web-health, web-pull, web-proxy-8080, web-proxy-udp-53) are
// refused.
func TestValidNameOK(t *testing.T) {
	for _, n := range []string{"a", "0", "web", "web-1", "my_db.v2", strings.Repeat("x", 64), "health", "pull", "web-proxy", "web-proxy-x", "web-proxy-udp-x", "web-proxy-tcp-80", "web-healthy", "puller"} {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q): %v", n, err)
		}
	}
	for _, n := range []string{"", "-a", ".a", "_a", "A", "a/b", "a b", "é", strings.Repeat("x", 65), "cove", "registries", "api", "auto-update",
		"web-health", "web-pull", "web-proxy-8080", "a-b-proxy-1", "web-proxy-udp-53"} {
		var e *Error
		if err := ValidName(n); !errors.As(err, &e) || e.Key != "name" {
			t.Errorf("ValidName(%q) = %v, want *Error for key name", n, err)
		}
	}
}

func TestDefaultHostname(t *testing.T) {
	for name, want := range map[string]string{
		"web":                          "web",
		"my_app":                       "my-app",
		"a..b-":                        "a.b",
		"a._b":                         "a.b",
		strings.Repeat("x", 64):        strings.Repeat("x", 63),
		"x." + strings.Repeat("y", 62): "x." + strings.Repeat("y", 62),
	} {
		if got := DefaultHostname(name); got != want {
			t.Errorf("DefaultHostname(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]uint64{
		"1048576": 1 << 20, "1M": 1 << 20, "1m": 1 << 20, "1MiB": 1 << 20, "256K": 256 << 10,
		"1.5G": 3 << 29, "2g": 2 << 30, "1T": 1 << 40, "1TiB": 1 << 40, "0.5k": 512, "16777215T": 16777215 << 40,
	} {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "M", "1.5", "1e3", "-1M", "1 M", "1MB", "1.M", ".5M", "1.5.5G", "16777216T", "99999999999999999999"} {
		if got, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) = %d, want error", s, got)
		}
	}
}

func TestNormalizeCapability(t *testing.T) {
	for in, want := range map[string]string{
		"net_admin": "CAP_NET_ADMIN", "CAP_SYS_ADMIN": "CAP_SYS_ADMIN", "cap_Checkpoint_Restore": "CAP_CHECKPOINT_RESTORE", "chown": "CAP_CHOWN",
	} {
		if got, err := NormalizeCapability(in); err != nil || got != want {
			t.Errorf("NormalizeCapability(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "CAP_", "fly", "ALL", " net_admin", "ſys_admin"} {
		if got, err := NormalizeCapability(in); err == nil {
			t.Errorf("NormalizeCapability(%q) = %q, want error", in, got)
		}
	}
	if n := len(Capabilities()); n != 41 {
		t.Errorf("%d capabilities, want 41", n)
	}
}

func TestKeyPositions(t *testing.T) {
	src := "a = 1 # x = 2\n" +
		"s = \"\"\"\nfake = 1\n\"\"\"\n" +
		"l = '''\n[fake]\n'''\n" +
		"arr = [\n  { in_array = 1 },\n  \"]\",\n]\n" +
		"[ t . \"q.k\" ]\n" +
		"  k = { x = 1, y.z = \"}\" }\n" +
		"[[aot]]\nm = 1\n"
	got, limit := keyPositions([]byte(src))
	if limit != nil {
		t.Errorf("limit %v", limit)
	}
	want := map[string]position{
		"a": {1, 1}, "s": {2, 1}, "l": {5, 1}, "arr": {8, 1}, "arr[1]": {9, 3}, "arr[1].in_array": {9, 5}, "arr[2]": {10, 3},
		"t": {12, 3}, `t."q.k"`: {12, 7}, `t."q.k".k`: {13, 3}, `t."q.k".k.x`: {13, 9},
		`t."q.k".k.y`: {13, 16}, `t."q.k".k.y.z`: {13, 18}, "aot": {14, 3}, "aot[1]": {14, 3}, "aot[1].m": {15, 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keyPositions:\n got %v\nwant %v", got, want)
	}
}

func TestParseLimits(t *testing.T) {
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := Parse("t.toml", []byte(minimal+"x = "+deep+"\n"), ""); err == nil || !strings.Contains(err.Error(), "unknown key \"x\"") {
		t.Errorf("nesting %d: got %v, want only unknown key x", maxDepth, err)
	}
	for src, want := range map[string]string{
		minimal + "x = " + "[" + deep + "]\n":                                  "t.toml:6:", // exact column checked below
		"a = " + strings.Repeat("{b=", 5000) + "1" + strings.Repeat("}", 5000): "t.toml:1:",
		strings.Repeat("a.", 20000) + "a = 1\n":                                "t.toml:1:33: key has more than 16 dotted parts",
		"[" + strings.Repeat("a.", 20000) + "a]\n":                             "t.toml:1:34: key has more than 16 dotted parts",
	} {
		start := time.Now()
		_, err := Parse("t.toml", []byte(src), "")
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%.40q...: got %v, want prefix %q", src, err, want)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%.40q...: took %v", src, d)
		}
	}
	_, err := Parse("t.toml", []byte(minimal+"x = ["+deep+"]\n"), "")
	if want := fmt.Sprintf("t.toml:6:%d: arrays and inline tables are nested more than 32 levels deep", 5+maxDepth); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestLoadMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Load(p, "")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "create the file") {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(p, []byte(minimal+strings.Repeat("#", MaxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, ""); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("Load(big) = %v, want too large", err)
	}
}

func FuzzParse(f *testing.F) {
	var files []string
	for _, name := range []string{"web.toml", "vm.toml", "app.toml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, string(data))
	}
	for _, seed := range append(files,
		minimal,
		minimal+"env = { TZ = \"UTC\", \"1X\" = 2 }\n[resources]\nmemory = \"1.5G\"\ncpus = 0.25\n",
		"version = 1\nkind = \"vm\"\ncontainer.rootfs = '/x'\n[[container]]\n",
		"a = \"\"\"\n\\\"\"\"\"\n[b]\nc = [[1], {d = 'e'}]\n",
		"x = \"unterminated\n",
		"\ufeff[a.\"b\".'c']\nd.e = 1979-05-27T07:32:00Z\n",
		vmMinimal+"machine = \"q35\"\ndisk = [{ path = \"/a\", boot = true }, { path = \"b\" }, 1]\nnetwork = { mode = \"user\", forward = [\"2222:22/udp\"] }\n[service]\nready = \"tcp:2222\"\n",
		"version = 1\nkind = \"vm\"\n[[vm.disk]]\npath = \"/d\"\n[vm.disk.x]\n[[vm.disk]]\nboot = 1\n[health]\n",
	) {
		f.Add([]byte(seed), "")
	}
	f.Add([]byte(minimal), "../x")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		s, err := Parse("f.toml", data, name)
		if err == nil {
			if s == nil {
				t.Fatal("nil spec without error")
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("parsed spec does not validate: %v", err)
			}
			return
		}
		var errs Errors
		if s != nil || !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("Parse = %v, %T %v", s, err, err)
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, e := range errs {
			if e.Msg == "" || strings.Contains(e.Error(), "\n") || e.Line < 0 || e.Line > lines || e.Col < 0 || e.Line == 0 && e.Col != 0 {
				t.Fatalf("bad error %#v", e)
			}
		}
	})
}

// TestNotifyMountsAllowed: a tmpfs at /run, or any mount without ready =
// "notify", may be where the notify socket would go.
func TestNotifyMountsAllowed(t *testing.T) {
	for _, src := range []string{
		minimal + "[[container.mount]]\ntype = \"tmpfs\"\ntarget = \"/run\"\n[service]\nready = \"notify\"\n",
		minimal + "[[container.mount]]\nsource = \"/srv/run\"\ntarget = \"/run\"\n",
		minimal + "[[container.mount]]\nsource = \"/srv/run\"\ntarget = \"/run/notify\"\n",
	} {
		if _, err := Parse("t.toml", []byte(src), "t"); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}

func TestParseVolumeAndTmpfs(t *testing.T) {
	for _, tc := range []struct {
		parse func(string) (Mount, error)
		in    string
		want  Mount
		err   string
	}{
		{ParseVolume, "/srv/data:/data", Mount{Type: MountBind, Source: "/srv/data", Target: "/data"}, ""},
		{ParseVolume, "/srv/data/:/data:ro", Mount{Type: MountBind, Source: "/srv/data", Target: "/data", ReadOnly: true}, ""},
		{ParseVolume, "/srv/data:/data:rw", Mount{Type: MountBind, Source: "/srv/data", Target: "/data"}, ""},
		{ParseVolume, "data:/data", Mount{Type: MountVolume, Source: "data", Target: "/data"}, ""},
		{ParseVolume, "My_vol.1:/var/lib/db/:ro", Mount{Type: MountVolume, Source: "My_vol.1", Target: "/var/lib/db", ReadOnly: true}, ""},
		{ParseVolume, "./data:/data", Mount{Type: MountVolume, Source: "./data", Target: "/data"}, ""}, // Validate refuses the name
		{ParseVolume, "data", Mount{}, "no anonymous volumes"},
		{ParseVolume, "/a:/b:z", Mount{}, `mode "z" is not ro or rw`},
		{ParseVolume, "/a", Mount{}, "want SOURCE:TARGET"},
		{ParseVolume, "/a:/b:ro:x", Mount{}, "want SOURCE:TARGET"},
		{ParseTmpfs, "/tmp", Mount{Type: MountTmpfs, Target: "/tmp"}, ""},
		{ParseTmpfs, "/run:size=64M,ro", Mount{Type: MountTmpfs, Target: "/run", Size: 64 << 20, ReadOnly: true}, ""},
		{ParseTmpfs, "/run:size=lots", Mount{}, `invalid size "lots"`},
		{ParseTmpfs, "/run:exec", Mount{}, `unknown option "exec"`},
	} {
		got, err := tc.parse(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.err)
		}
	}
}

func TestStopSignal(t *testing.T) {
	base := "version = 1\nkind = \"container\"\n[container]\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\n[service]\n"
	s, err := Parse("s.toml", []byte(base+"stop_signal = \"quit\"\n"), "web")
	if err != nil || s.Service.StopSignal != "quit" {
		t.Fatalf("stop_signal quit: %v", err)
	}
	if _, err := Parse("s.toml", []byte(base+"stop_signal = \"SIGNOPE\"\n"), "web"); err == nil || !strings.Contains(err.Error(), `s.toml:7:1: service.stop_signal: "SIGNOPE" is not a signal`) {
		t.Errorf("stop_signal SIGNOPE: %v", err)
	}
	for in, want := range map[string]int{"SIGQUIT": 3, "term": 15, "9": 9, "RTMIN+3": 37, "RTMAX-1": 63, "IOT": 6} {
		if n, err := ParseSignal(in); n != want || err != nil {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
	for n, want := range map[int]string{3: "SIGQUIT", 6: "SIGABRT", 34: "SIGRTMIN", 37: "SIGRTMIN+3", 99: "signal 99"} {
		if got := SignalName(n); got != want {
			t.Errorf("SignalName(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestInit: service.init is read from a file and set by cove run's --init,
// and refused for a VM.
func TestInit(t *testing.T) {
	base := "version = 1\nkind = \"container\"\n[container]\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\n[service]\n"
	s, err := Parse("s.toml", []byte(base+"init = true\n"), "web")
	if err != nil || !s.Service.Init {
		t.Fatalf("init = true: Init %v, %v", s != nil && s.Service.Init, err)
	}
	if _, err := Parse("s.toml", []byte(base+"init = \"yes\"\n"), "web"); err == nil || !strings.Contains(err.Error(), "service.init") {
		t.Errorf(`init = "yes": %v`, err)
	}
	d := Defaults("web")
	if d.Service.Init {
		t.Error("init is on by default")
	}
	if err := d.SetFlag("init", "true"); err != nil || !d.Service.Init {
		t.Errorf("--init: Init %v, %v", d.Service.Init, err)
	}
	vm := "version = 1\nkind = \"vm\"\n[vm]\nkernel = \"/k\"\n[service]\ninit = true\n"
	if _, err := Parse("v.toml", []byte(vm), "v"); err == nil || !strings.Contains(err.Error(), `service.init: init = true applies to kind "container" only`) {
		t.Errorf("init for a VM: %v", err)
	}
}
