package image

import (
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// LayerState is where one layer of a pull (or a push) is.
type LayerState string

// The states of a layer in a pull, in the order they come.
const (
	// Waiting: not started (the pull runs a few layers at a time, or
	// another pull is fetching the same layer).
	Waiting LayerState = "waiting"
	// Downloading: Done of Total compressed bytes have arrived (they are
	// decompressed and unpacked as they arrive).
	Downloading LayerState = "downloading"
	// Extracting: all bytes arrived; unpacking, verifying and syncing.
	Extracting LayerState = "extracting"
	// Done: verified and in the store.
	Done LayerState = "done"
	// AlreadyExists: the store had it, nothing was downloaded; or, in a
	// push, the registry had it or mounted it, nothing was sent.
	AlreadyExists LayerState = "already-exists"
	// Uploading: a push has sent Done of Total compressed bytes (none
	// when the registry had the layer).
	Uploading LayerState = "uploading"
)

// Progress is one event of a pull, for one layer.
type Progress struct {
	Digest v1.Hash // the compressed blob's digest, as in the manifest
	DiffID v1.Hash // the layer's uncompressed digest
	State  LayerState
	Done   int64 // compressed bytes downloaded so far
	Total  int64 // the blob's size per the manifest
}

// progress serializes the caller's callback (layers run in parallel) and
// drops events when there is none.
type progress struct {
	mu sync.Mutex
	fn func(Progress)
}

// emit sends one event for j.
func (p *progress) emit(j layerJob, state LayerState, done int64) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn(Progress{Digest: j.desc.Digest, DiffID: j.diffID, State: state, Done: done, Total: j.desc.Size})
}

// bytes is the callback for j's verifier: Downloading, and Extracting
// once every byte has arrived.
func (p *progress) bytes(j layerJob) func(int64) {
	return func(n int64) {
		state := Downloading
		if n >= j.desc.Size {
			state = Extracting
		}
		p.emit(j, state, n)
	}
}
