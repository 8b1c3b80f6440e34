package isolate

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/tests/golden"
	"github.com/cove-project/cove/units"
)

var update = flag.Bool("update", false, "rewrite the QEMU command-line goldens")

// TestQEMUArgvGolden: the VM specs of the unit goldens
// (units/testdata/vm*.toml), compiled as a unit's ExecStart= carries them,
// give the QEMU command lines in testdata/NAME.qemu, one argument a
// line; go test ./isolate -update rewrites them. Adding a case is adding a
// VM spec there.
func TestQEMUArgvGolden(t *testing.T) {
	files, err := filepath.Glob("../units/testdata/vm*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no VM specs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := spec.Load(f, "")
			if err != nil {
				t.Fatal(err)
			}
			c := units.VMConfig(s)
			if c.Accel == spec.AccelAuto {
				c.Accel = spec.AccelTCG // what the launcher resolves here
			}
			argv, err := QEMUArgv(c)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", strings.TrimSuffix(filepath.Base(f), ".toml")+".qemu"), strings.Join(argv, "\n")+"\n", *update)
		})
	}
}
