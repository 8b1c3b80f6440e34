package mountinfo

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	text := "36 31 0:33 /sub /sys/fs/cgroup/dev\\040ices rw,relatime shared:5 - cgroup cgroup rw,devices\nbroken line\n"
	want := []Mount{{Root: "/sub", MountPoint: "/sys/fs/cgroup/dev ices", FSType: "cgroup", Source: "cgroup", SuperOpts: []string{"rw", "devices"}}}
	if got := Parse(text); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse = %+v, want %+v", got, want)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`a\040b`: "a b", `\134`: `\`, `x\01`: `x\01`, `plain`: "plain", `\011t`: "\tt"} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
