package spec

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/cove-project/cove/internal/readme"
)

// sampleValue returns a TOML value of k's type.
func sampleValue(k Key) string {
	switch k.Type {
	case TypeString:
		if len(k.Values) > 0 {
			return fmt.Sprintf("%q", k.Values[0])
		}
		return `"x"`
	case TypePath:
		return `"/x"`
	case TypeInteger:
		return "1"
	case TypeNumber:
		return "0.5"
	case TypeBoolean:
		return "true"
	case TypeSize:
		return `"1M"`
	case TypeDuration:
		return `"1s"`
	case TypeStrings:
		return "[]"
	case TypeTables:
		return "[]"
	}
	return "{}"
}

// keysDoc returns a spec of kind setting every key of that kind but
// version and kind, and the keys it sets, with the first element of
// arrays of tables as [1].
func keysDoc(kind string) (string, []string) {
	var tables []string
	lines := map[string][]string{}
	var set []string
	for _, k := range Keys() {
		if k.Kind != "" && k.Kind != kind || k.Type == TypeTable || k.Type == TypeTables || k.Path == "version" || k.Path == "kind" {
			continue
		}
		table, name := splitPath(k.Path)
		if !slices.Contains(tables, table) {
			tables = append(tables, table)
		}
		lines[table] = append(lines[table], name+" = "+sampleValue(k))
		set = append(set, strings.ReplaceAll(k.Path, "[]", "[1]"))
	}
	b := fmt.Sprintf("version = 1\nkind = %q\n", kind)
	for _, t := range tables {
		if arr, isElem := strings.CutSuffix(t, "[]"); isElem {
			b += "[[" + arr + "]]\n"
		} else if t != "" {
			b += "[" + t + "]\n"
		}
		b += strings.Join(lines[t], "\n") + "\n"
	}
	return b, set
}

// TestKeysParsed: the parser knows every key of the table and reads each.
func TestKeysParsed(t *testing.T) {
	for _, kind := range []string{KindContainer, KindVM} {
		data, set := keysDoc(kind)
		if _, err := Parse("t.toml", []byte(data), "t"); err != nil && strings.Contains(err.Error(), "unknown") {
			t.Errorf("%s:\n%s\n%v", kind, data, err)
		}
		var doc map[string]any
		if _, err := toml.Decode(data, &doc); err != nil {
			t.Fatalf("%s:\n%s\n%v", kind, data, err)
		}
		p := &parser{file: "t.toml", src: source{values: map[string]any{}, failed: map[string]bool{}}}
		p.spec(doc, "t")
		for _, k := range set {
			if !p.src.has(k) {
				t.Errorf("%s: the parser does not read %s", kind, k)
			}
		}
	}
}

// TestKeysDocumented: README.md's reference table names every key of the
// table (a key is covered by a documented table it is in, and a table by
// its documented keys), and only keys of the table.
func TestKeysDocumented(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Skip("no README.md:", err)
	}
	documented := readmeKeys(string(data))
	if len(documented) < 20 {
		t.Fatalf("found only %d keys in README.md's reference", len(documented))
	}
	for _, d := range documented {
		if _, ok := KeyFor(d); !ok {
			t.Errorf("README.md documents %s, which is not a key", d)
		}
	}
	covered := func(path string) bool {
		for p := path; p != ""; p, _ = splitPath(p) {
			if slices.Contains(documented, strings.TrimSuffix(p, "[]")) {
				return true
			}
		}
		return slices.ContainsFunc(documented, func(d string) bool { return strings.HasPrefix(d, path+".") || strings.HasPrefix(d, path+"[]") })
	}
	for _, k := range Keys() {
		if !covered(k.Path) {
			t.Errorf("README.md's reference does not document %s", k.Path)
		}
	}
}

// readmeKeys returns the keys named in the reference's first column.
func readmeKeys(text string) []string {
	var keys []string
	for _, r := range readme.Reference(text) {
		keys = append(keys, r.Keys...)
	}
	return keys
}

// TestKeysFields: every field of Spec (but Name and File) holds exactly
// one key, tables' fields hold their keys, and walking the fields meets
// the keys in the table's order (the order of cove diff's keys).
func TestKeysFields(t *testing.T) {
	byField := map[string]string{}
	for _, k := range Keys() {
		for _, f := range k.Fields() {
			if prev, dup := byField[f]; dup {
				t.Errorf("field %s holds %s and %s", f, prev, k.Path)
			}
			byField[f] = k.Path
		}
	}
	var walked []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			path := prefix + f.Name
			if path == "Name" || path == "File" {
				continue
			}
			key, ok := byField[path]
			if !ok {
				t.Errorf("field %s holds no key", path)
				continue
			}
			if !slices.Contains(walked, key) {
				walked = append(walked, key)
			}
			k, _ := KeyFor(key)
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			switch k.Type {
			case TypeTable:
				walk(path+".", ft)
			case TypeTables:
				walk(path+"[].", ft)
			}
		}
	}
	walk("", reflect.TypeFor[Spec]())
	var paths []string
	for _, k := range Keys() {
		paths = append(paths, k.Path)
	}
	if !slices.Equal(walked, paths) {
		t.Errorf("fields in order hold\n%q\nthe table is\n%q", walked, paths)
	}
}

// TestKeysFlags: every flag names its key, and sets it.
func TestKeysFlags(t *testing.T) {
	samples := map[Type]string{TypeString: "x", TypePath: "/x", TypeInteger: "1", TypeNumber: "0.5", TypeBoolean: "true", TypeSize: "1M", TypeDuration: "2s", TypeStrings: "x", TypeStringMap: "A=b", TypeTables: "/t:ro"}
	for _, k := range Keys() {
		for _, f := range k.Flags {
			for _, name := range []string{f.Name, f.Short} {
				if name == "" {
					continue
				}
				if got, ok := KeyForFlag(name); !ok || got.Path != k.Path {
					t.Errorf("--%s: key %s, want %s", name, got.Path, k.Path)
				}
				s := Defaults("web")
				v := samples[k.Type]
				if k.Path == "container.user" {
					v = "1:2"
				}
				if err := s.SetFlag(name, v); err != nil {
					t.Errorf("--%s %s: %v", name, v, err)
				} else if !k.Differs(Defaults("web"), s) {
					t.Errorf("--%s %s did not set %s", name, v, k.Path)
				}
			}
		}
	}
}

// TestKeysValues: keys with a value set are strings; integers with a
// range have a sane one.
func TestKeysValues(t *testing.T) {
	for _, k := range Keys() {
		if len(k.Values) > 0 && k.Type != TypeString {
			t.Errorf("%s has values but is a %s", k.Path, k.Type)
		}
		if (k.Min != 0 || k.Max != 0) && (k.Type != TypeInteger || k.Min > k.Max) {
			t.Errorf("%s: range %d..%d on a %s", k.Path, k.Min, k.Max, k.Type)
		}
	}
}
