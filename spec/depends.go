package spec

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// readDepends fills d from the [depends] table t.
func readDepends(t table, d *Depends) {
	for _, l := range dependLists(d) {
		t.read(l.key, l.names)
	}
}

// dependList is one list of Depends and its key in [depends].
type dependList struct {
	key   string
	names *[]string
}

// dependLists returns the lists of d in file order.
func dependLists(d *Depends) []dependList {
	var lists []dependList
	for _, name := range schema().names["depends"] {
		f := strings.TrimPrefix(keyAt("depends."+name).Field, "Depends.")
		lists = append(lists, dependList{name, reflect.ValueOf(d).Elem().FieldByName(f).Addr().Interface().(*[]string)})
	}
	return lists
}

// checkDependency returns "" if n is a valid workload name or unit name,
// else what is wrong.
func checkDependency(n string) string {
	if msg := checkText(n); msg != "" {
		return msg
	}
	if unitSuffix(n) {
		return checkUnitName(n)
	}
	if ValidName(n) != nil {
		return fmt.Sprintf(`invalid dependency %q: neither a workload name (%s) nor a unit name with a type suffix such as "postgresql.service" or "network-online.target"`, n, nameRule)
	}
	return ""
}

// depends checks d for the workload name.
func (v *validator) depends(name string, d *Depends) {
	for _, l := range dependLists(d) {
		k := "depends." + l.key
		seen := make(map[string]int)
		for i, n := range *l.names {
			if msg := checkDependency(n); msg != "" {
				v.add(k, fmt.Sprintf("element %d: %s", i+1, msg))
				continue
			}
			u := d.Units([]string{n})[0]
			if u == UnitName(name) {
				v.add(k, fmt.Sprintf("element %d: %q is this workload itself; a workload cannot depend on itself", i+1, n))
			} else if j, ok := seen[u]; ok {
				v.add(k, fmt.Sprintf("element %d: %q is listed twice (also element %d)", i+1, n, j))
			} else {
				seen[u] = i + 1
			}
		}
	}
}

// install checks in for the workload name.
func (v *validator) install(name string, in *Install) {
	const k = "install.wanted_by"
	for i, n := range in.WantedBy {
		switch {
		case checkUnitName(n) != "":
			v.add(k, fmt.Sprintf("element %d: %s", i+1, checkUnitName(n)))
		case n == UnitName(name):
			v.add(k, fmt.Sprintf("element %d: %q is this workload itself; a workload cannot be wanted by itself", i+1, n))
		case slices.Contains(in.WantedBy[:i], n):
			v.add(k, fmt.Sprintf("element %d: %q is listed twice", i+1, n))
		}
	}
}
