package declared

import (
	"context"
	"fmt"
	"io"

	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
)

// compareLauncher stands for the launcher's path when two compilations of
// a workload are compared: only their differences matter.
const compareLauncher = "/usr/bin/cove"

// liveUpdate is one unit's properties to set live.
type liveUpdate struct {
	unit  string
	props []units.Property
}

// liveChanges returns what to set on which unit when every change of plan
// is a Changed workload (not replicated) whose units differ from those of
// its applied spec only in properties systemd applies live
// (units.LiveChange: limits, descriptions); ok is false when the plan
// needs a reload.
func liveChanges(p Paths, plan Plan) (updates []liveUpdate, ok bool) {
	changed := 0
	for _, c := range plan {
		switch {
		case c.Kind == Unchanged:
			continue
		case c.Kind != Changed || c.Spec.Service.Replicas > 0:
			return nil, false
		}
		changed++
		prev, err := spec.Load(p.AppliedPath(c.Name), "")
		if err == nil {
			err = hostcheck.Prepare(prev)
		}
		if err != nil {
			return nil, false
		}
		u, ok := unitChanges(prev, c.Spec)
		if !ok {
			return nil, false
		}
		updates = append(updates, u...)
	}
	return updates, changed > 0
}

// unitChanges compares the units of prev and next pairwise: the
// workload's own may change live (units.LiveChange), the others (its
// pull, health and proxy units) not at all; only the workload's unit has
// run-time settings that a reload drops (supervisor.RemoveLive).
func unitChanges(prev, next *spec.Spec) ([]liveUpdate, bool) {
	before, err1 := Units(prev, compareLauncher)
	after, err2 := Units(next, compareLauncher)
	if err1 != nil || err2 != nil || len(before) != len(after) {
		return nil, false
	}
	props, ok := units.LiveChange(before[0], after[0])
	if !ok {
		return nil, false
	}
	for i := 1; i < len(before); i++ {
		if other, ok := units.LiveChange(before[i], after[i]); !ok || len(other) > 0 {
			return nil, false
		}
	}
	if len(props) == 0 {
		return nil, true
	}
	return []liveUpdate{{before[0].Name, props}}, true
}

// applyLive sets the live changes on the loaded units (no reload, no
// restart) and records the specs applied. On an error nothing is
// recorded: the caller reloads instead.
func applyLive(ctx context.Context, p Paths, conn *supervisor.Conn, plan Plan, updates []liveUpdate, log io.Writer) error {
	for _, u := range updates {
		if err := conn.SetLive(ctx, u.unit, u.props); err != nil {
			return err
		}
	}
	for _, c := range plan {
		if c.Kind != Changed {
			continue
		}
		if err := record(p, c.Spec); err != nil {
			return err
		}
		fmt.Fprintf(log, "%s %s\n", c.Kind, c.Name)
	}
	return nil
}
