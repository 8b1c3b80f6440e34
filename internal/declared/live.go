package declared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
)

// compareLauncher stands for the launcher's path when two compilations of
// a workload are compared: only their differences matter.
const compareLauncher = "/usr/bin/cove"

// liveUpdate is one workload's change that needs no reload: its unit's
// properties to set live, and for a container whose launcher arguments
// changed, the new ones (its launcher configuration file is rewritten and
// the workload restarted).
type liveUpdate struct {
	change Change
	props  []units.Property
	launch []string // nil: unchanged
	file   string   // with launch: the file the loaded unit reads it from
}

// errReload says that a plan needs a reload after all.
var errReload = errors.New("the plan needs a reload")

// liveChanges returns what to set on which unit when every change of plan
// is a Changed workload whose units differ from those of its applied spec
// only in properties systemd applies live (units.LiveChange: limits,
// descriptions; not of a replicated workload) and in its container's
// launcher arguments (which its launcher reads from a file: the command,
// environment, image, mounts and the like; a replicated workload's
// number of instances unchanged); ok is false when the plan needs a
// reload.
func liveChanges(p Paths, plan Plan) (updates []liveUpdate, ok bool) {
	changed := 0
	for _, c := range plan {
		switch {
		case c.Kind == Unchanged:
			continue
		case c.Kind != Changed:
			return nil, false
		}
		changed++
		prev, err := spec.Load(p.AppliedPath(c.Name), "")
		if err == nil {
			err = hostcheck.Prepare(prev)
		}
		if err != nil || prev.Service.Replicas != c.Spec.Service.Replicas {
			return nil, false
		}
		u, ok := unitChanges(prev, c)
		if !ok || u.replicated() && len(u.props) > 0 {
			return nil, false
		}
		updates = append(updates, u)
	}
	return updates, changed > 0
}

// unitChanges compares the units of prev and next pairwise: the
// workload's own may change live (units.LiveChange) and in its launcher
// arguments, the others (its pull, health and proxy units) not at all;
// only the workload's unit has run-time settings that a reload drops
// (supervisor.RemoveLive).
func unitChanges(prev *spec.Spec, c Change) (liveUpdate, bool) {
	before, err1 := Units(prev, compareLauncher)
	after, err2 := Units(c.Spec, compareLauncher)
	if err1 != nil || err2 != nil || len(before) != len(after) {
		return liveUpdate{}, false
	}
	props, ok := units.LiveChange(before[0], after[0])
	if !ok {
		return liveUpdate{}, false
	}
	for i := 1; i < len(before); i++ {
		if other, ok := units.LiveChange(before[i], after[i]); !ok || len(other) > 0 {
			return liveUpdate{}, false
		}
	}
	u := liveUpdate{change: c, props: props}
	if !slices.Equal(before[0].LaunchArgs, after[0].LaunchArgs) {
		u.launch = after[0].LaunchArgs
	}
	return u, true
}

// applyLive carries out the updates with no reload: it sets the live
// properties on the loaded units, writes the changed launcher
// configurations (to the file the loaded unit names) and restarts those
// workloads, and records the specs applied. It returns errReload, having
// changed nothing, when a loaded unit does not read its launcher's
// configuration from a file (one loaded before cove did that), and an
// error wrapping errReload when systemd refuses a property (a reload then
// drops what was set); an error of a restart names the workload, whose
// spec is then not recorded.
func applyLive(ctx context.Context, p Paths, conn *supervisor.Conn, plan Plan, updates []liveUpdate, log io.Writer) error {
	for i := range updates {
		u := &updates[i]
		if u.launch == nil {
			continue
		}
		if u.file = conn.LaunchFile(ctx, u.unitOf()); u.file == "" {
			return errReload
		}
	}
	for _, u := range updates {
		if len(u.props) == 0 {
			continue
		}
		if err := conn.SetLive(ctx, spec.UnitName(u.change.Name), u.props); err != nil {
			return fmt.Errorf("%w: %w", errReload, err)
		}
	}
	done := map[string]error{}
	for _, u := range updates {
		if u.launch != nil {
			done[u.change.Name] = restartWith(ctx, p, conn, u, log)
		}
	}
	var errs []error
	for _, c := range plan {
		if c.Kind != Changed {
			continue
		}
		err := done[c.Name]
		if err == nil {
			err = record(p, c.Spec)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(log, "%s %s\n", c.Kind, c.Name)
	}
	return errors.Join(errs...)
}

// restartWith writes u's launcher configuration to u.file, under the
// launch lock, and restarts its workload, which reads it as it starts; a
// replicated workload's running instances restart one by one and the
// missing ones start, as after a reload (applyReplicated).
func restartWith(ctx context.Context, p Paths, conn *supervisor.Conn, u liveUpdate, log io.Writer) error {
	unlock, err := p.lockLaunch()
	if err != nil {
		return err
	}
	err = writeConfigFile(u.file, u.launch)
	unlock()
	if err != nil {
		return fmt.Errorf("apply %s: %w", u.change.Name, err)
	}
	if u.replicated() {
		return applyReplicated(ctx, conn, u.change, log)
	}
	return conn.Restart(ctx, u.change.Name)
}

// replicated reports whether u's workload is replicated (its instances
// restart; it has no live properties then).
func (u liveUpdate) replicated() bool { return u.change.Spec.Service.Replicas > 0 }

// unitOf is the workload whose loaded unit shows u's unit file: a
// replicated workload's first instance (systemd loads any instance from
// the template).
func (u liveUpdate) unitOf() string {
	if u.replicated() {
		return spec.InstanceName(u.change.Name, 1)
	}
	return u.change.Name
}
