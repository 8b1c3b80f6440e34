package api

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cove-project/cove/internal/copier"
	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/layer"
	"github.com/cove-project/cove/isolate"
	"github.com/cove-project/cove/supervisor"
)

// archiveRoutes are the Docker Engine API endpoints of docker cp, on a
// container's files (Filer): a running one's root as the container sees
// it, its volumes included; a stopped one's root alone (see files). They
// need root: they read and write any file of the container.
func archiveRoutes() []route {
	const p = "/containers/{name}/archive"
	return []route{
		{method: http.MethodHead, path: p, need: roleRoot, handle: (*Server).archiveStat},
		{method: http.MethodGet, path: p, need: roleRoot, handle: (*Server).archiveGet},
		{method: http.MethodPut, path: p, need: roleRoot, mutates: true, bigBody: true, handle: (*Server).archivePut},
		{method: http.MethodGet, path: "/containers/{name}/export", need: roleRoot, handle: (*Server).exportContainer},
		{method: http.MethodGet, path: "/containers/{name}/changes", need: roleRoot, handle: (*Server).containerChanges},
	}
}

// pathStatHeader is the header of the status of the path of a docker cp:
// base64 of its JSON (copier.PathStat).
const pathStatHeader = "X-Docker-Container-Path-Stat"

// archiveStat answers HEAD /containers/ID/archive?path=P: 200 with P's
// status in pathStatHeader (see copier.Root.Stat).
func (s *Server) archiveStat(c *call) {
	s.withFiles(c, false, func(root copier.Root, p string) error {
		st, err := root.Stat(p)
		if err == nil {
			setPathStat(c, st)
		}
		return err
	})
}

// archiveGet answers GET /containers/ID/archive?path=P: P's status in
// pathStatHeader and P as a tar stream (copier.Source.Send); an error
// after the stream began aborts the connection, so that the client never
// takes a cut stream for a whole one.
func (s *Server) archiveGet(c *call) {
	s.withFiles(c, false, func(root copier.Root, p string) error {
		src, err := root.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		setPathStat(c, src.Stat)
		return sendTar(c, src.Send)
	})
}

// exportContainer answers GET /containers/ID/export (docker export): the
// container's root file system as a tar stream (copier.Root.Export),
// without what its mounts hold: a running container's, or one's created
// through Docker's API that does not run (see files). An error after the
// stream began aborts the connection.
func (s *Server) exportContainer(c *call) {
	s.withRoot(c, "/", false, func(root copier.Root) error { return sendTar(c, root.Export) })
}

// containerChanges answers GET /containers/ID/changes (docker diff): what
// an image container changed in its root (Filer.Changes), running or
// not, [{"Path", "Kind"}] sorted by path; 409 for a volatile container's.
func (s *Server) containerChanges(c *call) {
	ct, ok := s.lookupContainer(c)
	if !ok {
		return
	}
	filer, err := s.filer()
	if err != nil {
		c.failWith(err)
		return
	}
	lc, err := ct.launchConfig()
	if err != nil {
		c.failWith(err)
		return
	}
	out, err := filer.Changes(c.ctx(), ct.Name, lc)
	switch {
	case errors.Is(err, isolate.ErrVolatile) || errors.Is(err, errNoWritableLayer):
		c.fail(errorf(CodeConflict, err.Error()))
	case err != nil:
		c.failWith(err)
	default:
		c.reply(http.StatusOK, out)
	}
}

// sendTar answers with the tar stream send writes (application/x-tar);
// an error after the stream began aborts the connection, so that the
// client never takes a cut stream for a whole one.
func sendTar(c *call, send func(io.Writer) error) error {
	c.w.Header().Set("Content-Type", "application/x-tar")
	fw := c.stream(false)
	bw := bufio.NewWriterSize(idleWriter{w: fw, rc: fw.rc}, 1<<20)
	err := send(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil && fw.started {
		panic(http.ErrAbortHandler)
	}
	return err
}

// archivePut answers PUT /containers/ID/archive?path=DIR (docker cp into
// a container): the body, a tar stream (plain, gzip or zstd), extracted
// into the directory DIR (copier.Root.Put) with noOverwriteDirNonDir and
// copyUIDGID; 200 with no body.
func (s *Server) archivePut(c *call) {
	q := c.r.URL.Query()
	var o copier.PutOptions
	var e *Error
	if o.NoOverwriteDirNonDir, e = queryBool(q, "noOverwriteDirNonDir"); e == nil {
		o.CopyUIDGID, e = queryBool(q, "copyUIDGID")
	}
	if e != nil {
		c.fail(e)
		return
	}
	s.withFiles(c, true, func(root copier.Root, p string) error {
		c.long()
		body, err := image.Decompress(idleReader{r: c.r.Body, rc: http.NewResponseController(c.w)})
		if err != nil {
			return fmt.Errorf("%w: %w", layer.ErrRefused, err)
		}
		defer body.Close()
		if err := root.Put(p, body, o); err != nil {
			return err
		}
		c.w.WriteHeader(http.StatusOK)
		return nil
	})
}

// withFiles runs f on the files of the container the path names and the
// query's path, and answers its error as Docker does (see archiveError).
// An empty path is 400.
func (s *Server) withFiles(c *call, write bool, f func(root copier.Root, p string) error) {
	p := c.r.URL.Query().Get("path")
	if p == "" {
		c.fail(errorf(CodeBadRequest, "bad parameter: path cannot be empty"))
		return
	}
	s.withRoot(c, p, write, func(root copier.Root) error { return f(root, p) })
}

// withRoot runs f on the files of the container the path names, to write
// to them if write (see files), and answers its error as Docker does for
// path p (see archiveError).
func (s *Server) withRoot(c *call, p string, write bool, f func(root copier.Root) error) {
	ct, ok := s.lookupContainer(c)
	if !ok {
		return
	}
	root, done, err := s.files(c.ctx(), ct, write)
	if err == nil {
		defer done()
		err = f(root)
	}
	if err != nil {
		c.fail(archiveError(ct.Name, p, err))
	}
}

// files are the files of container ct: a running one's (Filer.Files);
// or those of one created through Docker's API that does not run
// (Filer.StoppedFiles: its root, without its mounts; to write to it if
// write, which an AutoRemove container that never ran refuses), held with
// its start claim, so that a docker start, rm or update meanwhile is 409.
// Any other container that does not run wraps supervisor.ErrNotRunning.
func (s *Server) files(ctx context.Context, ct dockerContainer, write bool) (copier.Root, func(), error) {
	if ct.MainPID == 0 && (ct.rec == nil || !stopped(ct.Workload)) {
		return copier.Root{}, nil, fmt.Errorf("container %s: %w", ct.Name, supervisor.ErrNotRunning)
	}
	filer, err := s.filer()
	switch {
	case err != nil:
		return copier.Root{}, nil, err
	case ct.MainPID != 0:
		return filer.Files(ctx, ct.Name)
	}
	if !s.runs.claim(ct.Name) {
		return copier.Root{}, nil, claimConflict(ct.Name)
	}
	root, done, err := s.claimedFiles(ctx, filer, ct.Name, write)
	if err != nil {
		s.runs.unclaim(ct.Name)
		return root, nil, err
	}
	return root, func() { done(); s.runs.unclaim(ct.Name) }, nil
}

// claimedFiles are the files of container name, created through Docker's
// API and claimed: read again, it must still not run.
func (s *Server) claimedFiles(ctx context.Context, filer Filer, name string, write bool) (copier.Root, func(), error) {
	ct, err := s.findContainer(ctx, name)
	switch {
	case err != nil:
		return copier.Root{}, nil, err
	case ct.rec == nil || !stopped(ct.Workload):
		return copier.Root{}, nil, claimConflict(name) // started since the lookup
	case write && !ct.rec.Started && ct.rec.Config.HostConfig.AutoRemove:
		return copier.Root{}, nil, errorf(CodeConflict, fmt.Sprintf("container %s is removed at the end of its run (AutoRemove): its files exist only while it runs", name))
	}
	c, err := ct.rec.launchConfig()
	if err != nil {
		return copier.Root{}, nil, err
	}
	return filer.StoppedFiles(c, write)
}

// filer is the backend as a Filer, or the 500 of one that cannot reach
// containers' files.
func (s *Server) filer() (Filer, error) {
	if f, ok := s.backend.(Filer); ok {
		return f, nil
	}
	return nil, errorf(CodeInternal, "the API's backend cannot reach containers' files")
}

// archiveError is Docker's answer to a failed copy of path p of
// container name: 404 for a path not there, 409 for a container that
// does not run (and was not created through Docker's API), a volatile
// one, or a path under a mount of one that does not run; 400 for an
// extraction point that is no directory or is read-only, or an archive
// refused; 500 for anything else.
func archiveError(name, p string, err error) *Error {
	switch {
	case errors.Is(err, copier.ErrNotFound):
		return errorf(CodeNotFound, fmt.Sprintf("Could not find the file %s in container %s", p, name))
	case errors.Is(err, supervisor.ErrNotRunning), errors.Is(err, isolate.ErrNotPayload):
		return errorf(CodeConflict, fmt.Sprintf("Container %s is not running: cove copies files of a container that does not run only for one created through Docker's API", name))
	case errors.Is(err, isolate.ErrVolatile), errors.Is(err, copier.ErrMounted):
		return errorf(CodeConflict, fmt.Sprintf("copy %s of container %s: %v", p, name, err))
	case errors.Is(err, copier.ErrNotDir), errors.Is(err, copier.ErrReadOnly), errors.Is(err, layer.ErrRefused):
		return errorf(CodeBadRequest, err.Error())
	}
	return asError(err)
}

// setPathStat sets the header of st.
func setPathStat(c *call, st copier.PathStat) {
	b, _ := json.Marshal(st) // a struct of strings, numbers and a time
	c.w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
}
