package qga

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeAgent serves one connection at a socket as answer says: it gets
// each request line (without a leading 0xFF) and returns the lines to
// write back.
func fakeAgent(t *testing.T, answer func(req map[string]any) []string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			var req map[string]any
			dec := json.NewDecoder(strings.NewReader(strings.TrimLeft(line, "\xff")))
			dec.UseNumber() // ids print as they came
			if dec.Decode(&req) != nil {
				t.Errorf("the client sent %q", line)
				return
			}
			for _, out := range answer(req) {
				conn.Write([]byte(out + "\n"))
			}
		}
	}()
	return sock
}

// TestExec: a stale reply before the sync's answer is dropped; the
// command's status is polled until it exited; its exit code and output
// come back.
func TestExec(t *testing.T) {
	polls := 0
	sock := fakeAgent(t, func(req map[string]any) []string {
		args, _ := req["arguments"].(map[string]any)
		switch req["execute"] {
		case "guest-sync-delimited":
			return []string{`{"return": {"pid": 7}}`, fmt.Sprintf("\xff{\"return\": %v}", args["id"])}
		case "guest-exec":
			if args["path"] != "/bin/sh" || fmt.Sprint(args["arg"]) != "[-c exit 3]" || args["capture-output"] != true {
				t.Errorf("guest-exec arguments %v", args)
			}
			return []string{`{"return": {"pid": 42}}`}
		case "guest-exec-status":
			if polls++; polls < 3 {
				return []string{`{"return": {"exited": false}}`}
			}
			return []string{`{"return": {"exited": true, "exitcode": 3, "out-data": "aGkK", "err-data": "b29wcwo="}}`}
		}
		return []string{`{"error": {"class": "CommandNotFound", "desc": "no"}}`}
	})
	r, err := Exec(context.Background(), sock, []string{"/bin/sh", "-c", "exit 3"})
	if err != nil || r.ExitCode != 3 || string(r.Output) != "hi\noops\n" || polls != 3 {
		t.Errorf("Exec = %+v, %v after %d polls; want exit 3, output hi and oops", r, err, polls)
	}
}

// TestExecErrors: an agent's error reply names the command and says why;
// a channel where no agent answers ends with ErrNoAgent when ctx does.
func TestExecErrors(t *testing.T) {
	sock := fakeAgent(t, func(req map[string]any) []string {
		if req["execute"] == "guest-sync-delimited" {
			args := req["arguments"].(map[string]any)
			return []string{fmt.Sprintf("\xff{\"return\": %v}", args["id"])}
		}
		return []string{`{"error": {"class": "GenericError", "desc": "Failed to execute child process (No such file or directory)"}}`}
	})
	_, err := Exec(context.Background(), sock, []string{"/nope"})
	if err == nil || !strings.Contains(err.Error(), "guest-exec: GenericError: Failed to execute child process") {
		t.Errorf("a refused command: %v", err)
	}

	silent := fakeAgent(t, func(map[string]any) []string { return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Exec(ctx, silent, []string{"/bin/true"}); !errors.Is(err, ErrNoAgent) || time.Since(start) > 5*time.Second {
		t.Errorf("no agent: %v after %s, want ErrNoAgent when the context ends", err, time.Since(start))
	}
}

// TestExecStillRunning: a command that has not exited when the context
// ends is reported with its guest pid (StillRunning); Reap then asks the
// agent whether it has exited.
func TestExecStillRunning(t *testing.T) {
	exited := false
	answer := func(req map[string]any) []string {
		args, _ := req["arguments"].(map[string]any)
		switch req["execute"] {
		case "guest-sync-delimited":
			return []string{fmt.Sprintf("\xff{\"return\": %v}", args["id"])}
		case "guest-exec":
			return []string{`{"return": {"pid": 42}}`}
		}
		if fmt.Sprint(args["pid"]) != "42" {
			t.Errorf("guest-exec-status of pid %v", args["pid"])
		}
		return []string{fmt.Sprintf(`{"return": {"exited": %v}}`, exited)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Exec(ctx, fakeAgent(t, answer), []string{"sleep", "1000"})
	var still *StillRunning
	if !errors.As(err, &still) || still.PID != 42 {
		t.Fatalf("a command past the deadline: %v, want StillRunning of pid 42", err)
	}
	for _, want := range []bool{false, true} {
		exited = want
		if got, err := Reap(context.Background(), fakeAgent(t, answer), 42); err != nil || got != want {
			t.Errorf("Reap = %v, %v; want %v", got, err, want)
		}
	}
}
