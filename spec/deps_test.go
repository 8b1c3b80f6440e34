package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAppFull(t *testing.T) {
	want := &Spec{
		Name:    "app",
		File:    "testdata/app.toml",
		Version: 1,
		Kind:    KindContainer,
		Container: &Container{
			Rootfs:   "/var/lib/cove/rootfs/app",
			Command:  []string{"/bin/app", "--port", "8080"},
			Workdir:  "/",
			Hostname: "app",
			Network:  NetworkHost,
		},
		Service: Service{
			Restart: RestartOnFailure, RestartDelay: time.Second, StopTimeout: 10 * time.Second,
			StartLimit: StartLimit{Burst: 5, Interval: 10 * time.Second},
			Ready:      ReadyHealthy,
		},
		Security: Security{Seccomp: SeccompDefault},
		Depends: Depends{
			After:    []string{"db", "network-online.target"},
			Requires: []string{"db"},
			Wants:    []string{"network-online.target", "redis@cache.service"},
			BindsTo:  []string{"cove-db.service"},
		},
		Health: &Health{
			Command:     []string{"/bin/sh", "-c", "wget -qO- http://127.0.0.1:8080/ >/dev/null"},
			Interval:    30 * time.Second,
			Timeout:     5 * time.Second,
			Retries:     3,
			StartPeriod: 10 * time.Second,
			OnFailure:   HealthKill,
		},
		Install: Install{WantedBy: []string{"multi-user.target", "cove.target"}},
	}
	got, err := Load("testdata/app.toml", "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got %#v\nwant %#v\n got health %#v\nwant health %#v", got, want, got.Health, want.Health)
	}
	if units, want := got.Depends.Units(got.Depends.After), []string{"cove-db.service", "network-online.target"}; !reflect.DeepEqual(units, want) {
		t.Errorf("Units(after) = %q, want %q", units, want)
	}
}

func TestParseServiceAndHealthDefaults(t *testing.T) {
	for _, tt := range []struct {
		src    string
		limit  StartLimit
		ready  string
		port   int
		health *Health
	}{
		{minimal + "[service]\nstart_limit.burst = 2\n", StartLimit{2, 10 * time.Second}, ReadyStarted, 0, nil},
		{minimal + "[service.start_limit]\ninterval = \"1h\"\n", StartLimit{5, time.Hour}, ReadyStarted, 0, nil},
		{minimal + "[service]\nready = \"tcp:65535\"\n", StartLimit{}, ReadyTCP, 65535, nil},
		{minimal + "[service]\nready = \"notify\"\n", StartLimit{}, ReadyNotify, 0, nil},
		{minimal + "[health]\ncommand = [\"/bin/true\"]\n", StartLimit{}, ReadyStarted, 0, DefaultHealth([]string{"/bin/true"})},
		// A short interval shortens the default timeout.
		{minimal + "[health]\ncommand = [\"/ok\"]\ninterval = \"1s\"\n", StartLimit{}, ReadyStarted, 0,
			&Health{Command: []string{"/ok"}, Interval: time.Second, Timeout: time.Second, Retries: 3, OnFailure: HealthRestart}},
		{minimal + "[health]\ncommand = [\"/ok\"]\ninterval = \"100ms\"\ntimeout = \"1ms\"\nretries = 100\nstart_period = \"1h\"\non_failure = \"none\"\n", StartLimit{}, ReadyStarted, 0,
			&Health{Command: []string{"/ok"}, Interval: 100 * time.Millisecond, Timeout: time.Millisecond, Retries: 100, StartPeriod: time.Hour, OnFailure: HealthNone}},
	} {
		s, err := Parse("t.toml", []byte(tt.src), "")
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		if s.Service.StartLimit != tt.limit || s.Service.Ready != tt.ready || s.Service.ReadyPort != tt.port || !reflect.DeepEqual(s.Health, tt.health) {
			t.Errorf("%q: start limit %v, ready %q %d, health %+v; want %v, %q %d, %+v",
				tt.src, s.Service.StartLimit, s.Service.Ready, s.Service.ReadyPort, s.Health, tt.limit, tt.ready, tt.port, tt.health)
		}
	}
}

func TestParseReady(t *testing.T) {
	for in, want := range map[string]struct {
		mode string
		port int
	}{"started": {ReadyStarted, 0}, "notify": {ReadyNotify, 0}, "healthy": {ReadyHealthy, 0}, "tcp:1": {ReadyTCP, 1}, "tcp:8080": {ReadyTCP, 8080}} {
		if mode, port, err := ParseReady(in); err != nil || mode != want.mode || port != want.port {
			t.Errorf("ParseReady(%q) = %q, %d, %v; want %q, %d", in, mode, port, err, want.mode, want.port)
		}
	}
	for _, in := range []string{"", "tcp", "tcp:", "tcp:0", "tcp:65536", "tcp:-1", "tcp:+80", "TCP:80", "udp:53", "Started", "tcp: 80"} {
		if mode, port, err := ParseReady(in); err == nil {
			t.Errorf("ParseReady(%q) = %q, %d; want error", in, mode, port)
		}
	}
}

func TestValidateDependsFlagBuilt(t *testing.T) {
	s := Defaults("web")
	s.Container.Rootfs = "/r"
	s.Container.Command = []string{"/bin/httpd"}
	s.Service.Ready = "" // means "started"
	s.Service.StartLimit = StartLimit{Burst: 3, Interval: time.Minute}
	s.Depends.After = []string{"db", "network-online.target"}
	s.Install.WantedBy = []string{"multi-user.target"}
	s.Health = DefaultHealth([]string{"/bin/true"})
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	s.Service.StartLimit = StartLimit{Burst: 3}
	s.Service.Ready, s.Service.ReadyPort = ReadyNotify, 80
	s.Depends.BindsTo = []string{"web"}
	s.Install.WantedBy = []string{"multi-user"}
	s.Health = &Health{Command: []string{"/bin/true"}}
	err := s.Validate()
	want := `service.start_limit.interval: 0s is out of range; must be > 0s and <= 1h
service.ready: ReadyPort 80 is set, but readiness is "notify"; a port goes with "tcp" only
health.interval: 0s is out of range; must be >= 100ms and <= 1h
health.timeout: 0s is out of range; must be > 0s and <= interval
health.retries: 0 is out of range; must be an integer from 1 to 100
health.on_failure: invalid on_failure ""; allowed: "restart", "kill", "none"
depends.binds_to: element 1: "web" is this workload itself; a workload cannot depend on itself
install.wanted_by: element 1: "multi-user" is not a unit name; give the full name with its type suffix, such as "multi-user.target" (unit names are letters, digits and ":_.\-@" with a type suffix such as .service or .target, at most 255 characters)`
	if err == nil || err.Error() != want {
		t.Errorf("Validate:\n%v\nwant\n%s", err, want)
	}

	s = Defaults("web")
	s.Container.Rootfs = "/r"
	s.Container.Command = []string{"/bin/httpd"}
	s.Service.Ready = ReadyHealthy
	var e *Error
	if err := s.Validate(); !errors.As(err, &e) || e.Key != "service.ready" || !strings.Contains(e.Msg, "needs a [health] table") {
		t.Errorf("Validate(healthy without health) = %v", err)
	}
}

func TestCheckUnitName(t *testing.T) {
	for _, n := range []string{"a.service", "network-online.target", "getty@tty1.service", `dev-disk-by\x2dlabel-x.device`, "a:b_c.d-e.mount", strings.Repeat("a", 247) + ".target"} {
		if msg := checkUnitName(n); msg != "" {
			t.Errorf("checkUnitName(%q) = %q", n, msg)
		}
	}
	for _, n := range []string{"", "a", "a.", ".target", "a b.service", "a/b.service", "é.service", "a@.service", "@a.service", "a@b@c.service", "a.service\n", strings.Repeat("a", 249) + ".target"} {
		if msg := checkUnitName(n); msg == "" {
			t.Errorf("checkUnitName(%q) = ok, want error", n)
		}
	}
}
