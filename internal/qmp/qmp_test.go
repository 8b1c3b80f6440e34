package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQMP serves one QMP connection on a unix socket: the greeting, then
// for each command the events in events[cmd] followed by reply(cmd).
func fakeQMP(t *testing.T, events map[string][]string, reply func(cmd, id string) string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write([]byte(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}}, "capabilities": []}}` + "\r\n"))
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			var req struct {
				Execute string          `json:"execute"`
				ID      json.RawMessage `json:"id"`
			}
			json.Unmarshal(sc.Bytes(), &req)
			for _, e := range events[req.Execute] {
				conn.Write([]byte(e + "\r\n"))
			}
			if r := reply(req.Execute, string(req.ID)); r != "" {
				conn.Write([]byte(r + "\r\n"))
			}
		}
	}()
	return path
}

// TestQMP checks the handshake, event skipping, errors and query-status.
func TestQMP(t *testing.T) {
	path := fakeQMP(t, map[string][]string{
		"system_powerdown": {`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "POWERDOWN"}`},
	}, func(cmd, id string) string {
		switch cmd {
		case "qmp_capabilities", "system_powerdown":
			return `{"return": {}, "id": ` + id + `}`
		case "query-status":
			return `{"return": {"status": "running", "singlestep": false, "running": true}, "id": ` + id + `}`
		case "hang":
			return ""
		default:
			return `{"error": {"class": "CommandNotFound", "desc": "The command ` + cmd + ` has not been found"}, "id": ` + id + `}`
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if ret, err := q.Execute(ctx, "system_powerdown", nil); err != nil || string(ret) != "{}" {
		t.Errorf("system_powerdown: %s, %v", ret, err)
	}
	if st, err := q.QueryStatus(ctx); err != nil || st != "running" {
		t.Errorf("query-status: %q, %v", st, err)
	}
	var qe *Error
	if _, err := q.Execute(ctx, "bogus", map[string]any{"x": 1}); !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Errorf("bogus: %v", err)
	}
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	if _, err := q.Execute(short, "hang", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("hang: took %v", d)
	}
}

// TestDialQMPNotQMP checks that a socket that does not speak QMP is
// refused.
func TestDialQMPNotQMP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("hello\n"))
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, path); err == nil || !strings.Contains(err.Error(), "greeting") {
		t.Errorf("Dial: %v", err)
	}
}
