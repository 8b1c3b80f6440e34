// Command cove-launch runs a container unit's stages (package stage):
// container units name it in ExecStart=, ExecStop= and ExecStopPost=; it
// is installed beside cove (launch.StagePath).
package main

import (
	"fmt"
	"os"

	"github.com/cove-project/cove/internal/stage"
)

func main() {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cove: find own binary: %v\n", err)
		os.Exit(1)
	}
	os.Exit(stage.Main(self, os.Args[1:], os.Stderr))
}
