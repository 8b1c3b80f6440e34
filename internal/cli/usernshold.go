package cli

import (
	"context"
	"io"
	"os"
)

// userNSHoldCmd holds the user namespace it was started in (isolate's
// StoppedRoot) until its standard input, a pipe, closes.
func userNSHoldCmd(_ context.Context, _ *Env, _ []string) error {
	io.Copy(io.Discard, os.Stdin) // an error ends the hold as EOF does
	return nil
}
