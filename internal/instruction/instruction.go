// Package instruction applies to an image's configuration the Dockerfile
// instructions that change only it (docker commit --change): CMD,
// ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER,
// VOLUME and WORKDIR,
// with a Dockerfile's syntax: the exec form (a JSON array) or the shell
// form, KEY=VALUE words with quotes and backslash escapes, and $VAR,
// ${VAR}, ${VAR:-WORD} and ${VAR:+WORD} expanded from the environment the
// instructions before built. It is pure: it reads nothing but its input.
package instruction

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/spec"
)

// ErrInvalid is wrapped by every refusal of a change: the input is at
// fault.
var ErrInvalid = errors.New("invalid change")

// Names are the instructions Apply takes, as Docker spells them.
func Names() []string {
	return []string{"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}
}

// Apply applies changes ("CMD [\"nginx\"]"), in order, to cfg, as a
// Dockerfile's build does; a change may hold several instructions, one a
// line (Docker joins the changes into one Dockerfile), and empty lines
// and # comments are skipped, and a line that ends in a backslash goes
// on in the next. CMD and ENTRYPOINT take a
// JSON array or a shell command line (run with cfg.Shell, else
// /bin/sh -c); ENTRYPOINT clears the command unless a CMD came before it
// in changes; ENV and LABEL set KEY=VALUE pairs (or one "KEY VALUE");
// EXPOSE adds ports ("80", "53/udp", "8000-8002/tcp"); VOLUME adds
// paths; WORKDIR is taken relative to the one before; STOPSIGNAL is a
// signal's name or number; HEALTHCHECK takes NONE or
// [--interval=D] [--timeout=D] [--start-period=D] [--retries=N] CMD …;
// ONBUILD records its instruction for a later build. An error names the
// instruction and wraps ErrInvalid; cfg is then partly changed.
func Apply(cfg *v1.Config, changes []string) error {
	a := applier{cfg: cfg}
	for _, ch := range changes {
		for _, line := range strings.Split(strings.ReplaceAll(ch, "\\\n", ""), "\n") { // a line ending in \ goes on
			if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := a.apply(line); err != nil {
				return fmt.Errorf("change %q: %w: %w", line, ErrInvalid, err)
			}
		}
	}
	return nil
}

// applier is Apply's state: whether a CMD came yet.
type applier struct {
	cfg    *v1.Config
	cmdSet bool
}

// apply applies the one instruction ch.
func (a *applier) apply(ch string) error {
	kw, rest := cutWord(ch)
	l := lexer{env: a.cfg.Env}
	switch kw = strings.ToUpper(kw); kw {
	case "CMD", "ENTRYPOINT":
		if rest == "" {
			return fmt.Errorf("%s wants a command", kw)
		}
		if kw == "CMD" {
			a.cfg.Cmd, a.cmdSet = a.command(rest), true
		} else if a.cfg.Entrypoint = a.command(rest); !a.cmdSet {
			a.cfg.Cmd = nil
		}
	case "ENV":
		return pairs(l, rest, func(k, v string) { a.cfg.Env = launch.MergeEnv(a.cfg.Env, []string{k + "=" + v}) })
	case "LABEL":
		return pairs(l, rest, func(k, v string) {
			if a.cfg.Labels == nil {
				a.cfg.Labels = map[string]string{}
			}
			a.cfg.Labels[k] = v
		})
	case "EXPOSE":
		return a.expose(l, rest)
	case "VOLUME":
		return a.volume(l, rest)
	case "USER", "WORKDIR", "STOPSIGNAL":
		return a.single(l, kw, rest)
	case "HEALTHCHECK":
		return a.healthcheck(rest)
	case "ONBUILD":
		return a.onbuild(rest)
	case "":
		return errors.New("no instruction")
	default:
		return fmt.Errorf("%s is not an instruction that changes only the configuration (%s)", kw, strings.Join(Names(), ", "))
	}
	return nil
}

// command is the argument vector of a CMD or ENTRYPOINT: its JSON array,
// or its shell form run by the configuration's shell.
func (a *applier) command(rest string) []string {
	if argv, ok := jsonArray(rest); ok {
		return argv
	}
	shell := a.cfg.Shell
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	return append(append([]string{}, shell...), rest)
}

// jsonArray reads s as a JSON array of strings (the exec form).
func jsonArray(s string) ([]string, bool) {
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var argv []string
	if err := json.Unmarshal([]byte(s), &argv); err != nil {
		return nil, false
	}
	if argv == nil {
		argv = []string{}
	}
	return argv, true
}

// pairs calls set for each KEY=VALUE word of rest, or for KEY and the
// rest of the line when the first word has no "=" (the older form).
func pairs(l lexer, rest string, set func(k, v string)) error {
	words, err := l.words(rest, true)
	if err != nil {
		return err
	}
	if len(words) == 0 {
		return errors.New("want KEY=VALUE")
	}
	if !strings.Contains(words[0], "=") {
		_, value := cutWord(rest)
		v, err := l.words(value, false)
		if err != nil {
			return err
		}
		if value == "" {
			return fmt.Errorf("%s has no value (want KEY=VALUE or KEY VALUE)", words[0])
		}
		set(words[0], strings.Join(v, ""))
		return nil
	}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q is not KEY=VALUE", w)
		}
		set(k, v)
	}
	return nil
}

// expose adds EXPOSE's ports, "PORT[/PROTO]" or "FIRST-LAST[/PROTO]",
// as "PORT/PROTO" keys.
func (a *applier) expose(l lexer, rest string) error {
	words, err := l.words(rest, true)
	if err != nil {
		return err
	}
	if len(words) == 0 {
		return errors.New("want a port")
	}
	for _, w := range words {
		ports, proto, _ := strings.Cut(strings.ToLower(w), "/")
		proto = cmp.Or(proto, "tcp")
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return fmt.Errorf("%q: protocol %q is none of tcp, udp, sctp", w, proto)
		}
		first, last, isRange := strings.Cut(ports, "-")
		lo, err1 := port(first)
		hi, err2 := lo, error(nil)
		if isRange {
			hi, err2 = port(last)
		}
		if err := errors.Join(err1, err2); err != nil || hi < lo {
			return fmt.Errorf("%q is not a port or a range of ports (1-65535)", w)
		}
		if a.cfg.ExposedPorts == nil {
			a.cfg.ExposedPorts = map[string]struct{}{}
		}
		for p := lo; p <= hi; p++ {
			a.cfg.ExposedPorts[fmt.Sprintf("%d/%s", p, proto)] = struct{}{}
		}
	}
	return nil
}

// port reads a port number, 1 to 65535.
func port(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port", s)
	}
	return n, nil
}

// volume adds VOLUME's paths: a JSON array, or words.
func (a *applier) volume(l lexer, rest string) error {
	paths, ok := jsonArray(rest)
	if !ok {
		var err error
		if paths, err = l.words(rest, true); err != nil {
			return err
		}
	}
	if len(paths) == 0 {
		return errors.New("want a path")
	}
	for _, p := range paths {
		if strings.TrimSpace(p) == "" {
			return errors.New("a volume's path is empty")
		}
		if a.cfg.Volumes == nil {
			a.cfg.Volumes = map[string]struct{}{}
		}
		a.cfg.Volumes[p] = struct{}{}
	}
	return nil
}

// single applies an instruction of one word: USER, WORKDIR, STOPSIGNAL.
func (a *applier) single(l lexer, kw, rest string) error {
	words, err := l.words(rest, kw != "WORKDIR")
	if err != nil {
		return err
	}
	if len(words) != 1 || words[0] == "" {
		return fmt.Errorf("%s takes one value", kw)
	}
	v := words[0]
	switch kw {
	case "USER":
		a.cfg.User = v
	case "WORKDIR":
		if !path.IsAbs(v) {
			v = path.Join("/", a.cfg.WorkingDir, v)
		}
		a.cfg.WorkingDir = path.Clean(v)
	case "STOPSIGNAL":
		if _, err := spec.ParseSignal(v); err != nil {
			return err
		}
		a.cfg.StopSignal = v
	}
	return nil
}

// cutWord splits s at its first run of white space, both parts trimmed.
func cutWord(s string) (word, rest string) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], strings.TrimSpace(s[i+1:])
	}
	return s, ""
}

// healthcheck applies HEALTHCHECK: NONE, or options then CMD and a
// command (the exec form: ["CMD", ARG…]; the shell form: ["CMD-SHELL",
// LINE]).
func (a *applier) healthcheck(rest string) error {
	h := &v1.HealthConfig{}
	for strings.HasPrefix(rest, "--") {
		var opt string
		opt, rest = cutWord(rest)
		if err := healthOption(h, opt); err != nil {
			return err
		}
	}
	kw, cmd := cutWord(rest)
	switch strings.ToUpper(kw) {
	case "NONE":
		if cmd != "" || h.Interval != 0 || h.Timeout != 0 || h.StartPeriod != 0 || h.Retries != 0 {
			return errors.New("HEALTHCHECK NONE takes no options and no command")
		}
		a.cfg.Healthcheck = &v1.HealthConfig{Test: []string{"NONE"}}
		return nil
	case "CMD":
	default:
		return errors.New("want HEALTHCHECK NONE or HEALTHCHECK [OPTIONS] CMD COMMAND")
	}
	if argv, ok := jsonArray(cmd); ok && len(argv) > 0 {
		h.Test = append([]string{"CMD"}, argv...)
	} else if cmd != "" && !ok {
		h.Test = []string{"CMD-SHELL", cmd}
	} else {
		return errors.New("HEALTHCHECK CMD wants a command")
	}
	a.cfg.Healthcheck = h
	return nil
}

// healthOption applies one HEALTHCHECK option, "--NAME=VALUE".
func healthOption(h *v1.HealthConfig, opt string) error {
	name, value, _ := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
	if name == "retries" {
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return fmt.Errorf("%s: want a count", opt)
		}
		h.Retries = n
		return nil
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < 0 {
		return fmt.Errorf("%s: want a duration such as 30s", opt)
	}
	switch name {
	case "interval":
		h.Interval = d
	case "timeout":
		h.Timeout = d
	case "start-period":
		h.StartPeriod = d
	case "start-interval": // a later Docker's; the image format has no field for it
	default:
		return fmt.Errorf("%s is not a HEALTHCHECK option (interval, timeout, start-period, start-interval, retries)", opt)
	}
	return nil
}

// onbuild records ONBUILD's instruction, which a later build runs; one
// that cannot be an ONBUILD's is refused, as Docker refuses it.
func (a *applier) onbuild(rest string) error {
	kw, _ := cutWord(rest)
	switch strings.ToUpper(kw) {
	case "":
		return errors.New("ONBUILD wants an instruction")
	case "ONBUILD", "FROM", "MAINTAINER":
		return fmt.Errorf("ONBUILD %s is not allowed", strings.ToUpper(kw))
	}
	a.cfg.OnBuild = append(a.cfg.OnBuild, rest)
	return nil
}
