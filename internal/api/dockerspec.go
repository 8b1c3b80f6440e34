package api

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/spec"
)

// specBuild turns a create request into a spec, collecting what it
// refuses and what it ignores.
type specBuild struct {
	sp       *spec.Spec
	problems []string
	warnings []string
}

// refuse notes a field cove cannot honour.
func (b *specBuild) refuse(format string, args ...any) {
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// notYet refuses a set field cove does not support yet.
func (b *specBuild) notYet(set bool, what string) {
	if set {
		b.refuse("%s is not supported yet", what)
	}
}

// containerSpec builds the spec of container name from its create
// request as cove run builds one from flags: spec.Defaults, the image
// (ref, pinned; imageCmd is its CMD), then each field the request sets,
// then Validate. Docker's default network is runNetwork (the host's run
// network, hostconf). Fields cove cannot honour are refused (400, every
// one named); warnings say what it ignores. Whether a named network is
// declared is for the caller to check.
func containerSpec(name string, req *dockerCreate, ref string, imageCmd []string, runNetwork string) (*spec.Spec, []string, *Error) {
	b := &specBuild{sp: spec.Defaults(name)}
	b.sp.Container.SetImage(ref)
	b.sp.Container.Pull = spec.PullNever // in the store: create checked
	b.unsupported(req)
	b.config(req, imageCmd)
	b.health(req.Healthcheck)
	b.host(&req.HostConfig)
	b.network(req, runNetwork)
	b.ports(&req.HostConfig)
	b.mounts(&req.HostConfig)
	if len(b.problems) == 0 {
		if err := b.sp.Validate(); err != nil {
			b.refuse("%v", err)
		}
	}
	if len(b.problems) > 0 {
		return nil, nil, errorf(CodeBadRequest, fmt.Sprintf("create %s: %s", name, strings.Join(b.problems, "; ")))
	}
	return b.sp, b.warnings, nil
}

// Docker's health-check defaults, for a duration of 0 (the timeout: at
// most the interval, as cove's checks need).
const (
	dockerHealthInterval = 30 * time.Second
	dockerHealthTimeout  = 30 * time.Second
	dockerHealthRetries  = 3
)

// health makes Config.Healthcheck the spec's health check: its command
// ("CMD-SHELL" through /bin/sh -c), Docker's defaults for what it leaves
// 0, and no action when it fails (Docker only reports it; compose waits
// for it with depends_on's service_healthy). "NONE", or no test, is no
// check. The image's HEALTHCHECK is in h already (withImageHealth, at
// the create).
func (b *specBuild) health(h *dockerHealthcheck) {
	if h == nil {
		return
	}
	cmd, ok := healthCommand(h.Test)
	switch {
	case !ok:
		b.refuse("Healthcheck.Test %q: want [\"CMD\", ARG...], [\"CMD-SHELL\", COMMAND] or [\"NONE\"]", h.Test)
		return
	case cmd == nil:
		return
	}
	if h.Interval < 0 || h.Timeout < 0 || h.StartPeriod < 0 || h.Retries < 0 {
		b.refuse("Healthcheck: Interval, Timeout, StartPeriod and Retries must not be negative")
		return
	}
	retries := cmp.Or(h.Retries, dockerHealthRetries)
	if retries > spec.MaxHealthRetries {
		b.warnings = append(b.warnings, fmt.Sprintf("Healthcheck.Retries %d: cove counts at most %d failures in a row", retries, spec.MaxHealthRetries))
		retries = spec.MaxHealthRetries
	}
	interval := nsOr(h.Interval, dockerHealthInterval)
	timeout := nsOr(h.Timeout, min(dockerHealthTimeout, interval))
	if timeout > interval {
		b.warnings = append(b.warnings, fmt.Sprintf("Healthcheck.Timeout %v is longer than its Interval: cove's check times out after %v", timeout, interval))
		timeout = interval
	}
	b.sp.Health = &spec.Health{Command: cmd, Interval: interval, Timeout: timeout,
		Retries: retries, StartPeriod: nsOr(h.StartPeriod, 0), OnFailure: spec.HealthNone}
}

// healthCommand is the command of a health check's Test in one of
// Docker's forms: ["CMD", ARG...] as is, ["CMD-SHELL", COMMAND...]
// through /bin/sh -c (the words joined by spaces, as Docker does), nil
// for ["NONE"] or none; ok is false for any other form.
func healthCommand(test []string) (cmd []string, ok bool) {
	switch {
	case len(test) == 0 || test[0] == "NONE":
		return nil, true
	case test[0] == "CMD" && len(test) > 1:
		return test[1:], true
	case test[0] == "CMD-SHELL" && len(test) > 1:
		return []string{"/bin/sh", "-c", strings.Join(test[1:], " ")}, true
	}
	return nil, false
}

// withImageHealth is a create's Config.Healthcheck h with its image's
// HEALTHCHECK img (nil: none) under it, by Docker's rules: a create
// without one takes the image's; one without a test takes the image's
// test, and each value it leaves 0 the image's (--health-interval alone
// keeps the image's command). ["NONE"] (--no-healthcheck) stays none.
func withImageHealth(h *dockerHealthcheck, img *v1.HealthConfig) *dockerHealthcheck {
	if img == nil {
		return h
	}
	var out dockerHealthcheck
	if h != nil {
		out = *h
	}
	if len(out.Test) == 0 {
		out.Test = slices.Clone(img.Test)
	}
	out.Interval = cmp.Or(out.Interval, int64(img.Interval))
	out.Timeout = cmp.Or(out.Timeout, int64(img.Timeout))
	out.StartPeriod = cmp.Or(out.StartPeriod, int64(img.StartPeriod))
	out.Retries = cmp.Or(out.Retries, img.Retries)
	return &out
}

// fitImageHealth is an image's HEALTHCHECK img as cove can run it under
// a create's own check (own; nil: none), with a warning for each change
// of a value the create takes from it (withImageHealth): a negative value
// taken as unset, an interval or start period out of cove's range
// (spec.MinHealthInterval to spec.MaxDuration) moved to its nearest end,
// a test of none of Docker's forms dropped (no check). Docker checks only
// a create's own values, so an image's must not fail a create.
func fitImageHealth(img *v1.HealthConfig, own *dockerHealthcheck) (*v1.HealthConfig, []string) {
	var o dockerHealthcheck
	if own != nil {
		o = *own
	}
	if img == nil || len(o.Test) > 0 && o.Test[0] == "NONE" {
		return img, nil
	}
	if _, ok := healthCommand(img.Test); len(o.Test) == 0 && !ok {
		return nil, []string{fmt.Sprintf("the image's HEALTHCHECK %q is none of CMD, CMD-SHELL and NONE: no health check", img.Test)}
	}
	h := *img
	var warnings []string
	fit := func(what string, d *time.Duration, lo time.Duration, own int64) {
		was := *d
		switch {
		case own != 0:
			return // the create's
		case was < 0:
			*d = 0
		case was > 0 && was < lo:
			*d = lo
		case was > spec.MaxDuration:
			*d = spec.MaxDuration
		default:
			return
		}
		warnings = append(warnings, fmt.Sprintf("the image's HEALTHCHECK --%s %v: cove's check uses %v", what, was, *d))
	}
	fit("interval", &h.Interval, spec.MinHealthInterval, o.Interval)
	fit("timeout", &h.Timeout, 0, o.Timeout)
	fit("start-period", &h.StartPeriod, 0, o.StartPeriod)
	if o.Retries == 0 && h.Retries < 0 {
		warnings = append(warnings, fmt.Sprintf("the image's HEALTHCHECK --retries %d: cove's check uses Docker's default", h.Retries))
		h.Retries = 0
	}
	return &h, warnings
}

// nsOr is ns nanoseconds, or def for 0.
func nsOr(ns int64, def time.Duration) time.Duration {
	if ns == 0 {
		return def
	}
	return time.Duration(ns)
}

// unsupported refuses what cove's containers cannot do (yet).
func (b *specBuild) unsupported(req *dockerCreate) {
	h := &req.HostConfig
	b.notYet(h.Privileged, "a privileged container (--privileged)")
	b.notYet(len(h.Devices) > 0, "adding devices (--device)")
	b.notYet(len(h.VolumesFrom) > 0, "volumes from other containers (--volumes-from)")
	b.notYet(h.CPUQuota != 0 || h.CpusetCpus != "", "a CPU quota or set (--cpu-quota, --cpuset-cpus; --cpus works)")
	for _, m := range []struct{ key, v string }{{"PidMode", h.PidMode}, {"IpcMode", h.IpcMode}, {"UTSMode", h.UTSMode}} {
		b.notYet(m.v == "host" || strings.HasPrefix(m.v, "container:"), fmt.Sprintf("HostConfig.%s %q", m.key, m.v))
	}
	b.notYet(h.UsernsMode != "" && h.UsernsMode != "host", fmt.Sprintf("HostConfig.UsernsMode %q (\"host\" and \"\" are)", h.UsernsMode))
}

// config applies the container config: command, entrypoint,
// environment, working directory, user, hostname, stop timeout.
func (b *specBuild) config(req *dockerCreate, imageCmd []string) {
	c := b.sp.Container
	c.Command = req.Cmd
	if req.Entrypoint != nil {
		c.Entrypoint = req.Entrypoint
		if len(c.Entrypoint) == 1 && c.Entrypoint[0] == "" {
			c.Entrypoint = []string{}
		}
		if len(c.Entrypoint) == 0 && len(c.Command) == 0 { // Docker keeps the image's CMD then
			c.Command = imageCmd
		}
	}
	for _, kv := range req.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			b.warnings = append(b.warnings, fmt.Sprintf("Env %q has no value and is ignored: cove cannot unset a variable of the image", kv))
			continue
		}
		if c.Env == nil {
			c.Env = map[string]string{}
		}
		c.Env[k] = v
	}
	if req.WorkingDir != "" {
		c.Workdir = req.WorkingDir
	}
	if req.Hostname != "" {
		c.Hostname = req.Hostname
	}
	c.Labels = req.Labels
	if req.User != "" {
		u, err := spec.ParseUser(req.User)
		if err != nil {
			b.refuse("User %q: cove takes a numeric UID or UID:GID here (names are resolved only for the image's own USER)", req.User)
		}
		c.User = u
	}
	if t := req.StopTimeout; t != nil && *t >= 0 {
		b.sp.Service.StopTimeout = time.Duration(*t) * time.Second
	}
	if req.StopSignal != "" {
		if _, err := spec.ParseSignal(req.StopSignal); err != nil {
			b.refuse("StopSignal %q: %v", req.StopSignal, err)
		}
		b.sp.Service.StopSignal = req.StopSignal
	}
}

// host applies the host config's resources, restart policy, root and
// security.
func (b *specBuild) host(h *dockerHostCreate) {
	r := &b.sp.Resources
	switch {
	case h.Memory < 0 || h.NanoCPUs < 0:
		b.refuse("HostConfig.Memory and NanoCpus must not be negative")
	case h.NanoCPUs%1e7 != 0:
		b.refuse("HostConfig.NanoCpus %d: cove limits CPUs in steps of 0.01 (10000000)", h.NanoCPUs)
	}
	r.Memory = uint64(max(h.Memory, 0))
	r.CPUs = math.Round(float64(max(h.NanoCPUs, 0))/1e7) / 100
	if h.PidsLimit != nil && *h.PidsLimit > 0 {
		r.Pids = uint64(*h.PidsLimit)
	}
	b.restart(h)
	c := b.sp.Container
	c.ReadOnly = h.ReadonlyRootfs
	b.sp.Service.Init = h.Init != nil && *h.Init
	b.sp.Security.CapAdd, b.sp.Security.CapDrop = h.CapAdd, h.CapDrop
	if h.UsernsMode == "host" { // docker run --userns=host: the host's IDs
		b.sp.Security.UserNS = spec.UserNSHost
	}
	b.securityOpts(h.SecurityOpt)
}

// restart applies the restart policy: no, on-failure, always
// (unless-stopped is always: systemd never restarts a unit that was
// stopped).
func (b *specBuild) restart(h *dockerHostCreate) {
	p := h.RestartPolicy
	switch p.Name {
	case "", "no":
		b.sp.Service.Restart = spec.RestartNo
	case "on-failure":
		b.sp.Service.Restart = spec.RestartOnFailure
	case "always", "unless-stopped":
		b.sp.Service.Restart = spec.RestartAlways
	default:
		b.refuse("HostConfig.RestartPolicy %q: want no, on-failure, always or unless-stopped", p.Name)
	}
	if p.MaximumRetryCount > 0 {
		b.warnings = append(b.warnings, fmt.Sprintf("RestartPolicy.MaximumRetryCount %d is ignored: systemd's start limit applies", p.MaximumRetryCount))
	}
	if h.AutoRemove && b.sp.Service.Restart != spec.RestartNo {
		b.refuse("Conflicting options: RestartPolicy and AutoRemove")
	}
}

// securityOpts applies --security-opt: seccomp=unconfined and
// no-new-privileges (cove's default); others are refused.
func (b *specBuild) securityOpts(opts []string) {
	for _, o := range opts {
		k, v, _ := strings.Cut(strings.Replace(o, ":", "=", 1), "=")
		switch {
		case k == "seccomp" && v == spec.SeccompUnconfined:
			b.sp.Security.Seccomp = spec.SeccompUnconfined
		case k == "no-new-privileges" && (v == "" || v == "true"):
		case k == "no-new-privileges" && v == "false":
			b.sp.Security.AllowNewPrivileges = true
		default:
			b.refuse("HostConfig.SecurityOpt %q is not supported yet (seccomp=unconfined and no-new-privileges are)", o)
		}
	}
}

// mounts adds Binds (-v SOURCE:TARGET[:ro|rw], absolute host paths or
// volume names), Mounts of type bind, volume and tmpfs (--mount), and
// Tmpfs (--tmpfs). A volume needs a name: the create names anonymous
// ones first (anonymousVolumes). Names are checked when the spec is
// validated.
func (b *specBuild) mounts(h *dockerHostCreate) {
	c := b.sp.Container
	for _, bind := range h.Binds {
		m, err := spec.ParseVolume(bind)
		if err != nil {
			b.refuse("HostConfig.Binds: %v", err)
			continue
		}
		c.Mounts = append(c.Mounts, m)
	}
	for _, dm := range h.Mounts {
		m := spec.Mount{Type: dm.Type, Source: dm.Source, Target: cleanTarget(dm.Target), ReadOnly: dm.ReadOnly}
		switch {
		case dm.Type == spec.MountTmpfs && dm.TmpfsOptions != nil:
			m.Size = uint64(max(dm.TmpfsOptions.SizeBytes, 0))
		case dm.Type == spec.MountVolume && dm.Source == "":
			b.refuse("HostConfig.Mounts: a volume at %s without a name", dm.Target)
			continue
		case dm.Type == spec.MountTmpfs, dm.Type == spec.MountBind, dm.Type == spec.MountVolume:
		default:
			b.refuse("HostConfig.Mounts: type %q is not supported yet (bind, volume and tmpfs are)", dm.Type)
			continue
		}
		c.Mounts = append(c.Mounts, m)
	}
	for _, target := range slices.Sorted(maps.Keys(h.Tmpfs)) {
		m, err := spec.ParseTmpfs(target + ":" + tmpfsOptions(h.Tmpfs[target]))
		if err != nil {
			b.refuse("HostConfig.Tmpfs: %v", err)
			continue
		}
		c.Mounts = append(c.Mounts, m)
	}
}

// cleanTarget is a --mount's target cleaned, as Docker takes it
// ("/data/" is "/data"); "" stays "" (refused as no target).
func cleanTarget(t string) string {
	if t == "" {
		return t
	}
	return path.Clean(t)
}

// tmpfsOptions drops the options of a --tmpfs that cove's tmpfs mounts
// always have (nosuid, nodev); the rest goes to spec.ParseTmpfs, which
// takes ro, rw and size.
func tmpfsOptions(opts string) string {
	var keep []string
	for _, o := range strings.Split(opts, ",") {
		if o != "nosuid" && o != "nodev" {
			keep = append(keep, o)
		}
	}
	return strings.Join(keep, ",")
}
