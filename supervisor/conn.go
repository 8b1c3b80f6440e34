// Package supervisor is cove's only link to systemd: it starts transient
// units, stops, restarts and removes them, lists and inspects workloads and
// reads their logs. Operations are context-first; errors name the unit.
package supervisor

import (
	"context"
	"errors"
	"fmt"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// Conn is a connection to the system manager over the system bus.
type Conn struct {
	sd  *sd.Conn
	sig *dbus.Conn // the connection go-systemd receives signals on
	// inflight bounds the units whose properties are fetched at once (List
	// fans out, a dozen calls a unit), listCalls the ListUnits calls: all
	// go over sig, and the bus refuses more than 128 pending replies per
	// connection (maxInflight*12 + maxListCalls stays below).
	inflight, listCalls chan struct{}
	cache               *cache // used once Watch succeeded
}

// maxInflight is how many units' property calls a Conn has pending at
// most, maxListCalls how many ListUnits calls.
const (
	maxInflight  = 6
	maxListCalls = 32
)

// Connect opens a connection to systemd on the system bus. The system bus
// (not systemd's private socket) is used because unit references (AddRef)
// and file-descriptor passing work there.
//
// go-systemd wants two connections (calls, and the signals it receives);
// they are dialled at once, as each waits for the bus's authentication
// and Hello round trips, which every cove command pays before its first
// call.
func Connect(ctx context.Context) (*Conn, error) {
	k := newCache()
	dial := func() dialed {
		c, err := dbus.SystemBusPrivate(dbus.WithContext(ctx), dbus.WithSignalHandler(newSignalTap(k.see)))
		if err != nil {
			return dialed{err: err}
		}
		if err = c.Auth(nil); err == nil {
			err = c.Hello()
		}
		if err != nil {
			c.Close()
			return dialed{err: err}
		}
		return dialed{conn: c}
	}
	sig := make(chan dialed, 1)
	go func() { sig <- dial() }()
	first, second, calls := dial(), dialed{}, 0
	conn, err := sd.NewConnection(func() (*dbus.Conn, error) {
		switch calls++; calls {
		case 1:
			return first.conn, first.err
		case 2:
			second = <-sig
			return second.conn, second.err
		}
		return nil, errors.New("go-systemd asked for a third connection")
	})
	if err != nil {
		if calls == 1 { // the signals' connection was never handed over
			if d := <-sig; d.conn != nil {
				d.conn.Close()
			}
		}
		return nil, fmt.Errorf("connect to systemd on the system bus: %w", err)
	}
	return &Conn{sd: conn, sig: second.conn, inflight: make(chan struct{}, maxInflight),
		listCalls: make(chan struct{}, maxListCalls), cache: k}, nil
}

// dialed is a connection to the system bus, authenticated and named, or
// why there is none.
type dialed struct {
	conn *dbus.Conn
	err  error
}

// watchRules are the signals the cache needs: changes of units (cove's are
// filtered by path when they arrive), units appearing and going, reloads,
// and systemd itself going away.
var watchRules = []string{
	"type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path_namespace='/org/freedesktop/systemd1/unit'",
	"type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='UnitNew'",
	"type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='UnitRemoved'",
	"type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',member='Reloading'",
	"type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.freedesktop.systemd1'",
}

// Watch subscribes to systemd's change signals for the connection's
// lifetime and from then on lets List and Status answer unchanged
// workloads from a cache. It is for long-lived connections (the API
// helper); a subscribed client makes systemd send every unit change.
func (c *Conn) Watch(ctx context.Context) error {
	for _, rule := range watchRules {
		if err := c.sig.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.AddMatch", 0, rule).Err; err != nil {
			return fmt.Errorf("watch systemd: add match %s: %w", rule, err)
		}
	}
	return c.subscribe(ctx)
}

// CacheStats says how List and Status answered since Watch: all fetches
// without it.
func (c *Conn) CacheStats() CacheStats { return c.cache.counts() }

// subscribe asks systemd for its change signals and starts the cache. A
// systemd that re-executed may still have the subscription.
func (c *Conn) subscribe(ctx context.Context) error {
	owner := c.cache.owner()
	obj := c.sig.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1")
	err := obj.CallWithContext(ctx, "org.freedesktop.systemd1.Manager.Subscribe", 0).Err
	var de dbus.Error
	if err != nil && !(errors.As(err, &de) && de.Name == "org.freedesktop.systemd1.AlreadySubscribed") {
		return fmt.Errorf("watch systemd: subscribe: %w", err)
	}
	c.cache.start(owner)
	return nil
}

// Close closes the connection; references it held on units are dropped.
func (c *Conn) Close() { c.sd.Close() }

// ErrNotFound is returned for a workload that systemd does not know.
var ErrNotFound = errors.New("no such workload")

// waitJob waits for a job started with ch and turns its result into an
// error naming op and unit.
func waitJob(ctx context.Context, op, unit string, ch <-chan string) error {
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s %s: job %s", op, unit, res)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", op, unit, ctx.Err())
	}
}

// notFoundErrors are the D-Bus errors for a unit that is not there. (A
// property of a unit gone between ListUnits and the call is read from a
// not-found stub: no COVE_KIND, so no workload either.)
var notFoundErrors = map[string]bool{
	"org.freedesktop.systemd1.NoSuchUnit": true,
	"org.freedesktop.systemd1.LoadFailed": true,
}

// notFound maps systemd's "no such unit" errors to ErrNotFound.
func notFound(op, unit string, err error) error {
	var de dbus.Error
	if errors.As(err, &de) && notFoundErrors[de.Name] {
		return fmt.Errorf("%s %s: %w", op, unit, ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w", op, unit, err)
}
