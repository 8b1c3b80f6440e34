package spec

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Differs reports whether a and b differ in k: for a table that is a
// pointer ([container], [vm], [health]), whether one has it and the other
// not; for another table, never (its keys are compared); for a key of an
// array element, never (the array is compared as a whole); for a key in
// a table only one of them has, never (the table differs). Neither a nor
// b may be nil.
func (k Key) Differs(a, b *Spec) bool {
	if strings.Contains(k.Path, "[]") {
		return false
	}
	for _, f := range k.Fields() {
		va, okA := field(a, f)
		vb, okB := field(b, f)
		switch {
		case !okA || !okB:
			return false
		case k.Type == TypeTable:
			if va.Kind() == reflect.Pointer && va.IsNil() != vb.IsNil() {
				return true
			}
		case !reflect.DeepEqual(va.Interface(), vb.Interface()):
			return true
		}
	}
	return false
}

// field returns the field of s at path ("Container.Rootfs"), and false if
// a table on the way is nil.
func field(s *Spec, path string) (reflect.Value, bool) {
	v := reflect.ValueOf(s)
	for name := range strings.SplitSeq(path, ".") {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return v, false
			}
			v = v.Elem()
		}
		v = v.FieldByName(name)
	}
	return v, true
}

// SetFlag sets the key that the cove run flag name (or short name) sets,
// from the flag's value: a scalar is replaced (sizes, durations, numbers,
// booleans and users as ParseSize, time.ParseDuration, strconv and
// ParseUser read them; paths as given, for Validate to check), a list
// gains the value, the environment a "KEY=VALUE" entry and the mounts one
// in the flag's syntax (ParseVolume, ParseTmpfs). A flag of a container
// key needs s.Container.
func (s *Spec) SetFlag(name, value string) error {
	k := schema().byFlag[name]
	if k == nil {
		return fmt.Errorf("no spec key has the flag --%s", name)
	}
	v, ok := field(s, k.Fields()[0])
	if !ok {
		return fmt.Errorf("--%s sets %s, which a %s has not", name, k.Path, s.Kind)
	}
	var err error
	switch d := v.Addr().Interface().(type) {
	case *string:
		*d = value
	case *bool:
		*d, err = strconv.ParseBool(value)
	case *float64:
		*d, err = strconv.ParseFloat(value, 64)
	case *time.Duration:
		*d, err = time.ParseDuration(value)
	case *User:
		*d, err = ParseUser(value)
	case *uint64:
		if k.Type == TypeSize {
			*d, err = ParseSize(value)
		} else {
			*d, err = strconv.ParseUint(value, 10, 64)
		}
	case *[]string:
		*d = append(*d, value)
	case *map[string]string:
		if *d == nil {
			*d = map[string]string{}
		}
		name, val, _ := strings.Cut(value, "=")
		(*d)[name] = val
	case *[]Mount:
		var m Mount
		if m, err = k.flag(name).mount(value); err == nil {
			*d = append(*d, m)
		}
	default:
		panic("spec: no flag syntax for " + k.Path)
	}
	return err
}

// flag returns k's flag called name (or short name).
func (k *Key) flag(name string) Flag {
	for _, f := range k.Flags {
		if f.Name == name || f.Short == name {
			return f
		}
	}
	return Flag{}
}
