// Package instruction applies to an image's configuration the Dockerfile
// instructions that change only it (docker commit --change): CMD,
// ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR,
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

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/spec"
)

// ErrInvalid is wrapped by every refusal of a change: the input is at
// fault.
var ErrInvalid = errors.New("invalid change")

// Names are the instructions Apply takes, as Docker spells them.
var Names = []string{"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"}

// Apply applies changes, one instruction each ("CMD [\"nginx\"]"), in
// order, to cfg, as a Dockerfile's build does: CMD and ENTRYPOINT take a
// JSON array or a shell command line (run with cfg.Shell, else
// /bin/sh -c); ENTRYPOINT clears the command unless a CMD came before it
// in changes; ENV and LABEL set KEY=VALUE pairs (or one "KEY VALUE");
// EXPOSE adds ports ("80", "53/udp", "8000-8002/tcp"); VOLUME adds
// paths; WORKDIR is taken relative to the one before; STOPSIGNAL is a
// signal's name or number. An error names the change and wraps
// ErrInvalid; cfg is then partly changed.
func Apply(cfg *v1.Config, changes []string) error {
	a := applier{cfg: cfg}
	for _, ch := range changes {
		if err := a.apply(ch); err != nil {
			return fmt.Errorf("change %q: %w: %w", ch, ErrInvalid, err)
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
	ch = strings.TrimSpace(ch)
	kw, rest := ch, ""
	if i := strings.IndexAny(ch, " \t"); i >= 0 {
		kw, rest = ch[:i], ch[i+1:]
	}
	rest = strings.TrimSpace(rest)
	l := lexer{env: a.cfg.Env}
	switch strings.ToUpper(kw) {
	case "CMD":
		a.cfg.Cmd, a.cmdSet = a.command(rest), true
	case "ENTRYPOINT":
		a.cfg.Entrypoint = a.command(rest)
		if !a.cmdSet {
			a.cfg.Cmd = nil
		}
	case "ENV":
		return pairs(l, rest, func(k, v string) { a.cfg.Env = setEnv(a.cfg.Env, k, v) })
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
		return a.single(l, strings.ToUpper(kw), rest)
	case "":
		return errors.New("no instruction")
	default:
		return fmt.Errorf("%s is not an instruction that changes only the configuration (%s)", kw, strings.Join(Names, ", "))
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
		key, value, _ := strings.Cut(rest, " ")
		v, err := l.words(strings.TrimSpace(value), false)
		if err != nil {
			return err
		}
		if strings.TrimSpace(value) == "" {
			return fmt.Errorf("%s has no value (want KEY=VALUE or KEY VALUE)", key)
		}
		set(key, strings.Join(v, ""))
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

// setEnv sets k to v in env ("K=V" entries), in place of an entry of k.
func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			out := append([]string{}, env...)
			out[i] = k + "=" + v
			return out
		}
	}
	return append(append([]string{}, env...), k+"="+v)
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
