package isolate

import (
	"os"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/supervisor"
)

// joinRequest completes r, a launcher's network.Request, with the run
// that holds what it takes ($INVOCATION_ID, systemd's for the unit) and
// how to ask whether other workloads' runs still run
// (supervisor.LazyRuns, whose connection done closes).
func joinRequest(r network.Request) (_ network.Request, done func()) {
	r.Run = os.Getenv("INVOCATION_ID")
	r.Live, done = supervisor.LazyRuns()
	return r, done
}
