package api

import (
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
	"github.com/cove-project/cove/launch"
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
	if q.Has("pause") {
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
	if req.Name != "" {
		if err := image.ValidName(req.Name); err != nil {
			c.fail(errorf(CodeBadRequest, err.Error()))
			return
		}
	}
	if err := json.NewDecoder(c.r.Body).Decode(&req.Config); err != nil && !errors.Is(err, io.EOF) { // none, or null: the container's
		c.failBody(err)
		return
	}
	rec, err := s.Commit(c.ctx(), req)
	switch {
	case errors.Is(err, instruction.ErrInvalid):
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

// Commit stores an image of container req.Container as docker commit
// does: its image's layers and one more, what the container wrote (its
// writable layer, read under its lock so that no start mounts it
// meanwhile, and with the container frozen if req.Pause), with the
// container's configuration (as docker inspect shows it, cove's own
// labels left out) changed by req.Config and req.Changes, and a history
// entry of its command.
func (s *Server) Commit(ctx context.Context, req CommitRequest) (image.ImageRecord, error) {
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
	var lc *launch.Config // the unit's, unless a record gives it
	if ct.rec != nil {
		c, err := ct.rec.launchConfig()
		if err != nil {
			return image.ImageRecord{}, err
		}
		lc = &c
	}
	filer, err := s.filer()
	if err != nil {
		return image.ImageRecord{}, err
	}
	if req.Pause && view.State.Running && !view.State.Paused {
		if err := s.backend.Pause(ctx, ct.Name); err != nil {
			return image.ImageRecord{}, fmt.Errorf("commit %s: %w", ct.Name, err)
		}
		defer s.backend.Unpause(context.WithoutCancel(ctx), ct.Name)
	}
	layer, release, err := filer.WritableLayer(ctx, ct.Name, lc)
	if err != nil {
		return image.ImageRecord{}, fmt.Errorf("commit %s: %w", ct.Name, err)
	}
	defer release()
	return st.CommitContainer(ctx, image.CommitOptions{Base: layer.Image, Upper: layer.Upper, Owner: layer.Owner,
		Config: cfg, Author: req.Author, Comment: req.Comment, CreatedBy: strings.Join(view.Config.Cmd, " "), Name: req.Name})
}

// commitView is container ct as docker inspect shows it, and its
// configuration as an image's: its own, with its image's stop signal
// unless it has one, without cove's own labels.
func (s *Server) commitView(ct dockerContainer) (dockerInspect, v1.Config, error) {
	sp := viewSpec(s.specIndex(), ct.rec, ct.Name)
	if sp == nil || sp.Container == nil || sp.Container.Image == "" {
		return dockerInspect{}, v1.Config{}, fmt.Errorf("commit %s: %w", ct.Name, errNoWritableLayer)
	}
	d := s.inspectOf(ct, sp)
	v := d.Config
	cfg := v1.Config{User: v.User, ExposedPorts: v.ExposedPorts, Env: v.Env, Cmd: v.Cmd, Entrypoint: v.Entrypoint,
		WorkingDir: v.WorkingDir, Volumes: v.Volumes, Labels: maps.Clone(v.Labels), Healthcheck: healthConfig(v.Healthcheck)}
	delete(cfg.Labels, labelKind)
	delete(cfg.Labels, labelUnit)
	if ct.rec != nil {
		cfg.StopSignal = ct.rec.Config.StopSignal
	}
	if rec, ok := s.containerImage(ct.Name, sp.Container); ok && cfg.StopSignal == "" {
		cfg.StopSignal = rec.Config.Config.StopSignal
	}
	return d, cfg, nil
}

// healthConfig is a Docker API health check as an image's.
func healthConfig(h *dockerHealthcheck) *v1.HealthConfig {
	if h == nil || len(h.Test) == 0 {
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
	if cfg.Healthcheck == nil {
		cfg.Healthcheck = ct.Healthcheck
	}
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
