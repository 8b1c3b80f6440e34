package declared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/image/stored"
	"github.com/cove-project/cove/internal/network"
	"github.com/cove-project/cove/internal/outcome"
	"github.com/cove-project/cove/internal/userns"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// Scale brings replicated workload s to s.Service.Replicas instances:
// it starts instances 1 … N (one that runs is left be) and removes those
// above N (stopped, their writable layer and user namespace IDs
// dropped). It returns the instances it started and removed.
func Scale(ctx context.Context, conn *supervisor.Conn, s *spec.Spec) (started, removed []string, err error) {
	loaded, err := conn.Instances(ctx, s.Name)
	if err != nil {
		return nil, nil, err
	}
	removed, err = removeAbove(ctx, conn, loaded, s.Service.Replicas)
	errs := []error{err}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, startsAtOnce)
	for i := 1; i <= s.Service.Replicas; i++ {
		inst := spec.InstanceName(s.Name, i)
		wg.Go(func() {
			slots <- struct{}{}
			err := conn.Start(ctx, inst)
			<-slots
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if !slices.Contains(loaded, supervisor.Instance{Name: inst, Running: true}) {
				started = append(started, inst)
			}
		})
	}
	wg.Wait()
	slices.SortFunc(started, spec.CompareNames)
	return started, removed, errors.Join(errs...)
}

// startsAtOnce is how many instance start jobs Scale has systemd run at
// once: the launchers' work overlaps with systemd's forks and the
// D-Bus round trips (bench/replicas).
const startsAtOnce = 8

// removeAbove removes the instances of loaded numbered above n and
// returns their names.
func removeAbove(ctx context.Context, conn *supervisor.Conn, loaded []supervisor.Instance, n int) (removed []string, err error) {
	var errs []error
	for _, inst := range loaded {
		if _, i, _ := spec.SplitInstance(inst.Name); i > n {
			errs = append(errs, RemoveInstance(ctx, conn, inst.Name))
			removed = append(removed, inst.Name)
		}
	}
	return removed, errors.Join(errs...)
}

// RemoveInstance stops instance inst and drops its state: its writable
// layer and its user namespace IDs.
func RemoveInstance(ctx context.Context, conn *supervisor.Conn, inst string) error {
	if _, err := conn.Remove(ctx, inst); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
		return err
	}
	return ForgetState(inst)
}

// ForgetState drops what workload name keeps between runs until it is
// removed: its writable layer (units.Kept), the record of its user
// namespace IDs (package userns) and the record of how its last run ended
// (package outcome). Every removal of a workload, and every new workload
// of a name that was used before, goes through it.
func ForgetState(name string) error {
	return errors.Join(stored.RemoveState(name), userns.Default().Release(name), outcome.Remove(name),
		network.Holders{Root: network.DefaultHolderRoot}.Forget(name))
}

// replicasKey is the key whose change scales a workload.
const replicasKey = "service.replicas"

// applyReplicated applies change c of a replicated workload: a new one
// (whose instances' state forgetAdded dropped), or one that was not
// replicated (its unit stops), starts its instances; a change that needs
// a restart, or an adopted workload (Change.Adopted), restarts the
// running instances one by one; then Scale starts or removes the
// difference, and log gets a line for each instance started or removed.
func applyReplicated(ctx context.Context, conn *supervisor.Conn, c Change, log io.Writer) error {
	s := c.Spec
	switch {
	case c.Kind == Added && !c.Adopted:
		eventlog.Created(s, false)
	case slices.Contains(c.Keys, replicasKey): // maybe one unit before: stop it
		if err := conn.Stop(ctx, s.Name); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
			return err
		}
	}
	if c.Kind == Changed && needsRestart(c.Keys) || c.Adopted {
		if err := restartInstances(ctx, conn, s.Name, s.Service.Replicas); err != nil {
			return err
		}
	}
	started, removed, err := Scale(ctx, conn, s)
	for _, inst := range started {
		fmt.Fprintf(log, "started %s\n", inst)
	}
	for _, inst := range removed {
		fmt.Fprintf(log, "removed %s\n", inst)
	}
	return err
}

// restartInstances restarts the running instances of replicated workload
// name up to its n replicas (Scale removes those above), one after the
// other, so that the others serve meanwhile.
func restartInstances(ctx context.Context, conn *supervisor.Conn, name string, n int) error {
	loaded, err := conn.Instances(ctx, name)
	if err != nil {
		return err
	}
	for _, inst := range loaded {
		if _, i, _ := spec.SplitInstance(inst.Name); !inst.Running || i > n {
			continue
		}
		if err := conn.Restart(ctx, inst.Name); err != nil {
			return err
		}
	}
	return nil
}

// removeAllInstances removes every loaded instance of name (the workload
// is no longer replicated, or is removed).
func removeAllInstances(ctx context.Context, conn *supervisor.Conn, name string) error {
	loaded, err := conn.Instances(ctx, name)
	if err != nil {
		return err
	}
	_, err = removeAbove(ctx, conn, loaded, 0)
	return err
}
