// Command cove runs containers as systemd units, with no daemon. The same
// binary is also the container launcher (the hidden "launch" verbs that
// units run as ExecStart).
package main

import (
	"os"

	"github.com/cove-project/cove/internal/cli"
	_ "github.com/cove-project/cove/internal/hugeheap" // huge pages for the heap, from before other packages init
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
