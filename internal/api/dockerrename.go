package api

import (
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/cove-project/cove/internal/eventlog"
	"github.com/cove-project/cove/launch"
)

// dockerRename answers POST /containers/ID/rename?name=NEW: a container
// created through this API that has not started yet takes the name NEW
// (its record moves; its old ID still finds it, see
// containerRecords.rename), which is how docker compose replaces a
// container: it creates the new one under a temporary name, removes the
// old one and renames the new one. 204; 400 for a missing or bad name;
// 409 for a name in use, a container that has run (its unit, writable
// layer and logs go by its name) and one not created through this API.
func (s *Server) dockerRename(c *call) {
	q := c.r.URL.Query().Get("name")
	if q == "" {
		c.fail(errorf(CodeBadRequest, "rename: want the new name (name=)"))
		return
	}
	name, qerr := createName(q)
	if qerr != nil {
		c.fail(qerr)
		return
	}
	ct, ok := s.lookupContainer(c)
	if !ok || !s.renamable(c, ct, name) || s.inUse(c, name) { // inUse at once, and again under the lock
		return
	}
	unlock, ok := s.lockName(c, "rename", name) // against a cove run of the new name starting meanwhile
	if !ok {
		return
	}
	defer unlock()
	if s.inUse(c, name) {
		return
	}
	if !s.runs.claim(ct.Name) {
		c.fail(claimConflict(ct.Name))
		return
	}
	defer s.runs.unclaim(ct.Name)
	if s.runs.waiting(ct.Name) {
		c.fail(errorf(CodeConflict, fmt.Sprintf("an attach to container %s waits for its start: cove renames it once nothing does", ct.Name)))
		return
	}
	switch err := s.records.rename(ct.Name, name); {
	case err == nil:
		eventlog.Renamed(ct.Name, name)
		c.w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, errStarted):
		c.fail(errorf(CodeConflict, hasRun(ct.Name)))
	case errors.Is(err, errNoRecord):
		c.fail(errorf(CodeNotFound, "No such container: "+ct.Name))
	default:
		s.failCreate(c, name, err)
	}
}

// hasRun is why container name cannot be renamed once it has started.
func hasRun(name string) string {
	return fmt.Sprintf("cove renames only a container that has not started yet: %s has run, and its unit, writable layer and logs go by its name (remove it and create it again)", name)
}

// hasState reports whether container name has a state directory: a
// writable layer, made by a docker cp before its first start.
func hasState(name string) bool {
	_, err := os.Lstat(launch.ContainerDir(name))
	return err == nil
}

// renamable answers 400 or 409 and returns false unless ct can take the
// name name (see dockerRename).
func (s *Server) renamable(c *call, ct dockerContainer, name string) bool {
	switch {
	case name == ct.Name:
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("Renaming a container with the same name as its current name: %s", name)))
	case ct.rec == nil:
		c.fail(errorf(CodeConflict, fmt.Sprintf("cove renames only a container created through Docker's API: %s is a cove workload, named by its spec or its run", ct.Name)))
	case ct.loaded || ct.rec.Started:
		c.fail(errorf(CodeConflict, hasRun(ct.Name)))
	case hasState(ct.Name):
		c.fail(errorf(CodeConflict, fmt.Sprintf("cove renames only a container without files of its own: files were copied into %s (docker cp), and its writable layer goes by its name (remove it and create it again)", ct.Name)))
	default:
		return true
	}
	return false
}
