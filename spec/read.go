package spec

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// parser turns a decoded TOML document into a Spec, collecting errors
// positioned at the offending keys. It reads values as the key table
// declares them (TOML type, integer range) and the syntax of sizes,
// durations, users, readiness, forwards and capability names; everything
// else is left to validate, which it tells what the file sets (src).
type parser struct {
	file string
	pos  map[string]position // from keyPositions
	errs Errors
	src  source
}

// source is what the parser tells validate about the file a spec comes
// from.
type source struct {
	values map[string]any  // the TOML value of every key read, by dotted key
	failed map[string]bool // the keys the parser reported: what the spec holds for them is not what the file says
}

// has reports whether the file sets key.
func (s *source) has(key string) bool {
	if s == nil {
		return false
	}
	_, ok := s.values[key]
	return ok
}

// failedAt reports whether the parser reported key or a table it is in,
// so that validate does not judge a value the file does not hold.
func (s *source) failedAt(key string) bool {
	for k := key; s != nil && k != ""; k = parentKey(k) {
		if s.failed[k] {
			return true
		}
	}
	return false
}

// addName reports a problem with the workload name, which has no position.
func (p *parser) addName(msg string) {
	p.errs = append(p.errs, &Error{File: p.file, Key: "name", Msg: msg})
	p.src.failed["name"] = true
}

// add reports msg for the key path.
func (p *parser) add(path []string, msg string) {
	k := keyString(path)
	p.addKey(k, msg)
	p.src.failed[k] = true
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
}

func (p *parser) errorf(path []string, format string, args ...any) {
	p.add(path, fmt.Sprintf(format, args...))
}

// table is a TOML table being read, at path.
type table struct {
	p    *parser
	path []string
	t    map[string]any
}

// section reports the keys of t that the table at path does not have,
// and returns t for reading.
func (p *parser) section(path []string, t map[string]any) table {
	var b strings.Builder
	for i, k := range path {
		if strings.HasPrefix(k, elemPrefix) {
			b.WriteString("[]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(k)
	}
	allowed := schema().names[b.String()]
	for _, k := range sortedKeys(t) {
		if !slices.Contains(allowed, k) {
			p.unknown(path, k, t[k], allowed)
		}
	}
	return table{p, path, t}
}

// unknown reports the key k, with value v, of the table at path.
func (p *parser) unknown(path []string, k string, v any, allowed []string) {
	what := "key"
	if _, ok := v.(map[string]any); ok {
		what = "table"
	}
	where := "at the top level"
	if path != nil {
		where = "in " + tableName(path)
	}
	p.errorf(append(slices.Clip(path), k), "unknown %s %q %s; allowed: %s", what, k, where, strings.Join(allowed, ", "))
}

// key returns the path of t's key name.
func (t table) key(name string) []string { return append(slices.Clip(t.path), name) }

// has reports whether t sets name.
func (t table) has(name string) bool {
	_, ok := t.t[name]
	return ok
}

// fail reports msg for t's key name.
func (t table) fail(name, msg string) { t.p.add(t.key(name), msg) }

// value returns the value of key name and the key, noting that the file
// sets it.
func (t table) value(name string) (any, []string, bool) {
	v, ok := t.t[name]
	if ok {
		t.p.src.values[keyString(t.key(name))] = v
	}
	return v, t.key(name), ok
}

// read reads key name into dst, a pointer to the Go type of its Type (a
// string, bool, []string, map[string]string, time.Duration, uint64 for a
// size, float64 for a number, int or uint64 for an integer), and reports
// whether the file sets it to a value of that type: of its TOML type, in
// its syntax and, for an integer, in the key's range. A value that is not
// is reported and leaves the zero value in a string, bool, list or
// duration (as an empty value would), and a number unchanged.
func (t table) read(name string, dst any) bool {
	v, path, ok := t.value(name)
	if !ok {
		return false
	}
	p, k := t.p, keyAt(keyString(path))
	switch k.Type {
	case TypeString, TypePath:
		s, ok := p.str(path, v)
		if k.Type == TypePath {
			s = cleanPath(s)
		}
		*dst.(*string) = s
		return ok
	case TypeBoolean:
		b, ok := v.(bool)
		if !ok {
			p.errorf(path, "must be a boolean (true or false), not %s", typeName(v))
		}
		*dst.(*bool) = b
		return ok
	case TypeStrings:
		list, ok := p.strings(path, v, k.Example)
		*dst.(*[]string) = list
		return ok
	case TypeStringMap:
		m, ok := p.env(path, v)
		*dst.(*map[string]string) = m
		return ok
	case TypeDuration:
		d, ok := p.duration(path, v)
		*dst.(*time.Duration) = d
		return ok
	}
	return t.readNumber(path, k, v, dst)
}

// readNumber reads an integer, number or size for read.
func (t table) readNumber(path []string, k *Key, v any, dst any) bool {
	p := t.p
	switch k.Type {
	case TypeInteger:
		n, ok := v.(int64)
		if !ok {
			p.errorf(path, "must be an integer, not %s", typeName(v))
			return false
		}
		if msg := k.checkRange(n); msg != "" {
			p.add(path, msg)
			return false
		}
		switch d := dst.(type) {
		case *int:
			*d = int(n)
		case *uint64:
			*d = uint64(n)
		}
	case TypeNumber:
		f, ok := asFloat(v)
		if !ok {
			p.errorf(path, "must be a number such as %s, not %s", k.Example, typeName(v))
			return false
		}
		*dst.(*float64) = f
	case TypeSize:
		n, err := parseSizeValue(v)
		if err != nil {
			p.add(path, err.Error())
			return false
		}
		*dst.(*uint64) = n
	default:
		panic("spec: read " + k.Path + " of type " + k.Type.String())
	}
	return true
}

// table returns t's table name for reading, if the file sets it to a
// table.
func (t table) table(name string) (table, bool) {
	v, path, ok := t.value(name)
	if !ok {
		return table{}, false
	}
	sub, ok := t.p.asTable(path, v)
	if !ok {
		return table{}, false
	}
	return t.p.section(path, sub), true
}

// containerTable is table for a table of container workloads only: in a
// spec of kind vm, it is reported instead.
func (t table) containerTable(name, kind string) (table, bool) {
	if kind == KindVM && t.has(name) {
		t.fail(name, vmUnsupported(name))
		return table{}, false
	}
	return t.table(name)
}

// each calls read for every element of t's array of tables name,
// written as [[a.b]] sections or as an array of inline tables. An element
// that is not a table is reported with the key's example, an inline table
// that would be right, and read gets an empty table for it, so that
// indexes stay those of the file.
func (t table) each(name string, read func(table)) {
	v, path, ok := t.value(name)
	if !ok {
		return
	}
	ex := keyAt(keyString(path)).Example
	var elems []any
	switch a := v.(type) {
	case []map[string]any:
		for _, e := range a {
			elems = append(elems, e)
		}
	case []any:
		elems = a
	default:
		t.p.errorf(path, `must be an array of tables (%s sections, or %s = [%s]), not %s`, tableName(append(slices.Clip(path), elem(1))), name, ex, typeName(v))
		return
	}
	for i, e := range elems {
		ep := append(slices.Clip(path), elem(i+1))
		et, ok := e.(map[string]any)
		if !ok {
			t.p.errorf(ep, `%s %d must be a table such as %s, not %s`, name, i+1, ex, typeName(e))
			et = map[string]any{}
		}
		read(t.p.section(ep, et))
	}
}

// asTable returns v as a table, or reports that it must be one.
func (p *parser) asTable(path []string, v any) (map[string]any, bool) {
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

// env converts a table of strings, or reports that v is not a table; it
// returns nil for an empty table, and leaves out (and reports) values
// that are not strings.
func (p *parser) env(path []string, v any) (map[string]string, bool) {
	t, ok := p.asTable(path, v)
	if !ok || len(t) == 0 {
		return nil, ok
	}
	env := make(map[string]string, len(t))
	for _, k := range sortedKeys(t) {
		if s, ok := p.str(append(slices.Clip(path), k), t[k]); ok {
			env[k] = s
		}
	}
	return env, true
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
