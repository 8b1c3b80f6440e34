package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cove-project/cove/internal/image"
	"github.com/cove-project/cove/internal/image/stored"
)

// imageRoutes are Docker's image endpoints cove implements (see
// docs/api.md; save, load and tag: imageIORoutes); the others (push,
// search, build) are answered 501.
func imageRoutes() []route {
	const get, post, del = http.MethodGet, http.MethodPost, http.MethodDelete
	return []route{
		{method: get, path: "/images/json", need: roleMember, handle: (*Server).images},
		{method: post, path: "/images/create", need: roleRoot, mutates: true, bigBody: true, handle: (*Server).pullImage}, // an import's body: the import bounds it
		{method: post, path: "/images/prune", need: roleRoot, mutates: true, handle: (*Server).pruneImages},
		{method: get, path: "/images/{ref}/json", need: roleMember, handle: (*Server).inspectImage},
		{method: get, path: "/images/{ref}/history", need: roleMember, handle: (*Server).imageHistory},
		{method: del, path: "/images/{ref}", need: roleRoot, mutates: true, handle: (*Server).removeImage},
	}
}

// imageStore opens the image store, or answers 500 and returns false.
func (s *Server) imageStore(c *call) (*image.Store, bool) {
	st, err := s.opt.Images()
	if err != nil {
		c.failWith(fmt.Errorf("open the image store: %w", err))
		return nil, false
	}
	return st, true
}

// imageCount is how many images the store holds; 0 when it cannot be
// read (info does not fail for it).
func (s *Server) imageCount() int {
	st, err := s.opt.Images()
	if err != nil {
		return 0
	}
	recs, _ := st.List()
	return len(recs)
}

// images answers GET /images/json?filters=: every image in the store,
// newest first. all (there are no intermediate images) and digests
// (RepoDigests are always there) change nothing.
func (s *Server) images(c *call) {
	q := c.r.URL.Query()
	if _, err := queryBool(q, "all"); err != nil {
		c.fail(err)
		return
	}
	f, err := parseImageFilters(q.Get("filters"))
	if err != nil {
		c.fail(err)
		return
	}
	st, ok := s.imageStore(c)
	if !ok {
		return
	}
	recs, lerr := st.List()
	if lerr != nil {
		c.failWith(lerr)
		return
	}
	out := []dockerImageSummary{}
	for _, rec := range recs {
		if sum := imageSummary(rec); f.matchImage(sum, len(rec.Names) == 0) {
			out = append(out, sum)
		}
	}
	c.reply(http.StatusOK, out)
}

// parseImageFilters reads the filters of GET /images/json (imageFilters);
// dangling must be true or false.
func parseImageFilters(s string) (filters, *Error) {
	f, err := parseFilters(s, imageFilters)
	if err != nil {
		return nil, err
	}
	return f, checkDangling(f)
}

// checkDangling refuses dangling filters other than true or false.
func checkDangling(f filters) *Error {
	for _, v := range f["dangling"] {
		if v != "true" && v != "false" && v != "1" && v != "0" {
			return errorf(CodeBadRequest, fmt.Sprintf("Invalid filter 'dangling=%.32s': want true or false", v))
		}
	}
	return nil
}

// inspectImage answers GET /images/NAME/json.
func (s *Server) inspectImage(c *call) {
	st, rec, ok := s.namedImage(c)
	if !ok {
		return
	}
	dirs, _ := st.LayerDirs(rec) // missing layers: no LowerDir, the rest stands
	c.reply(http.StatusOK, imageInspect(rec, dirs))
}

// namedImage opens the store and finds the image c names, or answers
// (see imageStore and findImage) and returns false.
func (s *Server) namedImage(c *call) (*image.Store, image.ImageRecord, bool) {
	st, ok := s.imageStore(c)
	if !ok {
		return nil, image.ImageRecord{}, false
	}
	img, ok := s.findImage(c, st)
	return st, img.rec, ok
}

// findImage finds the image c names (resolveImage), or answers (404 "No
// such image: NAME" when there is none) and returns false.
func (s *Server) findImage(c *call, st *image.Store) (resolvedImage, bool) {
	img, err := resolveImage(st, c.name)
	switch {
	case errors.Is(err, image.ErrNotFound):
		c.fail(errorf(CodeNotFound, "No such image: "+c.name))
		return img, false
	case err != nil:
		c.failWith(err)
		return img, false
	}
	return img, true
}

// resolvedImage is the image a name resolved to: its record, whether
// the name was an ID, and what the store's operations take for it (the
// manifest digest for an ID, else the name as the store knows it).
type resolvedImage struct {
	rec    image.ImageRecord
	byID   bool
	target string
}

// resolveImage finds the image ref names. A name that looks like an ID
// ("sha256:HEX", HEX, or a prefix) is matched against the images' Docker
// IDs (config digests) and cove's IDs (manifest digests) first, and must
// match one image; otherwise, and for every other name, the store's
// Lookup decides (names under the registry, or under the search
// registries), and a short name it does not find is tried as a loaded,
// imported or tagged image's, "localhost/NAME" (docker load of app:1
// stores localhost/app:1, which docker run app:1 then runs).
func resolveImage(st *image.Store, ref string) (resolvedImage, error) {
	if stored.IsIDPrefix(ref) {
		recs, err := st.List()
		if err != nil {
			return resolvedImage{}, err
		}
		prefix := strings.TrimPrefix(ref, "sha256:")
		var found []image.ImageRecord
		for _, r := range recs {
			if strings.HasPrefix(r.ConfigDigest.Hex, prefix) || strings.HasPrefix(r.Digest.Hex, prefix) {
				found = append(found, r)
			}
		}
		if len(found) > 0 && !oneImageID(found) {
			return resolvedImage{byID: true}, errorf(CodeBadRequest, fmt.Sprintf("multiple images found with provided prefix: %s", ref))
		}
		if len(found) > 0 { // the newest of those with this Docker ID
			return resolvedImage{rec: found[0], byID: true, target: found[0].Digest.String()}, nil
		}
	}
	rec, err := st.Lookup(ref)
	if errors.Is(err, image.ErrNotFound) && !stored.HasRegistry(ref) {
		local := image.LocalRegistry + "/" + ref
		if lrec, lerr := st.Lookup(local); lerr == nil {
			return resolvedImage{rec: lrec, target: local}, nil
		}
	}
	return resolvedImage{rec: rec, target: ref}, err
}

// oneImageID reports whether recs all have one Docker ID (one config in
// manifests that differ, e.g. in compression).
func oneImageID(recs []image.ImageRecord) bool {
	for _, r := range recs {
		if r.ConfigDigest != recs[0].ConfigDigest {
			return false
		}
	}
	return true
}

// dockerDeleted is one entry of the answer to DELETE /images/NAME.
type dockerDeleted struct {
	Untagged string `json:"Untagged,omitempty"`
	Deleted  string `json:"Deleted,omitempty"`
}

// removeImage answers DELETE /images/NAME?force=&noprune=: a name loses
// that name, an ID all the image's names; the image goes with its last
// name (its layers stay until a prune). An image a workload uses is
// refused (409) unless forced, as is an ID whose image has names in
// more than one repository.
func (s *Server) removeImage(c *call) {
	force, err := queryBool(c.r.URL.Query(), "force")
	if err != nil {
		c.fail(err)
		return
	}
	st, ok := s.imageStore(c)
	if !ok {
		return
	}
	img, ok := s.findImage(c, st)
	if !ok || !force && !s.removable(c, st, img.rec, img.byID) {
		return
	}
	removed, rerr := st.Remove(img.target)
	if rerr != nil {
		c.failWith(rerr)
		return
	}
	out := []dockerDeleted{}
	for _, n := range removed.Untagged {
		out = append(out, dockerDeleted{Untagged: n})
	}
	if removed.Deleted != nil {
		out = append(out, dockerDeleted{Deleted: dockerImageID(img.rec)})
	}
	c.reply(http.StatusOK, out)
}

// removable reports whether rec may go without force: no workload uses
// it, and an ID does not name it in several repositories. Otherwise it
// answers 409 and returns false.
func (s *Server) removable(c *call, st *image.Store, rec image.ImageRecord, byID bool) bool {
	users, err := s.imageUsers(c.ctx(), st)
	if err != nil {
		c.failWith(err)
		return false
	}
	short := rec.ConfigDigest.Hex[:min(12, len(rec.ConfigDigest.Hex))]
	if who := users[rec.Digest.String()]; len(who) > 0 {
		what := fmt.Sprintf("remove repository reference %q", c.name)
		if byID {
			what = "delete " + short
		}
		c.fail(errorf(CodeConflict, fmt.Sprintf("conflict: unable to %s (must force) - image %s is used by workload %s",
			what, short, strings.Join(who, ", "))))
		return false
	}
	if byID && manyRepos(rec.Names) {
		c.fail(errorf(CodeConflict, fmt.Sprintf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", short)))
		return false
	}
	return true
}

// manyRepos reports whether names belong to more than one repository.
func manyRepos(names []string) bool {
	for _, n := range names {
		if repoOf(n) != repoOf(names[0]) {
			return true
		}
	}
	return false
}

// dockerPruneReport is the answer to POST /images/prune.
type dockerPruneReport struct {
	ImagesDeleted  []dockerDeleted `json:"ImagesDeleted"`
	SpaceReclaimed int64           `json:"SpaceReclaimed"`
}

// pruneImages answers POST /images/prune?filters=: removes the images no
// workload uses and that have no name (filter dangling=false: whatever
// their names) where the prune filters (pruneFilters: their config's
// labels, until their creation: imageCreated) hold, then every layer and
// blob no image left references. SpaceReclaimed is the compressed size
// of the layers removed.
func (s *Server) pruneImages(c *call) {
	f, until, err := readPruneFilters(c, "dangling")
	if err == nil {
		err = checkDangling(f)
	}
	if err != nil {
		c.fail(err)
		return
	}
	danglingOnly := !slices.ContainsFunc(f["dangling"], func(v string) bool { return v == "false" || v == "0" })
	st, ok := s.imageStore(c)
	if !ok {
		return
	}
	users, uerr := s.imageUsers(c.ctx(), st)
	recs, lerr := st.List()
	if uerr = errors.Join(uerr, lerr); uerr != nil {
		c.failWith(uerr)
		return
	}
	pruned, perr := st.Prune(func(r image.ImageRecord) bool {
		return len(users[r.Digest.String()]) > 0 || danglingOnly && len(r.Names) > 0 ||
			!f.labelsMatch(r.Config.Config.Labels) || !until.IsZero() && imageCreated(r).After(until)
	})
	if perr != nil {
		c.failWith(perr)
		return
	}
	c.reply(http.StatusOK, pruneReport(recs, pruned))
}

// pruneReport says what a prune removed, in Docker's terms, from the
// images there were before it.
func pruneReport(before []image.ImageRecord, p image.Pruned) dockerPruneReport {
	byDigest := map[string]image.ImageRecord{}
	sizes := map[string]int64{}
	for _, r := range before {
		byDigest[r.Digest.String()] = r
		for _, l := range r.Layers {
			sizes[l.DiffID.String()] = l.Size
		}
	}
	out := dockerPruneReport{ImagesDeleted: []dockerDeleted{}}
	for _, d := range p.Images {
		r := byDigest[d.String()]
		for _, n := range r.Names {
			out.ImagesDeleted = append(out.ImagesDeleted, dockerDeleted{Untagged: n})
		}
		out.ImagesDeleted = append(out.ImagesDeleted, dockerDeleted{Deleted: dockerImageID(r)})
	}
	for _, l := range p.Layers {
		out.SpaceReclaimed += sizes[l.String()]
	}
	return out
}
