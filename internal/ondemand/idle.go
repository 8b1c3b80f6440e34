package ondemand

import (
	"context"
	"sync"
	"time"
)

// Idle tracks the requests a responder is answering and when the last
// one ended, so that it can return once it has been idle for a while.
// The zero value is not ready: use NewIdle. It is safe for concurrent
// use.
type Idle struct {
	mu   sync.Mutex
	busy int
	last time.Time
}

// NewIdle returns an Idle whose idle time starts now.
func NewIdle() *Idle { return &Idle{last: time.Now()} }

// Begin and End bracket the answering of one request; every Begin needs
// its End.
func (a *Idle) Begin() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.busy++
}

func (a *Idle) End() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.busy--
	a.last = time.Now()
}

// Left is how much longer the responder must stay idle to have been idle
// for d; while a request is being answered, d.
func (a *Idle) Left(d time.Duration) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.busy > 0 {
		return d
	}
	return d - time.Since(a.last)
}

// Wait returns when ctx ends (nil), an error arrives on errc (that
// error), or no request has been answered for d (nil). With d 0 or
// negative, idleness never ends it.
func (a *Idle) Wait(ctx context.Context, d time.Duration, errc <-chan error) error {
	var timeout <-chan time.Time // nil: never
	var t *time.Timer
	if d > 0 {
		t = time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-timeout:
			left := a.Left(d)
			if left <= 0 {
				return nil
			}
			t.Reset(left)
		}
	}
}
