// Command cove runs containers as systemd units, with no daemon. The same
// binary is also the container launcher (the hidden "launch" verbs that
// units run as ExecStart).
package main

import (
	"os"

	"github.com/cove-project/cove/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
