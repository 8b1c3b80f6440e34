package spec

import (
	"slices"
	"testing"
)

// TestInstanceNames: NAME@I splits back into its workload and number
// only when I is a plain number in range; ValidRef takes workload and
// instance names, ValidName only the former.
func TestInstanceNames(t *testing.T) {
	for _, c := range []struct {
		name string
		base string
		i    int
		ok   bool
	}{
		{"web@1", "web", 1, true},
		{"web@1000", "web", 1000, true},
		{"web@0", "", 0, false},
		{"web@1001", "", 0, false},
		{"web@01", "", 0, false},
		{"web@+1", "", 0, false},
		{"web@", "", 0, false},
		{"@1", "", 0, false},
		{"web", "", 0, false},
	} {
		base, i, ok := SplitInstance(c.name)
		if base != c.base || i != c.i || ok != c.ok {
			t.Errorf("SplitInstance(%q) = %q %d %v, want %q %d %v", c.name, base, i, ok, c.base, c.i, c.ok)
		}
	}
	if n := InstanceName("web", 7); n != "web@7" || UnitName(n) != "cove-web@7.service" || TemplateUnitName("web") != "cove-web@.service" {
		t.Errorf("instance 7 of web: %q, unit %q, template %q", n, UnitName(n), TemplateUnitName("web"))
	}
	if name, ok := NameOfUnit("cove-web@7.service"); !ok || name != "web@7" || BaseName(name) != "web" {
		t.Errorf("NameOfUnit(cove-web@7.service) = %q %v", name, ok)
	}
	if ValidRef("web@2") != nil || ValidName("web@2") == nil || ValidRef("Web@2") == nil || ValidRef("web@x") == nil {
		t.Errorf("ValidRef/ValidName of instance names")
	}
}

// TestCompareNames: instances sort by number, right after their
// workload's name and before the next name.
func TestCompareNames(t *testing.T) {
	names := []string{"web@10", "webapp", "web@2", "db", "web@1", "web"}
	slices.SortFunc(names, CompareNames)
	if want := []string{"db", "web", "web@1", "web@2", "web@10", "webapp"}; !slices.Equal(names, want) {
		t.Errorf("sorted: %v, want %v", names, want)
	}
}
