package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cove-project/cove/internal/declared"
	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/internal/hostconf"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/network/plan"
	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
)

// dockerCreate is the body of POST /containers/create: the fields of
// Docker's container config and host config that cove reads. Fields it
// does not know are ignored, as Docker ignores them; fields it knows but
// cannot honour are refused (containerSpec).
type dockerCreate struct {
	Hostname    string              `json:",omitempty"`
	User        string              `json:",omitempty"`
	Tty         bool                `json:",omitempty"`
	OpenStdin   bool                `json:",omitempty"`
	Env         []string            `json:",omitempty"`
	Cmd         strSlice            `json:",omitempty"`
	Entrypoint  strSlice            // null: the image's; [] or [""]: none
	Image       string              `json:",omitempty"`
	WorkingDir  string              `json:",omitempty"`
	Labels      map[string]string   `json:",omitempty"`
	Volumes     map[string]struct{} `json:",omitempty"` // docker run -v PATH: anonymous volumes (anonymousVolumes)
	StopTimeout *int                `json:",omitempty"` // seconds
	StopSignal  string              `json:",omitempty"` // docker run --stop-signal
	Healthcheck *dockerHealthcheck  `json:",omitempty"` // docker run --health-*, compose's healthcheck
	// ExposedPorts are the ports -P publishes besides the image's
	// (--expose, and those -p names), keys as PortBindings'.
	ExposedPorts map[string]struct{} `json:",omitempty"`
	HostConfig   dockerHostCreate
	// NetworkingConfig.EndpointsConfig: the network to join (one) and
	// its settings, by network name.
	NetworkingConfig struct {
		EndpointsConfig map[string]*dockerEndpointCreate `json:",omitempty"`
	}
}

// dockerEndpointCreate is what cove reads of a network's entry in
// NetworkingConfig.EndpointsConfig.
type dockerEndpointCreate struct {
	IPAMConfig *struct {
		IPv4Address  string   `json:",omitempty"`
		IPv6Address  string   `json:",omitempty"`
		LinkLocalIPs []string `json:",omitempty"`
	} `json:",omitempty"`
	Aliases    []string `json:",omitempty"`
	Links      []string `json:",omitempty"`
	MacAddress string   `json:",omitempty"`
}

// aliases are ep's Aliases; none for an endpoint given as null.
func (ep *dockerEndpointCreate) aliases() []string {
	if ep == nil {
		return nil
	}
	return ep.Aliases
}

// dockerPortBinding is one host side of a published port, in
// HostConfig.PortBindings and in an inspected container's Ports.
type dockerPortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// dockerHostCreate is the part of Docker's HostConfig cove reads.
type dockerHostCreate struct {
	Binds          []string            `json:",omitempty"`
	Mounts         []dockerMountCreate `json:",omitempty"`
	Tmpfs          map[string]string   `json:",omitempty"`
	AutoRemove     bool                `json:",omitempty"`
	Memory         int64               `json:",omitempty"`
	NanoCPUs       int64               `json:"NanoCpus,omitempty"`
	PidsLimit      *int64              `json:",omitempty"`
	RestartPolicy  dockerRestartPolicy
	NetworkMode    string                         `json:",omitempty"`
	ReadonlyRootfs bool                           `json:",omitempty"`
	CapAdd         []string                       `json:",omitempty"`
	CapDrop        []string                       `json:",omitempty"`
	SecurityOpt    []string                       `json:",omitempty"`
	Privileged     bool                           `json:",omitempty"`
	PublishAll     bool                           `json:"PublishAllPorts,omitempty"`
	PortBindings   map[string][]dockerPortBinding `json:",omitempty"`
	Devices        []struct{}                     `json:",omitempty"`
	Links          []string                       `json:",omitempty"`
	VolumesFrom    []string                       `json:",omitempty"`
	PidMode        string                         `json:",omitempty"`
	IpcMode        string                         `json:",omitempty"`
	UTSMode        string                         `json:",omitempty"`
	UsernsMode     string                         `json:",omitempty"`
	CPUQuota       int64                          `json:"CpuQuota,omitempty"`
	CpusetCpus     string                         `json:",omitempty"`
	Init           *bool                          `json:",omitempty"` // docker run --init: service.init
	// ConsoleSize is a terminal's size at each start, [rows, columns]
	// (the docker CLI since 23 sends the user's; [0, 0]: none given).
	ConsoleSize [2]uint16 `json:",omitempty"`
}

// dockerHealthcheck is Config.Healthcheck: Test is ["CMD", ARG...],
// ["CMD-SHELL", COMMAND] or ["NONE"] (empty: none given); the durations
// are nanoseconds, 0 for Docker's defaults.
type dockerHealthcheck struct {
	Test                           []string `json:",omitempty"`
	Interval, Timeout, StartPeriod int64    `json:",omitempty"`
	Retries                        int      `json:",omitempty"`
}

// dockerRestartPolicy is HostConfig.RestartPolicy.
type dockerRestartPolicy struct {
	Name              string `json:",omitempty"`
	MaximumRetryCount int    `json:",omitempty"`
}

// dockerMountCreate is one entry of HostConfig.Mounts.
type dockerMountCreate struct {
	Type         string `json:",omitempty"` // bind or tmpfs
	Source       string `json:",omitempty"`
	Target       string `json:",omitempty"`
	ReadOnly     bool   `json:",omitempty"`
	TmpfsOptions *struct {
		SizeBytes int64 `json:",omitempty"`
	} `json:",omitempty"`
}

// strSlice is Docker's string-or-list value (Cmd, Entrypoint): a string
// is a list of one.
type strSlice []string

// UnmarshalJSON reads a string, a list of strings, or null (nil).
func (s *strSlice) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = strSlice{one}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("want a string or a list of strings")
	}
	*s = list
	return nil
}

// dockerCreated is the answer to POST /containers/create.
type dockerCreated struct {
	ID       string   `json:"Id"`
	Warnings []string `json:"Warnings"`
}

// createContainer answers POST /containers/create?name=: the request
// becomes a workload spec as cove run builds one from flags, checked and
// kept as a record until the container starts (see containerRecord). The
// image must be in the store: otherwise the answer is Docker's 404 "No
// such image: REF", on which the docker CLI pulls and asks again.
func (s *Server) createContainer(c *call) {
	name, err := createName(c.r.URL.Query().Get("name"))
	if err != nil {
		c.fail(err)
		return
	}
	var req dockerCreate
	if derr := json.NewDecoder(c.r.Body).Decode(&req); derr != nil {
		c.failBody(derr)
		return
	}
	if req.Image == "" {
		c.fail(errorf(CodeBadRequest, "create "+name+": Config.Image is empty: which image should the container run?"))
		return
	}
	img, ok := s.createImage(c, req.Image)
	if !ok || !s.sharedNetworkMode(c, name, &req.HostConfig) {
		return
	}
	rec, sp, warnings, rerr := s.newRecord(name, req, img)
	if rerr != nil {
		c.fail(rerr)
		return
	}
	if s.inUse(c, name) { // at once, not after waiting for the lock (a cove apply adding the name holds it through its starts)
		return
	}
	unlock, ok := s.lockName(c, "create", name) // against a cove run of that name starting meanwhile
	if !ok {
		return
	}
	defer unlock()
	if s.inUse(c, name) {
		return
	}
	if err := createAnonymousVolumes(rec.AnonymousVolumes); err != nil {
		c.failWith(fmt.Errorf("create %s: %w", name, err))
		return
	}
	if err := s.records.create(rec); err != nil {
		removeVolumes(rec.AnonymousVolumes)
		s.failCreate(c, name, err)
		return
	}
	eventlog.Created(sp, false)                        // AutoRemove: this helper records the removal
	if err := declared.ForgetState(name); err != nil { // a new container: no writable layer or IDs left by an earlier one of this name
		s.failCreate(c, name, err)
		return
	}
	c.reply(http.StatusCreated, dockerCreated{ID: dockerID(name), Warnings: append([]string{}, warnings...)})
}

// newRecord makes the record of container name, created by req to run
// image img (with img's HEALTHCHECK, as cove can run it, under req's:
// fitImageHealth, withImageHealth; its
// anonymous volumes named: anonymousVolumes), and
// the spec its runs compile from (containerSpec, checked as a run would
// be), with the warnings to give its creator.
func (s *Server) newRecord(name string, req dockerCreate, img image.ImageRecord) (*containerRecord, *spec.Spec, []string, *Error) {
	settings, err := hostconf.Read(s.opt.Settings)
	if err != nil {
		return nil, nil, nil, errorf(CodeInternal, fmt.Sprintf("create %s: %v", name, err))
	}
	net, recorded := firstNetwork(&req, settings.RunNetwork), RecordedPorts(s.records.dir)
	if perr := randomPorts(&req, img.Config.Config.ExposedPorts, net, recorded, s.opt.Networks.Ports); perr != nil {
		return nil, nil, nil, perr
	}
	imageHealth, healthWarnings := fitImageHealth(img.Config.Config.Healthcheck, req.Healthcheck)
	req.Healthcheck = withImageHealth(req.Healthcheck, imageHealth)
	anonymous, volumeWarnings := anonymousVolumes(&req, img.Config.Config.Volumes)
	rec := &containerRecord{Name: name, Created: time.Now().UTC(), Image: pinnedRef(img), ImageID: dockerImageID(img),
		ImageCmd: img.Config.Config.Cmd, Config: req, RunNetwork: settings.RunNetwork, AnonymousVolumes: anonymous}
	sp, warnings, serr := containerSpec(name, &rec.Config, rec.Image, rec.ImageCmd, rec.RunNetwork)
	if serr == nil {
		serr = s.checkRunnable(sp)
	}
	return rec, sp, slices.Concat(healthWarnings, volumeWarnings, warnings), serr
}

// RecordedPorts are the host ports that the containers created through
// Docker's API keep in their records in dir (declared.Paths.Created): a
// stopped one holds no claim, and must find them free at its next start,
// so a free port (a create's, cove run -p PORT's) avoids them.
func RecordedPorts(dir string) []plan.Port {
	var out []plan.Port
	for _, r := range (containerRecords{dir: dir}).list() {
		out = append(out, boundPorts(r.Config.HostConfig.PortBindings)...)
	}
	return out
}

// createName is the name of a container to create: the name query
// parameter (Docker's leading "/" allowed), which must be a valid
// workload name, or a generated one as cove run makes.
func createName(q string) (string, *Error) {
	if q == "" {
		b := make([]byte, 4)
		rand.Read(b)
		return "run-" + hex.EncodeToString(b), nil
	}
	name := strings.TrimPrefix(q, "/")
	if err := spec.ValidName(name); err != nil {
		return "", errorf(CodeBadRequest, fmt.Sprintf("Invalid container name (%.80s): %v (a cove workload name)", q, err))
	}
	return name, nil
}

// createImage finds the image of a create in the store; when it is not
// there, it answers Docker's 404 and returns false.
func (s *Server) createImage(c *call, ref string) (image.ImageRecord, bool) {
	st, ok := s.imageStore(c)
	if !ok {
		return image.ImageRecord{}, false
	}
	img, err := resolveImage(st, dockerShortName(ref))
	switch {
	case errors.Is(err, image.ErrNotFound):
		c.fail(errorf(CodeNotFound, "No such image: "+ref))
		return img.rec, false
	case err != nil:
		c.failWith(err)
		return img.rec, false
	}
	return img.rec, true
}

// pinnedRef names rec by digest, so that the container keeps running the
// image it was created from when the name moves to another (as Docker's
// containers keep their image ID).
func pinnedRef(rec image.ImageRecord) string {
	if rec.Repository == "" {
		return rec.Digest.String()
	}
	return rec.Repository + "@" + rec.Digest.String()
}

// sharedNetworkMode resolves the container a create's NetworkMode
// "container:REF" names (by name or ID, as Docker does) to its workload,
// which the spec names; it answers 400 and returns false when there is
// none.
func (s *Server) sharedNetworkMode(c *call, name string, h *dockerHostCreate) bool {
	ref, ok := spec.SharedNetwork(h.NetworkMode)
	if !ok {
		return true
	}
	ct, err := s.findContainer(c.ctx(), ref)
	switch {
	case errors.Is(err, supervisor.ErrNotFound):
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("create %s: HostConfig.NetworkMode %q: no such container: %s", name, h.NetworkMode, ref)))
		return false
	case err != nil:
		c.failWith(err)
		return false
	case ct.Kind != spec.KindContainer:
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("create %s: HostConfig.NetworkMode %q: %s is a VM, whose network is its guest's", name, h.NetworkMode, ref)))
		return false
	}
	h.NetworkMode = spec.NetworkSharedPrefix + ct.Name
	return true
}

// checkRunnable checks what containerSpec cannot: that the spec compiles,
// its network is declared and its bind mounts' sources exist (cove,
// unlike docker -v, does not create them). An unknown network is a 400,
// not Docker's 404: on a 404 the docker CLI pulls the image and asks
// again.
func (s *Server) checkRunnable(sp *spec.Spec) *Error {
	if _, err := units.Compile(sp, units.Options{Launcher: s.opt.Self}); err != nil {
		return errorf(CodeBadRequest, fmt.Sprintf("create %s: %v", sp.Name, err))
	}
	if n := sp.Join().Network; n != "" {
		if _, err := s.opt.Networks.Catalog.Named(n); err != nil { // network.ErrUnknown lists the networks there are
			return errorf(CodeBadRequest, fmt.Sprintf("create %s: %v", sp.Name, err))
		}
	}
	for _, m := range sp.Container.Mounts {
		if m.Type != spec.MountBind {
			continue
		}
		if _, err := os.Stat(m.Source); err != nil {
			return errorf(CodeBadRequest, fmt.Sprintf("create %s: bind source path does not exist: %s (cove does not create it)", sp.Name, m.Source))
		}
	}
	return nil
}

// inUse answers 409 and returns true when name is taken by a workload
// (one a spec declares too: declared.Paths.NotDeclared) or a created
// container (or answers another error and returns true).
func (s *Server) inUse(c *call, name string) bool {
	_, err := s.container(c.ctx(), name)
	if errors.Is(err, supervisor.ErrNotFound) {
		switch derr := s.opt.Paths.NotDeclared(name); {
		case errors.Is(derr, declared.ErrNameTaken):
			err = nil // a declared workload's name, before its unit is loaded or of a replicated one: taken
		case derr != nil:
			err = derr
		}
	}
	switch {
	case err == nil:
		s.failCreate(c, name, fs.ErrExist)
	case !errors.Is(err, supervisor.ErrNotFound):
		c.failWith(err)
	default:
		return false
	}
	return true
}

// lockName takes name's lock (declared.Paths.LockName) for op, waiting
// for another holder (a cove run of that name until its unit is loaded,
// a docker start until its start job ends, a cove apply adding it until
// its starts end, a cove rm while it drops what the workload left) at
// most nameLockWait; it answers 409 when that passes.
func (s *Server) lockName(c *call, op, name string) (func(), bool) {
	ctx, cancel := context.WithTimeout(c.ctx(), nameLockWait)
	defer cancel()
	unlock, err := s.opt.Paths.LockName(ctx, name)
	switch {
	case err == nil:
		return unlock, true
	case ctx.Err() != nil && c.ctx().Err() == nil:
		c.fail(errorf(CodeConflict, fmt.Sprintf("%s %s: a cove run, cove apply, cove rm or Docker's create, rename or start of that name is under way: try again", op, name)))
	default:
		c.failWith(fmt.Errorf("%s %s: %w", op, name, err))
	}
	return nil, false
}

// nameLockWait bounds lockName's wait: a cove run holds the lock for a
// start, or while it awaits a stopping --rm run of that name; a cove
// apply through its starts; a cove rm while it drops what a removed
// workload kept.
const nameLockWait = 10 * time.Second

// failCreate answers a create that could not be recorded: Docker's 409
// when the name is taken.
func (s *Server) failCreate(c *call, name string, err error) {
	if errors.Is(err, fs.ErrExist) {
		c.fail(errorf(CodeConflict, fmt.Sprintf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, dockerID(name))))
		return
	}
	c.failWith(err)
}
