package api

import (
	"net/http"
	"slices"

	"github.com/cove-project/cove/internal/image"
)

// dockerHistoryItem is one step of an image's history, as GET
// /images/NAME/history answers it.
type dockerHistoryItem struct {
	ID        string   `json:"Id"`
	Created   int64    `json:"Created"`
	CreatedBy string   `json:"CreatedBy"`
	Tags      []string `json:"Tags"`
	Size      int64    `json:"Size"`
	Comment   string   `json:"Comment"`
}

// imageHistory answers GET /images/NAME/history (docker history): the
// steps of the image's config history, newest first (none when the
// config has none, as Docker's), each a layer's with that layer's size
// (compressed, as cove's sizes are; 0 for a step past the last layer,
// where Docker fails) or an empty step's with 0; the
// newest has the image's ID and tags, the others "<missing>", as for a
// pulled image in Docker. 404 No such image.
func (s *Server) imageHistory(c *call) {
	if _, rec, ok := s.namedImage(c); ok {
		c.reply(http.StatusOK, historyOf(rec))
	}
}

// historyOf is rec's history, newest first.
func historyOf(rec image.ImageRecord) []dockerHistoryItem {
	out := []dockerHistoryItem{}
	layer := 0
	for _, h := range rec.Config.History {
		item := dockerHistoryItem{ID: "<missing>", Created: h.Created.Unix(), CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created.IsZero() {
			item.Created = 0
		}
		if !h.EmptyLayer && layer < len(rec.Layers) {
			item.Size = rec.Layers[layer].Size
			layer++
		}
		out = append(out, item)
	}
	slices.Reverse(out)
	if len(out) > 0 {
		out[0].ID = dockerImageID(rec)
		if tags, _ := repoRefs(rec); len(tags) > 0 { // none: null, as Docker's
			out[0].Tags = tags
		}
	}
	return out
}
