package outcome

import (
	"testing"
	"time"
)

// TestJudge: how the post stage reads a run's end.
func TestJudge(t *testing.T) {
	const inv = "0123"
	sigkill := Run{Invocation: inv, Result: "success", ExitCode: "killed", ExitStatus: "KILL"}
	stopped := Record{Invocation: inv, Kind: StoppedByKill, After: time.Second}
	for _, c := range []struct {
		what       string
		run        Run
		stop       Record
		oom, limit uint64
		want       string // the record's text, "" for none
		hidden     bool
		fail       bool
	}{
		{"a stop asked for that needed SIGKILL", sigkill, stopped, 0, 8 << 20, "stopped with SIGKILL after 1s", true, false},
		{"an earlier run's stop record", sigkill, Record{Invocation: "old", Kind: StoppedByKill}, 0, 0, "killed by SIGKILL", true, true},
		{"the memory limit", sigkill, Record{}, 1, 8 << 20, "killed: out of memory (limit 8M)", true, true},
		{"no limit (v1)", sigkill, Record{}, 1, 1<<63 - 4096, "killed: out of memory", true, true},
		{"an init's 137 after an OOM kill, failed already",
			Run{Invocation: inv, Result: "exit-code", ExitCode: "exited", ExitStatus: "137"}, Record{}, 1, 8 << 20, "killed: out of memory (limit 8M)", false, false},
		{"SIGKILL, a unit that fails on it anyway",
			Run{Invocation: inv, Result: "signal", ExitCode: "killed", ExitStatus: "KILL"}, Record{}, 0, 0, "killed by SIGKILL", false, false},
		{"a clean stop", Run{Invocation: inv, Result: "success", ExitCode: "killed", ExitStatus: "TERM"}, stopped, 0, 0, "", false, false},
		{"an exit", Run{Invocation: inv, Result: "exit-code", ExitCode: "exited", ExitStatus: "3"}, Record{}, 1, 0, "", false, false},
	} {
		v := judge(c.run, c.stop, c.oom, c.limit)
		got := ""
		if v.Record != nil {
			got = v.Record.String()
		}
		if got != c.want || v.HiddenKill != c.hidden || v.Fail != c.fail || v.Forgive {
			t.Errorf("%s: %q hidden %v fail %v forgive %v, want %q %v %v and no forgiving", c.what, got, v.HiddenKill, v.Fail, v.Forgive, c.want, c.hidden, c.fail)
		}
	}
	// In a unit where SIGKILL is not clean, systemd counts the stop's
	// SIGKILL as the run's failure: the post stage forgives it.
	v := judge(Run{Invocation: inv, Result: "signal", ExitCode: "killed", ExitStatus: "KILL"}, stopped, 0, 0)
	if !v.Forgive || v.Fail || v.Record == nil || v.Record.Kind != StoppedByKill {
		t.Errorf("a stop asked for that needed SIGKILL, the unit failed: %+v; want it forgiven", v)
	}
}

// TestExitsGetNoRecord: a run whose main process exited with a status
// other than 137 gets no record and passes, whatever the stop stage wrote
// and the cgroup counted; units' post gate skips the post stage for it.
func TestExitsGetNoRecord(t *testing.T) {
	for _, status := range []string{"0", "1", "3", "127", "136", "138", "255"} {
		for _, result := range []string{"success", "exit-code"} {
			run := Run{Invocation: "0123", Result: result, ExitCode: "exited", ExitStatus: status}
			stop := Record{Invocation: "0123", Kind: StoppedByKill}
			if v := judge(run, stop, 1, 8<<20); v.Record != nil || v.Fail || v.HiddenKill {
				t.Errorf("exit %s (%s): %+v, want no record", status, result, v)
			}
		}
	}
}

// TestOfResult: a run systemd judged alone says what its Result says.
func TestOfResult(t *testing.T) {
	for result, want := range map[string]string{
		"timeout":  "stopped with SIGKILL after 3s",
		"oom-kill": "killed: out of memory",
		"signal":   "killed by SIGKILL",
	} {
		if got := OfResult(result, 3*time.Second).String(); got != want {
			t.Errorf("OfResult(%q) says %q, want %q", result, got, want)
		}
	}
}
