package isolate

import (
	"fmt"
	"os"

	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/launch"
	"github.com/cove-project/cove/supervisor"
	"github.com/vishvananda/netns"
)

// pendingJoin is a container's join of its networks (network.Join),
// running in the background from the moment its init exists (the clone
// makes its network namespace) while the init sets up the container: the
// join needs only that namespace, and the init touches nothing of it but
// lo (which both bring up). Its caller must call wait before it releases
// the payload, and undo when the start fails.
type pendingJoin struct {
	c    launch.Config
	done chan struct{}
	err  error // Join's, once done is closed
}

// startJoin starts joining c, whose init has PID pid (just started, so
// alive), to its networks (none for a container without: wait then
// returns nil at once). The init's network namespace is opened before it
// returns, so the join cannot reach another process's if the init dies
// and its PID is reused meanwhile.
func startJoin(c launch.Config, pid int) *pendingJoin {
	j := &pendingJoin{c: c, done: make(chan struct{})}
	if c.Network == "" {
		close(j.done)
		return j
	}
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		j.err = fmt.Errorf("join %s to a network: open /proc/%d/ns/net: %w", c.Name, pid, err)
		close(j.done)
		return j
	}
	go func() {
		defer close(j.done)
		defer ns.Close()
		r, done := joinRequest(network.Request{Network: c.Network, Also: c.MoreNetworks, Aliases: c.Aliases, Workload: c.Name, Netns: ns, IP: c.IP, Ports: c.Ports})
		_, j.err = network.Join(r)
		done()
	}()
	return j
}

// wait waits for the join and returns its error; a Join that failed has
// given back what it took (or, where that failed too, says so: the
// unit's release unit gives it back).
func (j *pendingJoin) wait() error {
	<-j.done
	return j.err
}

// undo waits for the join and, if it succeeded, leaves the networks
// again (the start failed after all). A failed join's error is the
// start's to report, not undo's: undo returns only the leaving's.
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
