// Command cove-init runs the stages inside a container's namespaces
// (package isolate/inside): the container launcher starts it as the
// container's first process, cove exec and health probes to enter a
// running container; it is installed beside cove (launch.InsidePath).
package main

import (
	"os"

	"github.com/cove-project/cove/isolate/inside"
)

func main() { os.Exit(inside.Main(os.Args[1:], os.Stderr)) }
