package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/cove-project/cove/internal/network/plan"
)

// MaxFileSize is the largest spec file Parse accepts, in bytes.
const MaxFileSize = 1 << 20

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
//
// Each value is checked once: while it is read (its TOML type, the syntax
// of sizes, durations, users, readiness, forwards and capability names,
// and the range the key table gives an integer), or else by validation,
// which leaves out the keys that could not be read.
func Parse(file string, data []byte, name string) (*Spec, error) {
	s, err := parse(file, data, name, ValidName)
	switch {
	case err == nil && s.Kind == KindNetwork:
		return nil, Errors{keyError(file, data, "kind", networkKindMsg)}
	case err == nil && s.Kind == KindVolume:
		return nil, Errors{keyError(file, data, "kind", volumeKindMsg)}
	}
	return s, err
}

// volumeKindMsg is Parse's error for a volume file, which ParseVolumeFile
// reads.
var volumeKindMsg = `kind "volume" declares a volume, not a workload: volume files go in ` + VolumesDir + `/NAME.toml`

// networkKindMsg is Parse's error for a network file (IsNetworkFile).
var networkKindMsg = `kind "network" declares a network, not a workload: network files go in ` + NetworksDir + `/NAME.toml`

// IsNetworkFile says whether err is Parse's (or Load's) refusal of a
// network file, which ParseNetwork reads.
func IsNetworkFile(err error) bool {
	var es Errors
	return errors.As(err, &es) && len(es) == 1 && es[0].Key == "kind" && es[0].Msg == networkKindMsg
}

// parse is Parse for a workload or a network file, whose names validName
// checks.
func parse(file string, data []byte, name string, validName func(string) error) (*Spec, error) {
	p := &parser{file: file, src: source{values: map[string]any{}, failed: map[string]bool{}}}
	if name == "" && file != "" {
		name = strings.TrimSuffix(filepath.Base(file), ".toml")
		if err := validName(name); err != nil {
			p.addName(errorMsg(err) + "; the name is taken from the file name: rename the file or give a name explicitly")
		}
	} else if err := validName(name); err != nil {
		p.addName(errorMsg(err))
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
	if errors.As(s.validate(&p.src), &verrs) {
		for _, e := range verrs {
			p.addKey(e.Key, e.Msg)
		}
	}
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// errorMsg is the message of a name error: an *Error's or a
// plan.InvalidError's without its prefix, else the whole text.
func errorMsg(err error) string {
	var e *Error
	var inv *plan.InvalidError
	switch {
	case errors.As(err, &e):
		return e.Msg
	case errors.As(err, &inv):
		return fmt.Sprintf("invalid network name %q: %s", inv.Network, inv.Msg)
	}
	return err.Error()
}

// KeyError returns an error about key (e.g. "vm.disk[1].path") at the
// key's position in the file the spec was read from, for checks made
// after parsing (files that must exist, host capabilities).
// The file is read again to find the position; without it (or for a spec
// built from flags) the error has no line:col.
func (s *Spec) KeyError(key, msg string) *Error {
	data, err := os.ReadFile(s.File)
	if err != nil {
		return &Error{File: s.File, Key: key, Msg: msg}
	}
	return keyError(s.File, data, key, msg)
}

// keyError is an error about key at its position in data, the content
// of file.
func keyError(file string, data []byte, key, msg string) *Error {
	e := &Error{File: file, Key: key, Msg: msg}
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

// spec builds the Spec from doc, with defaults for absent keys.
func (p *parser) spec(doc map[string]any, name string) *Spec {
	d := Defaults(name)
	s := &Spec{Name: name, File: p.file, Service: d.Service, Security: d.Security}
	t := p.section(nil, doc)
	t.read("version", &s.Version)
	t.read("kind", &s.Kind)
	if s.Kind == KindVM {
		s.Security = Security{}
	}
	t.read("description", &s.Description)
	if c, ok := t.table("container"); ok {
		s.Container = readContainer(c, name)
	}
	if m, ok := t.table("vm"); ok {
		s.VM = readVM(m)
	}
	if r, ok := t.table("resources"); ok {
		readResources(r, &s.Resources)
	}
	if sv, ok := t.table("service"); ok {
		readService(sv, &s.Service)
	}
	if sec, ok := t.containerTable("security", s.Kind); ok {
		readSecurity(sec, &s.Security)
	}
	if d, ok := t.table("depends"); ok {
		readDepends(d, &s.Depends)
	}
	if n, ok := t.table("network"); ok {
		s.Network = readNetwork(n)
	}
	if vol, ok := t.table("volume"); ok {
		s.Volume = readVolume(vol)
	}
	if h, ok := t.table("health"); ok {
		s.Health = readHealth(h)
	}
	if in, ok := t.table("install"); ok {
		in.read("wanted_by", &s.Install.WantedBy)
	}
	return s
}
