package api

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/health"
	"github.com/cove-project/cove/internal/volume"
	"github.com/cove-project/cove/spec"
)

// dockerID is a workload's stable 64-hex-digit Docker ID.
func dockerID(name string) string { return hashID("cove:" + name) }

// hashID is a stable 64-hex-digit Docker ID made of s: its SHA-256.
func hashID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// dockerState maps a workload's systemd state to Docker's: running,
// paused (running, its processes frozen), restarting, created (starting,
// no process yet) or exited.
func dockerState(w Workload) string {
	switch {
	case w.ActiveState == createdState:
		return "created"
	case w.SubState == "auto-restart":
		return "restarting"
	case w.ActiveState == "activating" && w.MainPID == 0:
		return "created"
	case w.Paused:
		return "paused"
	case w.SubState == "exited", w.ActiveState == "deactivating" && w.MainPID == 0:
		return "exited" // deactivating without a main process: its stop stages run after the payload's end
	case w.ActiveState == "active", w.ActiveState == "activating",
		w.ActiveState == "reloading", w.ActiveState == "deactivating":
		return "running"
	}
	return "exited"
}

// dockerStatus is the STATUS column: "Up 3 minutes (healthy)" (as
// Docker: "(health: starting)", "(healthy)", "(unhealthy)"), "Exited
// (0)", "Up 3 minutes (Paused)", "Restarting (1)" or "Created".
func dockerStatus(w Workload, state string, now time.Time) string {
	switch state {
	case "running":
		s := "Up " + HumanDuration(now.Sub(w.Started))
		switch w.Health {
		case "":
		case health.Starting:
			s += " (health: starting)"
		default:
			s += " (" + w.Health + ")"
		}
		return s
	case "paused":
		return "Up " + HumanDuration(now.Sub(w.Started)) + " (Paused)"
	case "restarting":
		return fmt.Sprintf("Restarting (%d)", w.ExitCode)
	case "created":
		return "Created"
	}
	return fmt.Sprintf("Exited (%d)", w.ExitCode)
}

// HumanDuration is d in its largest whole unit, as docker shows ages and
// uptimes:
// "Less than a second", "1 second", "About a minute", "3 hours", "2
// weeks", "5 months", "2 years".
func HumanDuration(d time.Duration) string {
	const day = 24 * time.Hour
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d < time.Second:
		return "Less than a second"
	case d < time.Minute:
		return plural(int64(d/time.Second), "second")
	case d < 2*time.Minute:
		return "About a minute"
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 2*time.Hour:
		return "About an hour"
	case d < 2*day:
		return plural(int64(d/time.Hour), "hour")
	case d < 14*day:
		return plural(int64(d/day), "day")
	case d < 60*day:
		return plural(int64(d/(7*day)), "week")
	case d < 730*day:
		return plural(int64(d/(30*day)), "month")
	}
	return plural(int64(d/(365*day)), "year")
}

// about is what a workload's declared spec tells beyond systemd's view;
// zero for workloads without one (cove run).
type about struct {
	image    string // container image or rootfs, or VM kernel
	cmd      []string
	env      []string
	workdir  string
	user     string
	hostname string
	network  string
	restart  string
	memory   int64
	nanoCPUs int64
	pids     *int64
	readOnly bool          // a read-only root
	init     bool          // service.init
	mounts   []dockerMount // never nil
	ports    []Port        // container.ports, as requested
}

// dockerMount is one entry of Mounts.
type dockerMount struct {
	Type        string `json:"Type"`
	Name        string `json:"Name,omitempty"`   // a volume's
	Driver      string `json:"Driver,omitempty"` // a volume's: local
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
}

// mountOf is m as Docker shows a mount: a bind's propagation and mode, a
// volume's name, driver and data directory (docker compose looks for
// its volumes so).
func mountOf(m spec.Mount) dockerMount {
	dm := dockerMount{Type: m.Type, Source: m.Source, Destination: m.Target, RW: !m.ReadOnly}
	switch m.Type {
	case spec.MountBind:
		dm.Propagation = "rprivate"
		if m.ReadOnly {
			dm.Mode = "ro"
		}
	case spec.MountVolume:
		dm.Name, dm.Driver, dm.Source = m.Source, "local", volume.Default().Mountpoint(m.Source)
	}
	return dm
}

// aboutOf reads what sp says; sp may be nil.
func aboutOf(name string, sp *spec.Spec) about {
	a := about{hostname: name, network: "host", mounts: []dockerMount{}}
	if sp == nil {
		return a
	}
	a.restart, a.init = sp.Service.Restart, sp.Service.Init
	a.memory = int64(sp.Resources.Memory)
	a.nanoCPUs = int64(sp.Resources.CPUs * 1e9)
	if sp.Resources.Pids > 0 {
		p := int64(sp.Resources.Pids)
		a.pids = &p
	}
	switch {
	case sp.Container != nil:
		c := sp.Container
		a.image, a.cmd, a.workdir, a.hostname, a.network = c.Rootfs, c.Command, c.Workdir, c.Hostname, c.Network
		if other, ok := spec.SharedNetwork(c.Network); ok { // as Docker shows it (compose compares it with its service's)
			a.network = spec.NetworkSharedPrefix + dockerID(other)
		}
		if c.Image != "" {
			a.image = c.Image
		}
		if c.Image == "" || c.User.Set { // else the image's
			a.user = fmt.Sprintf("%d:%d", c.User.UID, c.User.GID)
		}
		for _, k := range slices.Sorted(maps.Keys(c.Env)) { // as the launcher passes them
			a.env = append(a.env, k+"="+c.Env[k])
		}
		a.readOnly, a.ports = c.ReadOnly, specPorts(c.Ports)
		for _, m := range c.Mounts {
			a.mounts = append(a.mounts, mountOf(m))
		}
	case sp.VM != nil:
		a.image, a.network = sp.VM.Kernel, sp.VM.Network.Mode
		if sp.VM.Cmdline != "" {
			a.cmd = []string{sp.VM.Cmdline}
		}
	}
	return a
}

// withRuntime completes what a says of w's network from what w's run
// shows when no spec says it (a cove run without a spec file): the
// network it is on and the ports it publishes.
func (a about) withRuntime(w Workload, sp *spec.Spec) about {
	if sp != nil {
		return a
	}
	if len(w.Networks) > 0 {
		a.network = w.Networks[0].Network
	}
	a.ports = w.Ports
	l := w.Limits
	a.memory, a.nanoCPUs = int64(l.MemoryBytes), int64(math.Round(l.CPUs*100))*1e7
	if l.Pids > 0 {
		p := int64(l.Pids)
		a.pids = &p
	}
	return a
}

// The labels cove gives every workload in Docker's view: its kind
// (container or vm) and its unit.
const (
	labelKind = "cove.kind"
	labelUnit = "cove.unit"
)

// labels are a workload's Docker labels: its spec's, and labelKind and
// labelUnit.
func labels(w Workload, sp *spec.Spec) map[string]string {
	ls := map[string]string{}
	if sp != nil && sp.Container != nil {
		maps.Copy(ls, sp.Container.Labels)
	}
	ls[labelKind], ls[labelUnit] = w.Kind, w.Unit // cove's own, whatever the spec says
	return ls
}

// unixOrZero is t in Unix seconds, 0 for the zero time.
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// dockerSummary is one entry of GET /containers/json.
type dockerSummary struct {
	ID         string            `json:"Id"`
	Names      []string          `json:"Names"`
	Image      string            `json:"Image"`
	ImageID    string            `json:"ImageID"`
	Command    string            `json:"Command"`
	Created    int64             `json:"Created"`
	Ports      []dockerPort      `json:"Ports"`
	Labels     map[string]string `json:"Labels"`
	State      string            `json:"State"`
	Status     string            `json:"Status"`
	HostConfig struct {
		NetworkMode string `json:"NetworkMode"`
	} `json:"HostConfig"`
	NetworkSettings dockerNetworks `json:"NetworkSettings"`
	Mounts          []dockerMount  `json:"Mounts"`
}

// summary is w as an entry of GET /containers/json.
func summary(w Workload, sp *spec.Spec) dockerSummary {
	a := aboutOf(w.Name, sp).withRuntime(w, sp)
	state := dockerState(w)
	d := dockerSummary{
		ID: dockerID(w.Name), Names: []string{"/" + w.Name}, Image: a.image,
		Command: strings.Join(a.cmd, " "), Created: unixOrZero(w.Started),
		Ports: summaryPorts(w.Ports), Labels: labels(w, sp), State: state,
		Status: dockerStatus(w, state, time.Now()), Mounts: a.mounts,
		NetworkSettings: dockerNetworks{Networks: networksOf(w)},
	}
	d.HostConfig.NetworkMode = a.network
	return d
}

// dockerInspect is the answer to GET /containers/ID/json.
type dockerInspect struct {
	ID              string                `json:"Id"`
	Created         string                `json:"Created"`
	Path            string                `json:"Path"`
	Args            []string              `json:"Args"`
	State           dockerStateJSON       `json:"State"`
	Image           string                `json:"Image"`
	Name            string                `json:"Name"`
	RestartCount    uint32                `json:"RestartCount"`
	Driver          string                `json:"Driver"`
	Platform        string                `json:"Platform"`
	HostConfig      dockerHostConfig      `json:"HostConfig"`
	Config          dockerConfig          `json:"Config"`
	NetworkSettings dockerNetworkSettings `json:"NetworkSettings"`
	Mounts          []dockerMount         `json:"Mounts"`
}

// dockerStateJSON is an inspected container's State.
type dockerStateJSON struct {
	Status     string `json:"Status"`
	Running    bool   `json:"Running"`
	Paused     bool   `json:"Paused"`
	Restarting bool   `json:"Restarting"`
	OOMKilled  bool   `json:"OOMKilled"`
	Dead       bool   `json:"Dead"`
	Pid        uint32 `json:"Pid"`
	ExitCode   int    `json:"ExitCode"`
	Error      string `json:"Error"`
	StartedAt  string `json:"StartedAt"`
	FinishedAt string `json:"FinishedAt"`
	// Health is a container's with a health check (docker compose's
	// depends_on service_healthy waits for its Status).
	Health *dockerHealth `json:"Health,omitempty"`
}

// dockerHealth is State.Health: Status starting (no verdict yet),
// healthy or unhealthy; the streak and log are not kept.
type dockerHealth struct {
	Status        string     `json:"Status"`
	FailingStreak int        `json:"FailingStreak"`
	Log           []struct{} `json:"Log"`
}

// dockerHostConfig is the part of HostConfig cove fills in.
type dockerHostConfig struct {
	NetworkMode   string                         `json:"NetworkMode"`
	PortBindings  map[string][]dockerPortBinding `json:"PortBindings"`
	RestartPolicy struct {
		Name              string `json:"Name"`
		MaximumRetryCount int    `json:"MaximumRetryCount"`
	} `json:"RestartPolicy"`
	Memory         int64             `json:"Memory"`
	NanoCpus       int64             `json:"NanoCpus"`
	PidsLimit      *int64            `json:"PidsLimit"`
	CPUShares      int64             `json:"CpuShares"` // 0, as Docker's for --cpus: cove limits CPU by NanoCpus only
	CPUQuota       int64             `json:"CpuQuota"`
	CPUPeriod      int64             `json:"CpuPeriod"`
	Init           *bool             `json:"Init"`
	ReadonlyRootfs bool              `json:"ReadonlyRootfs"`
	AutoRemove     bool              `json:"AutoRemove"`
	UsernsMode     string            `json:"UsernsMode"`           // security.userns as the spec says it ("" for cove's default)
	IDMappings     *dockerIDMappings `json:"IDMappings,omitempty"` // the user namespace's IDs, when it has one
	// LogConfig is Docker's journald driver: a workload's output goes to
	// the journal (docker-compose logs reads only containers whose
	// driver it knows).
	LogConfig struct {
		Type   string            `json:"Type"`
		Config map[string]string `json:"Config"`
	} `json:"LogConfig"`
}

// dockerIDMappings are a user namespace's ID maps in podman's inspect
// form: "CONTAINER:HOST:COUNT" lines.
type dockerIDMappings struct {
	UIDMap []string `json:"UidMap"`
	GIDMap []string `json:"GidMap"`
}

// withIDs adds a container's user namespace IDs r to d.
func (d *dockerInspect) withIDs(r spec.IDRange) {
	m := []string{r.Mapping()}
	d.HostConfig.IDMappings = &dockerIDMappings{UIDMap: m, GIDMap: m}
}

// dockerConfig is the part of Config cove fills in. Tty tells the client
// that logs and attach streams are raw, not multiplexed.
type dockerConfig struct {
	Hostname     string              `json:"Hostname"`
	User         string              `json:"User"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env"`
	Cmd          []string            `json:"Cmd"`
	Image        string              `json:"Image"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir"`
	Entrypoint   []string            `json:"Entrypoint"`
	Labels       map[string]string   `json:"Labels"`
	Healthcheck  *dockerHealthcheck  `json:"Healthcheck,omitempty"` // a container created through Docker's API: its create's, with its image's under it
	Tty          bool                `json:"Tty"`
	OpenStdin    bool                `json:"OpenStdin"`
	AttachStdout bool                `json:"AttachStdout"`
	AttachStderr bool                `json:"AttachStderr"`
}

// inspectOf is w as the answer to GET /containers/ID/json.
func inspectOf(w Workload, sp *spec.Spec) dockerInspect {
	a := aboutOf(w.Name, sp).withRuntime(w, sp)
	state := dockerState(w)
	d := dockerInspect{
		ID: dockerID(w.Name), Created: rfc3339(w.Started), Image: a.image,
		Name: "/" + w.Name, RestartCount: w.Restarts, Driver: "cove", Platform: "linux",
		State: dockerStateJSON{
			Status: state, Running: state == "running" || state == "paused", Paused: state == "paused", Restarting: state == "restarting",
			OOMKilled: w.OOMKilled(), ExitCode: w.ExitCode, StartedAt: rfc3339(w.Started), FinishedAt: rfc3339(time.Time{}),
		},
		Config: dockerConfig{
			Hostname: a.hostname, User: a.user, Env: a.env, Cmd: a.cmd, Image: a.image,
			WorkingDir: a.workdir, Labels: labels(w, sp),
		},
		NetworkSettings: networkSettingsOf(w, sp),
		Mounts:          a.mounts,
	}
	if state == "running" || state == "paused" {
		d.State.Pid = w.MainPID
	}
	if sp != nil && sp.Health != nil {
		d.State.Health = &dockerHealth{Status: cmp.Or(w.Health, health.Starting), Log: []struct{}{}}
	}
	if w.ActiveState == "failed" {
		d.State.Error = w.State()
	}
	if len(a.cmd) > 0 {
		d.Path, d.Args = a.cmd[0], a.cmd[1:]
	}
	h := &d.HostConfig
	h.NetworkMode, h.PortBindings = a.network, bindingsOf(a.ports, true)
	h.LogConfig.Type, h.LogConfig.Config = "journald", map[string]string{}
	h.Memory, h.NanoCpus, h.PidsLimit = a.memory, a.nanoCPUs, a.pids
	h.RestartPolicy.Name, h.ReadonlyRootfs = a.restart, a.readOnly
	if sp != nil {
		h.UsernsMode = sp.Security.UserNS
	}
	if a.init {
		h.Init = &a.init
	}
	return d
}

// rfc3339 formats t as Docker does (the zero time too).
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// filters are the Docker list filters cove implements: name (substring),
// id (prefix), status (Docker state); values of one key are alternatives.
// label (KEY or KEY=VALUE) values must all hold.
type filters map[string][]string

// parseFilters reads the filters query parameter: {"KEY":{"VALUE":true}}
// or {"KEY":["VALUE"]}. Keys other than keys are not implemented (501).
func parseFilters(s string, keys []string) (filters, *Error) {
	if s == "" {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, errorf(CodeBadRequest, fmt.Sprintf("filters: %v", err))
	}
	f := filters{}
	for k, v := range raw {
		if !slices.Contains(keys, k) {
			return nil, errorf(CodeNotImplemented, fmt.Sprintf("cove does not implement the %.32q filter", k))
		}
		var set map[string]bool
		if json.Unmarshal(v, &set) == nil {
			for val, on := range set {
				if on {
					f[k] = append(f[k], val)
				}
			}
			continue
		}
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, errorf(CodeBadRequest, fmt.Sprintf("filters: %s: want a list or set of strings", k))
		}
		f[k] = append(f[k], list...)
	}
	return f, nil
}

// match reports whether w, in Docker state state, with spec sp (nil:
// unknown), passes the filters.
func (f filters) match(w Workload, state string, sp *spec.Spec) bool {
	return f.labelsMatch(labels(w, sp)) &&
		f.anyOf("name", func(v string) bool { return strings.Contains(w.Name, strings.TrimPrefix(v, "/")) }) &&
		f.anyOf("id", func(v string) bool { return strings.HasPrefix(dockerID(w.Name), v) }) &&
		f.anyOf("status", func(v string) bool { return v == state })
}

// anyOf reports whether ok holds for one of key's values, or key has none.
func (f filters) anyOf(key string, ok func(string) bool) bool {
	return len(f[key]) == 0 || slices.ContainsFunc(f[key], ok)
}

// labelsMatch reports whether ls has every label filter's KEY, with
// VALUE for a KEY=VALUE filter, and, where a handler accepts label!
// filters (Docker's prunes), not every one of those (Docker's rule: only
// what has them all is left out).
func (f filters) labelsMatch(ls map[string]string) bool {
	has := func(v string) bool {
		k, want, withValue := strings.Cut(v, "=")
		got, ok := ls[k]
		return ok && (!withValue || got == want)
	}
	hasNot := func(v string) bool { return !has(v) }
	excluded := len(f["label!"]) > 0 && !slices.ContainsFunc(f["label!"], hasNot)
	return !slices.ContainsFunc(f["label"], hasNot) && !excluded
}

// specIndex maps declared workload names to their spec files.
type specIndex map[string]string

// specIndex lists the declared specs (none when Paths are unset or
// cannot be read: see declaredSpecs).
func (s *Server) specIndex() specIndex {
	ix, _ := s.declaredSpecs()
	return ix
}

// declaredSpecs lists the declared specs (none when Paths are unset), or
// says why it cannot.
func (s *Server) declaredSpecs() (specIndex, error) {
	p := s.opt.Paths
	if p.Etc == "" && p.Vendor == "" {
		return nil, nil
	}
	files, err := p.SpecFiles()
	if err != nil {
		return nil, err
	}
	ix := specIndex{}
	for _, f := range files {
		ix[f.Name] = f.Path
	}
	return ix, nil
}

// load returns the declared spec of name, or nil if there is none or it
// does not parse.
func (ix specIndex) load(name string) *spec.Spec {
	path, ok := ix[name]
	if !ok {
		return nil
	}
	sp, err := spec.Load(path, "")
	if err != nil {
		return nil
	}
	return sp
}
