// Package qga runs commands in a VM's guest through a QEMU guest agent
// (qemu-ga, or the Windows guest agent) on the host's end of its
// virtio-serial channel (launch.AgentSocket): what health.command of a VM
// does. The protocol is QMP's JSON, one command at a time: guest-sync-
// delimited first (the agent may hold a stale reply of an earlier client,
// and only its answer carries a 0xFF sentinel), then guest-exec and
// guest-exec-status until the command has exited.
package qga

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// sentinel is the byte that resets the agent's parser when sent, and that
// precedes the answer to guest-sync-delimited.
const sentinel = 0xFF

// pollEvery is how often Exec asks whether the command has exited.
const pollEvery = 100 * time.Millisecond

// maxLine bounds one reply (a command's captured output comes base64 in
// it; the agent caps each of its two streams at 16 MiB).
const maxLine = 48 << 20

// Result is how a command in the guest ended.
type Result struct {
	ExitCode int    // its exit status, or 128+Signal
	Signal   int    // the signal that ended it, or 0
	Output   []byte // its standard output, then its standard error
}

// ErrNoAgent is returned by Exec when no agent answers on the channel
// (none runs in the guest, or the guest is not up yet).
var ErrNoAgent = errors.New("no guest agent answers")

// StillRunning is Exec's error when ctx ended before the command exited:
// it may still run in the guest (the protocol cannot end it), and the
// agent keeps its status until asked (Reap).
type StillRunning struct{ PID int }

func (e *StillRunning) Error() string {
	return fmt.Sprintf("the command (guest pid %d) has not exited", e.PID)
}

// Exec runs argv (argv[0] looked up in the agent's PATH) in the guest
// whose agent channel is the unix socket at socket, until it exits or ctx
// ends (a *StillRunning error).
func Exec(ctx context.Context, socket string, argv []string) (Result, error) {
	var r Result
	err := session(ctx, socket, func(a *agent) (err error) {
		r, err = a.exec(ctx, argv)
		return err
	})
	return r, err
}

// Reap asks the agent whether the command Exec started as guest pid has
// exited, which also lets the agent forget it.
func Reap(ctx context.Context, socket string, pid int) (exited bool, err error) {
	err = session(ctx, socket, func(a *agent) error {
		st, err := a.status(pid)
		exited = st.Exited
		return err
	})
	return exited, err
}

// execStatus is guest-exec-status's answer.
type execStatus struct {
	Exited   bool   `json:"exited"`
	ExitCode int    `json:"exitcode"`
	Signal   int    `json:"signal"`
	Out      []byte `json:"out-data"` // base64 on the wire
	Err      []byte `json:"err-data"`
}

// status asks after the command guest-exec started as pid.
func (a *agent) status(pid int) (execStatus, error) {
	var st execStatus
	err := a.call("guest-exec-status", map[string]int{"pid": pid}, &st)
	return st, err
}

// session connects to the agent at socket, syncs and runs f, all bounded
// by ctx.
func session(ctx context.Context, socket string, f func(*agent) error) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("guest agent at %s: %w", socket, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	a := &agent{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	if err := a.sync(); err != nil {
		return fmt.Errorf("guest agent at %s: %w", socket, errors.Join(err, ctx.Err()))
	}
	if err := f(a); err != nil {
		return fmt.Errorf("guest agent at %s: %w", socket, err)
	}
	return nil
}

// agent is one connection to an agent.
type agent struct {
	conn net.Conn
	r    *bufio.Reader
}

// reply is an agent's answer: a return value or an error.
type reply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// sync resets the agent's parser and waits for the answer to a
// guest-sync-delimited of a fresh id, dropping what comes before it.
func (a *agent) sync() error {
	id := rand.Uint32() >> 1
	req := fmt.Sprintf(`{"execute":"guest-sync-delimited","arguments":{"id":%d}}`, id)
	if _, err := a.conn.Write(append([]byte{sentinel}, req+"\n"...)); err != nil {
		return fmt.Errorf("guest-sync-delimited: %w", err)
	}
	for {
		line, err := a.line()
		if err != nil {
			if errors.Is(err, errTimeout) {
				err = ErrNoAgent
			}
			return fmt.Errorf("guest-sync-delimited: %w", err)
		}
		i := bytes.LastIndexByte(line, sentinel)
		if i < 0 {
			continue // a stale reply
		}
		var got uint32
		if rep, err := parse(line[i+1:]); err == nil && json.Unmarshal(rep, &got) == nil && got == id {
			return nil
		}
	}
}

// errTimeout marks a read that hit the deadline.
var errTimeout = errors.New("timed out")

// line reads one reply line.
func (a *agent) line() ([]byte, error) {
	var buf []byte
	for {
		part, err := a.r.ReadSlice('\n')
		buf = append(buf, part...)
		switch {
		case err == nil:
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull) && len(buf) < maxLine:
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			return nil, fmt.Errorf("a reply longer than %d bytes", maxLine)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, errTimeout
		}
		return nil, fmt.Errorf("read: %w", err)
	}
}

// parse reads a reply's return value, or its error.
func parse(line []byte) (json.RawMessage, error) {
	var r reply
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("a reply that is not JSON: %q", truncate(line))
	}
	if r.Error != nil {
		return nil, fmt.Errorf("%s: %s", r.Error.Class, r.Error.Desc)
	}
	if r.Return == nil {
		return nil, fmt.Errorf("a reply without return: %q", truncate(line))
	}
	return r.Return, nil
}

// truncate shortens what an error quotes.
func truncate(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// call sends command with arguments and decodes its return value into v.
func (a *agent) call(command string, arguments any, v any) error {
	req, err := json.Marshal(map[string]any{"execute": command, "arguments": arguments})
	if err != nil {
		return err
	}
	if _, err := a.conn.Write(append(req, '\n')); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	line, err := a.line()
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	rep, err := parse(line)
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	if err := json.Unmarshal(rep, v); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	return nil
}

// exec starts argv with guest-exec and polls guest-exec-status until it
// has exited.
func (a *agent) exec(ctx context.Context, argv []string) (Result, error) {
	var started struct {
		PID int `json:"pid"`
	}
	args := map[string]any{"path": argv[0], "arg": argv[1:], "capture-output": true}
	if err := a.call("guest-exec", args, &started); err != nil {
		return Result{}, err
	}
	for {
		st, err := a.status(started.PID)
		if err != nil {
			if ctx.Err() != nil {
				return Result{}, &StillRunning{started.PID}
			}
			return Result{}, err
		}
		if st.Exited {
			r := Result{ExitCode: st.ExitCode, Signal: st.Signal, Output: append(st.Out, st.Err...)}
			if st.Signal != 0 {
				r.ExitCode = 128 + st.Signal
			}
			return r, nil
		}
		select {
		case <-ctx.Done():
			return Result{}, &StillRunning{started.PID}
		case <-time.After(pollEvery):
		}
	}
}
