package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/cove-project/cove/internal/image/stored"
)

// fetchLayers makes sure every layer of t is in layers/, fetching up to
// opt.Parallel at once. The first failure cancels the others; its error
// is returned (not the cancellations it caused).
func (s *Store) fetchLayers(ctx context.Context, w *pullWork, t *target, opt PullOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &progress{fn: opt.Progress}
	for _, j := range t.layers {
		p.emit(j, Waiting, 0)
	}
	n := opt.Parallel
	if n <= 0 {
		n = DefaultParallel
	}
	sem := make(chan struct{}, n)
	errs := make([]error, len(t.layers))
	var wg sync.WaitGroup
	for i, j := range t.layers {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				errs[i] = s.ensureLayer(ctx, w, t.src, j, opt, p)
			case <-ctx.Done():
				errs[i] = ctx.Err()
			}
			if errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return firstCause(errs)
}

// firstCause is the first error that is not a cancellation, else the
// first error.
func firstCause(errs []error) error {
	var first error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// ensureLayer puts layer j into layers/ unless it is there: under the
// layer's lock (so no two pulls unpack it at once), it is fetched into
// the pull's work directory, verified, synced and renamed into place.
func (s *Store) ensureLayer(ctx context.Context, w *pullWork, src blobSource, j layerJob, opt PullOptions, p *progress) error {
	dst := s.LayerDir(j.diffID)
	if ok, err := stored.Exists(dst); ok || err != nil {
		return s.haveLayer(j, p, err)
	}
	lockPath := filepath.Join(s.TmpDir(), "layer-"+j.diffID.Hex+".lock")
	lk, err := lockWait(ctx, lockPath)
	if err != nil {
		return fmt.Errorf("layer %s: lock: %w", j.desc.Digest, err)
	}
	defer func() {
		_ = os.Remove(lockPath) // held: waiters on it will take a new one
		lk.Close()
	}()
	if ok, err := stored.Exists(dst); ok || err != nil {
		return s.haveLayer(j, p, err)
	}
	dir := filepath.Join(w.dir(), j.diffID.Hex)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	p.emit(j, Downloading, 0)
	if _, err := fetchLayer(ctx, src, j, dir, opt.limits(), p.bytes(j)); err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	if err := s.placeLayer(dir, dst); err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	p.emit(j, Done, j.desc.Size)
	return nil
}

// haveLayer reports a layer found in the store (or the error looking).
func (s *Store) haveLayer(j layerJob, p *progress, err error) error {
	if err != nil {
		return fmt.Errorf("layer %s: %w", j.desc.Digest, err)
	}
	p.emit(j, AlreadyExists, 0)
	return nil
}

// placeLayer makes the verified layer in dir durable and renames it to
// dst, unless another pull placed it first (then dir is removed).
func (s *Store) placeLayer(dir, dst string) error {
	if err := syncFS(dir); err != nil {
		return err
	}
	err := renameNoReplace(dir, dst)
	if errors.Is(err, errExist) {
		return os.RemoveAll(dir)
	}
	if err != nil {
		return err
	}
	return stored.SyncDir(s.LayersDir())
}
