// Package qmp is a minimal client of the QEMU Machine Protocol, used by
// the VM launcher to stop a guest.
package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

// QMP is a minimal client of the QEMU Machine Protocol on a unix socket:
// one command at a time, asynchronous events skipped. It is what "cove
// stop" needs (system_powerdown, query-status), not a general client.
type QMP struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	id   int
}

// Error is an error QEMU returned for a command.
type Error struct {
	Command string
	Class   string `json:"class"`
	Desc    string `json:"desc"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Dial connects to the QMP socket at path, reads QEMU's greeting and
// leaves capabilities negotiation mode (qmp_capabilities). ctx bounds the
// whole handshake.
func Dial(ctx context.Context, path string) (*QMP, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	q := &QMP{conn: conn, r: bufio.NewReader(conn)}
	err = q.withDeadline(ctx, func() error {
		var greeting struct {
			QMP *struct {
				Version json.RawMessage `json:"version"`
			} `json:"QMP"`
		}
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("read greeting: %w", err)
		}
		if err := json.Unmarshal(line, &greeting); err != nil || greeting.QMP == nil {
			return fmt.Errorf("not a QMP greeting: %.100q", line)
		}
		_, err = q.execute("qmp_capabilities", nil)
		return err
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp %s: %w", path, err)
	}
	return q, nil
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }

// Execute runs cmd with args (nil for none; else marshalled as the
// "arguments" object) and returns the "return" value. Events that arrive
// meanwhile are skipped. ctx bounds the exchange; when it ends first the
// connection is unusable and should be closed.
func (q *QMP) Execute(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ret json.RawMessage
	err := q.withDeadline(ctx, func() error {
		var err error
		ret, err = q.execute(cmd, args)
		return err
	})
	return ret, err
}

// withDeadline runs f with the connection's deadline set from ctx, and
// closes the connection's pending I/O if ctx is cancelled early.
func (q *QMP) withDeadline(ctx context.Context, f func() error) error {
	if dl, ok := ctx.Deadline(); ok {
		q.conn.SetDeadline(dl)
	} else {
		q.conn.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { q.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err := f()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection's deadline, set from ctx, passed before ctx's own
		// timer fired.
		return context.DeadlineExceeded
	}
	return err
}

func (q *QMP) execute(cmd string, args any) (json.RawMessage, error) {
	q.id++
	id := fmt.Sprintf("cove-%d", q.id)
	req := map[string]any{"execute": cmd, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		var resp struct {
			Event  string          `json:"event"`
			ID     json.RawMessage `json:"id"`
			Return json.RawMessage `json:"return"`
			Error  *Error          `json:"error"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("qmp %s: bad reply %.100q: %w", cmd, line, err)
		}
		if resp.Event != "" {
			continue // asynchronous event
		}
		if string(resp.ID) != `"`+id+`"` {
			continue // a reply to an earlier, abandoned command
		}
		if resp.Error != nil {
			resp.Error.Command = cmd
			return nil, resp.Error
		}
		if resp.Return == nil {
			return nil, fmt.Errorf("qmp %s: reply without return: %.100q", cmd, line)
		}
		return resp.Return, nil
	}
}

// QueryStatus returns the VM's run state ("running", "paused",
// "shutdown", …) from query-status.
func (q *QMP) QueryStatus(ctx context.Context) (string, error) {
	raw, err := q.Execute(ctx, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return "", fmt.Errorf("qmp query-status: %w", err)
	}
	if st.Status == "" {
		return "", errors.New("qmp query-status: no status")
	}
	return st.Status, nil
}
