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

func TestParseDependsErrors(t *testing.T) {
	health := minimal + "[health]\ncommand = [\"/bin/true\"]\n"
	runErrorCases(t, []errorCase{
		{"health without command", minimal + "[health]\ninterval = \"10s\"\n",
			"t.toml:6:2: health.command: ", `missing or empty; required, an array of strings such as ["/bin/sh", "-c", "wget -qO- http://127.0.0.1:8080/"]`},
		{"health empty command", minimal + "[health]\ncommand = []\n",
			"t.toml:7:1: health.command: ", "missing or empty"},
		{"health command newline", minimal + "[health]\ncommand = [\"/bin/sh\", \"-c\", \"true\\nfalse\"]\n",
			"t.toml:7:1: health.command: ", "element 3: must not contain control characters"},
		{"health timeout > interval", health + "interval = \"5s\"\ntimeout = \"10s\"\n",
			"t.toml:9:1: health.timeout: ", "10s is longer than interval (5s); must be <= interval"},
		{"health timeout > default interval", health + "timeout = \"1m\"\n",
			"t.toml:8:1: health.timeout: ", "1m0s is longer than interval (30s)"},
		{"health timeout 0", health + "timeout = \"0s\"\n",
			"t.toml:8:1: health.timeout: ", "0s is out of range; must be > 0s and <= interval"},
		{"health interval 50ms", health + "interval = \"50ms\"\n",
			"t.toml:8:1: health.interval: ", "50ms is out of range; must be >= 100ms and <= 1h"},
		{"health interval 2h", health + "interval = \"2h\"\n",
			"t.toml:8:1: health.interval: ", "2h0m0s is out of range; must be >= 100ms and <= 1h"},
		{"health retries 0", health + "retries = 0\n",
			"t.toml:8:1: health.retries: ", "0 is out of range; must be an integer from 1 to 100"},
		{"health retries 101", health + "retries = 101\n",
			"t.toml:8:1: health.retries: ", "101 is out of range; must be an integer from 1 to 100"},
		{"health retries string", health + "retries = \"3\"\n",
			"t.toml:8:1: health.retries: ", "must be an integer, not a string"},
		{"health start_period negative", health + "start_period = \"-1s\"\n",
			"t.toml:8:1: health.start_period: ", "-1s is out of range; must be >= 0s and <= 1h"},
		{"health on_failure explode", health + "on_failure = \"explode\"\n",
			"t.toml:8:1: health.on_failure: ", `invalid on_failure "explode"; allowed: "restart", "kill", "none"`},
		{"health unknown key", health + "test = [\"x\"]\n",
			"t.toml:8:1: health.test: ", `unknown key "test" in [health]; allowed: command, interval, timeout, retries, start_period, on_failure`},
		{"health not a table", "health = [\"/bin/true\"]\n" + minimal,
			"t.toml:1:1: health: ", "must be a table ([health] or health = { ... }), not an array"},
		{"ready tcp:0", minimal + "[service]\nready = \"tcp:0\"\n",
			"t.toml:7:1: service.ready: ", `invalid readiness "tcp:0": port 0 is out of range; must be 1 to 65535`},
		{"ready tcp:http", minimal + "[service]\nready = \"tcp:http\"\n",
			"t.toml:7:1: service.ready: ", `invalid readiness "tcp:http": port "http" is not a number`},
		{"ready healthy without health", minimal + "[service]\nready = \"healthy\"\n",
			"t.toml:7:1: service.ready: ", `ready = "healthy" needs a [health] table with the command that checks health`},
		{"ready sometimes", minimal + "[service]\nready = \"sometimes\"\n",
			"t.toml:7:1: service.ready: ", `invalid readiness "sometimes"; allowed: "started", "notify", "healthy", "tcp:PORT" (PORT from 1 to 65535)`},
		{"ready bool", minimal + "[service]\nready = true\n",
			"t.toml:7:1: service.ready: ", "must be a string, not a boolean"},
		{"start_limit burst 0", minimal + "[service]\nstart_limit = { burst = 0, interval = \"10s\" }\n",
			"t.toml:7:17: service.start_limit.burst: ", "0 is out of range; must be an integer >= 1"},
		{"start_limit interval -1s", minimal + "[service]\nstart_limit = { burst = 5, interval = \"-1s\" }\n",
			"t.toml:7:28: service.start_limit.interval: ", "-1s is out of range; must be > 0s and <= 1h"},
		{"start_limit interval 0", minimal + "[service.start_limit]\ninterval = \"0s\"\n",
			"t.toml:7:1: service.start_limit.interval: ", "0s is out of range; must be > 0s and <= 1h"},
		{"start_limit interval 2h", minimal + "[service.start_limit]\ninterval = \"2h\"\n",
			"t.toml:7:1: service.start_limit.interval: ", "2h0m0s is out of range; must be > 0s and <= 1h"},
		{"start_limit unknown key", minimal + "[service]\nstart_limit = { burst = 5, within = \"10s\" }\n",
			"t.toml:7:28: service.start_limit.within: ", `unknown key "within" in [service.start_limit]; allowed: burst, interval`},
		{"start_limit not a table", minimal + "[service]\nstart_limit = 5\n",
			"t.toml:7:1: service.start_limit: ", "must be a table ([service.start_limit] or start_limit = { ... }), not an integer"},
		{"after bad unit name", minimal + "[depends]\nafter = [\"db\", \"a b\"]\n",
			"t.toml:7:1: depends.after: ", `element 2: invalid dependency "a b": neither a workload name (names must start with a lowercase letter or digit`},
		{"after bad unit name with suffix", minimal + "[depends]\nafter = [\"my db.service\"]\n",
			"t.toml:7:1: depends.after: ", `element 1: invalid unit name "my db.service": character ' ' is not allowed; unit names are letters, digits and ":_.\-@"`},
		{"requires template", minimal + "[depends]\nrequires = [\"getty@.service\"]\n",
			"t.toml:7:1: depends.requires: ", `element 1: "getty@.service" is a template unit; name an instance of it, such as "getty@NAME.service"`},
		{"wants two @", minimal + "[depends]\nwants = [\"a@b@c.service\"]\n",
			"t.toml:7:1: depends.wants: ", `more than one '@'`},
		{"binds_to bare suffix", minimal + "[depends]\nbinds_to = [\".service\"]\n",
			"t.toml:7:1: depends.binds_to: ", `invalid unit name ".service": empty name before the suffix or '@'`},
		{"unit name too long", minimal + "[depends]\nafter = [\"" + strings.Repeat("a", 249) + ".target\"]\n",
			"t.toml:7:1: depends.after: ", "is too long (256 characters)"},
		{"depends on itself", minimal + "[depends]\nafter = [\"t\"]\n",
			"t.toml:7:1: depends.after: ", `element 1: "t" is this workload itself; a workload cannot depend on itself`},
		{"depends on own unit", minimal + "[depends]\nafter = [\"db\"]\nrequires = [\"db\", \"cove-t.service\"]\n",
			"t.toml:8:1: depends.requires: ", `element 2: "cove-t.service" is this workload itself`},
		{"depends twice", minimal + "[depends]\nafter = [\"db\", \"cove-db.service\"]\n",
			"t.toml:7:1: depends.after: ", `element 2: "cove-db.service" is listed twice (also element 1)`},
		{"depends unknown key", minimal + "[depends]\nbefore = [\"db\"]\n",
			"t.toml:7:1: depends.before: ", `unknown key "before" in [depends]; allowed: after, requires, wants, binds_to`},
		{"depends not strings", minimal + "[depends]\nafter = \"db\"\n",
			"t.toml:7:1: depends.after: ", `must be an array of strings such as ["db", "network-online.target"], not a string`},
		{"wanted_by newline", minimal + "[install]\nwanted_by = [\"multi-user.target\\nExecStart=/bin/evil\"]\n",
			"t.toml:7:1: install.wanted_by: ", `element 1: must not contain control characters such as newlines (found '\n' at byte 17)`},
		{"wanted_by without suffix", minimal + "[install]\nwanted_by = [\"multi-user\"]\n",
			"t.toml:7:1: install.wanted_by: ", `element 1: "multi-user" is not a unit name; give the full name with its type suffix, such as "multi-user.target"`},
		{"wanted_by itself", minimal + "[install]\nwanted_by = [\"cove-t.service\"]\n",
			"t.toml:7:1: install.wanted_by: ", "a workload cannot be wanted by itself"},
		{"wanted_by duplicate", "install.wanted_by = [\"a.target\", \"a.target\"]\n" + minimal,
			"t.toml:1:9: install.wanted_by: ", `element 2: "a.target" is listed twice`},
		{"install unknown key", minimal + "[install]\nalias = [\"x.service\"]\n",
			"t.toml:7:1: install.alias: ", `unknown key "alias" in [install]; allowed: wanted_by`},
	})
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
