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

// minimal is the smallest valid spec; the malformed cases below extend it
// from line 6 on.
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
			User:     User{UID: 1000, GID: 1000},
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

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("a", 65)
	tests := []struct {
		name   string // test name
		src    string
		arg    string // name argument
		file   string // default "t.toml"
		prefix string // exact start of the (first) error
		msg    string // substring of the error
	}{
		{"unknown top-level key", "version = 1\nkind = \"container\"\nnmae = \"x\"\n[container]\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\n", "", "",
			"t.toml:3:1: nmae: ", `unknown key "nmae" at the top level; allowed: version, kind, description, container, vm, resources, service, security, depends, health, install`},
		{"unknown container key", minimal + "rootfz = \"/x\"\n", "", "",
			"t.toml:6:1: container.rootfz: ", `unknown key "rootfz" in [container]; allowed: rootfs, command, env`},
		{"mount not an array", minimal + "mount = \"/a:/b\"\n", "", "",
			"t.toml:6:1: container.mount: ", `must be an array of tables ([[container.mount]] sections, or mount = [{ source = "/srv/data", target = "/data" }]), not a string`},
		{"mount element not a table", minimal + "mount = [\"/a:/b\"]\n", "", "",
			"t.toml:6:10: container.mount[1]: ", `mount 1 must be a table such as { source = "/srv/data", target = "/data" }, not a string`},
		{"mount unknown key", minimal + "[[container.mount]]\nsource = \"/a\"\ntarget = \"/b\"\nro = true\n", "", "",
			"t.toml:9:1: container.mount[1].ro: ", `unknown key "ro" in [[container.mount]]; allowed: type, source, target, read_only, size`},
		{"mount bad type", minimal + "[[container.mount]]\ntype = \"volume\"\ntarget = \"/b\"\n", "", "",
			"t.toml:7:1: container.mount[1].type: ", `invalid type "volume"; allowed: "bind" (the default), "tmpfs"`},
		{"bind without source", minimal + "[[container.mount]]\ntarget = \"/b\"\n", "", "",
			"t.toml:6:13: container.mount[1].source: ", "missing; required, an absolute path such as /srv/data"},
		{"bind relative source", minimal + "[[container.mount]]\nsource = \"data\"\ntarget = \"/b\"\n", "", "",
			"t.toml:7:1: container.mount[1].source: ", `"data" is not absolute`},
		{"bind with size", minimal + "[[container.mount]]\nsource = \"/a\"\ntarget = \"/b\"\nsize = \"1M\"\n", "", "",
			"t.toml:9:1: container.mount[1].size: ", `only a mount of type "tmpfs" has a size`},
		{"tmpfs with source", minimal + "[[container.mount]]\ntype = \"tmpfs\"\nsource = \"/a\"\ntarget = \"/b\"\n", "", "",
			"t.toml:8:1: container.mount[1].source: ", "a tmpfs has no source"},
		{"tmpfs bad size", minimal + "[[container.mount]]\ntype = \"tmpfs\"\ntarget = \"/b\"\nsize = \"lots\"\n", "", "",
			"t.toml:9:1: container.mount[1].size: ", `invalid size "lots"`},
		{"mount on root", minimal + "[[container.mount]]\nsource = \"/a\"\ntarget = \"/\"\n", "", "",
			"t.toml:8:1: container.mount[1].target: ", `must not be "/"`},
		{"mount in proc", minimal + "[[container.mount]]\nsource = \"/a\"\ntarget = \"/proc/sys\"\n", "", "",
			"t.toml:8:1: container.mount[1].target: ", `"/proc/sys" is in /proc, which cove mounts itself`},
		{"mount target twice", minimal + "[[container.mount]]\nsource = \"/a\"\ntarget = \"/b\"\n[[container.mount]]\ntype = \"tmpfs\"\ntarget = \"/b/\"\n", "", "",
			"t.toml:11:1: container.mount[2].target: ", `"/b" is already the target of mount 1`},
		{"mount over the notify socket", minimal + "[[container.mount]]\ntype = \"tmpfs\"\ntarget = \"/run/notify\"\n[service]\nready = \"notify\"\n", "", "",
			"t.toml:8:1: container.mount[1].target: ", `"/run/notify" would cover /run/notify, where cove puts the notify socket`},
		{"read-only tmpfs above the notify socket", minimal + "[[container.mount]]\ntype = \"tmpfs\"\ntarget = \"/run\"\nread_only = true\n[service]\nready = \"notify\"\n", "", "",
			"t.toml:8:1: container.mount[1].target: ", `a read-only mount at "/run" leaves no room for /run/notify`},
		{"bind above the notify socket", minimal + "[[container.mount]]\nsource = \"/srv/run\"\ntarget = \"/run\"\n[service]\nready = \"notify\"\n", "", "",
			"t.toml:8:1: container.mount[1].target: ", `a bind mount at "/run" would get cove's /run/notify directory in /srv/run`},
		{"volatile and read_only", minimal + "read_only = true\nvolatile = true\n", "", "",
			"t.toml:7:1: container.volatile: ", "read_only and volatile exclude each other"},
		{"read_only string", minimal + "read_only = \"yes\"\n", "", "",
			"t.toml:6:1: container.read_only: ", "must be a boolean"},
		{"unknown table", minimal + "[volumes]\nx = 1\n", "", "",
			"t.toml:6:2: volumes: ", `unknown table "volumes" at the top level`},
		{"unknown inline key", minimal + "  [service]\n  restart = \"no\"\n  retries = 3\n", "", "",
			"t.toml:8:3: service.retries: ", `unknown key "retries" in [service]; allowed: restart, restart_delay, stop_timeout`},
		{"command string", strings.Replace(minimal, `["/bin/true"]`, `"/bin/true"`, 1), "", "",
			"t.toml:5:1: container.command: ", "must be an array of strings such as"},
		{"command element int", strings.Replace(minimal, `["/bin/true"]`, `["/bin/true", 1]`, 1), "", "",
			"t.toml:5:1: container.command: ", "element 2 must be a string, not an integer"},
		{"memory bool", minimal + "[resources]\nmemory = true\n", "", "",
			"t.toml:7:1: resources.memory: ", `must be a size string such as "256M" or an integer number of bytes, not a boolean`},
		{"cpus string", minimal + "[resources]\ncpus = \"2\"\n", "", "",
			"t.toml:7:1: resources.cpus: ", "must be a number such as 0.5 or 2, not a string"},
		{"cpus zero", minimal + "[resources]\ncpus = 0\n", "", "",
			"t.toml:7:1: resources.cpus: ", "out of range; must be a number > 0"},
		{"cpus too precise", minimal + "[resources]\ncpus = 0.333\n", "", "",
			"t.toml:7:1: resources.cpus: ", "multiple of 0.01"},
		{"cpus nan", minimal + "[resources]\ncpus = nan\n", "", "",
			"t.toml:7:1: resources.cpus: ", "out of range"},
		{"pids negative", minimal + "[resources]\npids = -1\n", "", "",
			"t.toml:7:1: resources.pids: ", "-1 is out of range; must be an integer >= 1"},
		{"env value int", minimal + "env = { TZ = 1 }\n", "", "",
			"t.toml:6:9: container.env.TZ: ", "must be a string, not an integer"},
		{"env bad name", minimal + "env = { TZ = \"UTC\", \"1X\" = \"a\" }\n", "", "",
			"t.toml:6:21: container.env.1X: ", "invalid environment variable name"},
		{"size 256X", minimal + "[resources]\nmemory = \"256X\"\n", "", "",
			"t.toml:7:1: resources.memory: ", `invalid size "256X"; use an integer number of bytes or a number with a 1024-based unit`},
		{"size -1M", minimal + "[resources]\nmemory = \"-1M\"\n", "", "",
			"t.toml:7:1: resources.memory: ", `invalid size "-1M"`},
		{"size 0", minimal + "[resources]\nmemory = \"0\"\n", "", "",
			"t.toml:7:1: resources.memory: ", `"0" is too small; at least 1M`},
		{"size 1.5.5G", minimal + "[resources]\nmemory = \"1.5.5G\"\n", "", "",
			"t.toml:7:1: resources.memory: ", `invalid size "1.5.5G"`},
		{"size integer too small", minimal + "[resources]\nmemory = 1000\n", "", "",
			"t.toml:7:1: resources.memory: ", `1000 is too small`},
		{"duration parsecs", minimal + "[service]\nrestart_delay = \"10 parsecs\"\n", "", "",
			"t.toml:7:1: service.restart_delay: ", `invalid duration "10 parsecs"; use Go duration syntax`},
		{"duration negative", minimal + "[service]\nrestart_delay = \"-1s\"\n", "", "",
			"t.toml:7:1: service.restart_delay: ", "-1s is out of range; must be >= 0s and <= 1h"},
		{"stop timeout zero", minimal + "[service]\nstop_timeout = \"0s\"\n", "", "",
			"t.toml:7:1: service.stop_timeout: ", "out of range; must be > 0s"},
		{"duration integer", minimal + "[service]\nstop_timeout = 10\n", "", "",
			"t.toml:7:1: service.stop_timeout: ", "must be a duration string"},
		{"name ../x", minimal, "../x", "",
			"t.toml: name: ", `invalid workload name "../x": names must start with a lowercase letter or digit`},
		{"name a b", minimal, "a b", "",
			"t.toml: name: ", `invalid workload name "a b"`},
		{"name empty", minimal, "", "-",
			"name: ", "workload name is empty; names must"},
		{"name UPPER", minimal, "UPPER", "",
			"t.toml: name: ", `invalid workload name "UPPER"`},
		{"name 65 chars", minimal, long, "",
			"t.toml: name: ", `invalid workload name "` + long + `": 65 characters is too long`},
		{"name from file", minimal, "", "/etc/cove/Web.toml",
			"/etc/cove/Web.toml: name: ", `invalid workload name "Web"`},
		{"name from file with space", minimal, "", "/etc/cove/a b.toml",
			"/etc/cove/a b.toml: name: ", `invalid workload name "a b": names must start with a lowercase letter or digit, contain only a-z, 0-9, '_', '.' and '-', and be at most 64 characters; the name is taken from the file name`},
		{"name from file -", minimal, "", "/x/-.toml",
			"/x/-.toml: name: ", `invalid workload name "-"`},
		{"relative rootfs", strings.Replace(minimal, `"/r"`, `"r/x"`, 1), "", "",
			"t.toml:4:1: container.rootfs: ", `"r/x" is not absolute; must be an absolute path`},
		{"rootfs dotdot", strings.Replace(minimal, `"/r"`, `"/r/../etc"`, 1), "", "",
			"t.toml:4:1: container.rootfs: ", `"/r/../etc" contains ".."`},
		{"rootfs missing", strings.Replace(minimal, "rootfs = \"/r\"\n", "", 1), "", "",
			"t.toml:3:2: container.rootfs: ", "missing; required, an absolute path"},
		{"relative workdir", minimal + "workdir = \"srv\"\n", "", "",
			"t.toml:6:1: container.workdir: ", `"srv" is not absolute`},
		{"newline in description", "version = 1\nkind = \"container\"\ndescription = \"a\\nExecStartPre=/bin/evil\"\n[container]\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\n", "", "",
			"t.toml:3:1: description: ", `must not contain control characters such as newlines (found '\n' at byte 1)`},
		{"CR in description", "version = 1\nkind = \"container\"\ndescription = \"a\\rb\"\n[container]\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\n", "", "",
			"t.toml:3:1: description: ", `found '\r'`},
		{"description too long", "version = 1\nkind = \"container\"\ndescription = \"" + strings.Repeat("é", 257) + "\"\n[container]\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\n", "", "",
			"t.toml:3:1: description: ", "too long (257 characters); at most 256"},
		{"newline in command", strings.Replace(minimal, `["/bin/true"]`, `["/bin/sh", "-c", "true\nExecStartPost=/bin/evil"]`, 1), "", "",
			"t.toml:5:1: container.command: ", "element 3: must not contain control characters"},
		{"NUL in command", strings.Replace(minimal, `["/bin/true"]`, `["/bin/true\u0000"]`, 1), "", "",
			"t.toml:5:1: container.command: ", `element 1: must not contain control characters such as newlines (found '\x00'`},
		{"newline in env", minimal + "env = { A = \"x\\ny\" }\n", "", "",
			"t.toml:6:9: container.env.A: ", "must not contain control characters"},
		{"duplicate key", minimal + "rootfs = \"/s\"\n", "", "",
			"t.toml:6:1: container.rootfs: ", "duplicate key: Key 'container.rootfs' has already been defined."},
		{"duplicate table", minimal + "[container]\n", "", "",
			"t.toml:6:2: ", "duplicate key: Key 'container' has already been defined."},
		{"empty command", strings.Replace(minimal, `["/bin/true"]`, `[]`, 1), "", "",
			"t.toml:5:1: container.command: ", "missing or empty; required"},
		{"command empty program", strings.Replace(minimal, `["/bin/true"]`, `[""]`, 1), "", "",
			"t.toml:5:1: container.command: ", "the first element (the program) must not be empty"},
		{"kind pod", strings.Replace(minimal, `"container"`, `"pod"`, 1), "", "",
			"t.toml:2:1: kind: ", `unknown kind "pod"; allowed: "container", "vm"`},
		{"kind vm with container", strings.Replace(minimal, `"container"`, `"vm"`, 1), "", "",
			"t.toml: vm: ", `missing [vm] table; required for kind "vm"`},
		{"kind int", strings.Replace(minimal, `"container"`, `1`, 1), "", "",
			"t.toml:2:1: kind: ", `must be a string, not an integer`},
		{"missing version", strings.Replace(minimal, "version = 1\n", "", 1), "", "",
			"t.toml: version: ", "missing; required: version = 1"},
		{"version 2", strings.Replace(minimal, "version = 1", "version = 2", 1), "", "",
			"t.toml:1:1: version: ", "unsupported version 2; allowed: 1"},
		{"version string", strings.Replace(minimal, "version = 1", `version = "1"`, 1), "", "",
			"t.toml:1:1: version: ", "must be an integer, not a string"},
		{"missing container", "version = 1\nkind = \"container\"\n", "", "",
			"t.toml: container: ", `missing [container] table; required for kind "container"`},
		{"container not a table", "version = 1\nkind = \"container\"\ncontainer = \"busybox\"\n", "", "",
			"t.toml:3:1: container: ", "must be a table ([container] or container = { ... }), not a string"},
		{"user root", minimal + "user = \"root\"\n", "", "",
			"t.toml:6:1: container.user: ", `invalid user "root"; must be numeric "UID:GID" or "UID" with IDs from 0 to 4294967294`},
		{"user 1000:x", minimal + "user = \"1000:x\"\n", "", "",
			"t.toml:6:1: container.user: ", `invalid user "1000:x"`},
		{"user max", minimal + "user = \"4294967295\"\n", "", "",
			"t.toml:6:1: container.user: ", `invalid user "4294967295"`},
		{"network bridge", minimal + "network = \"bridge\"\n", "", "",
			"t.toml:6:1: container.network: ", `invalid network "bridge"; allowed: "host", "none"`},
		{"restart sometimes", minimal + "[service]\nrestart = \"sometimes\"\n", "", "",
			"t.toml:7:1: service.restart: ", `invalid restart policy "sometimes"; allowed: "no", "on-failure", "always"`},
		{"hostname -x", minimal + "hostname = \"-x\"\n", "", "",
			"t.toml:6:1: container.hostname: ", `invalid hostname "-x"; a hostname is dot-separated labels`},
		{"cap fly", minimal + "[security]\ncap_add = [\"NET_ADMIN\", \"CAP_FLY\"]\n", "", "",
			"t.toml:7:1: security.cap_add: ", `unknown capability "CAP_FLY"; allowed: Linux capability names`},
		{"cap add and drop", minimal + "[security]\ncap_add = [\"NET_ADMIN\"]\ncap_drop = [\"cap_net_admin\"]\n", "", "",
			"t.toml:8:1: security.cap_drop: ", "CAP_NET_ADMIN is listed in both cap_add and cap_drop"},
		{"seccomp", minimal + "[security]\nseccomp = \"strict\"\n", "", "",
			"t.toml:7:1: security.seccomp: ", `invalid seccomp mode "strict"; allowed: "default", "unconfined"`},
		{"no_new_privileges string", minimal + "[security]\nno_new_privileges = \"yes\"\n", "", "",
			"t.toml:7:1: security.no_new_privileges: ", "must be a boolean (true or false), not a string"},
		{"unterminated string", minimal + "hostname = \"web\n", "", "",
			"t.toml:6:16: container.hostname: ", "invalid TOML: strings cannot contain newlines"},
		{"unterminated table name", minimal + "[service\nrestart = \"no\"\n", "", "",
			"t.toml:6:9: ", "invalid TOML: expected '.' or ']' to end table name"},
		{"bad escape in multi-line string", minimal + "hostname = \"\"\"\n\\q\"\"\"\n", "", "",
			"t.toml:7: container.hostname: ", "invalid TOML: invalid escape in string"},
		{"raw control character", minimal + "hostname = \"a\x01\"\n", "", "",
			"t.toml:6:14: ", "invalid TOML: control character U+0001 is not allowed"},
		{"lone carriage return", minimal + "hostname = \"a\"\r\r\n", "", "",
			"t.toml:6:15: ", "carriage return"},
		{"invalid UTF-8", minimal + "# \xff\n", "", "",
			"t.toml:6:3: ", "not valid UTF-8"},
		{"backslash newline in string", minimal + "hostname = \"a\\\n\"\n", "", "",
			"t.toml:", `invalid TOML: invalid escape in string '\\n'`},
		{"syntax error at line start", minimal + "workdir = \"/\"\n= 1\n", "", "",
			"t.toml:7:1: ", "invalid TOML"},
		{"after multi-line string", "version = 1\nkind = \"container\"\ndescription = \"\"\"\nfake = 1 \\\n\"\"\"\n[container]\nrootfs = \"/r\"\ncommand = [\n  \"/bin/true\",\n]\n  [container.env]\n  \"A B\" = \"x\"\n", "", "",
			`t.toml:12:3: container.env."A B": `, "invalid environment variable name"},
		{"dotted key", "version = 1\nkind = \"container\"\ncontainer.rootfs = \"r\"\ncontainer.command = [\"/x\"]\n", "", "",
			"t.toml:3:11: container.rootfs: ", "is not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			switch file {
			case "":
				file = "t.toml"
			case "-":
				file = ""
			}
			s, err := Parse(file, []byte(tt.src), tt.arg)
			if err == nil {
				t.Fatalf("no error; spec %+v", s)
			}
			if s != nil {
				t.Errorf("spec %+v returned with error", s)
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			if (tt.arg != "" || strings.HasPrefix(tt.name, "name")) && len(errs) != 1 {
				t.Errorf("bad name gives %d errors, want 1:\n%v", len(errs), err)
			}
			got := errs[0].Error()
			if !strings.HasPrefix(got, tt.prefix) || !strings.Contains(got, tt.msg) {
				t.Errorf("first error\n  %s\nwant prefix %q and substring %q\nall errors:\n%v", got, tt.prefix, tt.msg, err)
			}
		})
	}
}

func TestParseMultipleErrors(t *testing.T) {
	src := `version = 2
kind = "container"
colour = "blue"
[container]
rootfs = "relative"
command = "/bin/true"
user = "root"
[resources]
memory = "256X"
cpus = "2"
[service]
restart = "sometimes"
restart_delay = "-1s"
[security]
cap_drop = ["CAP_FLY"]
`
	_, err := Parse("m.toml", []byte(src), "")
	want := []string{
		`m.toml:1:1: version: unsupported version 2; allowed: 1`,
		`m.toml:3:1: colour: unknown key "colour" at the top level`,
		`m.toml:5:1: container.rootfs: "relative" is not absolute`,
		`m.toml:6:1: container.command: must be an array of strings`,
		`m.toml:7:1: container.user: invalid user "root"`,
		`m.toml:9:1: resources.memory: invalid size "256X"`,
		`m.toml:10:1: resources.cpus: must be a number`,
		`m.toml:12:1: service.restart: invalid restart policy "sometimes"`,
		`m.toml:13:1: service.restart_delay: -1s is out of range`,
		`m.toml:15:1: security.cap_drop: unknown capability "CAP_FLY"`,
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is not Errors", err)
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, e := range errs {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("error %d:\n  %s\nwant prefix\n  %s", i, e, want[i])
		}
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Errorf("Error() has %d lines, want %d", len(lines), len(want))
	}
	var first *Error
	if !errors.As(err, &first) || first != errs[0] {
		t.Errorf("errors.As(*Error) = %v, want the first error", first)
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

func TestValidNameOK(t *testing.T) {
	for _, n := range []string{"a", "0", "web", "web-1", "my_db.v2", strings.Repeat("x", 64)} {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q): %v", n, err)
		}
	}
	for _, n := range []string{"", "-a", ".a", "_a", "A", "a/b", "a b", "é", strings.Repeat("x", 65)} {
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
		{ParseVolume, "data:/data", Mount{}, "cove has no named volumes"},
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
