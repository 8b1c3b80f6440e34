package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/instruction"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/supervisor"
)

// commitRoute is docker commit's endpoint; root only: the image holds
// any file of the container.
func commitRoute() route {
	return route{method: http.MethodPost, path: "/commit", need: roleRoot, mutates: true, handle: (*Server).dockerCommit}
}

// CommitRequest is what docker commit asks: an image of a container.
type CommitRequest struct {
	Container string // its name, or a unique prefix of its Docker ID
	// Name names the image, "REPO[:TAG]" as docker tag takes it; ""
	// leaves it unnamed.
	Name            string
	Author, Comment string
	// Changes are Dockerfile instructions applied to the configuration
	// (package instruction).
	Changes []string
	// Config, when set, is the configuration the changes apply to (the
	// request's body); the container's fills what it leaves out.
	Config *dockerCreate
	// Pause freezes a running container while its writable layer is read
	// (Docker's default). Without it the container runs on, and the
	// layer is what it holds as it is read.
	Pause bool
}

// dockerCommit answers POST /commit?container=ID&repo=R&tag=T&author=A&
// comment=C&changes=…&pause=BOOL (docker commit): 201 {"Id"} of the new
// image (Server.Commit); 400 for a change refused, 404 for no such
// container, 409 for one that has no writable layer (a root directory's,
// a volatile one's, a VM).
func (s *Server) dockerCommit(c *call) {
	q := c.r.URL.Query()
	req := CommitRequest{Container: q.Get("container"), Author: q.Get("author"), Comment: q.Get("comment"), Changes: q["changes"], Pause: true}
	if q.Get("pause") != "" { // pause= is true, as in Docker
		var e *Error
		if req.Pause, e = queryBool(q, "pause"); e != nil {
			c.fail(e)
			return
		}
	}
	if repo := q.Get("repo"); repo != "" {
		req.Name = repo
		if tag := q.Get("tag"); tag != "" {
			req.Name += ":" + tag
		}
	}
	if err := json.NewDecoder(c.r.Body).Decode(&req.Config); err != nil && !errors.Is(err, io.EOF) { // none, or null: the container's
		c.failBody(err)
		return
	}
	rec, err := s.Commit(c.ctx(), req)
	switch {
	case errors.Is(err, instruction.ErrInvalid) || errors.Is(err, errBadName):
		c.fail(errorf(CodeBadRequest, err.Error()))
	case errors.Is(err, isolate.ErrVolatile) || errors.Is(err, errNoWritableLayer):
		c.fail(errorf(CodeConflict, err.Error()))
	case err != nil:
		c.failWith(err)
	default:
		c.reply(http.StatusCreated, map[string]string{"Id": "sha256:" + rec.ID()})
	}
}

// errNoWritableLayer marks a container that has no writable layer to
// commit: one from a root directory, or a VM.
var errNoWritableLayer = errors.New("it has no writable layer over an image")

// errBadName marks a commit's image name that cannot name an image.
var errBadName = errors.New("bad image name")

// Commit stores an image of container req.Container as docker commit
// does: its image's layers and one more, what the container wrote (its
// writable layer, read under its lock so that no start mounts it
// meanwhile, and with the container frozen if req.Pause and it runs),
// with the container's configuration (as docker inspect shows it, cove's
// own labels left out) changed by req.Config and req.Changes, and a
// history entry of its command. A failure to thaw the container is
// returned (with the image, which is stored), naming the image.
func (s *Server) Commit(ctx context.Context, req CommitRequest) (rec image.ImageRecord, err error) {
	if req.Name != "" {
		if err := image.ValidName(req.Name); err != nil {
			return image.ImageRecord{}, fmt.Errorf("commit %s: %w: %w", req.Container, errBadName, err)
		}
	}
	ct, err := s.findContainer(ctx, req.Container)
	if err != nil {
		return image.ImageRecord{}, err
	}
	view, base, err := s.commitView(ct)
	if err != nil {
		return image.ImageRecord{}, err
	}
	cfg, err := commitConfig(base, req.Config, req.Changes)
	if err != nil {
		return image.ImageRecord{}, err
	}
	st, err := s.opt.Images()
	if err != nil {
		return image.ImageRecord{}, err
	}
	lc, err := ct.launchConfig()
	if err != nil {
		return image.ImageRecord{}, err
	}
	filer, err := s.filer()
	if err != nil {
		return image.ImageRecord{}, err
	}
	layer, release, err := filer.WritableLayer(ctx, ct.Name, lc)
	if err != nil {
		return image.ImageRecord{}, fmt.Errorf("commit %s: %w", ct.Name, err)
	}
	defer release()
	if req.Pause { // under the lock: a start meanwhile has its payload running now
		thaw, err := s.freeze(ctx, ct.Name)
		if err != nil {
			return image.ImageRecord{}, fmt.Errorf("commit %s: %w", ct.Name, err)
		}
		defer func() {
			if terr := thaw(); terr != nil && err == nil {
				err = fmt.Errorf("commit %s: the image sha256:%s is stored, but the container stays paused (cove unpause %s): %w", ct.Name, rec.ID(), ct.Name, terr)
			}
		}()
	}
	return st.CommitContainer(ctx, image.CommitOptions{Base: layer.Image, Upper: layer.Upper, IDs: layer.IDs,
		Config: cfg, Author: req.Author, Comment: req.Comment, CreatedBy: strings.Join(view.Config.Cmd, " "), Name: req.Name})
}

// freeze pauses workload name if it runs now, and returns what thaws it
// (nothing, when it did not run or was paused already).
func (s *Server) freeze(ctx context.Context, name string) (thaw func() error, err error) {
	w, err := s.backend.Status(ctx, name)
	switch {
	case errors.Is(err, supervisor.ErrNotFound): // a record's container whose unit is not loaded
		return func() error { return nil }, nil
	case err != nil:
		return nil, err
	case dockerState(w) != "running":
		return func() error { return nil }, nil
	}
	if err := s.backend.Pause(ctx, name); err != nil {
		return nil, err
	}
	return func() error {
		if err := s.backend.Unpause(context.WithoutCancel(ctx), name); err != nil {
			return fmt.Errorf("thaw %s: %w", name, err)
		}
		return nil
	}, nil
}

// commitView is container ct as docker inspect shows it, and its
// configuration as an image's: its own, with its image's stop signal
// unless it has one, without cove's own labels.
func (s *Server) commitView(ct dockerContainer) (dockerInspect, v1.Config, error) {
	sp := viewSpec(s.specIndex(), ct.rec, ct.Name)
	if sp == nil || sp.Container == nil || sp.Container.Image == "" {
		return dockerInspect{}, v1.Config{}, fmt.Errorf("commit %s: %w", ct.Name, errNoWritableLayer)
	}
	d, img, hasImage := s.inspectOf(ct, sp)
	v := d.Config
	cfg := v1.Config{User: v.User, ExposedPorts: v.ExposedPorts, Env: v.Env, Cmd: v.Cmd, Entrypoint: v.Entrypoint,
		WorkingDir: v.WorkingDir, Volumes: v.Volumes, Labels: maps.Clone(v.Labels), Healthcheck: healthConfig(v.Healthcheck)}
	delete(cfg.Labels, labelKind)
	delete(cfg.Labels, labelUnit)
	if ct.rec != nil {
		cfg.StopSignal = ct.rec.Config.StopSignal
	}
	if hasImage && cfg.StopSignal == "" {
		cfg.StopSignal = img.Config.Config.StopSignal
	}
	return d, cfg, nil
}

// healthConfig is a Docker API health check as an image's (nil for
// none).
func healthConfig(h *dockerHealthcheck) *v1.HealthConfig {
	if h == nil {
		return nil
	}
	return &v1.HealthConfig{Test: h.Test, Interval: time.Duration(h.Interval), Timeout: time.Duration(h.Timeout),
		StartPeriod: time.Duration(h.StartPeriod), Retries: h.Retries}
}

// commitConfig is the new image's configuration, by Docker's rules: body
// (or, without one, the container's configuration ct) with changes
// applied, then what it leaves out taken from ct (mergeConfig).
func commitConfig(ct v1.Config, body *dockerCreate, changes []string) (v1.Config, error) {
	cfg := cloneConfig(ct)
	if body != nil {
		cfg = v1.Config{User: body.User, Env: body.Env, Cmd: body.Cmd, Entrypoint: body.Entrypoint, WorkingDir: body.WorkingDir,
			Labels: body.Labels, Volumes: body.Volumes, ExposedPorts: body.ExposedPorts, StopSignal: body.StopSignal, Healthcheck: healthConfig(body.Healthcheck)}
	}
	if err := instruction.Apply(&cfg, changes); err != nil {
		return v1.Config{}, err
	}
	mergeConfig(&cfg, ct)
	return cfg, nil
}

// cloneConfig is c with its own slices and maps.
func cloneConfig(c v1.Config) v1.Config {
	c.Env, c.Cmd, c.Entrypoint = slices.Clone(c.Env), slices.Clone(c.Cmd), slices.Clone(c.Entrypoint)
	c.Labels, c.Volumes, c.ExposedPorts = maps.Clone(c.Labels), maps.Clone(c.Volumes), maps.Clone(c.ExposedPorts)
	return c
}

// mergeConfig fills what cfg leaves out from the container's ct, as
// Docker's commit does: user, working directory, stop signal and health
// check when unset; environment entries, labels, exposed ports and
// volumes cfg has not; and the command and entrypoint when cfg has no
// entrypoint.
func mergeConfig(cfg *v1.Config, ct v1.Config) {
	for _, e := range ct.Env {
		k, _, _ := strings.Cut(e, "=")
		if !slices.ContainsFunc(cfg.Env, func(u string) bool { n, _, _ := strings.Cut(u, "="); return n == k }) {
			cfg.Env = append(cfg.Env, e)
		}
	}
	cfg.Labels = mergeMissing(cfg.Labels, ct.Labels)
	cfg.Volumes = mergeMissing(cfg.Volumes, ct.Volumes)
	cfg.ExposedPorts = mergeMissing(cfg.ExposedPorts, ct.ExposedPorts)
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = ct.Cmd
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = ct.Entrypoint
		}
	}
	if cfg.User == "" {
		cfg.User = ct.User
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ct.WorkingDir
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ct.StopSignal
	}
	cfg.Healthcheck = mergeHealth(cfg.Healthcheck, ct.Healthcheck)
}

// mergeHealth is h with what it leaves unset (an empty test, a zero
// duration or count) taken from ct's, as Docker's commit merges them.
func mergeHealth(h, ct *v1.HealthConfig) *v1.HealthConfig {
	if h == nil || ct == nil {
		return cmp.Or(h, ct)
	}
	out := *h
	if len(out.Test) == 0 {
		out.Test = ct.Test
	}
	out.Interval, out.Timeout = cmp.Or(out.Interval, ct.Interval), cmp.Or(out.Timeout, ct.Timeout)
	out.StartPeriod, out.Retries = cmp.Or(out.StartPeriod, ct.StartPeriod), cmp.Or(out.Retries, ct.Retries)
	return &out
}

// mergeMissing is m with the keys of from it does not have.
func mergeMissing[V any](m, from map[string]V) map[string]V {
	for k, v := range from {
		if _, ok := m[k]; !ok {
			if m == nil {
				m = map[string]V{}
			}
			m[k] = v
		}
	}
	return m
}
