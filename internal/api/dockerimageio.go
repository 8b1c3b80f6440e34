package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/layer"
)

// imageIORoutes are Docker's image save, load and tag (docker save, load
// and tag); root only: they read or change the store's contents.
func imageIORoutes() []route {
	const get, post = http.MethodGet, http.MethodPost
	return []route{
		{method: get, path: "/images/get", need: roleRoot, handle: (*Server).saveImages},
		{method: get, path: "/images/{ref}/get", need: roleRoot, handle: (*Server).saveImages},
		{method: post, path: "/images/load", need: roleRoot, mutates: true, bigBody: true, handle: (*Server).loadImages},
		{method: post, path: "/images/{ref}/tag", need: roleRoot, mutates: true, handle: (*Server).tagImage},
	}
}

// saveImages answers GET /images/{ref}/get and GET /images/get?names=…
// (docker save): the images as one docker-archive (image.Store.Save),
// application/x-tar. A name Docker's API shows as an ID (a config
// digest) is saved unnamed, as an ID is. 404 "No such image" before
// anything is sent; an error after the archive began aborts the
// connection, so that the client never takes a cut archive for a whole
// one.
func (s *Server) saveImages(c *call) {
	names := c.r.URL.Query()["names"]
	if c.name != "" {
		names = []string{c.name}
	}
	if len(names) == 0 {
		c.fail(errorf(CodeBadRequest, "save: names is missing: want the images to save"))
		return
	}
	st, ok := s.imageStore(c)
	if !ok {
		return
	}
	refs, ok := saveRefs(c, st, names)
	if !ok {
		return
	}
	c.w.Header().Set("Content-Type", "application/x-tar")
	fw := c.stream(false)
	bw := bufio.NewWriterSize(idleWriter{w: fw, rc: fw.rc}, 1<<20)
	err := st.Save(c.ctx(), bw, refs, image.FormatDockerArchive)
	if err == nil {
		err = bw.Flush()
	}
	switch {
	case err != nil && fw.started:
		panic(http.ErrAbortHandler)
	case err != nil:
		c.failWith(err)
	}
}

// saveRefs are the store's references for the images names name, or it
// answers 404 for the first it does not find and returns false.
func saveRefs(c *call, st *image.Store, names []string) ([]string, bool) {
	refs := make([]string, len(names))
	for i, n := range names {
		img, err := resolveImage(st, n)
		switch {
		case errors.Is(err, image.ErrNotFound):
			c.fail(errorf(CodeNotFound, "No such image: "+n))
			return nil, false
		case err != nil:
			c.failWith(err)
			return nil, false
		}
		refs[i] = img.target
	}
	return refs, true
}

// loadImages answers POST /images/load?quiet= (docker load): the body,
// a docker-archive or oci-archive (plain, gzip or zstd), imported as
// cove import imports it (image.Store.ImportStream), but for the names:
// one with a registry stays that registry's, as Docker keeps it (a
// short one becomes "localhost/NAME:TAG"); then one Docker message per
// name, "Loaded image: NAME", or "Loaded image ID: ID" for an image
// without a name. The body is bounded by the import's limits, not
// MaxBodyBytes. An archive refused is 400, a store that fails 500.
func (s *Server) loadImages(c *call) {
	if _, err := queryBool(c.r.URL.Query(), "quiet"); err != nil {
		c.fail(err)
		return
	}
	recs, ok := s.importBody(c, image.ImportOptions{KeepRegistry: true})
	if !ok {
		return
	}
	for _, rec := range recs {
		for _, n := range rec.Names {
			writeMessage(c.w, dockerMessage{Stream: "Loaded image: " + n + "\n"})
		}
		if len(rec.Names) == 0 {
			writeMessage(c.w, dockerMessage{Stream: "Loaded image ID: " + dockerImageID(rec) + "\n"})
		}
	}
}

// importImage answers POST /images/create?fromSrc=-&repo=R&tag=T&
// changes=…&message=M (docker import): the body, a root file system
// tarball (plain, gzip or zstd), stored as a one-layer image
// (image.Store.ImportStream, RootFS) with its configuration set by the
// changes (package instruction) and the message as its history comment,
// named R:T by docker tag's rules (unnamed without R); {"status":
// "sha256:ID"} as Docker answers; platform sets the image's platform. A
// fromSrc other than "-" (a URL for the daemon to fetch) is 400: cove
// fetches no URL.
func (s *Server) importImage(c *call) {
	q := c.r.URL.Query()
	if src := q.Get("fromSrc"); src != "-" {
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("import: fromSrc %.64q: cove imports the request's body only (fromSrc=-), it fetches no URL", src)))
		return
	}
	opt := image.ImportOptions{RootFS: true, Name: q.Get("repo"), Changes: q["changes"], Message: q.Get("message")}
	if tag := q.Get("tag"); opt.Name != "" && tag != "" {
		opt.Name = withTag(opt.Name, tag)
	}
	if opt.Name != "" {
		if err := image.ValidName(opt.Name); err != nil {
			c.fail(errorf(CodeBadRequest, err.Error()))
			return
		}
	}
	var e *Error
	if opt.Platform, e = queryPlatform(q, "import"); e != nil {
		c.fail(e)
		return
	}
	recs, ok := s.importBody(c, opt)
	if !ok {
		return
	}
	writeMessage(c.w, dockerMessage{Status: dockerImageID(recs[0])})
}

// importBody stores the images of the request's body with
// image.Store.ImportStream and opt, as a long request (the import's
// limits bound the body; idleReader moves its read deadline at each read)
// and readies a JSON answer; ok is false when it has answered with the
// error (loadError).
func (s *Server) importBody(c *call, opt image.ImportOptions) (recs []image.ImageRecord, ok bool) {
	st, ok := s.imageStore(c)
	if !ok {
		return nil, false
	}
	c.long()
	body := idleReader{r: c.r.Body, rc: http.NewResponseController(c.w)}
	recs, err := st.ImportStream(c.ctx(), body, opt)
	if err != nil {
		c.fail(loadError(err))
		return nil, false
	}
	c.w.Header().Set("Content-Type", "application/json")
	return recs, true
}

// loadError classifies a failed load: an archive refused (what it holds
// is not images cove imports, passes a limit, or ends too soon; changes
// refused, see badArchive) is 400, anything else the store's failure, 500.
func loadError(err error) *Error {
	if errors.Is(err, image.ErrBadArchive) || errors.Is(err, layer.ErrRefused) || errors.Is(err, layer.ErrLimit) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorf(CodeBadRequest, err.Error())
	}
	return errorf(CodeInternal, err.Error())
}

// tagImage answers POST /images/{ref}/tag?repo=&tag= (docker tag): the
// image gets the name REPO:TAG (tag latest when absent) as
// image.Store.Name gives it ("localhost/REPO:TAG" for a short REPO);
// 201 with no body. 404 "No such image" for ref, 400 for a bad name.
func (s *Server) tagImage(c *call) {
	q := c.r.URL.Query()
	repo := dockerShortName(q.Get("repo"))
	if repo == "" {
		c.fail(errorf(CodeBadRequest, "tag: repo is missing: want the new name"))
		return
	}
	if tag := q.Get("tag"); tag != "" {
		repo += ":" + tag
	}
	if err := image.ValidName(repo); err != nil {
		c.fail(errorf(CodeBadRequest, fmt.Sprintf("tag %s: %v", c.name, err)))
		return
	}
	st, rec, ok := s.namedImage(c)
	if !ok {
		return
	}
	if _, err := st.Name(rec.Digest, repo); err != nil {
		c.failWith(err)
		return
	}
	c.w.WriteHeader(http.StatusCreated)
}
