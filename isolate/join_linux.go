package isolate

import (
	"os"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/supervisor"
)

// pendingJoin is a container's join of its networks (network.Join),
// running in the background from the moment its init exists (its network
// namespace is made by the clone) while the init sets up the container:
// the two take several milliseconds each and need nothing of each other.
// The payload is released only after wait.
type pendingJoin struct {
	c    launch.Config
	done chan struct{}
	err  error // Join's, once done is closed
}

// startJoin starts joining c, whose init has PID pid, to its networks (none
// for a container without: wait then returns nil at once).
func startJoin(c launch.Config, pid int) *pendingJoin {
	j := &pendingJoin{c: c, done: make(chan struct{})}
	if c.Network == "" {
		close(j.done)
		return j
	}
	go func() {
		defer close(j.done)
		r, done := joinRequest(network.Request{Network: c.Network, Also: c.MoreNetworks, Aliases: c.Aliases, Workload: c.Name, PID: pid, IP: c.IP, Ports: c.Ports})
		_, j.err = network.Join(r)
		done()
	}()
	return j
}

// wait waits for the join and returns its error; a Join that failed has
// given back what it took.
func (j *pendingJoin) wait() error {
	<-j.done
	return j.err
}

// undo waits for the join and, if it succeeded, leaves the networks
// again (the start failed after all).
func (j *pendingJoin) undo() error {
	if j.wait() != nil || j.c.Network == "" {
		return nil
	}
	return network.LeaveAll(j.c.Networks(), j.c.Name)
}

// joinRequest completes r, a launcher's network.Request, with the run
// that holds what it takes ($INVOCATION_ID, systemd's for the unit) and
// how to ask whether other workloads' runs still run
// (supervisor.LazyRuns, whose connection done closes).
func joinRequest(r network.Request) (_ network.Request, done func()) {
	r.Run = os.Getenv("INVOCATION_ID")
	r.Live, done = supervisor.LazyRuns()
	return r, done
}
