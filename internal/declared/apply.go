package declared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/hostcheck"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
)

// Options say what to apply.
type Options struct {
	Paths Paths
	// Sources are spec files or directories of *.toml files to install into
	// Paths.Etc. Empty: apply what Paths already declares.
	Sources []string
	// Prune stops and deletes workloads that are not desired: with Sources,
	// every declared workload not among them; without, every applied one
	// whose spec is gone.
	Prune bool
	// Pull brings an image into the store as its policy says (showing
	// progress); nil: images are not pulled before the units start.
	Pull func(ctx context.Context, ref, policy string) error
}

// desired is a workload to be, with the file its spec comes from.
type desired struct {
	spec   *spec.Spec
	source string // a file in Sources, or the declared file itself
}

// Diff validates everything that would be applied and returns the plan,
// changing nothing. On a bad spec the error lists every problem of every
// file.
func Diff(opt Options) (Plan, error) {
	plan, _, err := load(opt)
	return plan, err
}

// load validates and plans, returning the desired workloads too.
func load(opt Options) (Plan, []desired, error) {
	files, err := opt.Paths.SpecFiles()
	if err != nil {
		return nil, nil, err
	}
	byName := map[string]string{}
	if len(opt.Sources) == 0 || !opt.Prune {
		for _, f := range files {
			byName[f.Name] = f.Path
		}
	}
	given, err := expand(opt.Sources)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range given {
		byName[f.Name] = f.Path
	}
	var want []desired
	var specs []*spec.Spec
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		s, err := spec.Load(byName[name], "")
		if err == nil {
			err = hostcheck.Prepare(s)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		want = append(want, desired{spec: s, source: byName[name]})
		specs = append(specs, s)
	}
	if len(errs) == 0 {
		if err := hostcheck.SharedDisks(specs); err != nil {
			errs = append(errs, err)
		}
		if es := spec.CheckSharedTargets(specs); len(es) > 0 {
			errs = append(errs, es)
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	applied, err := loadApplied(opt.Paths)
	if err != nil {
		return nil, nil, err
	}
	plan := Compare(applied, specs)
	if !opt.Prune {
		plan = plan.without(Removed)
	}
	return plan, want, nil
}

// expand lists the spec files among sources (files, or directories whose
// *.toml files count).
func expand(sources []string) ([]File, error) {
	var out []File
	for _, src := range sources {
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("apply %s: %w", src, err)
		}
		paths := []string{src}
		if st.IsDir() {
			if paths, err = filepath.Glob(filepath.Join(src, "*.toml")); err != nil {
				return nil, fmt.Errorf("apply %s: %w", src, err)
			}
		}
		for _, p := range paths {
			out = append(out, File{Name: strings.TrimSuffix(filepath.Base(p), ".toml"), Path: p})
		}
	}
	return out, nil
}

// loadApplied reads the copies of what was last applied. A copy that no
// longer parses counts as changed (its workload is restarted).
func loadApplied(p Paths) (map[string]*spec.Spec, error) {
	files, err := filepath.Glob(filepath.Join(p.Applied, "*.toml"))
	if err != nil {
		return nil, fmt.Errorf("read applied specs: %w", err)
	}
	applied := map[string]*spec.Spec{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".toml")
		s, err := spec.Load(f, "")
		if err != nil {
			s = &spec.Spec{Name: name}
		}
		hostcheck.PinAsPrepared(s) // as load's Prepare does to the desired ones: no change from the pin alone
		applied[name] = s
	}
	return applied, nil
}

// without drops changes of kind k.
func (p Plan) without(k string) Plan {
	var out Plan
	for _, c := range p {
		if c.Kind != k {
			out = append(out, c)
		}
	}
	return out
}

// Apply applies under the apply lock: plan, write specs, stop removed ones,
// reload once, start added and restart changed workloads (unless only
// live keys changed: resources, description, install), waiting for each.
// A plan of changes that need no reload (liveChanges: limits and
// descriptions, which systemd applies to the loaded units at once, and
// containers' launcher arguments, which their launchers read from a file
// at start) sets the former there and restarts the workloads whose
// launcher arguments changed, with no reload. It returns the plan
// carried out; an error names every workload that failed (with its last
// log lines) and leaves the others applied.
func Apply(ctx context.Context, opt Options, conn *supervisor.Conn, log io.Writer) (Plan, error) {
	unlock, err := opt.Paths.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return run(ctx, opt, conn, log)
}

// SetEnabled edits workload name's spec in Etc so that it is (targets) or
// is not (none) started at boot, then applies, under the apply lock. A
// vendor spec is copied to Etc first.
func SetEnabled(ctx context.Context, opt Options, conn *supervisor.Conn, name string, targets []string, log io.Writer) (Plan, error) {
	return editAndApply(ctx, opt, conn, "enable", name, func(path string) ([]byte, error) { return EnableFile(path, targets) }, log)
}

// SetReplicas edits replicated workload name's spec in Etc to run n
// instances, then applies (Scale: the difference starts or is removed),
// under the apply lock. A vendor spec is copied to Etc first.
func SetReplicas(ctx context.Context, opt Options, conn *supervisor.Conn, name string, n int, log io.Writer) (Plan, error) {
	return editAndApply(ctx, opt, conn, "scale", name, func(path string) ([]byte, error) { return ReplicasFile(path, n) }, log)
}

// editAndApply writes edit's text of workload name's spec (the one in
// Etc, else the vendor's) to Etc and applies, under the apply lock; op
// names the operation in errors. When the specs with the edit are
// refused (load), or the apply fails before it changes anything
// (errUnchanged: a name it would add is taken), the file is put back as
// it was.
func editAndApply(ctx context.Context, opt Options, conn *supervisor.Conn, op, name string, edit func(path string) ([]byte, error), log io.Writer) (Plan, error) {
	unlock, err := opt.Paths.Lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	path, err := opt.Paths.SpecOf(name)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", op, name, err)
	}
	if path == "" {
		return nil, fmt.Errorf("%s %s: no spec %s or %s", op, name, opt.Paths.EtcPath(name), opt.Paths.VendorPath(name))
	}
	data, err := edit(path)
	if err != nil {
		return nil, err
	}
	etc := opt.Paths.EtcPath(name)
	before, readErr := os.ReadFile(etc)
	if err := WriteFile(etc, data); err != nil {
		return nil, err
	}
	o := Options{Paths: opt.Paths}
	plan, want, err := load(o)
	if err != nil { // refused with the others (a sharer of its network, say): as it was
		return nil, errors.Join(err, restoreSpec(etc, before, readErr == nil))
	}
	plan, err = applyPlan(ctx, o, conn, plan, want, log)
	if errors.As(err, new(errUnchanged)) { // a name it would add is taken: as it was
		err = errors.Join(err, restoreSpec(etc, before, readErr == nil))
	}
	return plan, err
}

// restoreSpec puts back the spec file path as it was before an edit:
// before when it existed (had), else none.
func restoreSpec(path string, before []byte, had bool) error {
	if had {
		return WriteFile(path, before)
	}
	return Remove(path)
}

// run applies; the caller holds the lock.
func run(ctx context.Context, opt Options, conn *supervisor.Conn, log io.Writer) (Plan, error) {
	plan, want, err := load(opt)
	if err != nil {
		return nil, err
	}
	return applyPlan(ctx, opt, conn, plan, want, log)
}

// applyPlan carries out plan, the changes to the specs want, which load
// found; the caller holds the lock.
func applyPlan(ctx context.Context, opt Options, conn *supervisor.Conn, plan Plan, want []desired, log io.Writer) (Plan, error) {
	release, adopted, err := readyPlan(ctx, opt, conn, plan, log)
	if err != nil {
		return plan, err
	}
	defer release() // once the added units have started: a cove rm of one meanwhile then leaves what it keeps
	if err := writeSpecs(opt.Paths, want); err != nil {
		return plan, err
	}
	if updates, ok := liveChanges(opt.Paths, plan); ok {
		if err := applyLive(ctx, opt.Paths, conn, plan, updates, log); !errors.Is(err, errReload) {
			return plan, err
		} // else reload: it drops what was set
	}
	errs := removeAndUnset(ctx, opt.Paths, conn, plan)
	if err := conn.Reload(ctx); err != nil {
		return plan, errors.Join(append(errs, err)...)
	}
	if err := forgetAdded(plan, adopted); err != nil { // all before any starts: starting one may start another (Requires=)
		return plan, errors.Join(append(errs, err)...)
	}
	for _, c := range plan {
		if err := startChange(ctx, opt.Paths, conn, c, log); err != nil {
			errs = append(errs, err)
		}
	}
	return plan, errors.Join(errs...)
}

// removeAndUnset removes the workloads plan removes and drops the live
// settings of those it adds or changes (the unit files say all again
// after the reload: no earlier live setting may override them).
func removeAndUnset(ctx context.Context, paths Paths, conn *supervisor.Conn, plan Plan) []error {
	var errs []error
	for _, c := range plan {
		switch c.Kind {
		case Removed:
			errs = append(errs, remove(ctx, paths, conn, c.Name))
		case Added, Changed:
			errs = append(errs, supervisor.RemoveLive(spec.UnitName(c.Name)))
		}
	}
	return errs
}

// startChange starts or restarts the workload of c, an added or changed
// one, as its change needs, after the reload, records its applied spec
// and logs the change; other changes it leaves.
func startChange(ctx context.Context, paths Paths, conn *supervisor.Conn, c Change, log io.Writer) error {
	var err error
	switch {
	case c.Kind != Added && c.Kind != Changed:
		return nil
	case c.Spec.Service.Replicas > 0:
		err = applyReplicated(ctx, conn, c, log)
	case c.Kind == Added && c.Adopted: // onto the applied spec: the running one may be another's
		err = conn.Restart(ctx, c.Name)
	case c.Kind == Added:
		eventlog.Created(c.Spec, false)
		err = conn.Start(ctx, c.Name)
	case slices.Contains(c.Keys, replicasKey): // no longer replicated
		if err = removeAllInstances(ctx, conn, c.Name); err == nil {
			err = conn.Start(ctx, c.Name)
		}
	case needsRestart(c.Keys):
		err = conn.Restart(ctx, c.Name)
	}
	if err == nil {
		err = record(paths, c.Spec)
	}
	if err == nil {
		fmt.Fprintf(log, "%s %s\n", c.Kind, c.Name)
	}
	return err
}

// readyPlan does what an apply does before it changes anything: it
// checks that the names the plan adds are free (checkAdded), pulls the
// images, claims those names (claimAdded) and finds which of them it
// adopts (adoptedNames, marked in plan: Change.Adopted), returning the
// release of the names' locks (which may be called again) and the adopted
// names. An error from it is an
// errUnchanged: nothing was written.
func readyPlan(ctx context.Context, opt Options, conn *supervisor.Conn, plan Plan, log io.Writer) (func(), []string, error) {
	if err := checkAdded(ctx, opt.Paths, conn, plan); err != nil {
		return nil, nil, errUnchanged{err}
	}
	if err := pullImages(ctx, opt, plan); err != nil {
		return nil, nil, errUnchanged{err}
	}
	release, err := claimAdded(ctx, opt.Paths, conn, plan, log)
	if err != nil {
		return nil, nil, errUnchanged{err}
	}
	adopted, err := adoptedNames(ctx, conn, plan)
	if err != nil {
		release()
		return nil, nil, errUnchanged{err}
	}
	for i, c := range plan {
		plan[i].Adopted = c.Kind == Added && slices.ContainsFunc(adopted, func(name string) bool {
			base, _, _ := spec.SplitInstance(name)
			return base == c.Name || name == c.Name
		})
	}
	return release, adopted, nil
}

// adoptedNames are the names the plan adds (addedNames) whose units
// systemd has from unit files and has started since it loaded them
// (supervisor.Conn.RanFromUnitFile), before the apply writes anything:
// the generator's unit of a spec that no apply recorded (a vendor spec's
// started at boot, one put in Etc and started with systemctl), or such a
// template's instance. Those are not new workloads but the same ones, now
// applied: what they keep (a running one's writable layer) is theirs,
// and forgetAdded leaves it. A unit file that never ran counts for
// nothing: what its name keeps is an earlier workload's.
func adoptedNames(ctx context.Context, conn *supervisor.Conn, plan Plan) ([]string, error) {
	var adopted []string
	for _, name := range addedNames(plan) {
		ok, err := conn.RanFromUnitFile(ctx, spec.UnitName(name))
		if err != nil {
			return nil, fmt.Errorf("apply %s: %w", name, err)
		}
		if ok {
			adopted = append(adopted, name)
		}
	}
	return adopted, nil
}

// errUnchanged is an apply's error from before it changed anything.
type errUnchanged struct{ error }

func (e errUnchanged) Unwrap() error { return e.error }

// claimAdded takes the name's lock (Paths.LockName) of each workload the
// plan adds (not of a replicated one's instances: no cove run or Docker
// container can have an instance's name), until the returned function
// releases them, so that no cove run of such a name starts while this
// apply drops what the name left (forgetAdded) and starts its own; it
// may be called again (each lock's release does nothing the second
// time). A taken name (nameFree) fails the apply, its locks released. A
// wait for a lock is said on log (Paths.LockNameSaying).
func claimAdded(ctx context.Context, p Paths, conn *supervisor.Conn, plan Plan, log io.Writer) (func(), error) {
	var unlocks []func()
	release := func() {
		for _, u := range unlocks {
			u()
		}
	}
	for _, name := range plan.added() {
		unlock, err := p.LockNameSaying(ctx, name, log)
		if err != nil {
			err = fmt.Errorf("apply %s: %w", name, err)
		} else {
			unlocks = append(unlocks, unlock)
			err = nameFree(ctx, p, conn, name)
		}
		if err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

// checkAdded fails when a name the plan adds is taken (nameFree), without
// its lock: before the pulls, so that a taken name fails the apply
// early; claimAdded checks again, holding the lock.
func checkAdded(ctx context.Context, p Paths, conn *supervisor.Conn, plan Plan) error {
	for _, name := range plan.added() {
		if err := nameFree(ctx, p, conn, name); err != nil {
			return err
		}
	}
	return nil
}

// ErrNameTaken is wrapped by NameFree's, NotRecorded's and NotDeclared's
// refusals of a name another workload has.
var ErrNameTaken = errors.New("the name is taken")

// NameFree fails (ErrNameTaken) when a container created
// through Docker's API has workload name (Recorded: docker start would
// run on its writable layer), or a unit of that name is loaded and is not
// about to be collected (supervisor.AwaitCollected): a new workload's
// start would drop that one's writable layer. A unit of a unit file counts
// only with unitFiles (cove run's check; cove apply handles the declared
// ones itself and counts transient units alone).
func (p Paths) NameFree(ctx context.Context, conn *supervisor.Conn, name string, unitFiles bool) error {
	if err := p.NotRecorded(name); err != nil {
		return err
	}
	unit := spec.UnitName(name)
	_, err := conn.Status(ctx, name)
	if errors.Is(err, supervisor.ErrNotFound) {
		return nil
	}
	counts := unitFiles
	if err == nil && !counts {
		counts, err = conn.Transient(ctx, unit)
	}
	switch {
	case err != nil:
		return err
	case counts && !conn.AwaitCollected(ctx, unit):
		return fmt.Errorf("%w: %s is loaded (cove rm %s frees it)", ErrNameTaken, unit, name)
	}
	return nil
}

// NotRecorded fails (ErrNameTaken) when a container
// created through Docker's API has workload name (Recorded).
func (p Paths) NotRecorded(name string) error {
	switch recorded, err := p.Recorded(name); {
	case err != nil:
		return err
	case recorded:
		return fmt.Errorf("%w: a container created through Docker's API has it (docker rm %s frees it)", ErrNameTaken, name)
	}
	return nil
}

// NotDeclared fails (ErrNameTaken) when a spec file in Etc
// or Vendor declares workload name (declared but not yet loaded, or a
// replicated workload, whose instances have other names): a cove run or
// Docker container of that name would clash with the declared one's unit
// once the generator makes it.
func (p Paths) NotDeclared(name string) error {
	path, err := p.SpecOf(name)
	if err != nil || path == "" {
		return err
	}
	return fmt.Errorf("%w: %s declares it (cove start or cove apply runs it; give this one another name)", ErrNameTaken, path)
}

// nameFree is NameFree for a name the plan adds (transient units only).
func nameFree(ctx context.Context, p Paths, conn *supervisor.Conn, name string) error {
	if err := p.NameFree(ctx, conn, name, false); err != nil {
		return fmt.Errorf("apply %s: %w", name, err)
	}
	return nil
}

// added are the names the plan adds that a cove run or a Docker container
// could have too: addedNames but the instances of a replicated workload
// (no run can have an instance's name).
func (pl Plan) added() []string {
	return slices.DeleteFunc(addedNames(pl), func(name string) bool {
		_, _, instance := spec.SplitInstance(name)
		return instance
	})
}

// addedNames are the names the plan adds: each added workload's, or each
// instance's of an added replicated one.
func addedNames(plan Plan) []string {
	var names []string
	for _, c := range plan {
		if c.Kind != Added {
			continue
		}
		if n := c.Spec.Service.Replicas; n > 0 {
			for i := 1; i <= n; i++ {
				names = append(names, spec.InstanceName(c.Name, i))
			}
			continue
		}
		names = append(names, c.Name)
	}
	return names
}

// forgetAdded drops what earlier workloads of the added ones' names left
// (their writable layers, their user namespaces' IDs: ForgetState), of
// each of a replicated one's instances, before any of them starts: a
// container sharing another's network namespace starts that one first,
// whose state must not go after. The adopted names (adoptedNames) keep
// theirs.
func forgetAdded(plan Plan, adopted []string) error {
	for _, name := range addedNames(plan) {
		if slices.Contains(adopted, name) {
			continue
		}
		if err := ForgetState(name); err != nil {
			return err
		}
	}
	return nil
}

// needsRestart reports whether any of the changed keys needs the workload
// restarted to take effect: all but the keys the spec table marks live.
func needsRestart(keys []string) bool {
	for _, k := range keys {
		if key, ok := spec.KeyFor(k); !ok || !key.Live {
			return true
		}
	}
	return false
}

// writeSpecs installs each desired spec whose source is outside Etc.
func writeSpecs(p Paths, want []desired) error {
	for _, d := range want {
		dst := p.EtcPath(d.spec.Name)
		if d.source == dst || filepath.Dir(d.source) == p.Vendor {
			continue
		}
		data, err := os.ReadFile(d.source)
		if err != nil {
			return fmt.Errorf("apply %s: %w", d.source, err)
		}
		if err := WriteFile(dst, data); err != nil {
			return err
		}
	}
	return nil
}

// record keeps a copy of the spec just applied, to compare the next
// apply with.
func record(p Paths, s *spec.Spec) error {
	data, err := os.ReadFile(s.File)
	if err != nil {
		return fmt.Errorf("record applied spec of %s: %w", s.Name, err)
	}
	return WriteFile(p.AppliedPath(s.Name), data)
}

// remove stops a workload (or removes its instances) and deletes its spec,
// applied copy and run-time settings (which a later unit of its name
// would get).
func remove(ctx context.Context, p Paths, conn *supervisor.Conn, name string) error {
	if err := conn.Stop(ctx, name); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
		return err
	}
	if err := removeAllInstances(ctx, conn, name); err != nil {
		return err
	}
	if err := supervisor.RemoveLive(spec.UnitName(name)); err != nil {
		return err
	}
	if err := Remove(p.EtcPath(name)); err != nil {
		return err
	}
	if err := ForgetState(name); err != nil {
		return err
	}
	eventlog.Removed(name)
	return Remove(p.AppliedPath(name))
}

// pullImages pulls the images of the workloads the plan adds or changes,
// before anything is written: a failed pull leaves specs and units as
// they were.
func pullImages(ctx context.Context, opt Options, plan Plan) error {
	for _, c := range plan {
		if opt.Pull == nil || c.Kind != Added && c.Kind != Changed {
			continue
		}
		for _, im := range c.Spec.Images() {
			if err := opt.Pull(ctx, im.Ref, im.Pull); err != nil {
				return fmt.Errorf("apply %s: %s: %w", c.Name, im.Key, err)
			}
		}
	}
	return nil
}
