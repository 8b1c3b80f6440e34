package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLogsTailWithBounds: -n counts the last lines within --since and
// --until (journalctl 252 alone gets that combination wrong), also when
// following, and through the API the same.
func TestLogsTailWithBounds(t *testing.T) {
	env.Need(t)
	cleanupWorkload(t, "tail")
	mustCove(t, runArgs("-d", "--name", "tail", "--", "/bin/sh", "-c",
		`trap "echo line 11" HUP; for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i; sleep 0.05; done; while :; do sleep 1; done`)...)
	var stamps []string
	eventually(t, 10*time.Second, "ten lines in the journal", func() bool {
		stamps = strings.Split(strings.TrimSpace(mustCove(t, "logs", "-t", "tail")), "\n")
		return len(stamps) == 10
	})
	at := func(i int) string { return strings.Fields(stamps[i-1])[0] } // line i's time
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "2", "--since", at(3)}, "line 9\nline 10\n"},
		{[]string{"-n", "2", "--until", at(5)}, "line 4\nline 5\n"},
		{[]string{"-n", "2", "--since", at(2), "--until", at(5)}, "line 4\nline 5\n"},
		{[]string{"-n", "20", "--since", at(9)}, "line 9\nline 10\n"},
		{[]string{"-n", "1", "-t", "--since", at(1), "--until", at(1)}, stamps[0] + "\n"},
	} {
		args := append(append([]string{"logs"}, tc.args...), "tail")
		if got := mustCove(t, args...); got != tc.want {
			t.Errorf("cove %q: %q, want %q", args, got, tc.want)
		}
		needAPI(t)
		if r := viaAPI(t, args...); r.Stdout != tc.want {
			t.Errorf("cove --host %q: exit %d %q, want %q %s", args, r.Code, r.Stdout, tc.want, r.Stderr)
		}
	}
	follow := startInside(t, coveBin, "logs", "-f", "-n", "2", "--since", at(1), "tail")
	follow.waitLine(t, "line 9")
	follow.waitLine(t, "line 10")
	mustCove(t, "kill", "-s", "HUP", "tail")
	select {
	case l := <-follow.lines:
		if l != "line 11" {
			t.Errorf("the follow went on with %q, want line 11", l)
		}
	case <-time.After(10 * time.Second):
		t.Error("the follow did not print line 11")
	}
}

// TestLogsUnknown: every command that takes a workload's name says "no
// such workload NAME" and exits 1 for one systemd does not know (cove logs
// used to print nothing and exit 0), with -f too.
func TestLogsUnknown(t *testing.T) {
	env.Need(t)
	png := filepath.Join(workDir, "nosuch.png")
	for _, args := range [][]string{
		{"logs", "nosuch"}, {"logs", "-f", "nosuch"}, {"status", "nosuch"}, {"stop", "nosuch"}, {"start", "nosuch"},
		{"restart", "nosuch"}, {"rm", "nosuch"}, {"kill", "nosuch"}, {"exec", "nosuch", "--", "true"},
		{"stats", "--no-stream", "nosuch"}, {"attach", "nosuch"}, {"console", "nosuch"}, {"vnc", "nosuch"},
		{"screenshot", "nosuch", png},
	} {
		r := cove(t, args...)
		if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "no such workload nosuch") {
			t.Errorf("cove %s: exit %d, stdout %q, stderr %q; want exit 1 and no such workload nosuch", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
		}
	}
}
