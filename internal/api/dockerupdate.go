package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
)

// dockerUpdate is what cove sets of the body of POST
// /containers/{id}/update (docker update): the limits and the restart
// policy. A field left 0 (or absent; a restart policy without a name)
// keeps the container's value, as in Docker.
type dockerUpdate struct {
	Memory        int64
	NanoCPUs      int64 `json:"NanoCpus"`
	PidsLimit     *int64
	RestartPolicy dockerRestartPolicy
}

// updateFields are the keys of dockerUpdate's fields; any other field of
// an update must be null, 0, false, "" or empty (unsetFields).
var updateFields = []string{"Memory", "NanoCpus", "PidsLimit", "RestartPolicy"}

// unsetFields returns the fields of an update body other than
// updateFields that set something, sorted: cove cannot honour them.
func unsetFields(body []byte) ([]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, err
	}
	var set []string
	for k, v := range raw {
		switch strings.TrimSpace(string(v)) {
		case "null", "0", "false", `""`, "[]", "{}":
		default:
			if !slices.Contains(updateFields, k) {
				set = append(set, k)
			}
		}
	}
	slices.Sort(set)
	return set, nil
}

// LimitSetter sets a running workload's resource limits at once. Local
// is one; docker update needs it.
type LimitSetter interface {
	SetLimits(ctx context.Context, name string, r spec.Resources) error
}

var _ LimitSetter = (*Local)(nil)

// SetLimits sets the limits r on workload name's loaded unit, for its
// running processes too (supervisor.Conn.SetLive of
// units.LimitProperties): a limit r leaves unset is lifted to what a
// unit without it has.
func (l *Local) SetLimits(ctx context.Context, name string, r spec.Resources) error {
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	var tasks uint64 // only a lifted PIDs limit needs systemd's default
	if r.Pids == 0 {
		if tasks, err = c.DefaultTasksMax(); err != nil {
			return err
		}
	}
	return c.SetLive(ctx, spec.UnitName(name), units.LimitProperties(r, tasks))
}

// updateWait is how long an update waits for a start, rename, removal or
// another update of its container to end (Docker runs them one after the
// other).
const updateWait = 10 * time.Second

// dockerUpdateContainer answers POST /containers/{id}/update, holding
// the container's start claim (containerRuns.claimWithin updateWait: 409
// when a start, rename, removal or another update of it takes longer): a
// container
// created through Docker's API gets the request's memory, CPU and PIDs
// limits and restart policy in its record (checked as its create's were:
// 400, nothing changed), which its next starts take; a running one gets
// the limits at once, as Docker's (LimitSetter; if that fails, the record
// is put back). 200 {"Warnings": […]}: a running container's new
// restart policy applies from its next start. 409 for another workload
// (its spec's, or its cove run's, limits are cove apply's or systemctl
// set-property's) and for a restart policy on an AutoRemove container,
// 400 for a field cove cannot honour.
func (s *Server) dockerUpdateContainer(c *call) {
	req, ok := s.readUpdate(c)
	if !ok {
		return
	}
	ct, ok := s.lookupContainer(c)
	if !ok {
		return
	}
	if ct.rec == nil {
		c.fail(errorf(CodeConflict, fmt.Sprintf("update %s: not created through Docker's API: change its spec and cove apply it, or systemctl set-property %s", ct.Name, spec.UnitName(ct.Name))))
		return
	}
	if !s.runs.claimWithin(c.ctx(), ct.Name, updateWait) {
		c.fail(claimConflict(ct.Name))
		return
	}
	defer s.runs.unclaim(ct.Name)
	warnings, err := s.update(c.ctx(), ct.Name, req)
	if err != nil {
		c.failWith(err)
		return
	}
	c.reply(http.StatusOK, map[string][]string{"Warnings": warnings})
}

// readUpdate reads an update's body, or answers 400 (naming the fields
// cove cannot set) and returns false.
func (s *Server) readUpdate(c *call) (dockerUpdate, bool) {
	var req dockerUpdate
	body, err := io.ReadAll(c.r.Body)
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		var unset []string
		if unset, err = unsetFields(body); err == nil && len(unset) > 0 {
			c.fail(errorf(CodeBadRequest, fmt.Sprintf("update %s: cove sets memory (--memory), CPUs (--cpus), PIDs (--pids-limit) and the restart policy, not %s", c.name, strings.Join(unset, ", "))))
			return req, false
		}
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
	}
	if err != nil {
		c.failBody(err)
		return req, false
	}
	return req, true
}

// update writes req into container name's record (updateRecord) and, if
// its unit runs, sets the new limits on it, putting the record back when
// that fails. It returns the warnings to give.
func (s *Server) update(ctx context.Context, name string, req dockerUpdate) ([]string, error) {
	before, after, err := s.updateRecord(name, req)
	if err != nil {
		return nil, err
	}
	w, serr := s.backend.Status(ctx, name)
	if errors.Is(serr, supervisor.ErrNotFound) || serr == nil && !isUp(dockerState(w)) {
		return []string{}, nil // its next start compiles the record
	}
	if serr == nil {
		serr = s.setLimits(ctx, after)
	}
	if errors.Is(serr, supervisor.ErrNotFound) { // unloaded meanwhile: its next start compiles the record
		return []string{}, nil
	}
	if serr != nil {
		s.restoreUpdated(name, before)
		return nil, fmt.Errorf("update %s: %w", name, serr)
	}
	if req.RestartPolicy.Name != "" {
		return []string{"the new restart policy applies from the container's next start"}, nil
	}
	return []string{}, nil
}

// restoreUpdated puts back what an update changed in container name's
// record (the limits and restart policy of before), leaving what else
// changed since (an exit status); a failure is logged.
func (s *Server) restoreUpdated(name string, before containerRecord) {
	err := s.records.update(name, func(rec *containerRecord) (bool, error) {
		h, b := &rec.Config.HostConfig, before.Config.HostConfig
		h.Memory, h.NanoCPUs, h.PidsLimit, h.RestartPolicy = b.Memory, b.NanoCPUs, b.PidsLimit, b.RestartPolicy
		return true, nil
	})
	if err != nil {
		fmt.Fprintf(s.opt.Log, "cove api: update %s: put its record back: %v\n", name, err)
	}
}

// updateRecord writes req's changes into container name's record, if
// its spec can still be made of it (containerSpec; 400) and a restart
// policy is not asked of an AutoRemove container (409, as Docker's), and
// returns the record before and after.
func (s *Server) updateRecord(name string, req dockerUpdate) (before, after containerRecord, err error) {
	err = s.records.update(name, func(rec *containerRecord) (bool, error) {
		before = *rec
		h := &rec.Config.HostConfig
		if p := req.RestartPolicy.Name; p != "" && p != "no" && h.AutoRemove {
			return false, errorf(CodeConflict, "Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		h.Memory, h.NanoCPUs = cmp.Or(req.Memory, h.Memory), cmp.Or(req.NanoCPUs, h.NanoCPUs)
		if req.PidsLimit != nil {
			h.PidsLimit = req.PidsLimit
		}
		if req.RestartPolicy.Name != "" {
			h.RestartPolicy = req.RestartPolicy
		}
		if _, serr := rec.spec(); serr != nil {
			return false, errorf(CodeBadRequest, fmt.Sprintf("update %s: %v", name, serr))
		}
		after = *rec
		return true, nil
	})
	return before, after, err
}

// setLimits sets the limits of record after on its container's running
// unit (LimitSetter).
func (s *Server) setLimits(ctx context.Context, after containerRecord) error {
	sp, err := after.spec()
	if err != nil {
		return err
	}
	setter, ok := s.backend.(LimitSetter)
	if !ok {
		return errors.New("the API's backend cannot set limits at once")
	}
	return setter.SetLimits(ctx, after.Name, sp.Resources)
}
