package spec

import (
	"slices"
	"strings"
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

// TestCheckSharedTargets: a sharer of a declared replicated workload must
// name an instance within its replicas; a VM and a sharer are refused
// as targets; a target not declared is left to the start.
func TestCheckSharedTargets(t *testing.T) {
	parse := func(name, body string) *Spec {
		s, err := Parse(name+".toml", []byte("version = 1\n"+body), name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return s
	}
	ctr := func(name, network string, extra string) *Spec {
		return parse(name, "kind = \"container\"\n[container]\nrootfs = \"/r\"\ncommand = [\"/bin/true\"]\nnetwork = \""+network+"\"\n"+extra)
	}
	specs := []*Spec{
		ctr("web", "none", "read_only = true\n[service]\nreplicas = 2\n"),
		ctr("solo", "none", ""),
		ctr("a", "container:web", ""),
		ctr("b", "container:web@2", ""),
		ctr("c", "container:web@3", ""),
		ctr("d", "container:solo", ""),
		ctr("e", "container:d", ""),
		ctr("f", "container:elsewhere", ""),
		parse("vm1", "kind = \"vm\"\n[vm]\nkernel = \"/k\"\n"),
		ctr("g", "container:vm1", ""),
	}
	var got []string
	for _, e := range CheckSharedTargets(specs) {
		got = append(got, e.File+": "+e.Msg)
	}
	want := []string{
		"a.toml: web is replicated (service.replicas = 2): name one instance, container:web@1",
		"c.toml: web@3 names an instance web does not have (service.replicas = 2)",
		"e.toml: d shares another container's network namespace itself (container:solo): share that one's",
		"g.toml: vm1 is a VM: only a container's network namespace can be shared",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
