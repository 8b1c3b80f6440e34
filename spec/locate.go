package spec

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// BurntSushi/toml records only value positions, and only privately, so
// keyPositions finds key positions itself with a small scanner. It is run
// on documents the toml parser has accepted, so it can be lenient; on any
// input it terminates without panicking, at worst with missing positions.

// position is a 1-based line and byte column.
type position struct{ Line, Col int }

// Limits on the shape of a spec file. The v1 schema needs far less; they
// exist because the toml parser takes time quadratic in key length and
// nesting depth, so Parse checks them (with the scanner) before parsing.
const (
	maxDepth    = 32 // nesting of arrays and inline tables
	maxKeyParts = 16 // parts of a dotted key or table name
	maxRecorded = 8  // longest key path whose position is recorded
)

// limitError is a breach of maxDepth or maxKeyParts found by the scanner.
type limitError struct {
	pos position
	msg string
}

// keyPositions returns the position of every key and table name in data,
// indexed by keyString(path) (e.g. "container.env.TZ"). The position is
// that of the token naming the last path element: the "TZ" in
// `env = { TZ = "UTC" }` or in `env.TZ = "UTC"`, the "container" in
// `[container]`. The first occurrence wins. Array elements are path
// elements elem(N), N counting from 1: the Nth value of an array (at its
// first byte) and the Nth [[table]] of an array of tables (at its name),
// so the keys of the second [[vm.disk]], or of the second inline table in
// `disk = [{...}, {...}]`, are recorded as "vm.disk[2].path". Only paths
// of up to maxRecorded parts are recorded. If data breaches maxDepth or
// maxKeyParts scanning stops there and the breach is returned too.
func keyPositions(data []byte) (map[string]position, *limitError) {
	s := &scanner{data: data, pos: make(map[string]position), aot: make(map[string]int), lineStarts: []int{0}}
	for i, c := range data {
		if c == '\n' {
			s.lineStarts = append(s.lineStarts, i+1)
		}
	}
	s.document()
	return s.pos, s.limit
}

// scanner walks a TOML document; i is the offset of the next byte.
type scanner struct {
	data       []byte
	i          int
	depth      int
	lineStarts []int
	pos        map[string]position
	aot        map[string]int // elements seen so far of each array of tables, by keyString
	limit      *limitError
}

// fail records a limit breach at offset off and ends the scan.
func (s *scanner) fail(off int, msg string) {
	if s.limit == nil {
		s.limit = &limitError{s.at(off), msg}
	}
	s.i = len(s.data)
}

// segment is one element of a key path and the offset of its token.
type segment struct {
	name string
	off  int
}

// document scans key/value pairs and table headers up to the end of data.
func (s *scanner) document() {
	var table []string
	for {
		s.skipBlank(true)
		if s.eof() {
			return
		}
		if s.data[s.i] == '[' {
			s.i++
			aot := s.peek('[')
			if aot {
				s.i++
			}
			if segs := s.keyPath(); segs != nil {
				table = s.record(nil, segs, aot)
			}
			s.skipLine()
			continue
		}
		segs := s.keyPath()
		if segs == nil {
			s.skipLine()
			continue
		}
		path := s.record(table, segs, false)
		s.skipBlank(false)
		if s.peek('=') {
			s.i++
			s.skipBlank(false)
			s.value(path)
		}
		s.skipLine()
	}
}

// value skips one value; keys of inline tables are recorded under path
// unless path is nil.
func (s *scanner) value(path []string) {
	if s.eof() {
		return
	}
	switch {
	case s.hasPrefix(`"""`):
		s.multiline(`"""`, true)
	case s.hasPrefix(`'''`):
		s.multiline(`'''`, false)
	case s.peek('"'), s.peek('\''):
		s.quoted()
	case s.peek('[') || s.peek('{'):
		s.depth++
		defer func() { s.depth-- }()
		if s.depth > maxDepth {
			s.fail(s.i, fmt.Sprintf("arrays and inline tables are nested more than %d levels deep; not allowed", maxDepth))
		} else if s.peek('[') {
			s.array(path)
		} else {
			s.inlineTable(path)
		}
	default: // number, boolean, date/time: up to a delimiter
		for !s.eof() && !isValueEnd(s.data[s.i]) {
			s.i++
		}
	}
}

// isValueEnd reports whether c ends a scalar value.
func isValueEnd(c byte) bool {
	switch c {
	case ',', ']', '}', '#', '\n', '\r':
		return true
	}
	return false
}

// array skips an array value, recording its elements (and the keys of
// inline tables in it) under path unless path is nil; s.i is at '['.
func (s *scanner) array(path []string) {
	s.i++
	for n := 1; ; {
		s.skipBlank(true)
		if s.eof() {
			return
		}
		switch s.data[s.i] {
		case ']':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		var sub []string
		if path != nil && len(path) < maxRecorded {
			sub = append(slices.Clip(path), elem(n))
			s.note(sub, s.i)
		}
		n++
		start := s.i
		s.value(sub)
		if s.i == start { // stray byte: step over it
			s.i++
		}
	}
}

// inlineTable records the keys of an inline table under path (unless path
// is nil) and skips it; s.i is at '{'.
func (s *scanner) inlineTable(path []string) {
	s.i++
	for {
		s.skipBlank(true)
		if s.eof() {
			return
		}
		switch s.data[s.i] {
		case '}':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		segs := s.keyPath()
		if segs == nil {
			s.i++
			continue
		}
		var sub []string
		if path != nil {
			sub = s.record(path, segs, false)
		}
		if len(sub) > maxRecorded {
			sub = nil
		}
		s.skipBlank(false)
		if s.peek('=') {
			s.i++
			s.skipBlank(false)
		}
		start := s.i
		s.value(sub)
		if s.i == start && !s.eof() && s.data[s.i] != '}' && s.data[s.i] != ',' {
			s.i++
		}
	}
}

// keyPath reads a dotted key such as `a . "b c" . 'd'`; it returns nil,
// having consumed nothing useful, if there is no key at s.i.
func (s *scanner) keyPath() []segment {
	var segs []segment
	for {
		s.skipBlank(false)
		seg, ok := s.key()
		if !ok {
			return nil
		}
		segs = append(segs, seg)
		if len(segs) > maxKeyParts {
			s.fail(seg.off, fmt.Sprintf("key has more than %d dotted parts; not allowed", maxKeyParts))
			return nil
		}
		s.skipBlank(false)
		if !s.peek('.') {
			return segs
		}
		s.i++
	}
}

// key reads one bare, "basic" or 'literal' key.
func (s *scanner) key() (segment, bool) {
	start := s.i
	if s.peek('"') || s.peek('\'') {
		s.quoted()
		raw := string(s.data[start:s.i])
		if len(raw) < 2 || raw[len(raw)-1] != raw[0] {
			return segment{}, false
		}
		if raw[0] == '\'' {
			return segment{raw[1 : len(raw)-1], start}, true
		}
		name, err := strconv.Unquote(raw)
		if err != nil {
			name = raw[1 : len(raw)-1]
		}
		return segment{name, start}, true
	}
	for !s.eof() && isBareKeyChar(s.data[s.i]) {
		s.i++
	}
	if s.i == start {
		return segment{}, false
	}
	return segment{string(s.data[start:s.i]), start}, true
}

// isBareKeyChar reports whether c may appear in a bare key.
func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// quoted skips a single-line "basic" or 'literal' string; s.i is at the
// opening quote. An unterminated string ends at the end of the line.
func (s *scanner) quoted() {
	q := s.data[s.i]
	s.i++
	for !s.eof() {
		c := s.data[s.i]
		switch {
		case c == '\\' && q == '"':
			s.i += 2
		case c == q:
			s.i++
			return
		case c == '\n':
			return
		default:
			s.i++
		}
	}
	s.i = min(s.i, len(s.data))
}

// multiline skips a multi-line string delimited by delim; s.i is at the
// opening delimiter. Up to two extra quotes before the closing delimiter
// belong to the string.
func (s *scanner) multiline(delim string, escapes bool) {
	s.i += len(delim)
	for !s.eof() {
		if escapes && s.data[s.i] == '\\' {
			s.i += 2
			continue
		}
		if s.hasPrefix(delim) {
			s.i += len(delim)
			for n := 0; n < 2 && s.peek(delim[0]); n++ {
				s.i++
			}
			return
		}
		s.i++
	}
	s.i = min(s.i, len(s.data))
}

// skipBlank skips spaces, tabs and comments, and newlines too if newlines
// is set.
func (s *scanner) skipBlank(newlines bool) {
	for !s.eof() {
		switch s.data[s.i] {
		case ' ', '\t':
			s.i++
		case '\r', '\n':
			if !newlines {
				return
			}
			s.i++
		case '#':
			for !s.eof() && s.data[s.i] != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

// skipLine moves s.i past the next newline (or to the end of data).
func (s *scanner) skipLine() {
	for !s.eof() && s.data[s.i] != '\n' {
		s.i++
	}
	if !s.eof() {
		s.i++
	}
}

// record stores the positions of path+segs (and of its prefixes through
// segs) if not yet known, and returns path+segs as a new slice. A segment
// naming an array of tables is followed by elem(N) for its current, Nth
// element; header says that segs name a new element ([[segs]]).
func (s *scanner) record(path []string, segs []segment, header bool) []string {
	full := make([]string, len(path), len(path)+2*len(segs))
	copy(full, path)
	for j, seg := range segs {
		full = append(full, seg.name)
		s.note(full, seg.off)
		k := keyString(full)
		n := s.aot[k]
		if header && j == len(segs)-1 {
			n++
			s.aot[k] = n
		}
		if n > 0 {
			full = append(full, elem(n))
			s.note(full, seg.off)
		}
	}
	return full
}

// note stores the position of path, at offset off, unless it is known or
// path is longer than maxRecorded.
func (s *scanner) note(path []string, off int) {
	if len(path) > maxRecorded {
		return
	}
	k := keyString(path)
	if _, ok := s.pos[k]; !ok {
		s.pos[k] = s.at(off)
	}
}

// elemPrefix starts a key path element that stands for an array element.
// Keys cannot contain it: it is invalid UTF-8.
const elemPrefix = "\xff"

// elem returns the key path element that stands for element n (counting
// from 1) of an array or array of tables.
func elem(n int) string { return elemPrefix + strconv.Itoa(n) }

// keyString formats a key path as errors show it: dotted, each key quoted
// if TOML needs it, array elements as [N]; e.g. `container.env."A B"` or
// "vm.disk[2].path".
func keyString(path []string) string {
	var b strings.Builder
	for i, k := range path {
		if n, ok := strings.CutPrefix(k, elemPrefix); ok {
			b.WriteString("[" + n + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tomlKey(k))
	}
	return b.String()
}

// parentKey returns the key that encloses the formatted key k ("vm.disk"
// for "vm.disk[2]", "vm.disk[2]" for "vm.disk[2].path", `env` for
// `env."a.b"`), or "".
func parentKey(k string) string {
	last, quoted := -1, false
	for i := 0; i < len(k); i++ {
		switch c := k[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && (c == '.' || c == '['):
			last = i
		}
	}
	if last <= 0 {
		return ""
	}
	return k[:last]
}

// at converts a byte offset into a position.
func (s *scanner) at(off int) position {
	line := sort.Search(len(s.lineStarts), func(j int) bool { return s.lineStarts[j] > off })
	return position{Line: line, Col: off - s.lineStarts[line-1] + 1}
}

func (s *scanner) eof() bool { return s.i >= len(s.data) }

func (s *scanner) peek(c byte) bool { return s.i < len(s.data) && s.data[s.i] == c }

func (s *scanner) hasPrefix(p string) bool {
	return len(s.data)-s.i >= len(p) && string(s.data[s.i:s.i+len(p)]) == p
}
