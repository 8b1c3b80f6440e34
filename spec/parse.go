package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// MaxFileSize is the largest spec file Parse accepts, in bytes.
const MaxFileSize = 1 << 20

// Allowed keys of each table of the v1 schema.
var (
	topKeys        = []string{"version", "kind", "description", "container", "vm", "resources", "service", "security", "depends", "health", "install"}
	containerKeys  = []string{"rootfs", "command", "env", "workdir", "user", "hostname", "network", "read_only", "volatile", "mount"}
	mountKeys      = []string{"type", "source", "target", "read_only", "size"}
	vmKeys         = []string{"kernel", "initrd", "cmdline", "cpus", "memory", "machine", "accel", "disk", "network"}
	diskKeys       = []string{"path", "format", "read_only", "boot"}
	vmNetworkKeys  = []string{"mode", "forward"}
	resourceKeys   = []string{"memory", "cpus", "pids"}
	serviceKeys    = []string{"restart", "restart_delay", "stop_timeout", "start_limit", "ready"}
	startLimitKeys = []string{"burst", "interval"}
	securityKeys   = []string{"cap_add", "cap_drop", "seccomp", "no_new_privileges"}
	dependsKeys    = []string{"after", "requires", "wants", "binds_to"}
	installKeys    = []string{"wanted_by"}
	healthKeys     = []string{"command", "interval", "timeout", "retries", "start_period", "on_failure"}
)

// Load reads the spec file at path and parses it with Parse. If name is ""
// the workload is named after the file (see Parse). I/O problems are
// returned as plain errors (a missing file wraps fs.ErrNotExist and says
// what to do); problems with the content as Errors.
func Load(path string, name string) (*Spec, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("spec file %s does not exist; check the path, or create the file "+
			"(it needs at least version = 1, kind = \"container\" and a [container] table with rootfs and command, "+
			"or kind = \"vm\" and a [vm] table with kernel): %w",
			path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read spec file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read spec file %s: %w", path, err)
	}
	return Parse(path, data, name)
}

// Parse parses and validates the v1 spec in data, read from file (used in
// error messages and stored in Spec.File), for the workload name. If name
// is "", it is the base name of file without a ".toml" suffix.
//
// On success it returns the spec with defaults applied (those of Defaults
// or VMDefaults, and DefaultHealth for [health]) and validated by
// Validate; absolute paths are cleaned. Otherwise it
// returns a nil spec and an Errors holding every problem it found, sorted
// by position: a TOML syntax error stops parsing, but type and value
// errors are all collected. Parse never panics.
func Parse(file string, data []byte, name string) (*Spec, error) {
	p := &parser{file: file}
	if name == "" && file != "" {
		name = strings.TrimSuffix(filepath.Base(file), ".toml")
		if err := ValidName(name); err != nil {
			p.addName(err.(*Error).Msg + "; the name is taken from the file name: rename the file or give a name explicitly")
		}
	} else if err := ValidName(name); err != nil {
		p.addName(err.(*Error).Msg)
	}
	if len(data) > MaxFileSize {
		p.errs = append(p.errs, &Error{File: file, Msg: fmt.Sprintf("file is too large (more than %d bytes); spec files may be at most 1 MiB", MaxFileSize)})
		return nil, p.errs.err()
	}
	data = stripBOM(data)
	if off, msg := checkBytes(data); msg != "" {
		line, col := lineCol(data, off)
		p.errs = append(p.errs, &Error{File: file, Line: line, Col: col, Msg: msg})
		return nil, p.errs.err()
	}
	pos, limit := keyPositions(data)
	if limit != nil {
		p.errs = append(p.errs, &Error{File: file, Line: limit.pos.Line, Col: limit.pos.Col, Msg: limit.msg})
		return nil, p.errs.err()
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		p.errs = append(p.errs, syntaxError(file, data, err))
		return nil, p.errs.err()
	}
	p.pos = pos
	s := p.spec(doc, name)
	var verrs Errors
	if errors.As(s.Validate(), &verrs) {
		parsed := maps.Clone(p.reportedKeys)
		for _, e := range verrs {
			if e.Key != "name" && !reported(parsed, e.Key) {
				p.addKey(e.Key, e.Msg)
			}
		}
	}
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// KeyError returns an error about key (e.g. "vm.disk[1].path") at the
// key's position in the file the spec was read from, for checks made
// after parsing (files that must exist, host capabilities).
// The file is read again to find the position; without it (or for a spec
// built from flags) the error has no line:col.
func (s *Spec) KeyError(key, msg string) *Error {
	e := &Error{File: s.File, Key: key, Msg: msg}
	data, err := os.ReadFile(s.File)
	if err != nil {
		return e
	}
	pos, _ := keyPositions(stripBOM(data))
	for k := key; k != ""; k = parentKey(k) {
		if pos, ok := pos[k]; ok {
			e.Line, e.Col = pos.Line, pos.Col
			break
		}
	}
	return e
}

// stripBOM removes a byte order mark, as the toml parser does, so that
// byte offsets agree with the parser's.
func stripBOM(data []byte) []byte {
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if rest, ok := bytes.CutPrefix(data, []byte(bom)); ok {
			return rest
		}
	}
	return data
}

// syntaxError converts an error of the toml parser into an *Error with the
// position of the problem.
func syntaxError(file string, data []byte, err error) *Error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{File: file, Msg: "invalid TOML: " + err.Error()}
	}
	pe.Message = escapeControls(pe.Message)
	e := &Error{File: file, Key: escapeControls(pe.LastKey), Msg: "invalid TOML: " + pe.Message}
	e.Line, e.Col = errorPosition(data, pe)
	if strings.Contains(pe.Message, "already been defined") {
		e.Msg = "duplicate key: " + pe.Message + " Each key and table may be defined only once."
	}
	return e
}

// errorPosition returns the line and column of a toml parse error, or 0
// for what is unknown. Position.Col is often off, Line is one too far for
// errors about an unexpected newline and 0 for some errors at the end of
// the input, and Start is the start of the string for errors inside
// multi-line strings; this picks what is right.
func errorPosition(data []byte, pe toml.ParseError) (line, col int) {
	p := pe.Position
	aboutNewline := strings.Contains(pe.Message, `\n`) || strings.Contains(pe.Message, "newline")
	off, inData := p.Start, p.Start >= 0 && p.Start <= len(data)
	start := lineStart(data, p.Line)
	switch {
	case start < 0: // no such line
		if inData {
			return lineCol(data, off)
		}
		return 0, 0
	case inData && off == start-1 && aboutNewline:
		// Line is the one after the newline the error is about.
		return lineCol(data, off)
	case inData && off >= start && !bytes.Contains(data[start:off], []byte("\n")):
		return p.Line, off - start + 1
	}
	return p.Line, 0
}

// escapeControls replaces control characters in s by Go escapes such as
// \n, so that every error stays on one line.
func escapeControls(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// lineStart returns the offset of 1-based line in data, or -1 if there is
// no such line.
func lineStart(data []byte, line int) int {
	if line < 1 {
		return -1
	}
	off := 0
	for range line - 1 {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			return -1
		}
		off += i + 1
	}
	return off
}

// checkBytes returns the offset of the first byte that cannot appear
// anywhere in a TOML file (invalid UTF-8, or a control character other than
// tab, newline and the carriage return of CRLF) and what is wrong; msg is ""
// if there is none. It exists because the toml parser reports wrong
// positions for these.
func checkBytes(data []byte) (off int, msg string) {
	for off < len(data) {
		r, size := utf8.DecodeRune(data[off:])
		switch {
		case r == utf8.RuneError && size == 1:
			return off, "invalid TOML: the file is not valid UTF-8"
		case r == '\r' && (off+1 == len(data) || data[off+1] != '\n'):
			return off, "invalid TOML: carriage return (\\r) not followed by a newline"
		case r == 0:
			return off, "invalid TOML: NUL byte; spec files must be UTF-8 text (is this file UTF-16?)"
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f:
			return off, fmt.Sprintf("invalid TOML: control character %U is not allowed (inside strings, write escapes such as \\n or \\u0000)", r)
		}
		off += size
	}
	return 0, ""
}

// lineCol converts a byte offset in data into a 1-based line and column.
func lineCol(data []byte, off int) (line, col int) {
	line = bytes.Count(data[:off], []byte("\n")) + 1
	col = off - (bytes.LastIndexByte(data[:off], '\n') + 1) + 1
	return line, col
}

// parser turns a decoded TOML document into a Spec, collecting errors
// positioned at the offending keys.
type parser struct {
	file         string
	pos          map[string]position // from keyPositions
	errs         Errors
	reportedKeys map[string]bool
}

// addName reports a problem with the workload name, which has no position.
func (p *parser) addName(msg string) {
	p.errs = append(p.errs, &Error{File: p.file, Key: "name", Msg: msg})
}

// add reports msg for the key path.
func (p *parser) add(path []string, msg string) {
	p.addKey(keyString(path), msg)
}

// addKey reports msg for a dotted key, at the key's position or, if the key
// is not in the file, at its closest enclosing table that is.
func (p *parser) addKey(key, msg string) {
	e := &Error{File: p.file, Key: key, Msg: msg}
	for k := key; k != ""; k = parentKey(k) {
		if pos, ok := p.pos[k]; ok {
			e.Line, e.Col = pos.Line, pos.Col
			break
		}
	}
	p.errs = append(p.errs, e)
	if p.reportedKeys == nil {
		p.reportedKeys = make(map[string]bool)
	}
	p.reportedKeys[key] = true
}

func (p *parser) errorf(path []string, format string, args ...any) {
	p.add(path, fmt.Sprintf(format, args...))
}

// reported reports whether keys, the keys that errors were reported for,
// has key or a table it is in (so Validate's findings do not duplicate
// Parse's).
func reported(keys map[string]bool, key string) bool {
	for k := key; k != ""; k = parentKey(k) {
		if keys[k] {
			return true
		}
	}
	return false
}

// spec builds the Spec from doc, with defaults for absent keys.
func (p *parser) spec(doc map[string]any, name string) *Spec {
	d := Defaults(name)
	s := &Spec{Name: name, File: p.file, Service: d.Service, Security: d.Security}
	p.checkKeys(nil, doc, topKeys)
	if v, ok := doc["version"]; ok {
		if n, ok := p.integer(key("version"), v); ok {
			if n != 1 {
				p.errorf(key("version"), "unsupported version %d; allowed: 1", n)
			} else {
				s.Version = 1
			}
		}
	}
	if v, ok := doc["kind"]; ok {
		s.Kind, _ = p.str(key("kind"), v)
	}
	if s.Kind == KindVM {
		s.Security = Security{}
	}
	if v, ok := doc["description"]; ok {
		s.Description, _ = p.str(key("description"), v)
	}
	if v, ok := doc["container"]; ok {
		if t, ok := p.table(key("container"), v); ok {
			s.Container = p.container(t, name)
		}
	}
	if v, ok := doc["vm"]; ok {
		if t, ok := p.table(key("vm"), v); ok {
			s.VM = p.vm(t)
		}
	}
	if v, ok := doc["resources"]; ok {
		if t, ok := p.table(key("resources"), v); ok {
			p.resources(t, &s.Resources)
		}
	}
	if v, ok := doc["service"]; ok {
		if t, ok := p.table(key("service"), v); ok {
			p.service(t, &s.Service)
		}
	}
	if v, ok := doc["security"]; ok {
		if s.Kind == KindVM {
			p.add(key("security"), vmUnsupported("security"))
		} else if t, ok := p.table(key("security"), v); ok {
			p.security(t, &s.Security)
		}
	}
	if v, ok := doc["depends"]; ok {
		if t, ok := p.table(key("depends"), v); ok {
			p.depends(t, &s.Depends)
		}
	}
	if v, ok := doc["health"]; ok {
		if s.Kind == KindVM {
			p.add(key("health"), vmUnsupported("health"))
		} else if t, ok := p.table(key("health"), v); ok {
			s.Health = p.health(t)
		}
	}
	if v, ok := doc["install"]; ok {
		if t, ok := p.table(key("install"), v); ok {
			p.install(t, &s.Install)
		}
	}
	return s
}

// container builds a Container from the [container] table t.
func (p *parser) container(t map[string]any, name string) *Container {
	c := containerDefaults(name)
	p.checkKeys(key("container"), t, containerKeys)
	if v, ok := t["rootfs"]; ok {
		c.Rootfs, _ = p.str(key("container", "rootfs"), v)
		c.Rootfs = cleanPath(c.Rootfs)
	}
	if v, ok := t["command"]; ok {
		c.Command, _ = p.strings(key("container", "command"), v, `["/bin/sh", "-c", "echo hi"]`)
	}
	if v, ok := t["env"]; ok {
		c.Env = p.env(key("container", "env"), v)
	}
	if v, ok := t["workdir"]; ok {
		c.Workdir, _ = p.str(key("container", "workdir"), v)
		c.Workdir = cleanPath(c.Workdir)
	}
	if v, ok := t["user"]; ok {
		if s, ok := p.str(key("container", "user"), v); ok {
			u, err := ParseUser(s)
			if err != nil {
				p.add(key("container", "user"), err.Error())
			}
			c.User = u
		}
	}
	if v, ok := t["hostname"]; ok {
		c.Hostname, _ = p.str(key("container", "hostname"), v)
	}
	if v, ok := t["network"]; ok {
		c.Network, _ = p.str(key("container", "network"), v)
	}
	if v, ok := t["read_only"]; ok {
		c.ReadOnly, _ = p.boolean(key("container", "read_only"), v)
	}
	if v, ok := t["volatile"]; ok {
		c.Volatile, _ = p.boolean(key("container", "volatile"), v)
	}
	if v, ok := t["mount"]; ok {
		p.tables(key("container", "mount"), v, `{ source = "/srv/data", target = "/data" }`, func(path []string, t map[string]any) {
			c.Mounts = append(c.Mounts, p.mount(path, t))
		})
	}
	return c
}

// mount builds a Mount from the table t at path.
func (p *parser) mount(path []string, t map[string]any) Mount {
	m := Mount{Type: MountBind}
	k := func(name string) []string { return append(slices.Clip(path), name) }
	p.checkKeys(path, t, mountKeys)
	if v, ok := t["type"]; ok {
		m.Type, _ = p.str(k("type"), v)
	}
	if v, ok := t["source"]; ok {
		m.Source, _ = p.str(k("source"), v)
		m.Source = cleanPath(m.Source)
	}
	if v, ok := t["target"]; ok {
		m.Target, _ = p.str(k("target"), v)
		m.Target = cleanPath(m.Target)
	}
	if v, ok := t["read_only"]; ok {
		m.ReadOnly, _ = p.boolean(k("read_only"), v)
	}
	if v, ok := t["size"]; ok {
		if n, err := parseSizeValue(v); err != nil {
			p.add(k("size"), err.Error())
		} else {
			m.Size = n
		}
	}
	return m
}

// tables reads an array of tables at path, written as [[a.b]] sections or
// as an array of inline tables, and calls each for every element with the
// element's path (for errors: "a.b[N]"). An element that is not a table
// is reported with example, an inline table that would be right, and
// each gets an empty table for it, so that indexes stay those of the file.
func (p *parser) tables(path []string, v any, example string, each func(path []string, t map[string]any)) {
	var elems []any
	switch a := v.(type) {
	case []map[string]any:
		for _, t := range a {
			elems = append(elems, t)
		}
	case []any:
		elems = a
	default:
		p.errorf(path, `must be an array of tables (%s sections, or %s = [%s]), not %s`, tableName(append(slices.Clip(path), elem(1))), path[len(path)-1], example, typeName(v))
		return
	}
	name := path[len(path)-1]
	for i, e := range elems {
		ep := append(slices.Clip(path), elem(i+1))
		t, ok := e.(map[string]any)
		if !ok {
			p.errorf(ep, `%s %d must be a table such as %s, not %s`, name, i+1, example, typeName(e))
			t = map[string]any{}
		}
		each(ep, t)
	}
}

// env converts the env table; it returns nil for an empty table.
func (p *parser) env(path []string, v any) map[string]string {
	t, ok := p.table(path, v)
	if !ok || len(t) == 0 {
		return nil
	}
	env := make(map[string]string, len(t))
	for _, k := range sortedKeys(t) {
		if s, ok := p.str(append(slices.Clip(path), k), t[k]); ok {
			env[k] = s
		}
	}
	return env
}

// resources fills r from the [resources] table t. Explicit zeros are
// errors here, as a zero in Resources means "no limit".
func (p *parser) resources(t map[string]any, r *Resources) {
	p.checkKeys(key("resources"), t, resourceKeys)
	if v, ok := t["memory"]; ok {
		k := key("resources", "memory")
		n, err := parseSizeValue(v)
		switch {
		case err != nil:
			p.add(k, err.Error())
		case n < MinMemory:
			p.errorf(k, "%s is too small; at least 1M (%d bytes)", describeValue(v), MinMemory)
		default:
			r.Memory = n
		}
	}
	if v, ok := t["cpus"]; ok {
		k := key("resources", "cpus")
		c, isNum := asFloat(v)
		switch {
		case !isNum:
			p.errorf(k, "must be a number such as 0.5 or 2, not %s", typeName(v))
		case checkCPUs(c) != "":
			p.add(k, checkCPUs(c))
		default:
			r.CPUs = c
		}
	}
	if v, ok := t["pids"]; ok {
		k := key("resources", "pids")
		if n, ok := p.integer(k, v); ok {
			if n < 1 {
				p.errorf(k, "%d is out of range; must be an integer >= 1", n)
			} else {
				r.Pids = uint64(n)
			}
		}
	}
}

// service fills s from the [service] table t.
func (p *parser) service(t map[string]any, s *Service) {
	p.checkKeys(key("service"), t, serviceKeys)
	if v, ok := t["restart"]; ok {
		s.Restart, _ = p.str(key("service", "restart"), v)
	}
	if v, ok := t["restart_delay"]; ok {
		s.RestartDelay, _ = p.duration(key("service", "restart_delay"), v)
	}
	if v, ok := t["stop_timeout"]; ok {
		s.StopTimeout, _ = p.duration(key("service", "stop_timeout"), v)
	}
	if v, ok := t["start_limit"]; ok {
		if t, ok := p.table(key("service", "start_limit"), v); ok {
			s.StartLimit = p.startLimit(t)
		}
	}
	if v, ok := t["ready"]; ok {
		k := key("service", "ready")
		if r, ok := p.str(k, v); ok {
			mode, port, err := ParseReady(r)
			if err != nil {
				p.add(k, err.Error())
			} else {
				s.Ready, s.ReadyPort = mode, port
			}
		}
	}
}

// security fills s from the [security] table t; capability names are
// normalised to "CAP_X".
func (p *parser) security(t map[string]any, s *Security) {
	p.checkKeys(key("security"), t, securityKeys)
	s.CapAdd = p.caps(key("security", "cap_add"), t)
	s.CapDrop = p.caps(key("security", "cap_drop"), t)
	if v, ok := t["seccomp"]; ok {
		s.Seccomp, _ = p.str(key("security", "seccomp"), v)
	}
	if v, ok := t["no_new_privileges"]; ok {
		if b, ok := p.boolean(key("security", "no_new_privileges"), v); ok {
			s.AllowNewPrivileges = !b
		}
	}
}

// caps converts the capability list at path (last element is the key in
// t); it returns nil if the key is absent or the list is empty.
func (p *parser) caps(path []string, t map[string]any) []string {
	v, ok := t[path[len(path)-1]]
	if !ok {
		return nil
	}
	names, _ := p.strings(path, v, `["NET_ADMIN", "CAP_SYS_TIME"]`)
	var caps []string
	for _, n := range names {
		c, err := NormalizeCapability(n)
		if err != nil {
			p.add(path, err.Error())
			continue
		}
		caps = append(caps, c)
	}
	return caps
}

// checkKeys reports every key of t that is not in allowed.
func (p *parser) checkKeys(path []string, t map[string]any, allowed []string) {
	for _, k := range sortedKeys(t) {
		if slices.Contains(allowed, k) {
			continue
		}
		what := "key"
		if _, ok := t[k].(map[string]any); ok {
			what = "table"
		}
		where := "at the top level"
		if path != nil {
			where = "in " + tableName(path)
		}
		p.errorf(append(slices.Clip(path), k), "unknown %s %q %s; allowed: %s", what, k, where, strings.Join(allowed, ", "))
	}
}

// table returns v as a table, or reports that it must be one.
func (p *parser) table(path []string, v any) (map[string]any, bool) {
	t, ok := v.(map[string]any)
	if !ok {
		p.errorf(path, "must be a table (%s or %s = { ... }), not %s", tableName(path), tomlKey(path[len(path)-1]), typeName(v))
	}
	return t, ok
}

// str returns v as a string, or reports that it must be one.
func (p *parser) str(path []string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		p.errorf(path, "must be a string, not %s", typeName(v))
	}
	return s, ok
}

// integer returns v as an integer, or reports that it must be one.
func (p *parser) integer(path []string, v any) (int64, bool) {
	n, ok := v.(int64)
	if !ok {
		p.errorf(path, "must be an integer, not %s", typeName(v))
	}
	return n, ok
}

// boolean returns v as a boolean, or reports that it must be one.
func (p *parser) boolean(path []string, v any) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		p.errorf(path, "must be a boolean (true or false), not %s", typeName(v))
	}
	return b, ok
}

// intIn returns v as an int in lo..hi, or reports what is wrong.
func (p *parser) intIn(path []string, v any, lo, hi int64) (int, bool) {
	n, ok := p.integer(path, v)
	if !ok {
		return 0, false
	}
	if msg := checkRange(n, lo, hi); msg != "" {
		p.add(path, msg)
		return 0, false
	}
	return int(n), true
}

// strings returns v as a list of strings (nil if empty), or reports that
// it must be one; example shows a valid value.
func (p *parser) strings(path []string, v any, example string) ([]string, bool) {
	a, ok := v.([]any)
	if !ok {
		p.errorf(path, "must be an array of strings such as %s, not %s", example, typeName(v))
		return nil, false
	}
	var list []string
	for i, e := range a {
		s, ok := e.(string)
		if !ok {
			p.errorf(path, "element %d must be a string, not %s", i+1, typeName(e))
			return nil, false
		}
		list = append(list, s)
	}
	return list, true
}

// duration returns v as a time.Duration, or reports what is wrong. Range
// checks are left to Validate.
func (p *parser) duration(path []string, v any) (time.Duration, bool) {
	s, ok := v.(string)
	if !ok {
		p.errorf(path, `must be a duration string such as "1s", "500ms" or "1m30s", not %s`, typeName(v))
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.errorf(path, `invalid duration %q; use Go duration syntax such as "1s", "500ms" or "1m30s"`, s)
		return 0, false
	}
	return d, true
}

// ParseUser parses "UID:GID" or "UID" (then GID = UID); both numeric, at
// most MaxID.
func ParseUser(s string) (User, error) {
	bad := fmt.Errorf(`invalid user %q; must be numeric "UID:GID" or "UID" with IDs from 0 to %d (user names are not resolved)`, s, uint32(MaxID))
	us, gs, found := strings.Cut(s, ":")
	if !found {
		gs = us
	}
	uid, err1 := parseID(us)
	gid, err2 := parseID(gs)
	if err1 != nil || err2 != nil {
		return User{}, bad
	}
	return User{UID: uid, GID: gid}, nil
}

// parseID parses a decimal uid or gid in 0..MaxID.
func parseID(s string) (uint32, error) {
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, errors.New("not a number")
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > MaxID {
		return 0, errors.New("out of range")
	}
	return uint32(n), nil
}

// sizeRE matches a size: digits, optional fraction, optional unit.
var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)(K|M|G|T|k|m|g|t|KiB|MiB|GiB|TiB)?$`)

// sizeShift maps a size unit to its power of two.
var sizeShift = map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "kib": 10, "mib": 20, "gib": 30, "tib": 40}

// ParseSize parses a size: an integer number of bytes ("1048576") or a
// number with a 1024-based unit K, M, G or T (also k, m, g, t and KiB,
// MiB, GiB, TiB), e.g. "256M" or "1.5G". Fractions of a byte are
// truncated; a fraction without a unit is an error.
func ParseSize(s string) (uint64, error) {
	bad := fmt.Errorf(`invalid size %q; use an integer number of bytes or a number with a 1024-based unit K, M, G or T (or KiB, MiB, GiB, TiB; k, m, g), such as "256M" or "1.5G"`, s)
	m := sizeRE.FindStringSubmatch(s)
	if m == nil || len(s) > 40 || m[2] == "" && strings.Contains(m[1], ".") {
		return 0, bad
	}
	r, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, bad
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), sizeShift[strings.ToLower(m[2])])))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsUint64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n.Uint64(), nil
}

// parseSizeValue converts a TOML size value: a size string or an integer
// number of bytes.
func parseSizeValue(v any) (uint64, error) {
	switch v := v.(type) {
	case string:
		return ParseSize(v)
	case int64:
		if v < 0 {
			return 0, fmt.Errorf("%d is negative; must be a size such as \"256M\" or a number of bytes", v)
		}
		return uint64(v), nil
	}
	return 0, fmt.Errorf(`must be a size string such as "256M" or an integer number of bytes, not %s`, typeName(v))
}

// describeValue formats a size value as written in TOML.
func describeValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// asFloat returns v as a float64 if it is a TOML number.
func asFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	}
	return 0, false
}

// cleanPath returns p cleaned if it is absolute and has no ".."
// components; otherwise p unchanged, for Validate to report.
func cleanPath(p string) string {
	if !path.IsAbs(p) || hasDotDot(p) {
		return p
	}
	return path.Clean(p)
}

// typeName names the TOML type of a decoded value, with an article.
func typeName(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "a float (" + fmt.Sprint(v) + ")"
		}
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	}
	return "a date/time"
}

// key builds a key path.
func key(path ...string) []string { return path }

// tomlKey formats one key as TOML would, quoting it if needed.
func tomlKey(k string) string { return toml.Key{k}.String() }

// tableName formats the table at path as its header: "[vm.network]", or
// "[[vm.disk]]" for an element of an array of tables.
func tableName(path []string) string {
	if n := len(path); n > 0 && strings.HasPrefix(path[n-1], elemPrefix) {
		return "[[" + keyString(path[:n-1]) + "]]"
	}
	return "[" + keyString(path) + "]"
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
