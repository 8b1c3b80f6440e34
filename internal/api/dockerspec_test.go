package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/spec"
)

// cliCreateBody is what docker CLI 28 sends for
// `docker run --rm -e A=b REF /bin/sh -c 'echo hi'`, trimmed of nothing:
// the fields cove does not read must be ignored.
const cliCreateBody = `{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,
"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=b"],"Cmd":["/bin/sh","-c","echo hi"],"Image":"r.example/app:1",
"Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},
"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default",
"PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"",
"VolumesFrom":null,"ConsoleSize":[50,200],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],
"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"",
"Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"",
"ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,
"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],
"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"",
"CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,
"MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":null,"Ulimits":[],"CpuCount":0,"CpuPercent":0,
"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},
"NetworkingConfig":{"EndpointsConfig":{}}}`

// TestContainerSpec: each field of a create request that cove reads
// lands in the spec as cove run's flags would put it; what cove cannot
// honour is refused, naming the field. Long because it is one table of
// cases, a few lines each.
func TestContainerSpec(t *testing.T) {
	runSpecCases(t, []specCase{
		{"docker CLI body", cliCreateBody, func(s *spec.Spec) any {
			c := s.Container
			return []any{c.Image, c.Pull, c.Command, c.Entrypoint, c.Env, c.Network, s.Service.Restart, c.Hostname, c.Workdir, c.User.Set}
		}, []any{testPinned, spec.PullNever, []string{"/bin/sh", "-c", "echo hi"}, []string(nil),
			map[string]string{"A": "b"}, testRunNetwork, spec.RestartNo, "c1", "", false}, "", ""},
		{"Cmd as a string", `{"Cmd":"echo hi"}`, cmdOf, []string{"echo hi"}, "", ""},
		{"entrypoint", `{"Entrypoint":["/bin/sh","-c"],"Cmd":["id"]}`, entryAndCmd, [][]string{{"/bin/sh", "-c"}, {"id"}}, "", ""},
		{"entrypoint reset keeps the image's CMD", `{"Entrypoint":[""]}`, entryAndCmd, [][]string{{}, testImageCmd}, "", ""},
		{"entrypoint reset with a command", `{"Entrypoint":[],"Cmd":["id"]}`, entryAndCmd, [][]string{{}, {"id"}}, "", ""},
		{"env", `{"Env":["A=b","C=d=e","E="]}`, func(s *spec.Spec) any { return s.Container.Env },
			map[string]string{"A": "b", "C": "d=e", "E": ""}, "", ""},
		{"env without a value", `{"Env":["A=b","NOVALUE"]}`, func(s *spec.Spec) any { return s.Container.Env },
			map[string]string{"A": "b"}, `Env "NOVALUE" has no value and is ignored`, ""},
		{"workdir, hostname, user, stop timeout", `{"WorkingDir":"/srv","Hostname":"box","User":"1000:100","StopTimeout":3}`,
			func(s *spec.Spec) any {
				return []any{s.Container.Workdir, s.Container.Hostname, s.Container.User, s.Service.StopTimeout}
			}, []any{"/srv", "box", spec.User{UID: 1000, GID: 100, Set: true}, 3 * time.Second}, "", ""},
		{"stop signal", `{"StopSignal":"SIGQUIT"}`, func(s *spec.Spec) any { return s.Service.StopSignal }, "SIGQUIT", "", ""},
		{"bad stop signal", `{"StopSignal":"SIGNOPE"}`, nil, nil, "", `StopSignal "SIGNOPE": Invalid signal: SIGNOPE`},
		{"user by name", `{"User":"nobody"}`, nil, nil, "", `User "nobody": cove takes a numeric UID or UID:GID`},
		{"resources", `{"HostConfig":{"Memory":268435456,"NanoCpus":1500000000,"PidsLimit":64}}`,
			func(s *spec.Spec) any { return s.Resources }, spec.Resources{Memory: 256 << 20, CPUs: 1.5, Pids: 64}, "", ""},
		{"unlimited pids", `{"HostConfig":{"PidsLimit":-1}}`, func(s *spec.Spec) any { return s.Resources.Pids }, uint64(0), "", ""},
		{"too precise cpus", `{"HostConfig":{"NanoCpus":1234567890}}`, nil, nil, "", "steps of 0.01"},
		{"restart on-failure", `{"HostConfig":{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}}`,
			restartOf, spec.RestartOnFailure, "MaximumRetryCount 3 is ignored", ""},
		{"restart unless-stopped", `{"HostConfig":{"RestartPolicy":{"Name":"unless-stopped"}}}`, restartOf, spec.RestartAlways, "", ""},
		{"restart sometimes", `{"HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}`, nil, nil, "", `RestartPolicy "sometimes"`},
		{"restart with rm", `{"HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}`, nil, nil, "", "Conflicting options"},
		{"read-only root and capabilities", `{"HostConfig":{"ReadonlyRootfs":true,"CapAdd":["NET_ADMIN"],"CapDrop":["NET_RAW"]}}`,
			func(s *spec.Spec) any { return []any{s.Container.ReadOnly, s.Security.CapAdd, s.Security.CapDrop} },
			[]any{true, []string{"NET_ADMIN"}, []string{"NET_RAW"}}, "", ""},
		{"bad capability", `{"HostConfig":{"CapAdd":["FLY"]}}`, nil, nil, "", "FLY"},
		{"seccomp unconfined", `{"HostConfig":{"SecurityOpt":["seccomp=unconfined","no-new-privileges"]}}`,
			func(s *spec.Spec) any { return []any{s.Security.Seccomp, s.Security.AllowNewPrivileges} },
			[]any{spec.SeccompUnconfined, false}, "", ""},
		{"apparmor", `{"HostConfig":{"SecurityOpt":["apparmor=unconfined"]}}`, nil, nil, "", `SecurityOpt "apparmor=unconfined"`},
		{"mounts", `{"HostConfig":{"Binds":["/srv/data:/data:ro"],"Mounts":[{"Type":"bind","Source":"/etc","Target":"/host-etc","ReadOnly":true},
			{"Type":"tmpfs","Target":"/cache","TmpfsOptions":{"SizeBytes":1048576}}],"Tmpfs":{"/scratch":"rw,size=64m,nosuid,nodev"}}}`,
			func(s *spec.Spec) any { return s.Container.Mounts }, []spec.Mount{
				{Type: spec.MountBind, Source: "/srv/data", Target: "/data", ReadOnly: true},
				{Type: spec.MountBind, Source: "/etc", Target: "/host-etc", ReadOnly: true},
				{Type: spec.MountTmpfs, Target: "/cache", Size: 1 << 20},
				{Type: spec.MountTmpfs, Target: "/scratch", Size: 64 << 20}}, "", ""},
		{"named volumes", `{"HostConfig":{"Binds":["data:/data","Pg.1:/db:ro"],"Mounts":[{"Type":"volume","Source":"cfg","Target":"/etc/app","ReadOnly":true}]}}`,
			func(s *spec.Spec) any { return s.Container.Mounts }, []spec.Mount{
				{Type: spec.MountVolume, Source: "data", Target: "/data"},
				{Type: spec.MountVolume, Source: "Pg.1", Target: "/db", ReadOnly: true},
				{Type: spec.MountVolume, Source: "cfg", Target: "/etc/app", ReadOnly: true}}, "", ""},
		{"bad volume name", `{"HostConfig":{"Binds":["../etc:/data"]}}`, nil, nil, "", `invalid volume name "../etc"`},
		{"anonymous volume", `{"HostConfig":{"Mounts":[{"Type":"volume","Target":"/data"}]}}`, nil, nil, "", "a volume at /data without a name"},
		{"a mount's target cleaned", `{"HostConfig":{"Mounts":[{"Type":"volume","Source":"vol","Target":"/data/"}]}}`,
			func(s *spec.Spec) any { return s.Container.Mounts }, []spec.Mount{{Type: spec.MountVolume, Source: "vol", Target: "/data"}}, "", ""},
		{"npipe mount", `{"HostConfig":{"Mounts":[{"Type":"npipe","Source":"x","Target":"/data"}]}}`, nil, nil, "", `type "npipe" is not supported yet`},
		{"tmpfs noexec", `{"HostConfig":{"Tmpfs":{"/run":"noexec"}}}`, nil, nil, "", `unknown option "noexec"`},
		{"privileged", `{"Tty":true,"HostConfig":{"Privileged":true}}`, nil, nil, "", "a privileged container (--privileged) is not supported yet"},
		{"pid host", `{"HostConfig":{"PidMode":"host"}}`, nil, nil, "", `HostConfig.PidMode "host" is not supported yet`},
		{"userns host", `{"HostConfig":{"UsernsMode":"host"}}`, func(s *spec.Spec) any { return s.Security.UserNS }, spec.UserNSHost, "", ""},
		{"healthcheck CMD-SHELL, defaults", `{"Healthcheck":{"Test":["CMD-SHELL","test -f /ok"]}}`, healthOf,
			spec.Health{Command: []string{"/bin/sh", "-c", "test -f /ok"}, Interval: 30 * time.Second, Timeout: 30 * time.Second,
				Retries: 3, OnFailure: spec.HealthNone}, "", ""},
		{"healthcheck CMD, timings", `{"Healthcheck":{"Test":["CMD","pg_isready"],"Interval":2000000000,"Timeout":1000000000,"StartPeriod":5000000000,"Retries":5}}`,
			healthOf, spec.Health{Command: []string{"pg_isready"}, Interval: 2 * time.Second, Timeout: time.Second, StartPeriod: 5 * time.Second,
				Retries: 5, OnFailure: spec.HealthNone}, "", ""},
		{"healthcheck timeout at most the interval", `{"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000}}`,
			func(s *spec.Spec) any { return s.Health.Timeout }, time.Second, "", ""},
		{"healthcheck timeout over the interval", `{"Healthcheck":{"Test":["CMD","true"],"Interval":1000000000,"Timeout":5000000000}}`,
			func(s *spec.Spec) any { return s.Health.Timeout }, time.Second, "Healthcheck.Timeout 5s is longer than its Interval", ""},
		{"healthcheck CMD-SHELL words, many retries", `{"Healthcheck":{"Test":["CMD-SHELL","test","-f","/ok"],"Retries":120}}`,
			func(s *spec.Spec) any { return []any{s.Health.Command, s.Health.Retries} },
			[]any{[]string{"/bin/sh", "-c", "test -f /ok"}, 100}, "Healthcheck.Retries 120: cove counts at most 100", ""},
		{"healthcheck negative", `{"Healthcheck":{"Test":["CMD","true"],"Interval":-1}}`, nil, nil, "", "must not be negative"},
		{"healthcheck NONE", `{"Healthcheck":{"Test":["NONE"]}}`, func(s *spec.Spec) any { return s.Health == nil }, true, "", ""},
		{"healthcheck bad test", `{"Healthcheck":{"Test":["RUN","x"]}}`, nil, nil, "", `Healthcheck.Test ["RUN" "x"]`},
		{"userns private", `{"HostConfig":{"UsernsMode":"private"}}`, nil, nil, "", `HostConfig.UsernsMode "private" ("host" and "" are) is not supported yet`},
	})
}

// healthOf is a case's health check.
func healthOf(s *spec.Spec) any { return *s.Health }

// specCase is a create request and what containerSpec must make of it.
type specCase struct {
	name string
	body string
	want func(*spec.Spec) any // the part of the spec checked
	same any                  // what it must equal
	warn string               // a warning to expect
	err  string               // the refusal to expect
}

// testRunNetwork is the host's run network the cases are built on.
const testRunNetwork = "cove"

// testImageCmd is the image's CMD in the cases.
var testImageCmd = []string{"/bin/web", "-p", "80"}

// runSpecCases runs containerSpec on each case as a subtest.
func runSpecCases(t *testing.T, cases []specCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req dockerCreate
			if err := json.Unmarshal([]byte(tc.body), &req); err != nil {
				t.Fatal(err)
			}
			sp, warnings, err := containerSpec("c1", &req, testPinned, testImageCmd, testRunNetwork)
			if tc.err != "" {
				if err == nil || err.Status() != 400 || !strings.Contains(err.Message, tc.err) {
					t.Fatalf("error %v, want 400 with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.want(sp); !reflect.DeepEqual(got, tc.same) {
				t.Errorf("got %#v\nwant %#v", got, tc.same)
			}
			if w := strings.Join(warnings, "\n"); !strings.Contains(w, tc.warn) || tc.warn == "" && w != "" {
				t.Errorf("warnings %q, want %q", w, tc.warn)
			}
		})
	}
}

// testPinned is a pinned image reference.
var testPinned = "r.example/app@sha256:" + strings.Repeat("ab", 32)

func cmdOf(s *spec.Spec) any       { return s.Container.Command }
func entryAndCmd(s *spec.Spec) any { return [][]string{s.Container.Entrypoint, s.Container.Command} }
func restartOf(s *spec.Spec) any   { return s.Service.Restart }

// TestContainerRecord: a record survives its file, entrypoint null and
// [] apart, and a second create of the name fails.
func TestContainerRecord(t *testing.T) {
	rs := containerRecords{dir: t.TempDir() + "/created"}
	r := &containerRecord{Name: "c1", Image: testPinned, Config: dockerCreate{Image: "r.example/app:1", Entrypoint: strSlice{}}}
	if err := rs.create(r); err != nil {
		t.Fatal(err)
	}
	if err := rs.create(r); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second create: %v", err)
	}
	got, err := rs.read("c1")
	if err != nil || got.Config.Entrypoint == nil || got.Config.Image != "r.example/app:1" {
		t.Fatalf("read: %+v, %v", got, err)
	}
	got.Config.Entrypoint = nil
	if err := rs.write(got); err != nil {
		t.Fatal(err)
	}
	if got, _ := rs.read("c1"); got.Config.Entrypoint != nil {
		t.Errorf("entrypoint null came back as %#v", got.Config.Entrypoint)
	}
	if all := rs.list(); len(all) != 1 || all["c1"] == nil {
		t.Errorf("list = %v", all)
	}
	if missing, err := rs.read("c2"); missing != nil || err != nil {
		t.Errorf("read of a missing record: %v, %v", missing, err)
	}
}

// TestWithImageHealth: an image's HEALTHCHECK is a create's check when
// the create gives none; a create's test, and each value it sets, win
// over the image's; --no-healthcheck (["NONE"]) stays none; an image
// without one leaves the create's as it is. An image's values out of
// cove's range are moved into it, and a test of no known form dropped,
// each with a warning (fitImageHealth).
func TestWithImageHealth(t *testing.T) {
	img := &v1.HealthConfig{Test: []string{"CMD-SHELL", "curl -f localhost"}, Interval: 5 * time.Second, Timeout: time.Second, Retries: 4}
	for _, c := range []struct {
		name string
		req  *dockerHealthcheck
		img  *v1.HealthConfig
		want *dockerHealthcheck
	}{
		{"none given", nil, img, &dockerHealthcheck{Test: img.Test, Interval: 5e9, Timeout: 1e9, Retries: 4}},
		{"--health-interval alone", &dockerHealthcheck{Interval: 2e9}, img, &dockerHealthcheck{Test: img.Test, Interval: 2e9, Timeout: 1e9, Retries: 4}},
		{"--health-cmd", &dockerHealthcheck{Test: []string{"CMD", "true"}, StartPeriod: 3e9}, img, &dockerHealthcheck{Test: []string{"CMD", "true"}, Interval: 5e9, Timeout: 1e9, StartPeriod: 3e9, Retries: 4}},
		{"--no-healthcheck", &dockerHealthcheck{Test: []string{"NONE"}}, img, &dockerHealthcheck{Test: []string{"NONE"}, Interval: 5e9, Timeout: 1e9, Retries: 4}},
		{"an image without one", &dockerHealthcheck{Test: []string{"CMD", "true"}}, nil, &dockerHealthcheck{Test: []string{"CMD", "true"}}},
		{"neither", nil, nil, nil},
	} {
		if got := withImageHealth(c.req, c.img); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		img      v1.HealthConfig
		want     *v1.HealthConfig
		warnings int
	}{
		{v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: 2 * time.Hour, StartPeriod: 3 * time.Hour}, &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Hour, StartPeriod: time.Hour}, 2},
		{v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: 50 * time.Millisecond, Timeout: -1, Retries: -2}, &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: 100 * time.Millisecond}, 3},
		{v1.HealthConfig{Test: []string{"CMD"}}, nil, 1},
		{v1.HealthConfig{Test: []string{"BOGUS", "x"}}, nil, 1},
		{*img, img, 0},
	} {
		got, warnings := fitImageHealth(&c.img, nil)
		if !reflect.DeepEqual(got, c.want) || len(warnings) != c.warnings {
			t.Errorf("fitImageHealth(%+v): %+v, %q; want %+v and %d warnings", c.img, got, warnings, c.want, c.warnings)
		}
	}
	bogus := &v1.HealthConfig{Test: []string{"BOGUS"}, Interval: 2 * time.Hour}
	for _, own := range []*dockerHealthcheck{{Test: []string{"CMD", "true"}, Interval: 1e9}, {Test: []string{"NONE"}}} {
		if got, warnings := fitImageHealth(bogus, own); !reflect.DeepEqual(got, bogus) || len(warnings) != 0 {
			t.Errorf("fitImageHealth under the create's %+v: %+v, %q; want the image's as it is, no warning (the create's test and interval win)", own, got, warnings)
		}
	}
	b := &specBuild{sp: spec.Defaults("x")}
	if b.health(withImageHealth(&dockerHealthcheck{Test: []string{"NONE"}}, img)); b.sp.Health != nil {
		t.Errorf("--no-healthcheck over an image's HEALTHCHECK: the spec has a check %+v", b.sp.Health)
	}
}
