package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/cove-project/cove/internal/image"
)

// pushRoute is docker push's endpoint; root only, as pulls are.
func pushRoute() route {
	return route{method: http.MethodPost, path: "/images/{ref}/push", need: roleRoot, mutates: true, handle: (*Server).pushImage}
}

// pushStatuses are Docker's words for a push's layer states.
var pushStatuses = map[image.LayerState]string{image.Waiting: "Preparing", image.Uploading: "Pushing", image.Done: "Pushed",
	image.AlreadyExists: "Layer already exists"}

// pushImage answers POST /images/{name}/push?tag=T (docker push): the
// store's image NAME:T (every tag of NAME without T) pushed to the
// registry NAME names (image.Store.Push), with the credentials of
// X-Registry-Auth, streamed as Docker's JSON progress messages, each
// tag's ending with "T: digest: D size: N" and its aux message. A name
// without a registry (or the store's own, localhost/…) is 400, one the
// store does not have 404, before anything is streamed; a later failure
// ends the stream as an error message.
func (s *Server) pushImage(c *call) {
	kc, e := registryAuth(c.r.Header.Get("X-Registry-Auth"))
	if e != nil {
		c.fail(e)
		return
	}
	st, ok := s.imageStore(c)
	if !ok {
		return
	}
	repo := dockerShortName(c.name)
	refs, err := pushRefs(st, repo, c.r.URL.Query().Get("tag"))
	if err != nil {
		c.fail(pushError(repo, err))
		return
	}
	c.w.Header().Set("Content-Type", "application/json")
	ps := &progressStream{w: c.stream(false), first: dockerMessage{Status: fmt.Sprintf("The push refers to repository [%s]", repo)},
		statuses: pushStatuses, layers: map[string]string{}}
	for _, ref := range refs {
		p, err := st.Push(c.ctx(), ref, image.PushOptions{Keychain: kc, Progress: ps.event})
		switch {
		case err != nil && !ps.started:
			c.fail(pushError(ref, err))
			return
		case err != nil:
			ps.fail(err)
			return
		}
		tag := ref[len(repoOf(ref))+1:]
		ps.send(dockerMessage{Status: fmt.Sprintf("%s: digest: %s size: %d", tag, p.Digest, p.Size)})
		ps.send(dockerMessage{ProgressDetail: &dockerProgress{}, Aux: map[string]any{"Tag": tag, "Digest": p.Digest.String(), "Size": p.Size}})
	}
}

// pushRefs are the store names a push of repo with tag means: repo:tag,
// or without a tag every name of repo's (sorted).
func pushRefs(st *image.Store, repo, tag string) ([]string, error) {
	if r := repoOf(repo); tag == "" && r != repo && !strings.Contains(repo, "@") { // NAME:TAG in the path
		repo, tag = r, repo[len(r)+1:]
	}
	if err := image.Pushable(repo); err != nil {
		return nil, err
	}
	if strings.Contains(tag, ":") || strings.Contains(repo, "@") {
		return nil, fmt.Errorf("%w: %s@%s: a push goes to a tag, not a digest", image.ErrNotPushable, repo, tag)
	}
	if tag != "" {
		ref := withTag(repo, tag)
		if _, err := st.Lookup(ref); err != nil {
			return nil, err
		}
		return []string{ref}, nil
	}
	names, err := st.ReadNames()
	if err != nil {
		return nil, err
	}
	var refs []string
	for n := range names {
		if repoOf(n) == repo && !strings.Contains(n, "@") {
			refs = append(refs, n)
		}
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("no image of the repository %s: %w", repo, image.ErrNotFound)
	}
	slices.Sort(refs)
	return refs, nil
}

// pushError classifies an error of a push that sent nothing yet: a name
// that names no registry is 400, an image the store does not have 404
// (Docker's words).
func pushError(ref string, err error) *Error {
	switch {
	case errors.Is(err, image.ErrNotPushable):
		return errorf(CodeBadRequest, err.Error())
	case errors.Is(err, image.ErrNotFound):
		return errorf(CodeNotFound, fmt.Sprintf("An image does not exist locally with the tag: %s", ref))
	}
	return asError(err)
}
