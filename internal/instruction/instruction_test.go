package instruction

import (
	"errors"
	"reflect"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestApply applies changes as docker commit --change does, to a
// configuration with an environment and a command.
func TestApply(t *testing.T) {
	base := func() v1.Config {
		return v1.Config{Env: []string{"PATH=/usr/bin", "HOME=/root"}, Cmd: []string{"sh"}, WorkingDir: "/srv"}
	}
	tests := []struct {
		name    string
		changes []string
		check   func(v1.Config) any
		want    any
	}{
		{"cmd exec form", []string{`CMD ["nginx", "-g", "daemon off;"]`}, func(c v1.Config) any { return c.Cmd }, []string{"nginx", "-g", "daemon off;"}},
		{"cmd shell form", []string{`cmd echo "hi there"`}, func(c v1.Config) any { return c.Cmd }, []string{"/bin/sh", "-c", `echo "hi there"`}},
		{"entrypoint clears the command", []string{`ENTRYPOINT ["/app"]`}, func(c v1.Config) any { return [][]string{c.Entrypoint, c.Cmd} }, [][]string{{"/app"}, nil}},
		{"entrypoint after cmd keeps it", []string{`CMD ["-v"]`, `ENTRYPOINT ["/app"]`}, func(c v1.Config) any { return [][]string{c.Entrypoint, c.Cmd} }, [][]string{{"/app"}, {"-v"}}},
		{"env pairs, quoted, expanded before the line", []string{`ENV PATH=$PATH:/opt/bin GREETING="hello world" OLD=${PATH}`}, func(c v1.Config) any { return c.Env },
			[]string{"PATH=/usr/bin:/opt/bin", "HOME=/root", "GREETING=hello world", "OLD=/usr/bin"}},
		{"env older form", []string{`ENV MOTD  a b  c`}, func(c v1.Config) any { return c.Env[2] }, "MOTD=a b  c"},
		{"env escapes and single quotes", []string{`ENV A=\$HOME B='$HOME' C="x\"y"`}, func(c v1.Config) any { return c.Env[2:] }, []string{"A=$HOME", "B=$HOME", "C=x\"y"}},
		{"defaults", []string{`ENV A=${NOPE:-dflt} B=${HOME:+set} C=${NOPE:+set}`}, func(c v1.Config) any { return c.Env[2:] }, []string{"A=dflt", "B=set", "C="}},
		{"label", []string{`LABEL org.example.v="1.0" team=web`}, func(c v1.Config) any { return c.Labels }, map[string]string{"org.example.v": "1.0", "team": "web"}},
		{"expose", []string{`EXPOSE 80 53/udp 8000-8001/TCP`}, func(c v1.Config) any { return c.ExposedPorts },
			map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}},
		{"volume json and words", []string{`VOLUME ["/data"]`, `VOLUME /a /b`}, func(c v1.Config) any { return c.Volumes }, map[string]struct{}{"/data": {}, "/a": {}, "/b": {}}},
		{"workdir relative", []string{`WORKDIR app`, `WORKDIR ../web`}, func(c v1.Config) any { return c.WorkingDir }, "/srv/web"},
		{"user and stopsignal", []string{`USER 1000:1000`, `STOPSIGNAL SIGQUIT`}, func(c v1.Config) any { return c.User + " " + c.StopSignal }, "1000:1000 SIGQUIT"},
		{"several lines in one change", []string{"# a comment\nUSER web\n\nWORKDIR /app"}, func(c v1.Config) any { return c.User + " " + c.WorkingDir }, "web /app"},
		{"a line that goes on", []string{"CMD echo a \\\n  b"}, func(c v1.Config) any { return c.Cmd[2] }, "echo a   b"},
		{"env older form, tab, quoted key", []string{"ENV\t\"K\"\tv  w\\"}, func(c v1.Config) any { return c.Env[2] }, "K=v  w"},
		{"healthcheck", []string{`HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/`}, func(c v1.Config) any { return *c.Healthcheck },
			v1.HealthConfig{Test: []string{"CMD-SHELL", "curl -f http://localhost/"}, Interval: 5 * time.Second, Retries: 3}},
		{"healthcheck exec form", []string{`HEALTHCHECK CMD ["/check", "-q"]`}, func(c v1.Config) any { return c.Healthcheck.Test }, []string{"CMD", "/check", "-q"}},
		{"healthcheck none", []string{`HEALTHCHECK NONE`}, func(c v1.Config) any { return c.Healthcheck.Test }, []string{"NONE"}},
		{"onbuild", []string{`ONBUILD RUN make`}, func(c v1.Config) any { return c.OnBuild }, []string{"RUN make"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			if err := Apply(&cfg, tt.changes); err != nil {
				t.Fatal(err)
			}
			if got := tt.check(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestApplyRefuses refuses what is no instruction docker commit takes,
// or bad arguments, naming the change.
func TestApplyRefuses(t *testing.T) {
	for _, ch := range []string{
		"RUN apt-get update", "COPY . /", "CMD", "ENTRYPOINT", "EXPOSE 0", "EXPOSE 70000", "EXPOSE 80/icmp", "EXPOSE 9-8",
		"ENV", "ENV =x", "ENV A", `ENV A="open`, "ENV A='open", "ENV A=${B", "ENV A=${1B}", "ENV A=${B/x/y}",
		"USER", "USER a b", "STOPSIGNAL SIGNOPE", "VOLUME", `VOLUME [""]`, "LABEL",
		"HEALTHCHECK", "HEALTHCHECK CMD", "HEALTHCHECK --interval=x CMD true", "HEALTHCHECK --bogus=1 CMD true", "HEALTHCHECK NONE true",
		"HEALTHCHECK CMD []", "ONBUILD", "ONBUILD ONBUILD RUN x", "ONBUILD FROM x",
	} {
		cfg := v1.Config{}
		err := Apply(&cfg, []string{ch})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: got %v, want ErrInvalid", ch, err)
		}
	}
}
