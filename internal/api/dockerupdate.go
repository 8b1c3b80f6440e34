package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cove-project/cove/spec"
	"github.com/cove-project/cove/supervisor"
	"github.com/cove-project/cove/units"
)

// dockerUpdate is the body of POST /containers/{id}/update (docker
// update): the limits and restart policy cove reads. A field left 0 (or
// absent; a restart policy without a name) keeps the container's value,
// as in Docker. The rest cove does not set: they must be 0 (unsupported).
type dockerUpdate struct {
	Memory        int64
	NanoCPUs      int64 `json:"NanoCpus"`
	PidsLimit     *int64
	RestartPolicy dockerRestartPolicy

	MemorySwap, MemoryReservation, KernelMemory int64
	CPUShares                                   int64 `json:"CpuShares"`
	CPUQuota                                    int64 `json:"CpuQuota"`
	CPUPeriod                                   int64 `json:"CpuPeriod"`
	CpusetCpus, CpusetMems                      string
	BlkioWeight                                 uint16
}

// unsupported reports whether u sets what cove does not.
func (u dockerUpdate) unsupported() bool {
	return u.MemorySwap != 0 || u.MemoryReservation != 0 || u.KernelMemory != 0 || u.CPUShares != 0 || u.CPUQuota != 0 ||
		u.CPUPeriod != 0 || u.CpusetCpus != "" || u.CpusetMems != "" || u.BlkioWeight != 0
}

// LiveSetter sets properties of a workload's loaded unit at once
// (supervisor.Conn.SetLive). Local is one; docker update needs it.
type LiveSetter interface {
	SetLive(ctx context.Context, name string, props []units.Property) error
}

var _ LiveSetter = (*Local)(nil)

// SetLive sets props on workload name's loaded unit, for its running
// processes too (supervisor.Conn.SetLive).
func (l *Local) SetLive(ctx context.Context, name string, props []units.Property) error {
	c, err := l.connect(ctx)
	if err != nil {
		return err
	}
	return c.SetLive(ctx, spec.UnitName(name), props)
}

// dockerUpdateContainer answers POST /containers/{id}/update: a
// container created through Docker's API gets the request's memory, CPU
// and PIDs limits and restart policy in its record (checked as its
// create's were: 400, nothing changed), which its next starts take; a
// running one gets the limits at once, as Docker's (LiveSetter). 200
// {"Warnings": […]}: a running container's new restart policy applies
// from its next start. 409 for another workload (its spec's, or its cove
// run's, limits are cove apply's or systemctl set-property's), 400 for a
// field cove cannot honour.
func (s *Server) dockerUpdateContainer(c *call) {
	var req dockerUpdate
	if err := json.NewDecoder(c.r.Body).Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		c.failBody(err)
		return
	}
	if req.unsupported() {
		c.fail(errorf(CodeBadRequest, "update: cove sets memory (--memory), CPUs (--cpus), PIDs (--pids-limit) and the restart policy; not swap, reservations, shares, quotas, CPU sets or block I/O weights"))
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
	after, err := s.updateRecord(ct.Name, req)
	if err != nil {
		c.failWith(err)
		return
	}
	warnings := []string{}
	if ct.loaded && isUp(dockerState(ct.Workload)) {
		if err := s.updateLive(c.ctx(), after); err != nil {
			c.failWith(err)
			return
		}
		if req.RestartPolicy.Name != "" {
			warnings = append(warnings, "the new restart policy applies from the container's next start")
		}
	}
	c.reply(http.StatusOK, map[string][]string{"Warnings": warnings})
}

// updateRecord writes req's changes into container name's record, if
// its spec can still be made of it (containerSpec), and returns the
// record as written.
func (s *Server) updateRecord(name string, req dockerUpdate) (after containerRecord, err error) {
	err = s.records.update(name, func(rec *containerRecord) (bool, error) {
		h := &rec.Config.HostConfig
		h.Memory = cmpNonZero(req.Memory, h.Memory)
		h.NanoCPUs = cmpNonZero(req.NanoCPUs, h.NanoCPUs)
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
	return after, err
}

// cmpNonZero is v, or keep when v is 0.
func cmpNonZero(v, keep int64) int64 {
	if v == 0 {
		return keep
	}
	return v
}

// updateLive sets the limits of record after on its container's running
// unit (units.LimitProperties: a limit it leaves unset is lifted).
func (s *Server) updateLive(ctx context.Context, after containerRecord) error {
	sp, err := after.spec()
	if err != nil {
		return err
	}
	setter, ok := s.backend.(LiveSetter)
	if !ok {
		return fmt.Errorf("update %s: the API's backend cannot set limits live", after.Name)
	}
	if err := setter.SetLive(ctx, after.Name, units.LimitProperties(sp.Resources)); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
		return err
	}
	return nil
}
