package api

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// idleTracker watches the server's connections (http.Server.ConnState)
// and closes Idle once no connection has been busy for the idle period. A
// connection is busy from accept until its first request, and while a
// request runs, however long (a followed log keeps the server alive). Idle
// keep-alive connections do not count. This is podman's idle tracker.
type idleTracker struct {
	mu     sync.Mutex
	busy   map[net.Conn]bool
	period time.Duration
	timer  *time.Timer
	once   sync.Once
	idle   chan struct{}
}

// newIdleTracker starts the idle period at once: a server that gets no
// request at all exits too.
func newIdleTracker(period time.Duration) *idleTracker {
	t := &idleTracker{busy: map[net.Conn]bool{}, period: period, idle: make(chan struct{})}
	t.timer = time.AfterFunc(period, t.fire)
	return t
}

// Idle is closed when the server has been idle for the period.
func (t *idleTracker) Idle() <-chan struct{} { return t.idle }

// ConnState records a connection's state change.
func (t *idleTracker) ConnState(c net.Conn, s http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch s {
	case http.StateNew, http.StateActive:
		t.busy[c] = true
	case http.StateHijacked:
		// A hijacked connection (a Docker attach) is busy until its
		// handler closes it.
		if cn, ok := c.(closeNotifier); ok {
			cn.notifyClose(func() { t.ConnState(c, http.StateClosed) })
		} else {
			delete(t.busy, c)
		}
	default: // StateIdle, StateClosed
		delete(t.busy, c)
	}
	if len(t.busy) > 0 {
		t.timer.Stop()
	} else {
		t.timer.Reset(t.period)
	}
}

// closeNotifier is a connection that calls functions when it is closed.
type closeNotifier interface{ notifyClose(func()) }

// fire closes Idle unless a connection became busy since the timer was
// set.
func (t *idleTracker) fire() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.busy) == 0 {
		t.once.Do(func() { close(t.idle) })
	}
}
